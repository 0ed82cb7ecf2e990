"""The timeline model: per case and check, the runs of releases over which the observed value is the same."""

from __future__ import annotations

from typing import Any, cast

from conformance.data import fingerprint
from conformance.data.schema import (
    CheckChange,
    Fingerprint,
    Kind,
    ReleaseChange,
    Timeline,
    TimelineCase,
    TimelineCheck,
    ValueRun,
)
from conformance.engine import surface
from conformance.history.recipes import Stack


def rows(fp: Fingerprint) -> dict[str, dict[str, Any]]:
    """A fingerprint as rows: each case, and each surface class as ``surface-<Class>``, with its checks'
    values keyed by check key (``verdict`` first)."""
    out = {}
    for case_id, entry in fp["cases"].items():
        checks = {"verdict": ("exact", entry["status"], "verdict")}
        for key, value in entry.get("behaviour", {}).items():
            checks[key] = (value["kind"], value["value"], value.get("label", key))
        out[case_id] = {"topic": entry["topic"], "description": entry["description"], "checks": checks,
                        "flapping": set(entry.get("flapping", {}))}
    for name, surface_entry in fp.get("surface", {}).items():
        topic, cls = name.split("/")
        checks = {key: ("exact", value, label) for key, (label, value) in surface.checks_of(surface_entry).items()}
        out[f"surface-{cls}"] = {"topic": topic, "description": f"the public surface of {cls}", "checks": checks}
    return out


ABSENT = "(not observed)"


def predecessors(stacks: list[Stack]) -> list[int | None]:
    """For each stack of an ordered list, the index of the stack its users upgrade from, what a release page
    compares it with: the one it ``follows`` (Keras 3.0.5 on TensorFlow 2.16 follows Keras 2.15 on TensorFlow
    2.15, not the tf_keras releases that sort between them), else the one before it; None for the first,
    and where the stack it follows is not in the list."""
    index = {s.name: i for i, s in enumerate(stacks)}
    return [index.get(s.follows) if s.follows else (i - 1 if i else None) for i, s in enumerate(stacks)]


def timeline(recorded_stacks: list[tuple[Stack, Fingerprint]]) -> Timeline:
    """Per case and check, the runs of releases over which the observed value is the same.

    Values compare as the fingerprint diff compares them (numbers within ``NUMERIC_RTOL``,
    statistical checks by consistency only).  A case's ``changed_in`` lists the releases at
    which anything about it differs from the release it follows (``previous``: see ``predecessors``).
    A check that flapped between repeated runs of a release (``history run --repeat``) lists that release's
    index in its ``flapping``; it continues the run it is in, and is never a change on either side of it.
    """
    releases = [s.label for s, _ in recorded_stacks]
    previous = predecessors([s for s, _ in recorded_stacks])
    tl: Timeline = {"backend": recorded_stacks[0][0].backend, "releases": releases, "previous": previous,
                    "stacks": [{"name": s.name, "keras": s.keras, "label": s.label, "released": s.released,
                                "framework": s.framework, "impl": s.impl, "environment": fp["environment"]}
                               for s, fp in recorded_stacks],
                    "cases": {}}
    per_release = [rows(fp) for _, fp in recorded_stacks]
    case_ids = sorted({c for r in per_release for c in r}, key=lambda c: (c.startswith("surface-"), c))
    for case_id in case_ids:
        present = [r.get(case_id) for r in per_release]
        first = next(p for p in present if p)
        keys = list(dict.fromkeys(k for p in present if p for k in p["checks"]))
        checks: dict[str, TimelineCheck] = {}
        for key in keys:
            values = [(p["checks"][key] if p and key in p["checks"] else ("exact", ABSENT, key)) for p in present]
            flaps = [i for i, p in enumerate(present) if p and key in p.get("flapping", ())]
            runs: list[ValueRun] = []
            for i, (kind, value, _label) in enumerate(values):
                if runs and (i in flaps or fingerprint.same_value(kind, runs[-1]["value"], value)):
                    runs[-1]["last"] = i
                else:
                    runs.append({"first": i, "last": i, "value": value})
            # the label and kind of the latest release that has the check (a check a release dropped keeps them)
            latest = next(values[i] for i, p in reversed(list(enumerate(present))) if p and key in p["checks"])
            checks[key] = {"label": latest[2], "kind": cast(Kind, latest[0]), "runs": runs}
            if flaps:
                checks[key]["flapping"] = flaps
        case: TimelineCase = {"topic": first["topic"], "description": first["description"], "checks": checks,
                              "changed_in": []}
        case["changed_in"] = [releases[i] for i in range(len(releases)) if changes_at(tl, case, i)]
        tl["cases"][case_id] = case
    return tl


def changes_by_release(tl: Timeline) -> dict[str, list[ReleaseChange]]:
    """For each release, every check whose value differs from the release it follows: case, check, old, new."""
    out: dict[str, list[ReleaseChange]] = {r: [] for r in tl["releases"]}
    for i, release in enumerate(tl["releases"]):
        for case_id, case in tl["cases"].items():
            out[release] += [{"case": case_id, "topic": case["topic"], **change}
                             for change in changes_at(tl, case, i)]
    return out


def value_at(check: TimelineCheck, index: int) -> Any:
    """A check's value at the timeline's ``index``-th release (``history.ABSENT`` where it was not observed)."""
    return next(r["value"] for r in check["runs"] if r["first"] <= index <= r["last"])


def verdict_at(case: TimelineCase, i: int) -> str:
    check = case["checks"].get("verdict")
    return "" if check is None else value_at(check, i)


def changes_at(tl: Timeline, case: TimelineCase, i: int) -> list[CheckChange]:
    """Each check of ``case`` whose value at the ``i``-th release differs from the release it follows
    (``tl["previous"]``; none for the first): key, label, old and new value.  A check that flapped in either
    release (its ``flapping``) is not a change."""
    before = tl["previous"][i]
    if before is None:
        return []
    out: list[CheckChange] = []
    for key, check in case["checks"].items():
        if {before, i} & set(check.get("flapping", ())):
            continue
        old, new = value_at(check, before), value_at(check, i)
        if not fingerprint.same_value(check["kind"], old, new):
            out.append({"key": key, "check": check["label"], "old": old, "new": new})
    return out


def previous_of(tl: Timeline, i: int) -> int:
    """The index of the release the ``i``-th follows; the first release follows none (an error to ask)."""
    before = tl["previous"][i]
    if before is None:
        raise ValueError(f"{tl['releases'][i]} follows no recorded release")
    return before
