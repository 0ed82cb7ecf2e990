"""Reports of a conformance run: the matrix, Markdown, JSON and JUnit XML.

Input is what the plugin writes with ``--conformance-json`` for one
implementation: ``{"impl", "environment", "results": [case result, ...]}``.
Every file is written atomically: to a temporary file beside it, then
renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from conformance.files import write_atomic

FORMAT_VERSION = 1
SYMBOL = {"pass": "pass", "divergence": "divergence", "fail": "FAIL", "skip": "skip", None: "—"}


def combine(runs: list[dict[str, Any]], unavailable: dict[str, str] | None = None) -> dict[str, Any]:
    """One report from the per-implementation runs."""
    return {
        "format": "keras-conformance-report",
        "format_version": FORMAT_VERSION,
        "implementations": [r["impl"] for r in runs],
        "unavailable": unavailable or {},
        "environments": {r["impl"]: r["environment"] for r in runs},
        "seconds": {r["impl"]: r.get("seconds") for r in runs},
        "results": {r["impl"]: r["results"] for r in runs},
    }


def matrix(report: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The implementation columns, and one row per case ID (sorted) with its result per implementation."""
    impls = report["implementations"]
    rows: dict[str, dict[str, Any]] = {}
    for impl in impls:
        for r in report["results"][impl]:
            row = rows.setdefault(r["id"], {"id": r["id"], "topic": r["topic"], "description": r["description"], "by_impl": {}})
            row["by_impl"][impl] = r
    return impls, sorted(rows.values(), key=lambda row: row["id"])


def unexpected(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(impl, case) pairs whose result was not what the expectations say."""
    return [(impl, r["id"]) for impl in report["implementations"] for r in report["results"][impl] if r["status"] == "fail"]


def code(value: Any) -> str:
    """``value`` as a Markdown code span, safe for values that contain backticks."""
    text = value if isinstance(value, str) else json.dumps(value)
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def cell_text(result: dict[str, Any] | None) -> str:
    if result is None:
        return SYMBOL[None]
    return SYMBOL[result["status"]]


def markdown(report: dict[str, Any]) -> str:
    impls, rows = matrix(report)
    out = ["# keras-conformance report", ""]
    out.append("| implementation | versions | device | wall time of the run |")
    out.append("|---|---|---|---:|")
    for impl in impls:
        env = dict(report["environments"][impl])
        device = env.pop("device", "")
        seconds = report.get("seconds", {}).get(impl)
        wall = f"{seconds:g} s" if seconds is not None else "—"
        out.append(f"| `{impl}` | {', '.join(f'{k} {v}' for k, v in env.items())} | {device} | {wall} |")
    for impl, why in report["unavailable"].items():
        out.append(f"| `{impl}` | not run: {why} | |")
    out += ["", "## Matrix", "", "| case | " + " | ".join(f"`{i}`" for i in impls) + " |"]
    out.append("|---|" + "---|" * len(impls))
    for row in rows:
        out.append(f"| `{row['id']}` | " + " | ".join(cell_text(row["by_impl"].get(i)) for i in impls) + " |")
    details = []
    for row in rows:
        for impl in impls:
            r = row["by_impl"].get(impl)
            if r is None or r["status"] == "pass":
                continue
            details.append(f"### `{row['id']}` on `{impl}`: {r['status']}")
            details.append(f"{row['description']}")
            details.append("")
            for d in r["divergences"]:
                details.append(f"- divergence in *{d['check']}*: observed {code(d['observed'])}. {d['reason']} Evidence: {d['evidence']}")
            for p in r["problems"]:
                details.append(f"- {p}")
            if r["skip_reason"]:
                details.append(f"- skipped: {r['skip_reason']}")
            details.append("")
    if details:
        out += ["", "## Divergences, failures and skips", ""] + details
    return "\n".join(out).rstrip() + "\n"


def junit_xml(report: dict[str, Any]) -> str:
    """JUnit XML, one testsuite per implementation; divergences are skipped tests with their reason."""
    root = ET.Element("testsuites", name="keras-conformance")
    for impl in report["implementations"]:
        results = report["results"][impl]
        suite = ET.SubElement(root, "testsuite", name=impl, tests=str(len(results)),
                              failures=str(sum(r["status"] == "fail" for r in results)),
                              skipped=str(sum(r["status"] in ("skip", "divergence") for r in results)))
        for r in results:
            tc = ET.SubElement(suite, "testcase", classname=f"{impl}.{r['topic']}", name=r["id"])
            if r["status"] == "fail":
                failure = ET.SubElement(tc, "failure", message=(r["problems"] or ["failed"])[0])
                failure.text = "\n".join(r["problems"])
            elif r["status"] == "divergence":
                reason = "; ".join(f"{d['check']}: {d['reason']}" for d in r["divergences"])
                ET.SubElement(tc, "skipped", type="divergence", message=f"recorded divergence: {reason}")
            elif r["status"] == "skip":
                ET.SubElement(tc, "skipped", message=r["skip_reason"])
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_all(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write report.md, report.json and junit.xml into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "report.json": json.dumps(report, indent=2, sort_keys=True) + "\n",
        "report.md": markdown(report),
        "junit.xml": junit_xml(report),
    }
    paths = []
    for name, text in files.items():
        write_atomic(out_dir / name, text)
        paths.append(out_dir / name)
    return paths
