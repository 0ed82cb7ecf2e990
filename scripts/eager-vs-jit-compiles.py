#!/usr/bin/env python3
"""What calling layers under ``jax.jit`` instead of eagerly would change for the suite on ``keras3:jax``.

    python scripts/eager-vs-jit-compiles.py

The suite calls layers eagerly, as a user's own code does; JAX then compiles one program per op, shape
and dtype.  ``fit`` and ``predict`` call the layers inside one ``jax.jit`` program instead.  For
BatchNormalization at four shapes, training and inference, each way in a fresh process with JAX's
persistent cache off, this prints the programs compiled and the seconds spent compiling (JAX's
``/jax/core/compile/backend_compile_duration`` events), then whether the two ways give bit-identical
outputs and moving statistics, and how far apart they are (normwise, in eps of
float32) where they are not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SHAPES = [(32, 28, 28, 64), (16, 8), (8, 4, 3), (64, 5)]

CHILD = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
import jax, jax.monitoring, keras, numpy as np

mode, shapes = sys.argv[1], json.loads(sys.argv[2])
compiled = [0, 0.0]

def count(event, seconds, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        compiled[0] += 1
        compiled[1] += seconds

jax.monitoring.register_event_duration_secs_listener(count)
outputs = []
for shape in shapes:
    x = (np.random.default_rng(1).normal(size=shape) * 3 + 100).astype("float32")
    layer = keras.layers.BatchNormalization()
    layer.build(x.shape)
    if mode == "eager":
        training = np.asarray(layer(x, training=True))
        moving = [np.asarray(v.value) for v in layer.non_trainable_variables]
        inference = np.asarray(layer(x, training=False))
    else:
        call = jax.jit(lambda t, n, x_, tr: layer.stateless_call(t, n, x_, training=tr), static_argnums=3)
        trainable = [v.value for v in layer.trainable_variables]
        frozen = [v.value for v in layer.non_trainable_variables]
        training, moved = call(trainable, frozen, x, True)
        training, moving = np.asarray(training), [np.asarray(v) for v in moved]
        inference = np.asarray(call(trainable, moving, x, False)[0])
    outputs.append([training.tolist(), [m.tolist() for m in moving], inference.tolist()])
print(json.dumps({"programs": compiled[0], "seconds": compiled[1], "outputs": outputs}))
"""


def run(mode: str) -> dict:
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false")
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, json.dumps(SHAPES)], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"eager-vs-jit-compiles: the {mode} run failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(eager: list, jitted: list) -> str:
    """'identical', or how far apart normwise: max |eager − jit| / max |eager|, in eps of float32."""
    import numpy as np

    a, b = np.asarray(eager, np.float64), np.asarray(jitted, np.float64)
    if np.array_equal(a, b):
        return "identical"
    return f"{np.max(np.abs(a - b)) / np.max(np.abs(a)) / np.finfo(np.float32).eps:.2g} eps apart"


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    runs = {mode: run(mode) for mode in ("eager", "jit")}
    for mode, r in runs.items():
        print(f"{mode:5}  {r['programs']:3d} programs compiled in {r['seconds']:.2f} s")
    for shape, eager, jitted in zip(SHAPES, runs["eager"]["outputs"], runs["jit"]["outputs"], strict=True):
        same = [compare(e, j) for e, j in zip(eager, jitted, strict=True)]
        print(f"{'×'.join(map(str, shape)):>12}: training output {same[0]}, moving statistics {same[1]}, "
              f"inference output {same[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
