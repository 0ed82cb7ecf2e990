"""A fingerprint diff as a person about to upgrade reads it: what each change means, in Markdown and HTML.

Input is :func:`conformance.data.fingerprint.diff`.  The report opens with the
overview (regressed, improved, changed; which changes alter numbers a trained
model depends on), then each changed case with the reasons recorded for either
side, then what the machine measured apart from the behaviour.
"""

from __future__ import annotations

import functools
import html
import json
import re
from typing import Any

from conformance.data.fingerprint import has_changes, numbers
from conformance.data.schema import Change, ChangedCase, Diff, Environment
from conformance.data.target import Target
from conformance.edges import said

FLAPPING_TITLE = "Flapping between repeated runs"
FLAPPING_TEXT = ("Checks whose value differed between repeated runs of one stack (history run --repeat), on either "
                 "side: not compared, so never a change.")
MEASURED_TITLE = "Measured on the machine"
MEASURED_TEXT = ("Errors in eps against the float64 oracles that moved to another power of two. They depend on "
                 "the CPU's instructions and the order of summation as much as on Keras, so they are not counted "
                 "as behaviour changes; each case's checks compare them with their budgets.")


MEANINGS = {
    "regressed": "conformed before, diverges or fails now",
    "improved": "diverged or failed before, conforms now",
    "changed": "behaves differently, same verdict",
}
#: Words in a check's name that mark it as about a message, a config or a name, not a computed number.
CONFIG_WORDS = ("config", "default", "error", "message", "repr", "name", "identifier", "printed", "outcome",
                "class", "raises", "signature", "alias")


def meaning(entry: ChangedCase) -> str:
    """'regressed', 'improved' or 'changed', from the verdicts on the two sides."""
    verdict = next((c for c in entry["changes"] if c["what"] == "verdict"), None)
    if verdict is None:
        return "changed"
    if verdict["old"] == "pass":
        return "regressed"
    if verdict["new"] == "pass":
        return "improved"
    return "changed"


def alters_numbers(change: Change) -> bool:
    """Whether a change is to numbers a model computes (outputs, statistics, penalties, draws), rather
    than to a message, a config, a name or a note."""
    what = change["what"].lower()
    if what == "verdict" or any(word in what for word in CONFIG_WORDS):
        return False
    values = [change["old"], change["new"]]
    if any(isinstance(v, str) for v in values):  # an error text, "(not observed)", a class name
        return False
    return all(isinstance(v, bool) or numbers(v) is not None or isinstance(v, dict) for v in values)


def overview(d: Diff) -> dict[str, Any]:
    """Counts and the changed cases, each with its meaning and whether it alters numbers."""
    rows: list[dict[str, Any]] = []
    for case_id, entry in d["changed"].items():
        rows.append({"id": case_id, "topic": entry["topic"], "meaning": meaning(entry),
                     "numbers": any(alters_numbers(c) for c in entry["changes"]),
                     "checks": [c["what"] for c in entry["changes"] if c["what"] != "verdict"]})
    order = {"regressed": 0, "changed": 1, "improved": 2}
    rows.sort(key=lambda r: (order[r["meaning"]], not r["numbers"], r["id"]))
    counts = {m: sum(r["meaning"] == m for r in rows) for m in MEANINGS}
    return {"rows": rows, "counts": counts, "numbers": sum(r["numbers"] for r in rows)}


@functools.lru_cache(maxsize=1)
def shipped_expectations() -> tuple[Any, ...]:
    """fixtures/expectations, read once per process (none where they cannot be read)."""
    from conformance.engine import expectations

    try:
        return tuple(expectations.load_all())
    except expectations.ExpectationsError:
        return ()


def recorded(env: Environment, case_id: str) -> list[Any]:
    """The divergences recorded in fixtures/expectations for ``case_id`` on the stack ``env`` describes."""
    target = Target.of_environment(env)
    return [e for e in shipped_expectations() if e.covers(case_id) and e.applies_to(target)]


def _label(env: Environment) -> str:
    """'keras3:jax, Keras 3.15.1 (keras)'."""
    return f"{env.get('impl')}, Keras {env.get('keras')}"


def _measured(value: float | None) -> str:
    """A measured error as a person compares it: three digits and its power of two ('1.65 (≤ 2 eps)')."""
    from conformance.engine.precision import bucket

    return "(not measured)" if value is None else f"{value:.3g} ({bucket(float(value))})"


def _env(value: Any) -> str:
    return "—" if value is None else str(value)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def by_topic(d: Diff) -> dict[str, list[tuple[str, ChangedCase]]]:
    groups: dict[str, list] = {}
    for case_id, entry in d["changed"].items():
        groups.setdefault(entry["topic"], []).append((case_id, entry))
    return dict(sorted(groups.items()))


