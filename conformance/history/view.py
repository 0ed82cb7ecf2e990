"""Rendering the behaviour history: the timeline (Markdown, HTML, JSON), one case, one page per release.

Input is :func:`conformance.history.timeline`: per case and check, the runs
of releases over which the observed value is the same.
"""

from __future__ import annotations

import html
import json
from dataclasses import replace
from typing import Any, Sequence

from packaging.version import Version

from conformance.data.fingerprint import same_value
from conformance.data.schema import Attributed, ReleaseChange, Timeline, TimelineCase, TimelineStack, ValueRun
from conformance.data.target import Target, family_of
from conformance.edges import said
from conformance.history.model import ABSENT, changes_at, previous_of, value_at, verdict_at  # noqa: F401 (view.X too)

#: Background colours of a case's successive behaviours along the releases (the first is the oldest).
PALETTE = ("#dbe9f6", "#fde2c4", "#d5efd5", "#f3d3e6", "#e6e0f5", "#fff3b0", "#cfeff0", "#f5d0c5")
VERDICT_MARK = {"pass": "✓", "divergence": "d", "fail": "✗", "skip": "s"}


def value_text(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def span(tl: Timeline, run: ValueRun) -> str:
    """'3.0.0–3.0.5' or '3.1.0' for a run of releases."""
    first, last = tl["releases"][run["first"]], tl["releases"][run["last"]]
    return first if first == last else f"{first}–{last}"


def changed_cases(tl: Timeline) -> list[str]:
    return [c for c, case in tl["cases"].items() if case["changed_in"]]


def states(tl: Timeline, case: TimelineCase) -> list[int]:
    """For each release, which behaviour of the case it shows (0 for the first seen, 1 for the next new one...)."""
    n = len(tl["releases"])
    signature = []
    for i in range(n):
        signature.append(tuple(next(j for j, r in enumerate(check["runs"]) if r["first"] <= i <= r["last"])
                               for check in case["checks"].values()))
    seen: dict[tuple, int] = {}
    return [seen.setdefault(s, len(seen)) for s in signature]


def what_changed_at(tl: Timeline, case: TimelineCase, i: int) -> list[str]:
    return [f"{c['check']}: {value_text(c['old'], 60)} → {value_text(c['new'], 60)}" for c in changes_at(tl, case, i)]


def changed_checks(tl: Timeline, case: TimelineCase) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each check of ``case`` that changed: its label, and (releases, value) for each of its runs."""
    return [(check["label"], [(span(tl, r), value_text(r["value"])) for r in check["runs"]])
            for check in case["checks"].values() if len(check["runs"]) > 1]


def markdown(tl: Timeline) -> str:
    changed = changed_cases(tl)
    first, last = tl["releases"][0], tl["releases"][-1]
    out = [f"# Behaviour history on {tl['backend']}: {len(tl['releases'])} releases, {first} to {last}", "",
           f"{len(changed)} of {len(tl['cases'])} cases and surfaces changed somewhere along the history; "
           "each line below is a run of releases over which a check gave the same value.", "",
           "## Releases", "", "| release | released | framework | compared with | cases that changed here |",
           "|---|---|---|---|---|"]
    by_release: dict[str, list[str]] = {r: [] for r in tl["releases"]}
    for case_id in changed:
        for release in tl["cases"][case_id]["changed_in"]:
            by_release[release].append(case_id)
    for stack, before in zip(tl["stacks"], tl["previous"], strict=True):
        here = by_release[stack["label"]]
        compared = "—" if before is None else tl["releases"][before]
        out.append(f"| {stack['label']} | {stack['released']} | {stack['framework']} | {compared} | "
                   + (", ".join(f"`{c}`" for c in here) if here else "—") + " |")
    out += ["", "## Cases that changed", ""]
    for case_id in changed:
        case = tl["cases"][case_id]
        out += [f"### `{case_id}`", "", case["description"], "",
                f"Changed in: {', '.join(case['changed_in'])}", ""]
        for label, runs in changed_checks(tl, case):
            out.append(f"- **{label}**: " + "; ".join(f"{where}: `{value}`" for where, value in runs))
        out.append("")
    same = [c for c in tl["cases"] if c not in changed]
    out += ["## Unchanged across every release", "", ", ".join(f"`{c}`" for c in same) or "—", ""]
    return "\n".join(out)


CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } p.lead { max-width: 60em; }
table.grid { border-collapse: collapse; font-size: 12px; }
table.grid th.rel { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; padding: 2px;
                    white-space: nowrap; height: 7.5em; text-align: left; }
table.grid td { border: 1px solid #fff; text-align: center; width: 1.6em; height: 1.5em; padding: 0; cursor: default; }
table.grid td.case { text-align: left; white-space: nowrap; padding-right: .6em; width: auto; font-family: monospace; }
table.grid td.change { box-shadow: inset 3px 0 0 #c0392b; }
table.grid .branch { border-left: 3px solid #555; }
table.grid td.fail { color: #c0392b; font-weight: bold; }
table.grid tr.topic td { background: #fff; font-weight: bold; padding-top: .8em; text-align: left; }
details { margin: .4em 0; } details code { background: #f4f4f4; }
.legend span { display: inline-block; padding: 0 .5em; margin-right: .4em; }
"""


def html_page(tl: Timeline) -> str:
    e = html.escape
    changed = changed_cases(tl)
    first, last = tl["releases"][0], tl["releases"][-1]
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>keras-conformance history on {e(tl['backend'])}</title><style>{CSS}</style></head><body>",
             f"<h1>Behaviour history on {e(tl['backend'])}: {len(tl['releases'])} releases, {e(first)} to {e(last)}</h1>",
             f"<p class='lead'>{len(changed)} of {len(tl['cases'])} cases and public surfaces behave differently "
             "somewhere along the history; the rest are the same in every release (listed at the end). Each row "
             "is a case, each column a release; a colour is one behaviour of that row, so a change of colour is a "
             "change of behaviour, and a red edge marks the release where it happened. The mark is the verdict "
             "(✓ pass, d recorded divergence, ✗ fail, s skip). Hover over a cell for what changed there; the "
             "details below the grid give every value.</p>", *branch_note(tl),
             "<table class='grid'><tr><th></th>"]
    parts += [f"<th class='rel{' branch' if branches(tl, i) else ''}' title='{e(s['label'])}: {e(s['released'])}, "
              f"{e(s['framework'])}{e(follows_text(tl, i))}'>{e(s['keras'])}</th>" for i, s in enumerate(tl["stacks"])]
    parts.append("</tr>")
    topic = None
    for case_id in sorted(changed, key=lambda c: (tl["cases"][c]["topic"], c)):
        case = tl["cases"][case_id]
        if case["topic"] != topic:
            topic = case["topic"]
            parts.append(f"<tr class='topic'><td colspan='{len(tl['releases']) + 1}'>{e(topic)}</td></tr>")
        row = [f"<tr><td class='case'><a href='#{e(case_id)}'>{e(case_id)}</a></td>"]
        for i, state in enumerate(states(tl, case)):
            verdict = verdict_at(case, i)
            here = what_changed_at(tl, case, i)
            title = f"{tl['releases'][i]}: {verdict or 'surface'}" + ("".join(f"\n{line}" for line in here))
            classes = " ".join(c for c in ("change" if here else "", "fail" if verdict == "fail" else "",
                                           "branch" if branches(tl, i) else "") if c)
            row.append(f"<td class='{classes}' style='background:{PALETTE[state % len(PALETTE)]}' "
                       f"title='{e(title)}'>{VERDICT_MARK.get(verdict, '')}</td>")
        parts.append("".join(row) + "</tr>")
    parts.append("</table><h2>What changed, case by case</h2>")
    for case_id in changed:
        case = tl["cases"][case_id]
        parts.append(f"<details id='{e(case_id)}'><summary><code>{e(case_id)}</code>: changed in "
                     f"{e(', '.join(case['changed_in']))}</summary><p>{e(case['description'])}</p><ul>")
        for label, runs in changed_checks(tl, case):
            parts.append(f"<li><b>{e(label)}</b>: "
                         + "; ".join(f"{e(where)}: <code>{e(value)}</code>" for where, value in runs) + "</li>")
        parts.append("</ul></details>")
    same = [c for c in tl["cases"] if c not in changed]
    parts.append(f"<h2>The same in every release ({len(same)})</h2><p>"
                 + ", ".join(f"<code>{e(c)}</code>" for c in same) + "</p></body></html>\n")
    return "".join(parts)


