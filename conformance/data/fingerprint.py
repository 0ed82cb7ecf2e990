"""Behaviour fingerprints of an implementation, and the diff of two of them.

A fingerprint records, for every case, what the implementation did: each
check's observed value (exact values as they are; numeric ones compared later
with a relative tolerance of ``NUMERIC_RTOL``; statistical ones only as
"consistent with the target distribution" or not, so that the draws' noise
never shows as change), the case's notes, its verdict, and the environment.
Apart from that behaviour it keeps what the machine measured (errors in eps,
``Checks.measure``): a diff shows where such a figure moved to another power
of two, and never counts it as a change, so the same stack recorded on two
machines diffs as "No behaviour changed".

Format (JSON, keys sorted, so reordering cases changes nothing)::

    {"format": "keras-conformance-fingerprint", "format_version": 3,
     "environment": {"impl": ..., "keras": ..., <framework>: ..., "numpy": ..., "python": ..., "device": ...,
                     "device_kind": ...},
     "cases": {"<case id>": {"topic": ..., "description": ..., "status": "pass|divergence|fail|skip",
                             "behaviour": {"<check key>": {"kind": "exact|numeric|statistical", "value": ...,
                                                           "label": "<the check's text>"}},
                             "notes": {...}, "measurements": {"<name>": <number>},
                             "flapping": {"<check key or 'verdict'>": [<value in each run>, ...]}}}}

``flapping`` is there only for a stack recorded several times (``history run --repeat N``): the checks whose
value was not the same in every run.  A diff and the history's timeline never present them as a change.

Checks are keyed by their stable key (``Check.key``), so rewording a check's
text changes its label, not its identity.  Earlier versions are read through
``MIGRATIONS``: version 1 keyed checks by their text (re-keyed with
``key_of``); versions 1 and 2 kept the measured errors among the notes.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, cast

import numpy as np

from conformance.data.files import read_json, unknown_version
from conformance.data.schema import (
    CaseEntry,
    CaseResult,
    Change,
    ChangedCase,
    Diff,
    Fingerprint,
    Measured,
    Observation,
    Run,
    SurfaceEntry,
)
from conformance.engine.checks import key_of

FORMAT = "keras-conformance-fingerprint"
FORMAT_VERSION = 3
NUMERIC_RTOL = 1e-4


class FingerprintError(Exception):
    """A fingerprint file is missing, corrupt or foreign; the message is one line."""


#: Numeric observations with more elements than this are kept as summary statistics.
LARGEST_KEPT_ARRAY = 16


def as_array(observed: Any) -> np.ndarray | None:
    """``observed`` as a float array if it is a (nested) list of numbers, else None."""
    if not isinstance(observed, list):
        return None
    try:
        return np.asarray(observed, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def numeric_value(observed: Any) -> Any:
    """A numeric observation as kept: small ones whole, large arrays as shape and statistics."""
    arr = as_array(observed)
    if arr is None or arr.size <= LARGEST_KEPT_ARRAY:
        return observed
    return {"shape": list(arr.shape), "mean": float(f"{arr.mean():.7g}"), "std": float(f"{arr.std():.7g}"),
            "min": float(f"{arr.min():.7g}"), "max": float(f"{arr.max():.7g}")}


def exact_value(observed: Any) -> Any:
    """An exact observation as kept: large arrays as shape and a SHA-256 digest of their values."""
    arr = as_array(observed)
    if arr is None or arr.size <= LARGEST_KEPT_ARRAY:
        return observed
    digest = hashlib.sha256(json.dumps(observed).encode()).hexdigest()[:16]
    return {"shape": list(arr.shape), "sha256": digest}


def case_entry(result: CaseResult) -> CaseEntry:
    """The fingerprint of one case result (as the plugin's JSON holds it)."""
    behaviour: dict[str, Observation] = {}
    for check in result["checks"]:
        kind = check.get("kind", "exact")
        if kind == "statistical":
            value = {"consistent": check["passed"], "target": check["expected"]}
        elif kind == "numeric":
            value = numeric_value(check["observed"])
        else:
            value = exact_value(check["observed"])
        behaviour[check.get("key") or key_of(check["name"])] = {"kind": kind, "value": value, "label": check["name"]}
    return {
        "topic": result["topic"],
        "description": result["description"],
        "status": result["status"],
        "behaviour": behaviour,
        "notes": result.get("notes", {}),
        "measurements": result.get("measurements", {}),
        "skip_reason": result.get("skip_reason", ""),
    }


def from_run(run: Run) -> Fingerprint:
    """A fingerprint from one implementation's ``--conformance-json`` output."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "environment": {"impl": run["impl"], **run["environment"]},
        "cases": {r["id"]: case_entry(r) for r in run["results"]},
        "surface": run.get("surface", {}),
    }


def dumps(fp: Fingerprint) -> str:
    return json.dumps(fp, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def load(path: Path) -> Fingerprint:
    """Read and validate a fingerprint, migrated to ``FORMAT_VERSION``; any problem is one line."""
    data = read_json(path, FingerprintError)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FingerprintError(f"{path} is not a keras-conformance fingerprint")
    version = data.get("format_version")
    if version != FORMAT_VERSION and version not in MIGRATIONS:
        raise FingerprintError(unknown_version(path, version, [*MIGRATIONS, FORMAT_VERSION]))
    if not isinstance(data.get("cases"), dict) or not isinstance(data.get("environment"), dict):
        raise FingerprintError(f"{path} lacks its cases or environment")
    return migrate(data)


def migrate(data: dict[str, Any]) -> Fingerprint:  # JSON in
    """A fingerprint of any version read, as ``FORMAT_VERSION``: each migration in turn."""
    while data["format_version"] != FORMAT_VERSION:
        data = MIGRATIONS[data["format_version"]](data)
    return cast(Fingerprint, data)


def _keyed_checks(data: dict[str, Any]) -> dict[str, Any]:  # JSON of version 1 in, of version 2 out
    """Version 1 (checks keyed by their text) as version 2 (keyed by ``key_of`` of it)."""
    for entry in data["cases"].values():
        entry["behaviour"] = {key_of(name): {**value, "label": name} for name, value in entry["behaviour"].items()}
    return {**data, "format_version": 2}


#: The notes that versions 1 and 2 kept and that are what the machine measured, not what Keras does.
MEASURED_NOTE = re.compile(r"error in eps")


def _measurements_apart(data: dict[str, Any]) -> dict[str, Any]:  # JSON of version 2 in, of version 3 out
    """Version 2 as version 3: the errors in eps move from the notes to the measurements, and the device
    kind is recorded (from the device's description)."""
    from conformance.data.target import device_kind_of

    for entry in data["cases"].values():
        notes = entry.get("notes", {})
        entry["measurements"] = {name: value for name, value in notes.items() if MEASURED_NOTE.search(name)}
        entry["notes"] = {name: value for name, value in notes.items() if not MEASURED_NOTE.search(name)}
    env = data["environment"]
    if "device_kind" not in env and env.get("device"):
        env = {**env, "device_kind": device_kind_of(str(env["device"]))}
    return {**data, "environment": env, "format_version": 3}


#: How to read each earlier format version: a function to the next version.
MIGRATIONS = {1: _keyed_checks, 2: _measurements_apart}


def numbers(value: Any) -> list[float] | None:
    """Every number in ``value`` (nested lists and dicts), or None if it holds anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return [float(value)]
    items = [value[k] for k in sorted(value)] if isinstance(value, dict) else value if isinstance(value, list) else None
    if items is None:
        return None
    out = []
    for item in items:
        inner = numbers(item)
        if inner is None:
            return None
        out += inner
    return out


def same_value(kind: str, old: Any, new: Any) -> bool:
    """Numeric values agree within NUMERIC_RTOL of the largest magnitude among them (so values near 0
    and summary statistics compare sensibly); everything else must be equal."""
    if kind == "numeric":
        a, b = numbers(old), numbers(new)
        if a is None or b is None or len(a) != len(b) or type(old) is not type(new):
            return old == new
        if isinstance(old, dict) and old.keys() != new.keys():
            return False
        scale = max([abs(v) for v in a + b if np.isfinite(v)] + [1e-30])
        # inf is inf and NaN is NaN; anything else non-finite differs from what it is compared with
        return all(x == y or (np.isnan(x) and np.isnan(y)) or abs(x - y) <= NUMERIC_RTOL * scale
                   for x, y in zip(a, b, strict=True))
    return old == new


def compare_case(old: CaseEntry, new: CaseEntry) -> list[Change]:
    """What differs between two fingerprints of one case: [{"what", "old", "new"}]; a check that flapped
    between repeated runs on either side (``flapping``) is never a change."""
    flapping = set(old.get("flapping", {})) | set(new.get("flapping", {}))
    changes: list[Change] = []
    if old["status"] != new["status"] and "verdict" not in flapping:
        changes.append({"what": "verdict", "old": old["status"], "new": new["status"]})
    before, after = old.get("behaviour", {}), new.get("behaviour", {})
    for name in sorted((set(before) | set(after)) - flapping):
        a, b = before.get(name), after.get(name)
        a_value = a["value"] if a else "(not observed)"
        b_value = b["value"] if b else "(not observed)"
        observation = b or a
        assert observation is not None
        if not same_value(observation["kind"], a_value, b_value):
            changes.append({"what": observation.get("label", name), "key": name, "old": a_value, "new": b_value,
                            "kind": observation["kind"]})
    notes_before, notes_after = old.get("notes", {}), new.get("notes", {})
    for name in sorted(set(notes_before) | set(notes_after)):
        a_value = notes_before[name] if name in notes_before else "(none)"
        b_value = notes_after[name] if name in notes_after else "(none)"
        if not same_value("numeric", a_value, b_value):
            changes.append({"what": f"note: {name}", "key": name, "old": a_value, "new": b_value})
    return changes


def flapping(runs: list[Fingerprint]) -> dict[str, dict[str, list[Any]]]:
    """Of several fingerprints of one stack, per case, each check (and ``verdict``) whose value is not the same
    in every run (compared as a diff compares them), with its value in each run."""
    out: dict[str, dict[str, list[Any]]] = {}
    for case_id, entry in runs[0]["cases"].items():
        entries = [fp["cases"].get(case_id) for fp in runs]
        flaps: dict[str, list[Any]] = {}
        statuses = [e["status"] if e else "(absent)" for e in entries]
        if len(set(statuses)) > 1:
            flaps["verdict"] = statuses
        for key, check in entry.get("behaviour", {}).items():
            values = [e["behaviour"][key]["value"] if e and key in e["behaviour"] else "(not observed)" for e in entries]
            if not all(same_value(check["kind"], values[0], v) for v in values[1:]):
                flaps[key] = values
        if flaps:
            out[case_id] = flaps
    return out


def repeated(runs: list[Fingerprint]) -> Fingerprint:
    """The fingerprint of a stack recorded ``len(runs)`` times: the first run's, each case with its flapping checks,
    and the number of runs in the environment."""
    fp = json.loads(json.dumps(runs[0]))
    for case_id, flaps in flapping(runs).items():
        fp["cases"][case_id]["flapping"] = flaps
    fp["environment"]["runs"] = len(runs)
    return fp


def diff(old: Fingerprint, new: Fingerprint) -> Diff:
    """Every case whose behaviour changed, cases added and removed, and environment differences."""
    old_cases, new_cases = old["cases"], new["cases"]
    changed: dict[str, ChangedCase] = {}
    for case_id in sorted(set(old_cases) & set(new_cases)):
        changes = compare_case(old_cases[case_id], new_cases[case_id])
        if changes:
            changed[case_id] = {"topic": new_cases[case_id]["topic"],
                                "description": new_cases[case_id]["description"], "changes": changes}
    changed |= surface_changes(old.get("surface", {}), new.get("surface", {}))
    measured: dict[str, list[Measured]] = {}
    for case_id in sorted(set(old_cases) & set(new_cases)):
        moved = measurements_moved(old_cases[case_id].get("measurements", {}), new_cases[case_id].get("measurements", {}))
        if moved:
            measured[case_id] = moved
    flapped = {case_id: sorted(set(old_cases[case_id].get("flapping", {})) | set(new_cases[case_id].get("flapping", {})))
               for case_id in sorted(set(old_cases) & set(new_cases))}
    env_keys = sorted(set(old["environment"]) | set(new["environment"]))
    environment = {key: [old["environment"].get(key), new["environment"].get(key)]
                   for key in env_keys if old["environment"].get(key) != new["environment"].get(key)}
    return {
        "old": old["environment"], "new": new["environment"], "environment": environment,
        "changed": changed,
        "measured": measured,
        "flapping": {case_id: keys for case_id, keys in flapped.items() if keys},
        "added": sorted(set(new_cases) - set(old_cases)),
        "removed": sorted(set(old_cases) - set(new_cases)),
    }


def measurements_moved(old: dict[str, float], new: dict[str, float]) -> list[Measured]:
    """The measured errors of one case that moved to another power of two (``precision.bucket``), or that one
    side lacks: what a diff shows apart from the behaviour, never as a change."""
    from conformance.engine.precision import bucket

    def shown(value: Any) -> str:
        return bucket(float(value)) if isinstance(value, (int, float)) else "(not measured)"

    return [{"what": name, "old": old.get(name), "new": new.get(name)} for name in sorted(set(old) | set(new))
            if shown(old.get(name)) != shown(new.get(name))]


def surface_changes(old: dict[str, SurfaceEntry], new: dict[str, SurfaceEntry]) -> dict[str, ChangedCase]:
    """What changed in the public surface (conformance.engine.surface), as pseudo-cases ``surface-<Class>``:
    one change per argument added, removed or given another default, and one for the config keys; a
    class that appears or disappears is one change, ``class``.  A side that recorded no surface (an
    older fingerprint) shows nothing."""
    from conformance.engine.surface import ABSENT, checks_of

    changed: dict[str, ChangedCase] = {}
    for name in sorted(set(old) & set(new)):
        a, b = old[name], new[name]
        if a["arguments"] == ABSENT or b["arguments"] == ABSENT:
            shown = [("(absent)" if side["arguments"] == ABSENT else "exists") for side in (a, b)]
            changes: list[Change] = [{"what": "class", "key": "class", "old": shown[0], "new": shown[1]}] if shown[0] != shown[1] else []
        else:
            before, after = checks_of(a), checks_of(b)
            changes = []
            for key in sorted(set(before) | set(after)):
                label = (after.get(key) or before[key])[0]
                old_value = before[key][1] if key in before else "(absent)"
                new_value = after[key][1] if key in after else "(absent)"
                if old_value != new_value:
                    changes.append({"what": label, "key": key, "old": old_value, "new": new_value})
        if changes:
            topic, cls = name.split("/")
            changed[f"surface-{cls}"] = {"topic": topic,
                                         "description": f"the public surface of {cls}: constructor arguments, "
                                                        "their defaults, get_config keys", "changes": changes}
    return changed


def has_changes(d: Diff) -> bool:
    """Whether the behaviour changed: what the machine measured (``d["measured"]``) never counts."""
    return bool(d["changed"] or d["added"] or d["removed"])
