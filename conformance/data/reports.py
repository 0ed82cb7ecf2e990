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

from conformance.data.files import staged
from conformance.data.schema import CaseResult, RecordJSON, Report, Run
from conformance.data.target import family_of
from conformance.engine.verdict import STATUSES

FORMAT_VERSION = 1
SYMBOL = {"pass": "pass", "divergence": "divergence", "fail": "FAIL", "skip": "skip", None: "—"}


def combine(runs: list[Run], unavailable: dict[str, str] | None = None) -> Report:
    """One report from the per-implementation runs."""
    return {
        "format": "keras-conformance-report",
        "format_version": FORMAT_VERSION,
        "implementations": [r["impl"] for r in runs],
        "unavailable": unavailable or {},
        "environments": {r["impl"]: r["environment"] for r in runs},
        "seconds": {r["impl"]: r.get("seconds") for r in runs},
        "results": {r["impl"]: r["results"] for r in runs},
        "unmatched_records": unmatched_everywhere(runs),
    }


def unmatched_everywhere(runs: list[Run]) -> list[RecordJSON]:
    """The expectation records that matched nothing in every run of their family (stale?)."""
    families: dict[str, list[set[tuple]]] = {}
    by_place: dict[tuple, RecordJSON] = {}
    for run in runs:
        places = set()
        for record in run.get("unmatched_records", []):
            place = (record["file"], record["line"])
            places.add(place)
            by_place[place] = record
        families.setdefault(family_of(run["impl"]), []).append(places)
    stale = []
    for place, record in sorted(by_place.items()):
        family = record["file"].removesuffix(".toml")
        if all(place in places for places in families.get(family, [set()])):
            stale.append(record)
    return stale


def record_place(record: RecordJSON) -> str:
    check = f", check {record['check']}" if record.get("check") else ""
    return f"{record['file']}:{record['line']} ({record['kind']} of {record['case']}{check})"


def matrix(report: Report) -> tuple[list[str], list[dict[str, Any]]]:
    """The implementation columns, and one row per case ID (sorted) with its result per implementation."""
    impls = report["implementations"]
    rows: dict[str, dict[str, Any]] = {}
    for impl in impls:
        for r in report["results"][impl]:
            row = rows.setdefault(r["id"], {"id": r["id"], "topic": r["topic"], "description": r["description"], "by_impl": {}})
            row["by_impl"][impl] = r
    return impls, sorted(rows.values(), key=lambda row: row["id"])


def unexpected(report: Report) -> list[tuple[str, str]]:
    """(impl, case) pairs whose result was not what the expectations say."""
    return [(impl, r["id"]) for impl in report["implementations"] for r in report["results"][impl] if r["status"] == "fail"]


def verdicts_that_differ(a: Run, b: Run) -> list[str]:
    """The cases whose verdict differs between two runs of one implementation (on two kinds of CPU: natively and
    under ``--cpu-like``), one line each, but for those the difference is explained by: a record scoped to a kind
    of device that held on either side (``devices``), or a skip because of the CPU profile.  Empty: the verdicts
    hold on both."""
    def explained(result: CaseResult) -> bool:
        records = [*result.get("divergences", []), *result.get("tolerances", [])]
        return any(r.get("devices") for r in records) or "--cpu-like" in result.get("skip_reason", "")

    before, after = ({r["id"]: r for r in run["results"]} for run in (a, b))
    out = []
    for case_id in sorted(set(before) | set(after)):
        x, y = before.get(case_id), after.get(case_id)
        if x is None or y is None:
            out.append(f"{case_id}: run on one side only")
        elif x["status"] != y["status"] and not (explained(x) or explained(y)):
            out.append(f"{case_id}: {x['status']} on {a['environment'].get('device', '?')}, {y['status']} on "
                       f"{b['environment'].get('device', '?')}" + (f" as --cpu-like {b['environment']['cpu_like']}"
                                                                    if b["environment"].get("cpu_like") else ""))
    return out


def totals(report: Report, impl: str) -> dict[str, int]:
    """How many of ``impl``'s cases ended in each status, and in all."""
    results = report["results"][impl]
    return {"cases": len(results), **{s: sum(r["status"] == s for r in results) for s in STATUSES}}


