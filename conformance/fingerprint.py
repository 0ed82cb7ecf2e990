"""Behaviour fingerprints of an implementation, and the diff of two of them.

A fingerprint records, for every case, what the implementation did: each
check's observed value (exact values as they are; numeric ones compared later
with a relative tolerance of ``NUMERIC_RTOL``; statistical ones only as
"consistent with the target distribution" or not, so that the draws' noise
never shows as change), the case's notes, its verdict, and the environment.

Format (JSON, keys sorted, so reordering cases changes nothing)::

    {"format": "keras-conformance-fingerprint", "format_version": 2,
     "environment": {"impl": ..., "keras": ..., <framework>: ..., "numpy": ..., "python": ..., "device": ...},
     "cases": {"<case id>": {"topic": ..., "description": ..., "status": "pass|divergence|fail|skip",
                             "behaviour": {"<check key>": {"kind": "exact|numeric|statistical", "value": ...,
                                                           "label": "<the check's text>"}},
                             "notes": {...}}}}

Checks are keyed by their stable key (``Check.key``), so rewording a check's
text changes its label, not its identity.  Version 1 keyed them by their text;
such files are read by re-keying them with ``key_of``.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from conformance.checks import key_of
from conformance.files import read_json

FORMAT = "keras-conformance-fingerprint"
FORMAT_VERSION = 2
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


def case_entry(result: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of one case result (as the plugin's JSON holds it)."""
    behaviour = {}
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
        "skip_reason": result.get("skip_reason", ""),
    }


def from_run(run: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint from one implementation's ``--conformance-json`` output."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "environment": {"impl": run["impl"], **run["environment"]},
        "cases": {r["id"]: case_entry(r) for r in run["results"]},
        "surface": run.get("surface", {}),
    }


