"""The report of ``models check``: as JSON, Markdown and one self-contained HTML page."""

from __future__ import annotations

import json
from typing import Any

from conformance.data.schema import Environment, Manifest
from conformance.models.check import Loaded


def report_data(manifest: Manifest, stack: Environment, results: list[Loaded]) -> dict[str, Any]:  # the JSON report
    """The check's results as plain data (the JSON report; the Markdown and HTML are made from it)."""
    not_saved = {n: e["not_saved"] for n, e in manifest["models"].items() if "not_saved" in e}
    save_errors = {f"{n} ({f})": err for n, e in manifest["models"].items() for f, err in e.get("save_errors", {}).items()}
    return {"saved_on": manifest["stack"], "loaded_on": stack, "not_saved": not_saved, "save_errors": save_errors,
            "results": [{"model": r.model, "format": r.fmt, "loaded": r.loaded, "error": r.error, "same": r.same,
                         "not_applicable": r.not_applicable, "findings": [f.__dict__ for f in r.findings]}
                        for r in results]}


def report(manifest: Manifest, stack: Environment, results: list[Loaded], fmt: str) -> str:
    data = report_data(manifest, stack, results)
    if fmt == "json":
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    md = markdown(data)
    return md if fmt == "md" else html_page(md)


def _stack_text(stack: Environment) -> str:
    return f"{stack.get('impl', '?')} (Keras {stack.get('keras', '?')})"


def markdown(data: dict[str, Any]) -> str:
    """The report for a person: a table of every model file, then what differs, model by model."""
    results = data["results"]
    judged = [r for r in results if not r["not_applicable"]]
    same = sum(r["same"] for r in judged)
    out = [f"# Saved models: {_stack_text(data['saved_on'])} → {_stack_text(data['loaded_on'])}", "",
           f"{same} of {len(judged)} model files load and behave the same"
           + (f" ({len(results) - len(judged)} not loadable here at all, below)." if len(judged) < len(results)
              else "."), "", "| model | format | loads | same |", "|---|---|---|---|"]
    for r in results:
        loads = "—" if r["not_applicable"] else "yes" if r["loaded"] else "**no**"
        alike = "—" if r["not_applicable"] else "yes" if r["same"] else "**no**"
        out.append(f"| {r['model']} | {r['format']} | {loads} | {alike} |")
    skipped = [r for r in results if r["not_applicable"]]
    if skipped:
        out += ["", "Not loadable here at all:", ""] + [f"- {r['model']} ({r['format']}): {r['not_applicable']}"
                                                        for r in skipped]
    if data["not_saved"] or data["save_errors"]:
        out += ["", "Not saved on the old stack:", ""]
        out += [f"- {n}: {why}" for n, why in data["not_saved"].items()]
        out += [f"- {n}: {err}" for n, err in data["save_errors"].items()]
    for r in results:
        if r["same"] or r["not_applicable"]:
            continue
        out += ["", f"## {r['model']} ({r['format']})", ""]
        if not r["loaded"]:
            out.append("Does not load: `" + r["error"].replace("`", "'") + "`")
            continue
        out += [f"- {'ok' if f['ok'] else '**DIFFERS**'}: {f['what']}" + (f": {f['detail']}" if f["detail"] else "")
                for f in r["findings"]]
    return "\n".join(out) + "\n"


def html_page(md: str) -> str:
    """The Markdown report as one self-contained HTML page, rendered by markdown-it-py as CommonMark with
    tables, raw HTML off (an error message's ``<`` stays text); **DIFFERS** in red."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(md)
    style = ("body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
             "strong{color:#b00020}code{font-size:90%;background:#f4f4f4;padding:0 .2em;word-break:break-word}")
    return ("<!doctype html>\n<html lang='en'><meta charset='utf-8'><title>Saved models</title>"
            f"<style>{style}</style>\n" + body + "</html>\n")