def branches(tl: Timeline, i: int) -> bool:
    """Whether the ``i``-th release follows another than the one before it: a new line of releases starts."""
    return i > 0 and tl["previous"][i] != i - 1


def compared_with(tl: Timeline, i: int) -> str:
    """The release the ``i``-th is compared with where that is not the column before it, else ''."""
    return tl["releases"][previous_of(tl, i)] if branches(tl, i) and tl["previous"][i] is not None else ""


def follows_text(tl: Timeline, i: int) -> str:
    return f"; compared with {compared_with(tl, i)}" if compared_with(tl, i) else ""


def branch_note(tl: Timeline) -> list[str]:
    """The HTML paragraph naming the releases compared with another than the column before them."""
    lines = [f"{html.escape(tl['releases'][i])} with {html.escape(compared_with(tl, i))}"
             for i in range(len(tl["releases"])) if compared_with(tl, i)]
    if not lines:
        return []
    return ["<p class='lead'>A grey line before a release marks a new line of releases: its changes are counted "
            "from the release its users upgrade from, not from the column before it (" + "; ".join(lines) + ").</p>"]


def render(tl: Timeline, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(tl, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return markdown(tl) if fmt == "md" else html_page(tl)


def show(tl: Timeline, case_id: str) -> str:
    """One case across every release: each check's runs of releases and values (Markdown)."""
    case = tl["cases"][case_id]
    out = [f"# `{case_id}` on {tl['backend']}, {tl['releases'][0]} to {tl['releases'][-1]}", "", case["description"],
           "", f"Changed in: {', '.join(case['changed_in']) or 'no release'}", "",
           "| check | releases | value |", "|---|---|---|"]
    for check in case["checks"].values():
        for n, r in enumerate(check["runs"]):
            label = check["label"] if n == 0 else ""
            out.append(f"| {label} | {span(tl, r)} | `{value_text(r['value']).replace('|', '¦')}` |")
    return "\n".join(out) + "\n"


def release_page(tl: Timeline, index: int, changes: list[ReleaseChange], records: list[Any],
                 explanations: Sequence[Any] = ()) -> str:
    """What changed in the four topics from the release ``index`` follows (``tl["previous"]``), each change
    with the expectation records (reason, evidence) whose version range starts or ends there, or the entries
    of ``explained.toml`` (:mod:`conformance.history.explained`) about it, or marked as not yet verified."""
    from conformance.history.explained import explaining

    release, previous = tl["releases"][index], tl["releases"][previous_of(tl, index)]
    stack, before = tl["stacks"][index], tl["stacks"][previous_of(tl, index)]
    framework_changed = stack["framework"] != before["framework"]
    measured = stack["framework"] + (f" ({previous}: {before['framework']})" if framework_changed
                                     else f", as {previous} was")
    out = [f"# Keras {release} on {tl['backend']}: what changed from {previous}", "",
           f"Released {stack['released']}; measured with {measured}. Generated from the recorded history "
           "(`keras-conformance history pages`); each change lists the expectation records or the entries of "
           "`explained.toml` that explain it.", ""]
    if branches(tl, index):
        out += [f"It is compared with {previous}, the release its users upgrade from, not with "
                f"{tl['releases'][index - 1]}, which comes before it in version order (the recipe's `follows`).", ""]
    if not changes:
        return "\n".join(out + ["No behaviour of the four topics changed.", ""])
    by_case: dict[str, list[ReleaseChange]] = {}
    for change in changes:
        by_case.setdefault(change["case"], []).append(change)
    for case_id, items in sorted(by_case.items()):
        out += [f"## `{case_id}`", ""]
        for c in items:
            if tl["cases"][case_id]["checks"][c["key"]]["kind"] == "outcome":  # conformance.edges
                out.append(f"- {said(c['check'], c['old'], c['new'])}")
            else:
                out.append(f"- **{c['check']}**: `{value_text(c['old'])}` → `{value_text(c['new'])}`")
        explained = [r for r in records if r.covers(case_id) and applies(r, stack) != applies(r, before)]
        reasons = {r.reason: r for r in explained}  # one line per reason, however many checks it covers
        if reasons:
            out += [""] + [f"  - *{r.reason}* Evidence: {r.evidence} ({r.file}:{r.line}{scope_text(r)})"
                           for r in reasons.values()]
        elif added := added_layer(case_id, items, stack, before):
            out += ["", "  - " + added]
        elif case_id.startswith("surface-"):
            out += ["", "  - Read from the two releases' constructor signatures and `get_config()` "
                        "(conformance/engine/surface.py): the surface is its own evidence."]
        else:
            found = {id(c): explaining(explanations, tl, index, c) for c in items}
            notes = {e.reason: e for c in items for e in found[id(c)]}
            rest = [c for c in items if not found[id(c)]]
            out += [""] + [f"  - *{e.reason}* Evidence: {e.evidence} ({e.where()})" for e in notes.values()]
            if rest:
                others = f"The other {len(rest)} change(s): " if notes else ""
                out += ["  - " + others + unexplained(tl, index, case_id, rest, framework_changed)]
        out.append("")
    return "\n".join(out)


def attribution_page(tl: Timeline, index: int, cross_framework: str, attributed: list[Attributed],
                     environment: str = "") -> str:
    """Markdown: each change at the ``index``-th release, with its value on the cross stack (that release's
    Keras on the framework of the release before; in that release's whole environment where ``environment``
    names it) and which upgrade moved it."""
    release, previous = tl["releases"][index], tl["releases"][previous_of(tl, index)]
    stack, before = tl["stacks"][index], tl["stacks"][previous_of(tl, index)]
    cross = f"Keras {release} on {cross_framework}"
    out = [f"# Keras {release} on {tl['backend']}: Keras's upgrade or the framework's?", "",
           f"{previous} ran on {before['framework']}, {release} on {stack['framework']}. The cross stack, {cross}, "
           "tells them apart: where it keeps the old value, the framework's upgrade moved it; where it has the "
           "new one, Keras's did.", ""]
    if environment:
        out += [f"The framework's packages could not be swapped alone (their own requirements conflict with "
                f"{release}'s), so the cross stack is {release}'s Keras in {environment}'s whole environment, "
                "installed over any requirement the framework has on Keras: the other packages moved with the "
                "framework.", ""]
    if not attributed:
        return "\n".join(out + ["No behaviour of the four topics changed.", ""])
    out += [f"| case | check | {previous} | {cross} | {release} | moved by |", "|---|---|---|---|---|---|"]
    cell = lambda v: "`" + value_text(v, 60).replace("|", "¦") + "`"  # noqa: E731
    for a in attributed:
        out.append(f"| `{a['case']}` | {a['check']} | {cell(a['old'])} | {cell(a['cross'])} | {cell(a['new'])} "
                   f"| {a['moved_by']} |")
    counts = {m: sum(a["moved_by"] == m for a in attributed) for m in dict.fromkeys(a["moved_by"] for a in attributed)}
    out += ["", "Moved by: " + ", ".join(f"{m} {n}" for m, n in counts.items()) + ".", ""]
    return "\n".join(out)


def added_layer(case_id: str, items: list[ReleaseChange], stack: TimelineStack, before: TimelineStack) -> str:
    """The line for the cases of a declared layer that first run at this release, because Keras gained the
    layer there (its declaration's ``since``, or ``keras2=False`` from Keras 2 to 3): each of their changes is
    from nothing observed, from a skip, or (its ``edges-layer-`` case) from "absent: …".  Empty for any
    other change."""
    from conformance.layers import all_layers

    if not all(c["old"] == ABSENT or c["key"] == "verdict" and c["old"] == "skip"
               or str(c["old"]).startswith("absent: ") for c in items):  # an edges case: conformance.edges.Missing
        return ""
    slugs = [d for d in all_layers() if case_id.startswith(f"layer-{d.slug}-") or case_id == f"edges-layer-{d.slug}"]
    if not slugs:
        return ""
    decl = max(slugs, key=lambda d: len(d.slug))
    families = family_of(before.get("impl", "keras3")), family_of(stack.get("impl", "keras3"))
    if families == ("keras2", "keras3") and not decl.keras2:
        return (f"Keras 2 has no `layers.{decl.cls}`; Keras 3 has it. Evidence: its declaration, "
                f"`keras2=False` ({decl.defined_at}).")
    if families == ("keras3", "keras3") and version_of(before) < Version(decl.since) <= version_of(stack):
        return (f"`layers.{decl.cls}` first ships in Keras {decl.since}. Evidence: its declaration, "
                f"`since=\"{decl.since}\"` ({decl.defined_at}), read in the releases' `keras/layers`.")
    return ""


def unexplained(tl: Timeline, index: int, case_id: str, items: list[ReleaseChange],
                framework_changed: bool) -> str:
    """The line for a change that no record explains: not yet verified, and what the history itself tells:
    whether the verdict stayed the same (the change is within the case's budgets), and whether the framework
    changed between the two stacks too (then it, not Keras, may have moved the values)."""
    line = "Not yet verified against the two releases' sources"
    if all(c["key"] != "verdict" for c in items):
        verdict = verdict_at(tl["cases"][case_id], index)
        if verdict:
            line += f"; the verdict stayed `{verdict}`"
    if framework_changed:
        before, stack = tl["stacks"][previous_of(tl, index)]["framework"], tl["stacks"][index]["framework"]
        line += f"; the framework changed too ({before} → {stack}), which may have moved it"
    return line + "."


def scope_text(record: Any) -> str:
    """', versions `<3.0.3`, framework `jax>=0.10.2`': the version scopes of a record, as a page shows them."""
    return "".join(f", {name} `{value}`" for name in ("versions", "framework") if (value := getattr(record, name)))


def changes_that_do_not_hold(tl: Timeline, records: list[Any]) -> list[str]:
    """The [[change]] records that the recorded history does not bear out, one line each: a record holds
    when its check gives ``observed`` on every recorded stack it applies to, and something else on every
    other stack of its family (Keras 2 or 3; the TensorFlow history has both) and of the implementations
    it names (``only``; all where it names none)."""
    families = {family_of(stack.get("impl", "keras3")) for stack in tl["stacks"]}
    problems = []
    for r in records:
        if r.kind != "change" or r.family not in families or r.case not in tl["cases"]:
            continue
        check = tl["cases"][r.case]["checks"].get(r.check)
        if check is None:
            problems.append(f"{r.where()}: no recorded stack made check {r.check!r}")
            continue
        for i, stack in enumerate(tl["stacks"]):
            impl = stack.get("impl", "keras3")
            if family_of(impl) != r.family or r.only and not (set(r.only) & {impl, variant_of(stack)}):
                continue
            value = value_at(check, i)
            if applies(r, stack) != same_value(check["kind"], r.observed, value):
                where = "applies there, but the check gives" if applies(r, stack) else "does not apply there, yet gives"
                problems.append(f"{r.where()}: {tl['releases'][i]} {where} {value_text(value, 60)}")
                break
    return problems


def applies(record: Any, stack: TimelineStack) -> bool:
    """Whether an expectation record applies to a recorded stack (its implementation, Keras variant and
    version, on the CPU): a record that applies on one side of a release and not the other explains it."""
    target = Target.of_environment(stack["environment"], stack.get("impl", "keras3"))
    return record.applies_to(replace(target, keras_version=str(version_of(stack))))


def variant_of(stack: TimelineStack) -> str:
    """The Keras variant a recorded stack ran ('keras', 'tf_keras', 'tensorflow.keras')."""
    return (stack["environment"].get("keras", "") or "").partition(" ")[2].strip("()").split(",")[0] or "keras"


def version_of(stack: TimelineStack) -> Version:
    keras = stack["environment"].get("keras", "") or ""
    return Version(keras.split(" ")[0]) if keras else Version(stack["keras"])
