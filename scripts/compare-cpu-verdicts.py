#!/usr/bin/env python3
"""Do the verdicts hold on another kind of CPU? Two conformance JSON results of one implementation, compared.

    pytest --impl keras3:jax tests/test_conformance.py --conformance-json native.json
    pytest --impl keras3:jax tests/test_conformance.py --conformance-json avx2.json --cpu-like avx2
    python scripts/compare-cpu-verdicts.py native.json avx2.json

Exit status 0 when every case has the same verdict in both, but where a record scoped to a kind of device
(``devices``) or a skip for the CPU profile explains the difference; 1 when a verdict differs otherwise (each is
listed); 2 on bad input.  CI runs it for every implementation (.ci/run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs=2, metavar="RUN.json", help="pytest --conformance-json FILE, two CPU settings")
    paths = parser.parse_args(argv).runs
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conformance.data.reports import verdicts_that_differ

    runs = []
    for path in paths:
        try:
            run = json.loads(Path(path).read_text())
            if not isinstance(run, dict) or not run.get("complete") or not isinstance(run.get("results"), list):
                raise ValueError("not the complete results of a run (pytest --conformance-json)")
        except (OSError, ValueError) as exc:
            print(f"compare-cpu-verdicts: {path}: {exc}", file=sys.stderr)
            return 2
        runs.append(run)
    if runs[0]["impl"] != runs[1]["impl"]:
        print(f"compare-cpu-verdicts: {runs[0]['impl']} and {runs[1]['impl']} are not one implementation",
              file=sys.stderr)
        return 2
    differ = verdicts_that_differ(runs[0], runs[1])
    for line in differ:
        print(f"DIFFERS {line}")
    print(f"{runs[0]['impl']}: {len(runs[0]['results'])} cases, "
          + (f"{len(differ)} verdict(s) differ" if differ else "the same verdicts on both kinds of CPU"))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
