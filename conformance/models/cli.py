"""``keras-conformance models save|check``: what a model saved on the old stack does on the new one."""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.backends import impls
from conformance.data.files import FixtureError, UnwritableError, writable_directory, writable_file, write_atomic

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2


def add_parser(sub, parser_class) -> None:
    models = sub.add_parser(
        "models", help="saved models across upgrades: save on the old stack, check on the new one",
        description="Save the suite's model families (and your own) on the stack you run, then check on the stack "
        "you upgrade to what loads, what configuration of the four topics survives, and whether weights, outputs, "
        "loss and penalties are the same.",
        epilog="Exit status (check): 0 every model behaves the same, 1 something differs, 2 bad input.",
    )
    msub = models.add_subparsers(dest="models_command", metavar="COMMAND", parser_class=parser_class)
    save = msub.add_parser("save", help="train, save and describe every model family in DIR (a new directory)")
    save.add_argument("directory", type=Path, metavar="DIR")
    save.add_argument("--impl", metavar="ID", help="the implementation to save with (default: as for run)")
    save.add_argument("--model", type=Path, action="append", default=[], metavar="PATH",
                      help="also a model of yours (.keras, .h5 or a SavedModel directory; repeatable)")
    check = msub.add_parser("check", help="load every model saved in DIR and compare it with its manifest",
                            epilog="Exit status: 0 every model behaves the same, 1 something differs, 2 bad input.")
    check.add_argument("directory", type=Path, metavar="DIR")
    check.add_argument("--impl", metavar="ID", help="the implementation to load with (default: as for run)")
    check.add_argument("--format", choices=["md", "html", "json"], default="md", help="default md")
    check.add_argument("--out", type=Path, metavar="FILE", help="write the report to FILE instead of the terminal")
    matrix = msub.add_parser("matrix", help="save on the old stacks and check on the newest Keras 3, every backend, "
                             "each in its own uv environment (the pairs docs/saved-models documents)")
    matrix.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the reports go")
    matrix.add_argument("--envs", type=Path, default=Path.home() / ".cache" / "keras-conformance" / "envs",
                        metavar="DIR", help="where the stacks' environments live (default "
                        "~/.cache/keras-conformance/envs, shared with the history)")


def run_command(args, usage_error: type[Exception]) -> int:
    from conformance import models

    handlers = {"save": cmd_save, "check": cmd_check, "matrix": cmd_matrix}
    if args.models_command is None:
        raise usage_error("models needs a command: " + ", ".join(handlers))
    try:
        return handlers[args.models_command](args, models)
    except (FixtureError, UnwritableError, impls.ImplError) as exc:
        raise usage_error(str(exc)) from None


def _adapter(option: str | None):
    return impls.load(impls.resolve_id(option))


def cmd_save(args, models) -> int:
    target = args.directory
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise models.ModelsError(f"{target} exists and is not an empty directory: save into a new one")
    for path in args.model:
        if not path.exists():
            raise models.ModelsError(f"no model at {path}")
    writable_directory(target)
    adapter = _adapter(args.impl)
    print(f"saving models with {adapter.describe()}", flush=True)
    manifest = models.save_all(adapter, target, args.model, report=lambda line: print(line, flush=True))
    print(f"manifest: {manifest}")
    return EXIT_OK


def cmd_check(args, models) -> int:
    writable_file(args.out)  # bad input before any framework is imported
    manifest = models.read_manifest(args.directory)
    adapter = _adapter(args.impl)
    print(f"loading models saved with {manifest['stack'].get('impl')} (Keras {manifest['stack'].get('keras')}) "
          f"on {adapter.describe()}", file=sys.stderr, flush=True)
    results = models.check_all(adapter, args.directory, report=lambda line: print(line, file=sys.stderr, flush=True))
    text = models.report(manifest, models.stack_of(adapter), results, args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_atomic(args.out, text)
        print(f"report: {args.out}", file=sys.stderr)
    judged = [r for r in results if r.judged]
    return EXIT_OK if judged and all(r.same for r in judged) else EXIT_DIFFERENT


def cmd_matrix(args, models) -> int:
    from conformance import history
    from conformance.models import matrix as models_matrix

    writable_directory(args.out)
    history.uv_binary()
    try:
        models_matrix.run(args.out, args.envs, report=lambda line: print(line, flush=True))
    except history.StackFailed as exc:
        print(f"keras-conformance: {exc}", file=sys.stderr)
        return EXIT_DIFFERENT
    print(f"summary: {args.out / 'README.md'}")
    return EXIT_OK