def dumps(fp: dict[str, Any]) -> str:
    return json.dumps(fp, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def load(path: Path) -> dict[str, Any]:
    """Read and validate a fingerprint; any problem is one line."""
    data = read_json(path, FingerprintError)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FingerprintError(f"{path} is not a keras-conformance fingerprint")
    if data.get("format_version") not in (1, FORMAT_VERSION):
        raise FingerprintError(f"{path} has format version {data.get('format_version')!r}; "
                               f"this keras-conformance reads versions 1 and {FORMAT_VERSION}")
    if not isinstance(data.get("cases"), dict) or not isinstance(data.get("environment"), dict):
        raise FingerprintError(f"{path} lacks its cases or environment")
    return upgrade(data) if data["format_version"] == 1 else data


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 fingerprint (checks keyed by their text) as version 2 (keyed by ``key_of`` of it)."""
    for entry in data["cases"].values():
        entry["behaviour"] = {key_of(name): {**value, "label": name} for name, value in entry["behaviour"].items()}
    return {**data, "format_version": FORMAT_VERSION}


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


def _same(kind: str, old: Any, new: Any) -> bool:
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


def compare_case(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two fingerprints of one case: [{"what", "old", "new"}]."""
    changes = []
    if old["status"] != new["status"]:
        changes.append({"what": "verdict", "old": old["status"], "new": new["status"]})
    for section in ("behaviour", "notes"):
        before, after = old.get(section, {}), new.get(section, {})
        for name in sorted(set(before) | set(after)):
            a, b = before.get(name), after.get(name)
            if section == "behaviour":
                kind = (b or a)["kind"]
                a_value = a["value"] if a else "(not observed)"
                b_value = b["value"] if b else "(not observed)"
            else:
                kind, a_value, b_value = "numeric", a if name in before else "(none)", b if name in after else "(none)"
            if not _same(kind, a_value, b_value):
                label = (b or a).get("label", name) if section == "behaviour" else f"note: {name}"
                changes.append({"what": label, "key": name, "old": a_value, "new": b_value})
    return changes


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Every case whose behaviour changed, cases added and removed, and environment differences."""
    old_cases, new_cases = old["cases"], new["cases"]
    changed = {}
    for case_id in sorted(set(old_cases) & set(new_cases)):
        changes = compare_case(old_cases[case_id], new_cases[case_id])
        if changes:
            changed[case_id] = {"topic": new_cases[case_id]["topic"],
                                "description": new_cases[case_id]["description"], "changes": changes}
    changed |= surface_changes(old.get("surface", {}), new.get("surface", {}))
    env_keys = sorted(set(old["environment"]) | set(new["environment"]))
    environment = {key: [old["environment"].get(key), new["environment"].get(key)]
                   for key in env_keys if old["environment"].get(key) != new["environment"].get(key)}
    return {
        "old": old["environment"], "new": new["environment"], "environment": environment,
        "changed": changed,
        "added": sorted(set(new_cases) - set(old_cases)),
        "removed": sorted(set(old_cases) - set(new_cases)),
    }


def surface_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed in the public surface (conformance.surface), as pseudo-cases ``surface-<Class>``:
    one change per argument added, removed or given another default, and one for the config keys; a
    class that appears or disappears is one change, ``class``.  A side that recorded no surface (an
    older fingerprint) shows nothing."""
    from conformance.surface import ABSENT, checks_of

    changed = {}
    for name in sorted(set(old) & set(new)):
        a, b = old[name], new[name]
        if a["arguments"] == ABSENT or b["arguments"] == ABSENT:
            shown = [("(absent)" if side["arguments"] == ABSENT else "exists") for side in (a, b)]
            changes = [{"what": "class", "key": "class", "old": shown[0], "new": shown[1]}] if shown[0] != shown[1] else []
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


def has_changes(d: dict[str, Any]) -> bool:
    return bool(d["changed"] or d["added"] or d["removed"])


# -- What a change means, for a person about to upgrade ------------------------------

MEANINGS = {
    "regressed": "conformed before, diverges or fails now",
    "improved": "diverged or failed before, conforms now",
    "changed": "behaves differently, same verdict",
}
#: Words in a check's name that mark it as about a message, a config or a name, not a computed number.
CONFIG_WORDS = ("config", "default", "error", "message", "repr", "name", "identifier", "printed", "outcome",
                "class", "raises", "signature", "alias")


def meaning(entry: dict[str, Any]) -> str:
    """'regressed', 'improved' or 'changed', from the verdicts on the two sides."""
    verdict = next((c for c in entry["changes"] if c["what"] == "verdict"), None)
    if verdict is None:
        return "changed"
    if verdict["old"] == "pass":
        return "regressed"
    if verdict["new"] == "pass":
        return "improved"
    return "changed"


def alters_numbers(change: dict[str, Any]) -> bool:
    """Whether a change is to numbers a model computes (outputs, statistics, penalties, draws), rather
    than to a message, a config, a name or a note."""
    what = change["what"].lower()
    if what == "verdict" or any(word in what for word in CONFIG_WORDS):
        return False
    values = [change["old"], change["new"]]
    if any(isinstance(v, str) for v in values):  # an error text, "(not observed)", a class name
        return False
    return all(isinstance(v, bool) or numbers(v) is not None or isinstance(v, dict) for v in values)


def overview(d: dict[str, Any]) -> dict[str, Any]:
    """Counts and the changed cases, each with its meaning and whether it alters numbers."""
    rows = []
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
    from conformance import expectations

    try:
        return tuple(expectations.load_all())
    except expectations.ExpectationsError:
        return ()


def recorded(env: dict[str, Any], case_id: str) -> list[Any]:
    """The divergences recorded in fixtures/expectations for ``case_id`` on the stack ``env`` describes."""
    from conformance.backends.base import device_kind_of

    impl = str(env.get("impl", ""))
    version, _, rest = str(env.get("keras", "")).partition(" (")
    variant = rest.split(",")[0].rstrip(")") or "keras"
    family = impl.split(":")[0]
    kind = device_kind_of(str(env.get("device", ""))) or None
    return [e for e in shipped_expectations() if e.family == family and e.case == case_id
            and e.applies_to(impl, variant, version or None, kind, env)]


def _label(env: dict[str, Any]) -> str:
    """'keras3:jax, Keras 3.15.1 (keras)'."""
    return f"{env.get('impl')}, Keras {env.get('keras')}"


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def by_topic(d: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    groups: dict[str, list] = {}
    for case_id, entry in d["changed"].items():
        groups.setdefault(entry["topic"], []).append((case_id, entry))
    return dict(sorted(groups.items()))


def markdown(d: dict[str, Any]) -> str:
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
        out += [f"| {key} | {old} | {new} |" for key, (old, new) in d["environment"].items()]
    for topic, entries in by_topic(d).items():
        out += ["", f"## {topic}", ""]
        for case_id, entry in entries:
            out += [f"### `{case_id}`", "", f"{entry['description']} ({MEANINGS[meaning(entry)]})", "",
                    "| what | old | new |", "|---|---|---|"]
            for c in entry["changes"]:
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
"""


def _html_value(value: Any) -> str:
    text = html.escape(_show(value))
    is_error = isinstance(value, str) and ERROR_TEXT.match(value)
    return f"<code class='error'>{text}</code>" if is_error else f"<code>{text}</code>"


def html_page(d: dict[str, Any]) -> str:
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
        parts += [f"<tr><td>{e(k)}</td><td>{e(str(o))}</td><td>{e(str(n))}</td></tr>"
                  for k, (o, n) in d["environment"].items()]
        parts.append("</table>")
    for topic, entries in by_topic(d).items():
        parts.append(f"<h2>{e(topic)}</h2>")
        for case_id, entry in entries:
            m = meaning(entry)
            parts.append(f"<h3 id='{e(case_id)}'><code>{e(case_id)}</code> <span class='tag {m}'>"
                         f"{e(MEANINGS[m])}</span></h3><p>{e(entry['description'])}</p>"
                         "<table class='changes'><tr><th>what</th><th>old</th><th>new</th></tr>")
            parts += [f"<tr><td>{e(c['what'])}</td><td>{_html_value(c['old'])}</td><td>{_html_value(c['new'])}</td>"
                      "</tr>" for c in entry["changes"]]
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


def render(d: dict[str, Any], fmt: str) -> str:
    if fmt == "md":
        return markdown(d)
    if fmt == "html":
        return html_page(d)
    return json.dumps(d, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
