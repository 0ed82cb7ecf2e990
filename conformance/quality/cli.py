"""``keras-conformance selfcheck`` and ``flakes``: does the suite notice a broken Keras, and does it flake?"""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.backends import impls
from conformance.command import EXIT_OK, EXIT_UNEXPECTED, UsageError, add_impl_option, add_keyword_option, positive_int
from conformance.data.files import writable_file, write_atomic


def add_parsers(sub) -> None:
    sc = sub.add_parser(
        "selfcheck", help="mutation-test the installed Keras: does the suite notice each change?",
        description="Apply each mutation of fixtures/mutations/ to a shadow copy of the installed Keras, run the "
        "suite against it, and report which mutations the suite kills. The unmutated suite must pass first.",
        epilog="Exit status: 0 every counted mutation killed, 1 a mutation survived, 2 bad usage.",
    )
    add_impl_option(sc)
    sc.add_argument("-j", "--jobs", type=positive_int, default=2, metavar="N", help="mutants run in parallel (default 2)")
    sc.add_argument("--timeout", type=positive_int, default=300, metavar="S", help="seconds per mutant (default 300)")
    sc.add_argument("--only", action="append", metavar="MUTATION", help="run only this mutation (repeatable)")
    add_keyword_option(sc, "cases")
    sc.add_argument("--out", type=Path, metavar="FILE", help="also write the outcomes as JSON to FILE")


    fl = sub.add_parser(
        "flakes", help="run the whole test suite N times in random orders and report verdicts that change",
        description="Run pytest on tests/ (installed: on the conformance suite) N times, each in a different random "
        "order (pytest-randomly), every second run under pytest -n 2, and list every test whose verdict is not "
        "the same in all runs.",
        epilog="Exit status: 0 no verdict changed, 1 some did or a run did not complete, 2 bad usage (also: no test "
               "selected).",
    )
    add_impl_option(fl)
    fl.add_argument("--runs", type=positive_int, default=10, metavar="N", help="number of runs (default 10)")
    add_keyword_option(fl, "tests")


def cmd_selfcheck(args) -> int:
    from conformance.quality import selfcheck

    if args.out is not None:
        writable_file(args.out)
    try:
        impl_id = impls.resolve_id(args.impl)
        outcomes = selfcheck.selfcheck(impl_id, args.jobs, args.timeout, args.only, args.keyword,
                                       report=lambda line: print(line, flush=True))
    except (impls.ImplError, selfcheck.SelfcheckError) as exc:
        raise UsageError(str(exc)) from None
    killed, counted, value = selfcheck.score(outcomes)
    survivors = [o for o in outcomes if o.status == "survived"]
    stale = [o.id for o in outcomes if o.status == "stale"]
    print(f"\nscore {killed}/{counted} = {value:.0%} killed"
          + (f"; stale (not counted): {', '.join(stale)}" if stale else ""))
    for o in survivors:
        print(f"SURVIVED {o.id}: {o.description}")
    if args.out is not None:
        write_atomic(args.out, selfcheck.to_json(impl_id, outcomes))
    return EXIT_UNEXPECTED if survivors else EXIT_OK


def cmd_flakes(args) -> int:
    from conformance.quality import flakes

    try:
        impl_id = impls.resolve_id(args.impl)
        impls.check_available(impl_id)
        changed = flakes.hunt(impl_id, args.runs, args.keyword, report=lambda line: print(line, flush=True))
    except (impls.ImplError, flakes.FlakesError) as exc:
        raise UsageError(str(exc)) from None
    except flakes.IncompleteRun as exc:
        print(f"keras-conformance: {exc}; no verdicts compared", file=sys.stderr)
        return EXIT_UNEXPECTED
    if changed:
        for test, verdicts in sorted(changed.items()):
            print(f"CHANGED {test}: {', '.join(verdicts)}")
        print(f"keras-conformance: {len(changed)} test(s) changed verdict over {args.runs} runs")
        return EXIT_UNEXPECTED
    print(f"keras-conformance: no verdict changed over {args.runs} runs")
    return EXIT_OK


COMMANDS = {"selfcheck": cmd_selfcheck, "flakes": cmd_flakes}