def markdown(d: Diff) -> str:
    out = [f"# Behaviour changes: {_label(d['old'])} → {_label(d['new'])}", ""]
    n = len(d["changed"])
    out.append(f"{n} case(s) changed, {len(d['added'])} added, {len(d['removed'])} removed." if has_changes(d)
               else "No behaviour changed.")
    if d["changed"]:
        ov = overview(d)
        out += ["", "## Overview", "",
                f"- **{ov['counts']['regressed']}** {MEANINGS['regressed']}; **{ov['counts']['improved']}** "
                f"{MEANINGS['improved']}; **{ov['counts']['changed']}** {MEANINGS['changed']}.",
                f"- **{ov['numbers']}** change numbers a trained model depends on (outputs, statistics, penalties, "
                "draws); the others change only messages, configs or notes.", "",
                "| case | meaning | alters numbers | what changed |", "|---|---|---|---|"]
        out += [f"| [`{r['id']}`](#{r['id']}) | {r['meaning']} | {'yes' if r['numbers'] else 'no'} | "
                f"{', '.join(r['checks']) or 'verdict only'} |" for r in ov["rows"]]
    if d["environment"]:
        out += ["", "## Environment", "", "| | old | new |", "|---|---|---|"]
        out += [f"| {key} | {_env(old)} | {_env(new)} |" for key, (old, new) in d["environment"].items()]
    if d.get("measured"):
        out += ["", f"## {MEASURED_TITLE}", "", MEASURED_TEXT, "", "| case | measured | old | new |",
                "|---|---|---|---|"]
        out += [f"| `{case_id}` | {m['what']} | {_measured(m['old'])} | {_measured(m['new'])} |"
                for case_id, moved in d["measured"].items() for m in moved]
    if d.get("flapping"):
        out += ["", f"## {FLAPPING_TITLE}", "", FLAPPING_TEXT, ""]
        out += [f"- `{case_id}`: {', '.join(keys)}" for case_id, keys in d.get("flapping", {}).items()]
    for topic, entries in by_topic(d).items():
        out += ["", f"## {topic}", ""]
        for case_id, entry in entries:
            out += [f"### `{case_id}`", "", f"{entry['description']} ({MEANINGS[meaning(entry)]})", ""]
            outcomes = [c for c in entry["changes"] if c.get("kind") == "outcome"]
            out += [f"- {said(c['what'], c['old'], c['new'])}" for c in outcomes] + ([""] if outcomes else [])
            rest = [c for c in entry["changes"] if c.get("kind") != "outcome"]
            if rest:
                out += ["| what | old | new |", "|---|---|---|"]
            for c in rest:
                cell = lambda v: _show(v).replace("|", "\\|")  # noqa: E731
                out.append(f"| {c['what']} | {cell(c['old'])} | {cell(c['new'])} |")
            out.append("")
            for side in ("old", "new"):
                out += [f"- recorded on the {side} side, *{r.check}*: {r.reason} Evidence: {r.evidence}"
                        for r in recorded(d[side], case_id)]
            out.append("")
    for title, ids in (("Cases added", d["added"]), ("Cases removed", d["removed"])):
        if ids:
            out += ["", f"## {title}", ""] + [f"- `{i}`" for i in ids]
    return "\n".join(out).rstrip() + "\n"