def plural(n: int, word: str) -> str:
    """'1 case', '2 cases'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def totals_line(counts: dict[str, int]) -> str:
    """'110 cases: 102 pass, 7 divergence, 1 FAIL' (statuses that occurred, failures in capitals)."""
    parts = [f"{counts[s]} {SYMBOL[s]}" for s in STATUSES if counts[s]]
    return f"{plural(counts['cases'], 'case')}: " + ", ".join(parts)


def code(value: Any) -> str:
    """``value`` as a Markdown code span, safe for values that contain backticks."""
    text = value if isinstance(value, str) else json.dumps(value)
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def cell_text(result: CaseResult | None) -> str:
    if result is None:
        return SYMBOL[None]
    return SYMBOL[result["status"]]


def duration(seconds: float | None) -> str:
    """'48 s', '3 min 05 s'; '—' when unknown."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def markdown(report: Report) -> str:
    """Totals and problems first, then the details of every result that is not a pass, then the whole matrix."""
    impls, rows = matrix(report)
    out = ["# keras-conformance report", ""]
    bad = unexpected(report)
    out.append(f"**{len(bad)} unexpected result(s)**: see Problems below." if bad
               else "Every result is what the expectations say.")
    out += ["", "| implementation | versions | device | cases | pass | divergence | FAIL | skip | wall time |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for impl in impls:
        env = dict(report["environments"][impl])
        device = env.pop("device", "")
        n = totals(report, impl)
        versions = ", ".join(f"{k} {v}" for k, v in env.items())
        out.append(f"| `{impl}` | {versions} | {device} | {n['cases']} | {n['pass']} | {n['divergence']} | "
                   f"{n['fail']} | {n['skip']} | {duration(report.get('seconds', {}).get(impl))} |")
    for impl, why in report["unavailable"].items():
        out.append(f"| `{impl}` | not run: {why} | | | | | | | |")
    problems: list[str] = []
    others: list[str] = []
    for row in rows:
        for impl in impls:
            r = row["by_impl"].get(impl)
            if r is None or r["status"] == "pass" and not r.get("tolerances"):
                continue
            lines = [f"### `{row['id']}` on `{impl}`: {r['status']}", row["description"], ""]
            lines += [f"- divergence in *{d['check']}*: observed {code(d['observed'])}. {d['reason']} "
                      f"Evidence: {d['evidence']}" for d in r["divergences"]]
            lines += [f"- {p}" for p in r["problems"]]
            if r["skip_reason"]:
                lines.append(f"- skipped: {r['skip_reason']}")
            lines += [f"- tolerance on *{d['check']}*: rtol={d['rtol']:g}, atol={d['atol']:g}. {d['reason']} "
                      f"Evidence: {d['evidence']}" for d in r.get("tolerances", [])]
            (problems if r["status"] == "fail" else others).extend(lines + [""])
    if problems:
        out += ["", "## Problems", ""] + problems
    if others:
        out += ["", "## Recorded divergences, skips and tolerances", ""] + others
    stale = report.get("unmatched_records", [])
    if stale:
        out += ["", "## Expectation records that matched nothing", "",
                "Each applies to no version, device or implementation this run tested: stale, or meant for "
                "another stack.", ""] + [f"- {record_place(r)}: {r['reason']}" for r in stale]
    out += ["", "## Matrix", "", "| case | " + " | ".join(f"`{i}`" for i in impls) + " |",
            "|---|" + "---|" * len(impls)]
    for row in rows:
        out.append(f"| `{row['id']}` | " + " | ".join(cell_text(row["by_impl"].get(i)) for i in impls) + " |")
    return "\n".join(out).rstrip() + "\n"


def junit_xml(report: Report) -> str:
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
            if r.get("tolerances"):
                props = ET.SubElement(tc, "properties")
                for d in r["tolerances"]:
                    ET.SubElement(props, "property", name=f"tolerance:{d['check']}",
                                  value=f"rtol={d['rtol']:g}, atol={d['atol']:g}: {d['reason']}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_all(report: Report, out_dir: Path) -> list[Path]:
    """Write report.md, report.json and junit.xml into ``out_dir`` (created if needed).

    All three are written beside their targets first and renamed only once
    all three are written, so ``out_dir`` never mixes two runs' reports.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "report.json": json.dumps(report, indent=2, sort_keys=True) + "\n",
        "report.md": markdown(report),
        "junit.xml": junit_xml(report),
    }
    with staged(out_dir) as stage:
        for name, text in files.items():
            stage(name, text)
    return [out_dir / name for name in files]
