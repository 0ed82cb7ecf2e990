"""``keras-conformance history ...``: record every release as a stack, and read the history back offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance import history
from conformance.data import diffreport, fingerprint
from conformance.data.files import (
    FixtureError,
    UnwritableError,
    staged,
    writable_directory,
    writable_file,
    write_atomic,
)
from conformance.data.schema import Timeline
from conformance.history import explained
from conformance.history import view as timeline

EXIT_OK, EXIT_CHANGED, EXIT_USAGE = 0, 1, 2
DEFAULT_ENVS = Path.home() / ".cache" / "keras-conformance" / "envs"


def add_parser(sub, parser_class, positive_int) -> None:
    hist = sub.add_parser(
        "history", help="every Keras release as a stack: record, timeline, diff and show, offline",
        description="The behaviour history: one stack per Keras release (fixtures/history/<backend>.toml), each "
        "fingerprinted in its own uv environment; timeline, diff and show read the recorded fingerprints and "
        "install nothing.",
        epilog="Exit status: 0 done (diff: nothing changed), 1 a stack failed (diff: something changed), 2 bad input.",
    )
    hsub = hist.add_subparsers(dest="history_command", metavar="COMMAND", parser_class=parser_class)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", default="jax", choices=history.BACKENDS, help="default jax")
        p.add_argument("--history", type=Path, default=history.HISTORY, metavar="DIR",
                       help="where fingerprints are recorded (default: the history shipped with keras-conformance)")

    ls = hsub.add_parser("list", help="the stacks and what is recorded for each")
    common(ls)

    run = hsub.add_parser("run", help="build each stack's environment with uv and record its fingerprint",
                          description="Build each stack's environment with uv, run the suite there and record its "
                          "fingerprint. Resumable: a stack recorded with the same recipe is skipped. A stack that fails "
                          "is recorded as failed (DIR/<backend>/failed.json) and reported; the others go on.")
    common(run)
    run.add_argument("--stacks", metavar="PATTERN", help="only stacks whose name or Keras version matches, "
                     "e.g. '3.1*' or 'nightly'")
    run.add_argument("-j", "--jobs", type=positive_int, default=1, metavar="N", help="stacks at a time (default 1)")
    run.add_argument("--timeout", type=positive_int, default=int(history.DEFAULT_TIMEOUT), metavar="S",
                     help=f"seconds for one stack's suite (default {history.DEFAULT_TIMEOUT:g})")
    run.add_argument("--envs", type=Path, default=DEFAULT_ENVS,
                     metavar="DIR", help="where the stacks' environments live (default ~/.cache/keras-conformance/envs)")
    run.add_argument("--force", action="store_true", help="re-run stacks already recorded")
    run.add_argument("--repeat", type=positive_int, default=1, metavar="N",
                     help="run each stack's suite N times and mark each check whose value differs between the runs "
                     "as flapping, which the timeline and diffs never show as a change (default 1)")

    tl = hsub.add_parser("timeline", help="per case and check, the runs of releases that behave the same")
    common(tl)
    tl.add_argument("--format", choices=["md", "html", "json"], default="md", help="default md")
    tl.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of the terminal")

    df = hsub.add_parser("diff", help="what changes from release OLD to release NEW, from the recorded history",
                         epilog="Exit status: 0 nothing changed, 1 something changed, 2 bad input.")
    common(df)
    df.add_argument("old", metavar="OLD", help="a Keras version (3.4.1), 'nightly' or a stack name")
    df.add_argument("new", metavar="NEW")
    df.add_argument("--format", choices=["md", "html", "json"], default="md", help="default md")
    df.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of the terminal")

    sh = hsub.add_parser("show", help="one case's behaviour across every recorded release")
    common(sh)
    sh.add_argument("case", metavar="CASE", help="a case ID, or surface-<Class> for a class's public surface")

    pg = hsub.add_parser("pages", help="one Markdown page per release: what changed from the release it follows",
                         description="One Markdown page per release: what changed from the release before it, or "
                         "from the stack its recipe follows (`follows`), each change with the expectation records "
                         "that explain it. Refuses while a [[change]] record does not hold in the recorded history.",
                         epilog="Exit status: 0 written, 1 a [[change]] record does not hold (no pages written), "
                         "2 bad input.")
    common(pg)
    pg.add_argument("--out", type=Path, required=True, metavar="DIR")

    at = hsub.add_parser("attribute", help="a release's changes: moved by Keras's upgrade or the framework's?",
                         description="Build a cross stack, RELEASE's Keras on the framework of the release it "
                         "follows (its recipe with the framework's packages pinned as the older stack pins them; "
                         "where those conflict, RELEASE's Keras in the older stack's whole environment), "
                         "fingerprint it, and say for each change recorded at RELEASE which upgrade alone "
                         "reproduces it. Compares with the recorded history, so run it with the suite that "
                         "recorded it.",
                         epilog="Exit status: 0 attributed, 1 the cross stack could not be built or run, 2 bad input.")
    common(at)
    at.add_argument("release", metavar="RELEASE", help="a Keras version (3.6.0) or a stack name")
    at.add_argument("--envs", type=Path, default=DEFAULT_ENVS, metavar="DIR",
                    help="where the cross stack's environment lives (default ~/.cache/keras-conformance/envs)")
    at.add_argument("--timeout", type=positive_int, default=int(history.DEFAULT_TIMEOUT), metavar="S",
                    help=f"seconds for the suite (default {history.DEFAULT_TIMEOUT:g})")
    at.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of the terminal")

    dr = hsub.add_parser("drafts", help="skeleton expectation records, with version ranges, for what the "
                         "recorded stacks did unexpectedly")
    common(dr)
    dr.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of the terminal")

    can = hsub.add_parser("canary", help="fingerprint today's nightlies; what will change in the next release",
                          description="Resolve the newest keras-nightly (and tf-nightly) as of today, fingerprint each "
                          "in its own uv environment, and diff it against the newest release's recorded fingerprint.",
                          epilog="Exit status: 0 the nightlies change nothing, 1 a nightly changes a behaviour or could "
                          "not be checked, 2 bad input.")
    can.add_argument("--backend", action="append", choices=history.BACKENDS,
                     help="only this backend's nightlies (repeatable; default every backend)")
    can.add_argument("--history", type=Path, default=history.HISTORY, metavar="DIR",
                     help="where the releases' fingerprints are recorded (default: the shipped history)")
    can.add_argument("--envs", type=Path, default=DEFAULT_ENVS, metavar="DIR",
                     help="where the nightlies' environments live (default ~/.cache/keras-conformance/envs)")
    can.add_argument("--timeout", type=positive_int, default=int(history.DEFAULT_TIMEOUT), metavar="S",
                     help=f"seconds for one nightly's suite (default {history.DEFAULT_TIMEOUT:g})")
    can.add_argument("--date", metavar="YYYY-MM-DD", help="the newest nightly as of this day (default today, UTC)")
    can.add_argument("--format", choices=["md", "json"], default="md", help="default md")
    can.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of the terminal")

    wf = hsub.add_parser("workflow", help="a GitHub Actions workflow: one job per stack, the timeline, the canary")
    wf.add_argument("--out", type=Path, metavar="FILE",
                    help="write to FILE (e.g. .github/workflows/history.yml) instead of the terminal")

    add = hsub.add_parser("add", help="add a release's recipe, resolved with uv as of its release date",
                          epilog="Keras 3: history add 3.16.0 --released 2027-01-20 --backend tensorflow. "
                          "Keras 2 and nightlies name what to install: history add 2.13 --released 2023-09-26 "
                          "--backend tensorflow --impl keras2 --name keras-2.13-tf --requirement tensorflow-cpu==2.13.1")
    add.add_argument("version", metavar="VERSION", help="a Keras release, 'nightly', or the label of a stack")
    add.add_argument("--released", required=True, metavar="YYYY-MM-DD", help="its release date")
    add.add_argument("--backend", default="jax", choices=history.BACKENDS)
    add.add_argument("--requirement", action="append", metavar="REQ",
                     help="what to install instead of keras==VERSION and the backend (repeatable)")
    add.add_argument("--impl", default="", metavar="ID", help="the implementation to run (default keras3:BACKEND)")
    add.add_argument("--name", default="", help="the stack's name (default keras-VERSION-BACKEND)")
    add.add_argument("--as-of", default="", metavar="YYYY-MM-DD",
                     help="resolve as of this day instead of the release date (a backend newer than the release)")


def run_command(args, usage_error: type[Exception]) -> int:
    handlers = {"list": cmd_list, "run": cmd_run, "timeline": cmd_timeline, "diff": cmd_diff, "show": cmd_show,
                "attribute": cmd_attribute,
                "pages": cmd_pages, "add": cmd_add, "drafts": cmd_drafts, "canary": cmd_canary,
                "workflow": cmd_workflow}
    if args.history_command is None:
        raise usage_error("history needs a command: " + ", ".join(handlers))
    try:
        return handlers[args.history_command](args)
    except (FixtureError, UnwritableError, fingerprint.FingerprintError) as exc:
        raise usage_error(str(exc)) from None


def emit(text: str, out: Path | None, what: str) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text)
        print(f"{what}: {out}")


def cmd_list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    stacks = history.load_stacks(args.backend)
    failed = history.failures(args.history, args.backend)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="")
    table.add_column("stack", no_wrap=True)
    table.add_column("released", no_wrap=True)
    table.add_column("framework")
    table.add_column("recorded", ratio=1)
    for stack in stacks:
        fp = history.recorded(args.history, stack)
        if stack.name in failed and failed[stack.name]["recipe"] == stack.digest:
            state = f"FAILED: {failed[stack.name]['error'][:200]}"
        elif fp is None:
            state = "not recorded"
        else:
            state = history.verdict_summary(fp)
            if fp["environment"].get("recipe") != stack.digest:
                state += " (older recipe)"
        table.add_row(stack.name, stack.released, stack.framework, state)
    Console(highlight=False).print(table)
    stale = history.records_matching_no_stack(args.history, stacks)
    if stale:
        print(f"\n{len(stale)} expectation record(s) apply to none of these stacks\n"
              "(stale, or for another backend):")
        for record in stale:  # the check on a line of its own: case and check together pass 80 columns
            print(f"  {record.file}:{record.line} {record.case}" + (f"\n      [{record.check}]" if record.check else ""))
    return EXIT_OK


def cmd_run(args) -> int:
    stacks = history.select(history.load_stacks(args.backend), args.stacks)
    history.uv_binary()
    writable_directory(args.history / args.backend)
    writable_directory(args.envs)
    print(f"history {args.backend}: {len(stacks)} stack(s), {args.jobs} at a time, records in "
          f"{args.history / args.backend}", flush=True)
    outcomes = history.run(stacks, args.history, args.envs, args.jobs, args.timeout, args.force,
                           report=lambda line: print(line, flush=True), repeat=args.repeat)
    failed = [o for o in outcomes if o.status == "failed"]
    counts = {s: sum(o.status == s for o in outcomes) for s in ("recorded", "skipped", "failed")}
    print(f"{counts['recorded']} recorded, {counts['skipped']} already recorded, {counts['failed']} failed")
    for o in failed:
        print(f"FAILED {o.stack.name}: {o.detail}")
    return EXIT_CHANGED if failed else EXIT_OK


def loaded_timeline(args) -> Timeline:
    stacks = history.load_stacks(args.backend)
    return history.timeline(history.load(args.history, args.backend, stacks))


def cmd_timeline(args) -> int:
    writable_file(args.out)
    emit(timeline.render(loaded_timeline(args), args.format), args.out, "timeline")
    return EXIT_OK


def cmd_diff(args) -> int:
    writable_file(args.out)
    stacks = history.load_stacks(args.backend)
    old_stack, new_stack = history.resolve(args.old, stacks), history.resolve(args.new, stacks)
    sides = []
    for stack in (old_stack, new_stack):
        fp = history.recorded(args.history, stack)
        if fp is None:
            raise history.HistoryError(f"{stack.name} is not recorded in {args.history / args.backend}; "
                                       f"run: keras-conformance history run --stacks {stack.keras}")
        sides.append(fp)
    d = fingerprint.diff(*sides)
    emit(diffreport.render(d, args.format), args.out, f"{len(d['changed'])} case(s) changed")
    return EXIT_CHANGED if fingerprint.has_changes(d) else EXIT_OK


def cmd_attribute(args) -> int:
    writable_file(args.out)
    stacks = history.load_stacks(args.backend)
    recorded_stacks = history.load(args.history, args.backend, stacks)
    new = history.resolve(args.release, stacks)
    index = next((i for i, (s, _) in enumerate(recorded_stacks) if s.name == new.name), None)
    if index is None:
        raise history.HistoryError(f"{new.name} is not recorded in {args.history / args.backend}; "
                                   f"run: keras-conformance history run --stacks {new.keras}")
    tl = history.timeline(recorded_stacks)
    if tl["previous"][index] is None:
        raise history.HistoryError(f"{new.label} follows {new.follows}, which is not recorded: nothing to attribute"
                                   if new.follows else f"{new.label} is the first recorded release: nothing to attribute")
    old = recorded_stacks[timeline.previous_of(tl, index)][0]
    # The framework's packages swapped; where their own pins conflict with the new stack's, the new Keras in
    # the old stack's whole environment instead (a page says which).
    crosses = [(history.cross_stack(new, old), ""), (history.cross_stack_in_environment(new, old), old.label)]
    for cross, environment in crosses:
        print(f"keras-conformance: building {cross.name} ({old.framework} under Keras {new.label})", file=sys.stderr)
        try:
            python = history.build(cross, args.envs)
        except history.StackFailed as exc:
            print(f"keras-conformance: {cross.name}: {exc}", file=sys.stderr)
            continue
        try:
            fp = history.fingerprint_stack(cross, python, args.timeout)
        except history.StackFailed as exc:
            print(f"keras-conformance: {cross.name}: {exc}", file=sys.stderr)
            return EXIT_CHANGED
        attributed = history.attribution(tl, index, fp)
        emit(timeline.attribution_page(tl, index, old.framework, attributed, environment), args.out,
             f"{len(attributed)} change(s)")
        return EXIT_OK
    return EXIT_CHANGED


def cmd_show(args) -> int:
    tl = loaded_timeline(args)
    if args.case not in tl["cases"]:
        raise history.HistoryError(f"no case is called {args.case!r} (keras-conformance list shows them)")
    sys.stdout.write(timeline.show(tl, args.case))
    return EXIT_OK


def cmd_pages(args) -> int:
    from conformance.engine import expectations

    writable_directory(args.out)
    tl = loaded_timeline(args)
    records = expectations.load_all()
    changes = history.changes_by_release(tl)
    explanations = explained.load()
    for problems, what in ((timeline.changes_that_do_not_hold(tl, records), "[[change]] record(s) do not hold in "
                            "the recorded history"),
                           (explained.unused(explanations, tl, changes), "[[explained]] entries "
                            "explain nothing recorded")):
        if problems:
            for line in problems:
                print(f"keras-conformance: {line}", file=sys.stderr)
            print(f"keras-conformance: {len(problems)} {what}; no pages written", file=sys.stderr)
            return EXIT_CHANGED
    index = [f"# What changed in each Keras release on {tl['backend']}", ""]
    with staged(args.out) as stage:  # every page, or none
        for i, release in enumerate(tl["releases"]):
            if tl["previous"][i] is None:  # the first release, or one whose predecessor is not recorded
                continue
            name = f"keras-{tl['stacks'][i]['keras']}.md"
            stage(name, timeline.release_page(tl, i, changes[release], records, explanations))
            index.append(f"- [{release}]({name}), from {tl['releases'][timeline.previous_of(tl, i)]}: "
                         f"{len({c['case'] for c in changes[release]})} case(s) changed")
        stage("README.md", "\n".join(index) + "\n")
    print(f"{sum(before is not None for before in tl['previous'])} pages in {args.out}")
    return EXIT_OK


def cmd_drafts(args) -> int:
    writable_file(args.out)
    stacks = history.load_stacks(args.backend)
    history.load(args.history, args.backend, stacks)  # nothing recorded: one line, not an empty draft
    emit(history.merged_drafts(args.history, stacks), args.out, "draft records")
    return EXIT_OK


def cmd_add(args) -> int:
    exists = (history.HISTORY / f"{args.backend}.toml").exists()
    stacks = history.load_stacks(args.backend) if exists else []
    if args.impl and args.impl not in history.impl_ids():
        raise history.HistoryError(f"no implementation is called {args.impl!r}")
    new = history.resolve_recipe(args.version, args.released, args.backend, args.requirement, args.impl, args.name,
                                 args.as_of)
    kept = [s for s in stacks if s.name != new.name]
    path = history.write_stacks([*kept, new], args.backend)
    print(f"{new.name}: {len(new.requirements)} pinned requirements ({new.framework}) in {path}")
    return EXIT_OK


def cmd_canary(args) -> int:
    import datetime

    writable_file(args.out)
    try:
        today = (datetime.date.fromisoformat(args.date) if args.date
                 else datetime.datetime.now(datetime.timezone.utc).date()).isoformat()
    except ValueError:
        raise history.HistoryError(f"--date {args.date!r} is not a date such as 2026-11-27") from None
    stacks = [s for backend in (args.backend or history.BACKENDS) for s in history.load_stacks(backend)]
    if not history.nightly_stacks(stacks):
        raise history.HistoryError("no nightly stack in " + ", ".join(args.backend or history.BACKENDS))
    history.uv_binary()
    writable_directory(args.envs)
    results = []
    for backend in dict.fromkeys(s.backend for s in stacks):
        mine = [s for s in stacks if s.backend == backend]
        results += history.canary(mine, args.history, args.envs, today, args.timeout,
                                  report=lambda line: print(line, file=sys.stderr, flush=True))
    emit(history.canary_report(results, args.format, today), args.out, "canary report")
    return EXIT_CHANGED if history.canary_failed(results) else EXIT_OK


def cmd_workflow(args) -> int:
    from conformance.history import workflow

    writable_file(args.out)
    stacks = [s for backend in history.BACKENDS for s in history.load_stacks(backend)]
    emit(workflow.render(stacks), args.out, f"workflow of {len(stacks)} stacks")
    return EXIT_OK
