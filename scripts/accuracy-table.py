#!/usr/bin/env python3
"""The accuracy table of docs/topics.md, from conformance JSON reports (``pytest --conformance-json FILE`` or
``keras-conformance run``'s ``report.json``), one per implementation.

    python scripts/accuracy-table.py conformance-report/*.json

Each cell is the largest error a case measured (its ``... error in eps of DTYPE`` measurements; the notes
of reports written before measurements were kept apart), in eps of the
compute dtype (normwise; for BatchNormalization in 16 bits, per output: precision.rounded_error_in_eps),
for the BatchNormalization, Dense and regulariser cases of the dtype axis.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROWS = re.compile(r"(batchnorm-accuracy-.*|batchnorm-policy-[a-z0-9_]+|init-policy-.*|regularizer-policy-.*)")


def measured(result: dict) -> float | None:
    measured = (result.get("measurements") or {}) | (result.get("notes") or {})
    errors = [v for k, v in measured.items() if "error in eps" in k and isinstance(v, (int, float))]
    return max(errors) if errors else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", metavar="REPORT.json",
                        help="one conformance JSON report per implementation")
    paths = parser.parse_args(argv).reports
    table: dict[str, dict[str, str]] = {}
    impls: list[str] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
            results = list(data["results"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"accuracy-table: {path} is not a readable conformance JSON report ({type(exc).__name__})",
                  file=sys.stderr)
            return 2
        impl = data.get("impl", path)
        impls.append(impl)
        for result in results:
            if not ROWS.fullmatch(result["id"]):
                continue
            error = measured(result)
            cell = "skip" if result["status"] == "skip" else "–" if error is None else f"{error:.3g}"
            if result["status"] not in ("pass", "skip"):
                cell += " (recorded)" if result["status"] == "divergence" else " (FAIL)"
            table.setdefault(result["id"], {})[impl] = cell
    print("| case | " + " | ".join(f"`{i}`" for i in impls) + " |")
    print("|---|" + "---:|" * len(impls))
    for case in sorted(table):
        print(f"| `{case}` | " + " | ".join(table[case].get(i, "") for i in impls) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
