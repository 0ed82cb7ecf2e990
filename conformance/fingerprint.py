"""Behaviour fingerprints of an implementation, and the diff of two of them.

A fingerprint records, for every case, what the implementation did: each
check's observed value (exact values as they are; numeric ones compared later
with a relative tolerance of ``NUMERIC_RTOL``; statistical ones only as
"consistent with the target distribution" or not, so that the draws' noise
never shows as change), the case's notes, its verdict, and the environment.

Format (JSON, keys sorted, so reordering cases changes nothing)::

    {"format": "keras-conformance-fingerprint", "format_version": 1,
     "environment": {"impl": ..., "keras": ..., <framework>: ..., "numpy": ..., "python": ..., "device": ...},
     "cases": {"<case id>": {"topic": ..., "description": ..., "status": "pass|divergence|fail|skip",
                             "behaviour": {"<check>": {"kind": "exact|numeric|statistical", "value": ...}},
                             "notes": {...}}}}
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from conformance.files import read_json


FORMAT = "keras-conformance-fingerprint"
FORMAT_VERSION = 1
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
        behaviour[check["name"]] = {"kind": kind, "value": value}
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
    }


def dumps(fp: dict[str, Any]) -> str:
    return json.dumps(fp, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def load(path: Path) -> dict[str, Any]:
    """Read and validate a fingerprint; any problem is one line."""
    data = read_json(path, FingerprintError)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FingerprintError(f"{path} is not a keras-conformance fingerprint")
    if data.get("format_version") != FORMAT_VERSION:
        raise FingerprintError(f"{path} has format version {data.get('format_version')!r}; "
                               f"this keras-conformance reads version {FORMAT_VERSION}")
    if not isinstance(data.get("cases"), dict) or not isinstance(data.get("environment"), dict):
        raise FingerprintError(f"{path} lacks its cases or environment")
    return data


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
        scale = max([abs(v) for v in a + b] + [1e-30])
        return all(abs(x - y) <= NUMERIC_RTOL * scale for x, y in zip(a, b))
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
                changes.append({"what": name if section == "behaviour" else f"note: {name}",
                                "old": a_value, "new": b_value})
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
    env_keys = sorted(set(old["environment"]) | set(new["environment"]))
    environment = {key: [old["environment"].get(key), new["environment"].get(key)]
                   for key in env_keys if old["environment"].get(key) != new["environment"].get(key)}
    return {
        "old": old["environment"], "new": new["environment"], "environment": environment,
        "changed": changed,
        "added": sorted(set(new_cases) - set(old_cases)),
        "removed": sorted(set(old_cases) - set(new_cases)),
    }


def has_changes(d: dict[str, Any]) -> bool:
    return bool(d["changed"] or d["added"] or d["removed"])


def _label(env: dict[str, Any]) -> str:
    return f"{env.get('impl')} (keras {env.get('keras')})"


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
    if d["environment"]:
        out += ["", "## Environment", "", "| | old | new |", "|---|---|---|"]
        out += [f"| {key} | {old} | {new} |" for key, (old, new) in d["environment"].items()]
    for topic, entries in by_topic(d).items():
        out += ["", f"## {topic}", ""]
        for case_id, entry in entries:
            out += [f"### `{case_id}`", "", entry["description"], "", "| what | old | new |", "|---|---|---|"]
            for c in entry["changes"]:
                cell = lambda v: _show(v).replace("|", "\\|")  # noqa: E731
                out.append(f"| {c['what']} | {cell(c['old'])} | {cell(c['new'])} |")
            out.append("")
    for title, ids in (("Cases added", d["added"]), ("Cases removed", d["removed"])):
        if ids:
            out += ["", f"## {title}", ""] + [f"- `{i}`" for i in ids]
    return "\n".join(out).rstrip() + "\n"


def html_page(d: dict[str, Any]) -> str:
    e = html.escape
    title = f"Behaviour changes: {_label(d['old'])} → {_label(d['new'])}"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;"
             "vertical-align:top;text-align:left}th{background:#f3f3f3}code{background:#f6f6f6}"
             ".old{color:#a40000}.new{color:#006400}</style></head><body>", f"<h1>{e(title)}</h1>"]
    parts.append(f"<p>{len(d['changed'])} case(s) changed, {len(d['added'])} added, {len(d['removed'])} removed.</p>"
                 if has_changes(d) else "<p>No behaviour changed.</p>")
    if d["environment"]:
        parts.append("<h2>Environment</h2><table><tr><th></th><th>old</th><th>new</th></tr>")
        parts += [f"<tr><td>{e(k)}</td><td>{e(str(o))}</td><td>{e(str(n))}</td></tr>"
                  for k, (o, n) in d["environment"].items()]
        parts.append("</table>")
    for topic, entries in by_topic(d).items():
        parts.append(f"<h2>{e(topic)}</h2>")
        for case_id, entry in entries:
            parts.append(f"<h3><code>{e(case_id)}</code></h3><p>{e(entry['description'])}</p>"
                         "<table><tr><th>what</th><th>old</th><th>new</th></tr>")
            parts += [f"<tr><td>{e(c['what'])}</td><td class='old'><code>{e(_show(c['old']))}</code></td>"
                      f"<td class='new'><code>{e(_show(c['new']))}</code></td></tr>" for c in entry["changes"]]
            parts.append("</table>")
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
