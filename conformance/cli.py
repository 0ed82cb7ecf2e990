"""The ``keras-conformance`` command.

``keras-conformance run [--impl ID ... | --all] [--out DIR]`` runs the suite,
one process per implementation (Keras 3 chooses its backend at import), prints
a matrix of cases × implementations and writes report.md, report.json and
junit.xml into DIR.  Exit status: 0 when every selected case of every
implementation ran and gave what the expectations say; 1 on an unexpected
result or an incomplete run (a child that crashed or was killed); 2 on bad
usage (no case selected, unreadable fixtures, a missing framework); 130 when
interrupted.  Only a complete run replaces the reports in DIR.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from conformance import __version__, execution
from conformance.backends import cpu, impls
from conformance.command import (  # noqa: F401  (EXIT_* re-exported: the command's exit statuses)
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    Parser,
    UsageError,
    add_impl_option,
    add_keyword_option,
    chosen_parser,
    positive_int,
)
from conformance.data import reports
from conformance.data.files import FixtureError, UnwritableError, writable_directory, writable_file, write_atomic
from conformance.data.schema import Report
from conformance.layers import DeclarationError


def build_parser() -> Parser:
    parser = Parser(
        prog="keras-conformance",
        description="Pins how Keras initialises weights, normalises batches, applies L1/L2 "
        "regularisers and Dropout, on each implementation.",
        epilog=f"Implementations: {', '.join(impls.IMPLS)}. Exit status: 0 all as expected, "
        "1 an unexpected result or an incomplete run, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    run = sub.add_parser(
        "run", help="run the conformance suite and write reports",
        description="Run every case on each chosen implementation (one process each), print the "
        "matrix and write report.md, report.json and junit.xml.",
        epilog="Implementations: " + "; ".join(f"{i} ({spec.install})" for i, spec in impls.IMPLS.items())
        + ". Exit status: 0 every selected case ran and all is as expected, 1 an unexpected result or an "
        "incomplete run, 2 bad usage (also: no case selected, unreadable fixtures), 130 interrupted. Only a "
        "complete run replaces the reports in DIR.",
    )
    which = run.add_mutually_exclusive_group()
    which.add_argument("--impl", action="append", metavar="ID", choices=list(impls.IMPLS),
                       help=f"implementation to test (repeatable; default ${impls.ENV_VAR} or {impls.DEFAULT_IMPL})")
    which.add_argument("--all", action="store_true", help="every implementation importable here")
    run.add_argument("--out", type=Path, default=Path("conformance-report"), metavar="DIR",
                     help="directory for the reports (default: conformance-report/)")
    add_keyword_option(run, "cases")
    run.add_argument("--show-all", action="store_true", help="show every case in the matrix, not only those "
                     "that are not ok everywhere")
    run.add_argument("--draft-expectations", type=Path, metavar="FILE",
                     help="write skeleton [[divergence]] records (TOML) for the unexpected results to FILE, "
                     "reason and evidence left empty for a person (the loader rejects them until filled in)")
    run.add_argument("--cpu-like", metavar="PROFILE", choices=list(cpu.PROFILES),
                     help="run as a CPU of another kind would, by the frameworks' own switches (default native; "
                     f"${cpu.ENV_VAR})")

    fp = sub.add_parser(
        "fingerprint", help="record every case's observed behaviour on one implementation (JSON)",
        description="Run the suite on one implementation and write its behaviour fingerprint: each case's "
        "observed values, verdict and notes, plus the environment. Compare two with `diff`.",
    )
    add_impl_option(fp)
    fp.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write the fingerprint")

    df = sub.add_parser(
        "diff", help="compare two fingerprints: what behaviour changed",
        description="List every case whose behaviour differs between OLD and NEW (grouped by topic, old and new "
        "value side by side), cases added or removed, and environment differences.",
        epilog="Exit status: 0 nothing changed, 1 something changed, 2 bad input.",
    )
    df.add_argument("old", type=Path, metavar="OLD.json")
    df.add_argument("new", type=Path, metavar="NEW.json")
    df.add_argument("--format", choices=["md", "html", "json"], default="md", help="report format (default md)")
    df.add_argument("--out", type=Path, metavar="FILE", help="write the report to FILE instead of the terminal")

    ls = sub.add_parser(
        "list", help="list every case: its ID, pytest markers and what it pins",
        description="Print every registered case (the test IDs pytest shows), its markers and its description. "
        "Imports no framework.",
    )
    ls.add_argument("pattern", nargs="?", default="*", metavar="PATTERN",
                    help="only IDs matching this shell-style pattern, e.g. 'dropout-*' (default: all)")
    ls.add_argument("--format", choices=["text", "json"], default="text", help="output format (default text)")

    from conformance.bench import cli as bench_cli
    from conformance.history import cli as history_cli
    from conformance.models import cli as models_cli
    from conformance.quality import cli as quality_cli

    bench_cli.add_parser(sub)
    history_cli.add_parser(sub, Parser, positive_int)
    models_cli.add_parser(sub, Parser)
    quality_cli.add_parsers(sub)

    return parser


def choose_impls(args) -> tuple[list[str], dict[str, str]]:
    """The implementations to run, and those --all could not find (with why)."""
    if args.all:
        chosen, unavailable = [], {}
        for impl_id in impls.IMPLS:
            try:
                impls.check_available(impl_id)
                chosen.append(impl_id)
            except impls.ImplError as exc:
                unavailable[impl_id] = str(exc)
        if not chosen:
            raise UsageError("no implementation is importable here: " + "; ".join(unavailable.values()))
        return chosen, unavailable
    try:
        chosen = args.impl or [impls.resolve_id(None)]
        for impl_id in chosen:
            impls.check_available(impl_id)
    except impls.ImplError as exc:
        raise UsageError(str(exc)) from None
    return list(dict.fromkeys(chosen)), {}


def print_totals(report: Report, console) -> None:
    """One line per implementation: its totals and wall time."""
    width = max(len(impl) for impl in report["implementations"])
    for impl in report["implementations"]:
        counts = reports.totals(report, impl)
        colour = "red" if counts["fail"] else "green"
        console.print(f"{impl:<{width}}  [{colour}]{reports.totals_line(counts)}[/]  "
                      f"({reports.duration(report['seconds'].get(impl))})", highlight=False)


def print_matrix(report: Report, console, show_all: bool) -> None:
    """Cases × implementations (short column names), by default only the rows that are not all ``ok``."""
    from rich.table import Table

    short = {"pass": ("ok", "green"), "divergence": ("div", "yellow"), "fail": ("FAIL", "bold red"),
             "skip": ("skip", "dim")}
    cols, rows = reports.matrix(report)
    shown = rows if show_all else [row for row in rows
                                   if any(r["status"] != "pass" for r in row["by_impl"].values())]
    if not shown:
        return
    hidden = len(rows) - len(shown)
    console.print("\ncases not ok everywhere (div = recorded divergence):" if hidden else "\nevery case:")
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("case", no_wrap=True, overflow="ellipsis", ratio=1)
    for impl in cols:
        table.add_column(impls.IMPLS[impl].short or impl, justify="center", no_wrap=True, min_width=5)
    for row in shown:
        cells = []
        for impl in cols:
            r = row["by_impl"].get(impl)
            text, colour = short.get(r["status"], ("?", "")) if r else ("—", "")
            cells.append(f"[{colour}]{text}[/]" if colour else text)
        table.add_row(row["id"], *cells)
    console.print(table)
    if hidden:
        console.print(f"(and {hidden} cases ok everywhere: --show-all lists them)")


def validate_fixtures() -> None:
    """The expectations must be readable and name only known cases: exit 2 before anything runs otherwise."""
    from conformance.engine import expectations

    try:
        expectations.load_checked()
    except FixtureError as exc:
        raise UsageError(str(exc)) from None


def cmd_run(args) -> int:
    from rich.console import Console

    console = Console(highlight=False)
    writable_directory(args.out)
    writable_file(args.draft_expectations)
    validate_fixtures()
    if args.cpu_like:
        os.environ[cpu.ENV_VAR] = args.cpu_like  # each implementation's child reads it before its framework loads
    chosen, unavailable = choose_impls(args)
    for impl_id, why in unavailable.items():
        print(f"keras-conformance: skipping {impl_id}: {why}", flush=True)
    runs, incomplete = [], []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="keras-conformance-") as tmp:
        for n, impl_id in enumerate(chosen, start=1):
            spec = impls.IMPLS[impl_id]
            print(f"\n=== [{n}/{len(chosen)}] {impl_id}: loading Keras and {spec.framework_name} …", flush=True)
            draft = Path(tmp) / f"{impl_id.replace(':', '-')}.draft.toml" if args.draft_expectations else None
            try:
                run = execution.run(impl_id, Path(tmp), "-o", "console_output_style=progress", "-r", "fE",
                                    keyword=args.keyword, draft=draft)
            except execution.ResultsError as exc:
                raise UsageError(str(exc)) from None
            if run.interrupted:
                print(f"\nkeras-conformance: interrupted ({impl_id}: {run.problem}); no report written, "
                      f"{args.out} left as it was", file=sys.stderr)
                return EXIT_INTERRUPTED
            if run.nothing_selected or run.usage_error:
                raise UsageError(f"{impl_id}: {run.problem}; no report written")
            if run.results is None:
                incomplete.append(run)
            else:
                runs.append(run.results)
        drafts = [p.read_text() for impl_id in chosen
                  if (p := Path(tmp) / f"{impl_id.replace(':', '-')}.draft.toml").exists()]
    print()
    if incomplete:
        for run in incomplete:
            console.print(f"[bold red]INCOMPLETE[/] {run.impl}: {run.problem}")
        print(f"keras-conformance: {len(incomplete)} implementation(s) gave no complete results; "
              f"no report written, {args.out} left as it was")
        return EXIT_UNEXPECTED
    report = reports.combine(runs, unavailable)
    print_totals(report, console)
    print_matrix(report, console, args.show_all)
    stale = report["unmatched_records"]
    if stale:
        console.print(f"\n{reports.plural(len(stale), 'expectation record')} for the cases run applied to nothing "
                      "here (another Keras, framework or device); report.md lists them")
    paths = reports.write_all(report, args.out)
    if args.draft_expectations:
        write_atomic(args.draft_expectations, "\n".join(drafts))
        print(f"draft expectation records for {len(reports.unexpected(report))} unexpected result(s) in "
              f"{args.draft_expectations}: fill in each reason and evidence")
    bad = reports.unexpected(report)
    print(f"wall time {reports.duration(time.monotonic() - started)}; reports in {args.out}: "
          f"{', '.join(p.name for p in paths)}")
    if bad:
        print(f"keras-conformance: {len(bad)} unexpected result(s)")
        return EXIT_UNEXPECTED
    print("keras-conformance: every result is as expected")
    return EXIT_OK


def cmd_fingerprint(args) -> int:
    from conformance.data import fingerprint

    writable_file(args.out)
    try:
        impl_id = impls.resolve_id(args.impl)
        impls.check_available(impl_id)
    except impls.ImplError as exc:
        raise UsageError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="keras-conformance-") as tmp:
        try:
            run = execution.run(impl_id, Path(tmp), "-o", "console_output_style=progress", "-r", "fE")
        except execution.ResultsError as exc:
            raise UsageError(str(exc)) from None
    if run.interrupted:
        raise KeyboardInterrupt
    if run.results is None:
        print(f"keras-conformance: the run on {impl_id} gave no complete results ({run.problem}); "
              "no fingerprint written", file=sys.stderr)
        return EXIT_UNEXPECTED
    write_atomic(args.out, fingerprint.dumps(fingerprint.from_run(run.results)))
    print(f"fingerprint of {impl_id}: {args.out}")
    return EXIT_OK


def cmd_diff(args) -> int:
    from conformance.data import diffreport, fingerprint

    if args.out is not None:
        writable_file(args.out)
    try:
        old, new = fingerprint.load(args.old), fingerprint.load(args.new)
    except fingerprint.FingerprintError as exc:
        raise UsageError(str(exc)) from None
    d = fingerprint.diff(old, new)
    text = diffreport.render(d, args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_atomic(args.out, text)
        print(f"{len(d['changed'])} case(s) changed; report: {args.out}")
    return EXIT_UNEXPECTED if fingerprint.has_changes(d) else EXIT_OK


def cmd_list(args) -> int:
    import fnmatch
    import json

    from conformance import cases

    chosen = [c for c in cases.all_cases() if fnmatch.fnmatchcase(c.id, args.pattern)]
    if not chosen:
        raise UsageError(f"no case ID matches {args.pattern!r}")
    if args.format == "json":
        print(json.dumps([{"id": c.id, "markers": list(c.markers), "description": c.description,
                           "needs": list(c.needs), "template": c.template, "defined_at": c.defined_at}
                          for c in chosen], indent=1))
        return EXIT_OK
    import shutil
    import textwrap

    columns = max(shutil.get_terminal_size().columns, 40)  # $COLUMNS, the terminal, else 80
    for c in chosen:
        print(f"{c.id}  [{', '.join(c.markers)}]")
        print(textwrap.fill(c.description, columns, initial_indent="    ", subsequent_indent="    ",
                            break_on_hyphens=False))
        print(textwrap.fill(f"declared at {c.defined_at}" + (f" as {c.template}" if c.template else ""), columns,
                            initial_indent="    ", subsequent_indent="      ", break_long_words=False,
                            break_on_hyphens=False))
    print(f"{len(chosen)} of {len(cases.all_cases())} cases")
    return EXIT_OK


def cmd_history(args) -> int:
    from conformance.history import cli as history_cli

    return history_cli.run_command(args, UsageError)


def cmd_models(args) -> int:
    from conformance.models import cli as models_cli

    return models_cli.run_command(args, UsageError)


def terminated(signum, frame) -> None:
    """SIGTERM (``kill``, a CI job cancelled) is taken as an interrupt: the children are stopped, nothing
    partial is written, and the exit status is 130."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminated) if on_main else None
    try:
        return run_main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run_main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # what parse_args says, but with the help of the command that was given
            chosen_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        from conformance.bench import cli as bench_cli
        from conformance.quality import cli as quality_cli

        commands = {"run": cmd_run, "fingerprint": cmd_fingerprint, "diff": cmd_diff, "list": cmd_list,
                    "history": cmd_history, "models": cmd_models, **bench_cli.COMMANDS, **quality_cli.COMMANDS}
        return commands[args.command](args)
    except (UsageError, UnwritableError, DeclarationError) as exc:
        print(f"keras-conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nkeras-conformance: interrupted; no report written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
