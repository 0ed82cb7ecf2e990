#!/usr/bin/env python3
"""Which of selfcheck's mutations Keras's own unit tests of the same modules kill.

    python scripts/mutants-vs-keras-tests.py [--backend jax] [-j N] [--only ID ...] [--out FILE.json]

The counterpart of ``keras-conformance selfcheck`` for Keras's tests: each mutation of
``fixtures/mutations/keras3.toml`` that applies to the backend is applied to a shadow copy of
the installed Keras (``conformance.quality.selfcheck.shadow_copy``), and Keras's unit tests of
initializers, BatchNormalization, the regularisation layers, the regularisers and Dense, as
the wheel ships them (``keras_unit_tests.py``), run against it, stopping at the first failure.
A mutation is killed when they fail (or time out), survives when they pass.  Keras's tests
must pass on the unmutated Keras first.

Prints one line per mutation and the count, and writes them as JSON; compare with
``keras-conformance selfcheck --impl keras3:BACKEND --out FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import keras_unit_tests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.data.files import write_atomic  # noqa: E402
from conformance.execution import children  # noqa: E402 (after the checkout is on sys.path)
from conformance.quality import selfcheck  # noqa: E402


def run_keras_tests(keras_dir: Path, scratch: Path, env: dict[str, str], shadow: Path | None,
                    timeout: float) -> tuple[str, str]:
    """(status, first failed test) of Keras's tests, with ``shadow`` first on PYTHONPATH."""
    cmd = keras_unit_tests.command(keras_dir, scratch, "-x", "-rfE", "-p", "no:xdist")
    env = dict(env, PYTHONPATH=os.pathsep.join(str(p) for p in (shadow, scratch) if p is not None))
    try:
        proc = children.run(cmd, env=env, cwd=scratch, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    if proc.returncode == 0:
        return "survived", ""
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.MULTILINE)
    tail = (proc.stdout.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return "killed", (re.sub(r"^.*?(?=keras/src/)", "", failed.group(1)) if failed else tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="jax", choices=["jax", "tensorflow", "torch"])
    parser.add_argument("-j", "--jobs", type=int, default=2, metavar="N", help="mutants at a time (default 2)")
    parser.add_argument("--timeout", type=float, default=900, metavar="S", help="seconds per mutant (default 900)")
    parser.add_argument("--only", action="append", metavar="ID", help="only this mutation (repeatable)")
    parser.add_argument("--out", type=Path, help="also write the outcomes as JSON here")
    args = parser.parse_args()
    if args.out and not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: no directory {args.out.parent}")
    try:
        package, mutations = selfcheck.load_catalogue(selfcheck.MUTATIONS_DIR / "keras3.toml")
        chosen = selfcheck.applicable(mutations, args.backend, args.only)
        keras_dir = selfcheck.package_dir(package)
    except selfcheck.SelfcheckError as exc:
        print(f"mutants-vs-keras-tests: {exc}", file=sys.stderr)
        return 2
    if keras_unit_tests.missing(keras_dir):
        print(f"mutants-vs-keras-tests: this keras ships no {keras_unit_tests.missing(keras_dir)[0]}",
              file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "JAX_"))}
    env["KERAS_BACKEND"] = args.backend
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="keras-tests-") as scratch:
        scratch = Path(scratch)
        keras_unit_tests.prepare(scratch)
        if args.backend == "jax":  # every run compiles mostly the same programs: compile each once
            env.update(JAX_COMPILATION_CACHE_DIR=str(scratch / "jax-cache"),
                       JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                       JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
        status, first = run_keras_tests(keras_dir, scratch, env, None, args.timeout)
        if status != "survived":
            print(f"mutants-vs-keras-tests: Keras's tests fail on the unmutated Keras ({first}); nothing to score",
                  file=sys.stderr)
            return 1
        print(f"{len(chosen)} mutations on {args.backend}; Keras's tests pass on the unmutated Keras")
        outcomes: list[dict] = []

        def one(m: selfcheck.Mutation) -> dict:
            with tempfile.TemporaryDirectory(prefix=f"mutant-{m.id}-") as tmp:
                if selfcheck.shadow_copy(keras_dir, Path(tmp), package, m) is None:
                    status, first = "stale", f"text not found in {m.file}"
                else:
                    status, first = run_keras_tests(keras_dir, scratch, env, Path(tmp), args.timeout)
            outcome = {"id": m.id, "topic": m.topic, "description": m.description, "status": status,
                       "first_failure": first}
            outcomes.append(outcome)
            print(f"[{len(outcomes)}/{len(chosen)}] {status:<9} {m.id}" + (f" by {first}" if first else ""),
                  flush=True)
            return outcome

        results = children.map_in_threads(one, chosen, args.jobs)
    counted = [r for r in results if r["status"] != "stale"]
    killed = [r for r in counted if r["status"] in ("killed", "timeout")]
    print(f"Keras's tests kill {len(killed)} of {len(counted)} mutations ({len(results) - len(counted)} stale)")
    if args.out:
        result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "backend": args.backend, "versions": {d: metadata.version(d) for d in ("keras", args.backend)},
                  "seconds": round(time.monotonic() - start), "killed": len(killed), "counted": len(counted),
                  "mutations": results}
        try:
            write_atomic(args.out, json.dumps(result, indent=2) + "\n")
        except OSError as exc:
            print(f"mutants-vs-keras-tests: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