ERROR_TEXT = re.compile(r"^(raises )?[A-Z]\w*(Error|Exception)\b")
HTML_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:75em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;
vertical-align:top;text-align:left}th{background:#f3f3f3}code{background:#f6f6f6;word-break:break-word}
.cards{display:flex;gap:1em;margin:1em 0;flex-wrap:wrap}.card{padding:.8em 1.2em;border-radius:.4em;width:12em}
.card b{font-size:1.8em;display:block}.regressed{background:#fde2e1}.improved{background:#dff3e0}
.changed{background:#eef0f3}.numbers{background:#fff4d6}.tag{padding:.1em .5em;border-radius:.3em;
font-size:.85em;white-space:nowrap;font-weight:normal}.error{color:#a40000;font-weight:600}
.recorded{font-size:.92em;color:#444;margin:.2em 0 .4em 1em}h3{margin-bottom:.2em}
.changes{table-layout:fixed;width:100%}.changes th:first-child{width:18%}
.measured td:nth-child(n+3){white-space:nowrap}
"""


def _html_value(value: Any) -> str:
    text = html.escape(_show(value))
    is_error = isinstance(value, str) and ERROR_TEXT.match(value)
    return f"<code class='error'>{text}</code>" if is_error else f"<code>{text}</code>"


def _html_said(text: str) -> str:
    """A changed outcome's sentence (``edges.said``) in HTML: the call, in backquotes, as code."""
    return re.sub(r"`([^`]*)`", lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))


def html_page(d: Diff) -> str:
    """The diff as a page that answers "is it safe to upgrade?" first: counts coloured by meaning, the
    changed cases with links, then each case's changes and the reasons recorded on either side."""
    e = html.escape
    title = f"Behaviour changes: {_label(d['old'])} → {_label(d['new'])}"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{HTML_STYLE}</style></head><body>", f"<h1>{e(title)}</h1>"]
    if not has_changes(d):
        parts.append("<p>No behaviour changed.</p>")
    if d["changed"]:
        ov = overview(d)
        cards = [f"<div class='card {m}'><b>{ov['counts'][m]}</b>{e(MEANINGS[m])}</div>" for m in MEANINGS]
        cards.append(f"<div class='card numbers'><b>{ov['numbers']}</b>change numbers a trained model depends on</div>")
        parts.append("<div class='cards'>" + "".join(cards) + "</div>")
        parts.append(f"<p>{len(d['changed'])} case(s) changed, {len(d['added'])} added, {len(d['removed'])} removed. "
                     "Numbers a trained model depends on: outputs, statistics, penalties and random draws; the other "
                     "changes alter only messages, configs or notes.</p>")
        parts.append("<table><tr><th>case</th><th>meaning</th><th>alters numbers</th><th>what changed</th></tr>")
        parts += [f"<tr><td><a href='#{e(r['id'])}'><code>{e(r['id'])}</code></a></td>"
                  f"<td><span class='tag {r['meaning']}'>{e(MEANINGS[r['meaning']])}</span></td>"
                  f"<td>{'<b>yes</b>' if r['numbers'] else 'no'}</td>"
                  f"<td>{e(', '.join(r['checks']) or 'verdict only')}</td></tr>" for r in ov["rows"]]
        parts.append("</table>")
    if d["environment"]:
        parts.append("<h2>Environment</h2><table><tr><th></th><th>old</th><th>new</th></tr>")
        parts += [f"<tr><td>{e(k)}</td><td>{e(_env(o))}</td><td>{e(_env(n))}</td></tr>"
                  for k, (o, n) in d["environment"].items()]
        parts.append("</table>")
    if d.get("measured"):
        parts.append(f"<h2>{MEASURED_TITLE}</h2><p>{e(MEASURED_TEXT)}</p>"
                     "<table class='measured'><tr><th>case</th><th>measured</th><th>old</th><th>new</th></tr>")
        parts += [f"<tr><td><code>{e(case_id)}</code></td><td>{e(m['what'])}</td><td>{e(_measured(m['old']))}</td>"
                  f"<td>{e(_measured(m['new']))}</td></tr>" for case_id, moved in d["measured"].items() for m in moved]
        parts.append("</table>")
    if d.get("flapping"):
        parts.append(f"<h2>{FLAPPING_TITLE}</h2><p>{e(FLAPPING_TEXT)}</p><ul>"
                     + "".join(f"<li><code>{e(case_id)}</code>: {e(', '.join(keys))}</li>"
                               for case_id, keys in d.get("flapping", {}).items()) + "</ul>")
    for topic, entries in by_topic(d).items():
        parts.append(f"<h2>{e(topic)}</h2>")
        for case_id, entry in entries:
            m = meaning(entry)
            parts.append(f"<h3 id='{e(case_id)}'><code>{e(case_id)}</code> <span class='tag {m}'>"
                         f"{e(MEANINGS[m])}</span></h3><p>{e(entry['description'])}</p>")
            outcomes = [c for c in entry["changes"] if c.get("kind") == "outcome"]
            if outcomes:  # the same sentences as the Markdown, the call in code
                parts.append("<ul>" + "".join(f"<li>{_html_said(said(c['what'], c['old'], c['new']))}</li>"
                                              for c in outcomes) + "</ul>")
            rest = [c for c in entry["changes"] if c.get("kind") != "outcome"]
            if rest:
                parts.append("<table class='changes'><tr><th>what</th><th>old</th><th>new</th></tr>")
                parts += [f"<tr><td>{e(c['what'])}</td><td>{_html_value(c['old'])}</td>"
                          f"<td>{_html_value(c['new'])}</td></tr>" for c in rest]
                parts.append("</table>")
            for side in ("old", "new"):
                parts += [f"<p class='recorded'>Recorded on the {side} side ({e(_label(d[side]))}), "
                          f"<i>{e(r.check)}</i>: {e(r.reason)}<br>Evidence: {e(r.evidence)}</p>"
                          for r in recorded(d[side], case_id)]
    for title, ids in (("Cases added", d["added"]), ("Cases removed", d["removed"])):
        if ids:
            parts.append(f"<h2>{title}</h2><ul>" + "".join(f"<li><code>{e(i)}</code></li>" for i in ids) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render(d: Diff, fmt: str) -> str:
    if fmt == "md":
        return markdown(d)
    if fmt == "html":
        return html_page(d)
    return json.dumps(d, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
