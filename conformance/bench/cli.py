"""``keras-conformance bench-report``: pytest-benchmark's JSON as a Markdown table and plots."""

from __future__ import annotations

from pathlib import Path

from conformance.command import EXIT_OK, EXIT_UNEXPECTED, UsageError
from conformance.data.files import writable_directory


def add_parser(sub) -> None:
    br = sub.add_parser(
        "bench-report", help="turn pytest-benchmark JSON into a Markdown table and plots",
        description="Write benchmarks.md (median, IQR, samples/s, GFLOP/s, % of the measured ceiling, ratio to "
        "the raw-framework baseline) and PNG plots into DIR; with --compare, the change of each median.",
        epilog="Exit status: 0 written (with --compare: and no slowdown beyond the threshold), 1 a slowdown, "
        "2 bad input.",
    )
    br.add_argument("results", type=Path, nargs="+", metavar="RESULTS.json",
                    help="written by pytest --benchmark-json (several: one per implementation)")
    br.add_argument("--compare", type=Path, metavar="OLD.json", help="an earlier run to compare medians with")
    br.add_argument("--threshold", type=float, default=0.1, metavar="F",
                    help="flag medians slower by more than this fraction (default 0.1)")
    br.add_argument("--out", type=Path, default=Path("bench-report"), metavar="DIR", help="default bench-report/")


def cmd_bench_report(args) -> int:
    from conformance.bench import report as benchreport

    writable_directory(args.out)
    try:
        paths = benchreport.report(args.results, args.out, args.compare, args.threshold)
        slower = []
        if args.compare is not None:
            new_rows = [row for path in args.results for row in benchreport.load(path)]
            changes = benchreport.compare(benchreport.load(args.compare), new_rows)
            slower = [k for k, change in changes.items() if change > args.threshold]
    except benchreport.BenchReportError as exc:
        raise UsageError(str(exc)) from None
    print("bench-report: " + ", ".join(str(p) for p in paths))
    if slower:
        print(f"bench-report: {len(slower)} benchmark(s) slower by more than {args.threshold:.0%}")
        return EXIT_UNEXPECTED
    return EXIT_OK


COMMANDS = {"bench-report": cmd_bench_report}
