#!/usr/bin/env python3
"""How long the conformance suite takes on ``keras3:jax`` against Keras's own unit tests of the same modules,
measured back to back on this machine.

    python scripts/speed-vs-keras-tests.py [--workers N] [--out FILE.json]

First imports and collects both, untimed, with Python's bytecode cache on (in a scratch directory), so
that neither measurement pays for compiling Python sources: as after ``pip install``, which compiles
them, and whatever ``PYTHONDONTWRITEBYTECODE`` says.  Then runs, one after another and each serially
(no xdist; with ``--workers N``, each with N pytest-xdist workers):

1. Keras's unit tests of the modules the suite covers (``keras_unit_tests.KERAS_TESTS``: initializers,
   regularisers, the regularisation layers, and the module of every declared layer of the layer zoo),
   as installed with Keras (``keras/src/...``), on JAX;
2. the conformance suite (``tests/test_conformance.py``) on ``keras3:jax`` with an empty JAX compilation
   cache ("cold");
3. the same again with that cache as the first run left it ("warm").

Prints the three wall times and the two ratios, and writes them with the versions as JSON.  The target
(restated with the layer zoo from the measured floor): the suite takes at most 0.6 of Keras's tests cold,
and at most a quarter warm.

The suite's runs also count, with ``jax_compile_log`` (a pytest plugin in this directory), the programs
JAX lowered and compiled and the seconds that took, in all and in random draws; from the cold run it
prints a floor: the cold time had every program but the draws been lowered and compiled for nothing.
No call path gets below it, since each shape and dtype drawn needs its own draw program.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import jax_compile_log
import keras_unit_tests

ROOT = Path(__file__).resolve().parents[1]
#: The targets, restated with the layer zoo from the measured floor: the suite's time over Keras's tests.
TARGET_COLD, TARGET_WARM = 0.6, 0.25


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    return time.perf_counter() - start, proc.returncode, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the measurement as JSON here")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="run both with N pytest-xdist workers (default: serially)")
    args = parser.parse_args()
    parallel = ["-n", str(args.workers)] if args.workers > 0 else ["-p", "no:xdist"]
    sys.path.insert(0, str(ROOT))
    from conformance.data.files import write_atomic

    if args.out and not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: no directory {args.out.parent}")
    import importlib.util

    spec = importlib.util.find_spec("keras")
    if spec is None or spec.origin is None:
        print("speed-vs-keras-tests: keras is not installed", file=sys.stderr)
        return 2
    keras_dir = Path(spec.origin).parent
    missing = keras_unit_tests.missing(keras_dir)
    if missing:
        print(f"speed-vs-keras-tests: this keras has no {missing[0]} (its tests ship with the wheel from 3.0)",
              file=sys.stderr)
        return 2
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "CONFORMANCE_"))}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        keras_unit_tests.prepare(scratch)
        keras_env = dict(base, KERAS_BACKEND="jax", PYTHONPATH=str(scratch))
        keras_cmd = keras_unit_tests.command(keras_dir, scratch, *parallel)
        compile_log = scratch / "jax-compiles"
        compile_log.mkdir()
        suite_env = dict(base, JAX_COMPILATION_CACHE_DIR=str(scratch / "jax-cache"),
                         PYTHONPATH=str(Path(__file__).resolve().parent), JAX_COMPILE_LOG=str(compile_log))
        # Python's bytecode, compiled once for both (collection imports everything either run imports).
        for env in (keras_env, suite_env):
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
        suite_cmd = [sys.executable, "-m", "pytest", "tests/test_conformance.py", "--impl", "keras3:jax", "-q",
                     "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "jax_compile_log", *parallel]
        # keras.utils.set_random_seed imports TensorFlow where it is installed, which collecting does not.
        seed_cmd = [sys.executable, "-c", "import keras; keras.utils.set_random_seed(0)"]
        for cmd, env, cwd in [([*keras_cmd, "--collect-only"], keras_env, scratch), (seed_cmd, keras_env, scratch),
                              ([*suite_cmd, "--collect-only"], suite_env, ROOT)]:
            timed(cmd, env, cwd)
        jax_compile_log.read(str(compile_log))
        compiled = sum(1 for _ in (scratch / "jax-cache").rglob("*")) if (scratch / "jax-cache").exists() else 0
        if compiled:
            print(f"speed-vs-keras-tests: collecting compiled {compiled} JAX programs; the cold run would not be cold",
                  file=sys.stderr)
            return 1
        runs = {}
        for name, cmd, env, cwd in [("keras_tests", keras_cmd, keras_env, scratch),
                                    ("suite_cold", suite_cmd, suite_env, ROOT),
                                    ("suite_warm", suite_cmd, suite_env, ROOT)]:
            seconds, status, tail = timed(cmd, env, cwd)
            runs[name] = {"seconds": round(seconds, 1), "exit_status": status, "summary": tail}
            print(f"{name:12} {seconds:6.1f} s  (exit {status}: {tail})")
            if name.startswith("suite"):
                runs[name]["xla_compiles"] = jax_compile_log.summary(jax_compile_log.read(str(compile_log)))
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "versions": {d: metadata.version(d) for d in ("keras", "jax", "jaxlib")},
        "python_bytecode": "compiled before the runs (as pip installs packages)",
        "xdist_workers": args.workers,
        "runs": runs,
        "ratio_cold": round(runs["suite_cold"]["seconds"] / runs["keras_tests"]["seconds"], 3),
        "ratio_warm": round(runs["suite_warm"]["seconds"] / runs["keras_tests"]["seconds"], 3),
    }
    print(f"suite / Keras's tests: {result['ratio_cold']:.2f} cold (target ≤ {TARGET_COLD}), "
          f"{result['ratio_warm']:.2f} warm (target ≤ {TARGET_WARM})")
    cold = runs["suite_cold"].get("xla_compiles")
    if cold:
        # What no call path can save: each shape and dtype drawn needs its own random-draw program.
        others = (cold["compile_seconds"] - cold["random_draw_compile_seconds"]
                  + cold["lower_seconds"] - cold["random_draw_lower_seconds"])
        floor = runs["suite_cold"]["seconds"] - others
        result["cold_if_only_draws_compiled"] = {"seconds": round(floor, 1),
                                                 "ratio": round(floor / runs["keras_tests"]["seconds"], 3)}
        print(f"cold: {cold['programs']} programs, {cold['lower_seconds']:.1f} s lowering, "
              f"{cold['compile_seconds']:.1f} s compiling")
        print(f"  of them {cold['random_draw_programs']} random draws, "
              f"{cold['random_draw_lower_seconds'] + cold['random_draw_compile_seconds']:.1f} s")
        print(f"floor, had only the draws been lowered and compiled: {floor:.1f} s, "
              f"{result['cold_if_only_draws_compiled']['ratio']:.2f}")
    if args.out:
        try:
            write_atomic(args.out, json.dumps(result, indent=2) + "\n")
        except OSError as exc:
            print(f"speed-vs-keras-tests: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
            return 2
    failed = [name for name, run in runs.items() if run["exit_status"] != 0]
    if failed:
        print(f"speed-vs-keras-tests: {', '.join(failed)} did not complete; the times do not compare", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
