"""Forward-pass benchmarks: models, call paths, raw-framework baselines, FLOP and byte counts.

Used by the pytest-benchmark group in ``tests/benchmarks``.  Each call path
returns a function that runs one forward pass *and waits for it*
(``block_until_ready`` on JAX, a host read on TensorFlow and PyTorch), so that
what is timed is the computation, not its dispatch.  Compilation and warm-up
happen in :func:`prepare`, outside the timed rounds, and are timed there as
the first-call time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from conformance.backends.base import Unsupported  # noqa: F401  (raised by call paths)

#: Dense→BatchNormalization→Dropout stacks: name → (width, batch, layers, needs an accelerator).
STACKS = {
    "tiny": (32, 32, 2, False),       # overhead-bound
    "medium": (1024, 512, 1, False),  # about 1.07 GFLOP per call: 2·512·1024·1024
    "large": (4096, 4096, 2, True),   # compute-bound: 275 GFLOP per call, accelerators only
}
CALL_PATHS = ("predict", "predict_on_batch", "eager", "compiled", "compiled-xla", "raw")
DTYPE = "float32"


@dataclass
class Workload:
    """A model, its input, and the arithmetic it does."""

    name: str
    model: Any
    x: np.ndarray
    flops: float
    bytes: float
    dense: list[tuple[np.ndarray, np.ndarray]]  # (kernel, bias) per Dense, for the raw baseline
    bn: list[tuple[np.ndarray, ...]]  # (gamma, beta, mean, var) per BatchNormalization
    epsilon: float = 1e-3


def make_input(shape, seed=0) -> np.ndarray:
    """Inputs that are not all zeros (some kernels short-cut zeros)."""
    return np.random.default_rng(seed).normal(size=shape).astype(DTYPE)


def stack_workload(k, name: str) -> Workload:
    """Dense→BatchNormalization→Dropout(0.5), ``layers`` times, on width × batch."""
    width, batch, layers, _ = STACKS[name]
    keras = k.keras
    inputs = keras.Input(shape=(width,))
    h, dense, bn = inputs, [], []
    for _ in range(layers):
        d = keras.layers.Dense(width)
        b = keras.layers.BatchNormalization()
        h = keras.layers.Dropout(0.5)(b(d(h)))
        dense.append(d)
        bn.append(b)
    model = keras.Model(inputs, h)
    rng = np.random.default_rng(1)
    dense_w, bn_w = [], []
    for d, b in zip(dense, bn, strict=True):
        kernel = (rng.normal(size=(width, width)) / np.sqrt(width)).astype(DTYPE)
        bias = rng.normal(size=width).astype(DTYPE)
        d.set_weights([kernel, bias])
        stats = [rng.uniform(0.5, 2, width), rng.normal(size=width), rng.normal(size=width), rng.uniform(0.5, 2, width)]
        stats = [s.astype(DTYPE) for s in stats]
        b.set_weights(stats)
        dense_w.append((kernel, bias))
        bn_w.append(tuple(stats))
    flops = layers * (2.0 * batch * width * width + batch * width + 4.0 * batch * width)
    nbytes = 4.0 * (2 * batch * width + layers * (width * width + 5 * width))
    return Workload(f"stack-{name}", model, make_input((batch, width)), flops, nbytes, dense_w, bn_w)


def notebook_workloads(k) -> list[Workload]:
    """The notebook's three models, on a batch of 256."""
    from conformance.cases.helpers import build_batchnorm_model, build_dropout_model, build_init_model

    init_model = build_init_model(k, [])
    bn_model, _ = build_batchnorm_model(k)
    dropout_model = build_dropout_model(k)
    b = 256
    return [
        Workload("notebook-init", init_model, make_input((b, 1)), 2.0 * b * 10, 4.0 * (b + 20 + 10 * b), [], []),
        Workload("notebook-batchnorm", bn_model, make_input((b, 3)), 2.0 * b * 3 + 4.0 * b, 4.0 * (4 * b + 8), [], []),
        Workload("notebook-dropout", dropout_model, make_input((b, 10)), 2.0 * b * (100 + 10), 4.0 * (11 * b + 121),
                 [], []),
    ]


def layer_workload(k, layer_name: str, batch: int, width: int = 512) -> Workload:
    """One layer on batch × width: Dense, BatchNormalization, or Dropout (training on or off)."""
    keras = k.keras
    inputs = keras.Input(shape=(width,))
    if layer_name == "dense":
        layer, flops = keras.layers.Dense(width), 2.0 * batch * width * width + batch * width
        nbytes = 4.0 * (2 * batch * width + width * width + width)
    elif layer_name == "batchnorm":
        layer, flops, nbytes = keras.layers.BatchNormalization(), 4.0 * batch * width, 4.0 * (2 * batch * width + 4 * width)
    else:
        layer, flops, nbytes = keras.layers.Dropout(0.5), 2.0 * batch * width, 4.0 * 2 * batch * width
    model = keras.Model(inputs, layer(inputs))
    return Workload(f"{layer_name}-b{batch}", model, make_input((batch, width)), flops, nbytes, [], [])


# -- call paths ---------------------------------------------------------------------------------


def call_path(k, w: Workload, path: str, training: bool = False) -> Callable[[], Any]:
    """A no-argument function running one synchronised forward pass of ``w`` along ``path``."""
    model, x = w.model, w.x
    if path == "predict":
        if training:
            raise Unsupported("predict always runs in inference mode")
        return lambda: model.predict(x, batch_size=len(x), verbose=0)
    if path == "predict_on_batch":
        if training:
            raise Unsupported("predict_on_batch always runs in inference mode")
        return lambda: model.predict_on_batch(x)
    if path == "eager":
        return lambda: k.to_numpy(model(x, training=training))
    if path in ("compiled", "compiled-xla"):
        return k.compiled(model, x, xla=path == "compiled-xla", training=training)
    if path == "raw":
        if training or not w.dense:
            raise Unsupported("the raw baseline covers the Dense→BatchNormalization→Dropout stacks in inference")
        return raw_forward(k, w)
    raise ValueError(f"unknown call path {path!r}")


def raw_forward(k, w: Workload) -> Callable[[], Any]:
    """The stack's inference arithmetic written directly in the backend: x·W + b, then the BN affine map."""
    folded = []
    for (kernel, bias), (gamma, beta, mean, var) in zip(w.dense, w.bn, strict=True):
        scale = gamma / np.sqrt(var + w.epsilon)
        folded.append((kernel, bias, scale.astype(DTYPE), (beta - mean * scale).astype(DTYPE)))
    return k.raw_forward(folded, w.x)


def matmul_size(k) -> int:
    """The matmul that measures the ceiling: 2048² on a CPU; 8192² on an accelerator, where a
    2048² product is too short to reach its rate (an H200 reached 29 TFLOP/s at 2048², less
    than the large stack's own matmuls)."""
    return 2048 if accelerator(k) is None else 8192


def matmul_peak(k, n: int = 2048) -> Callable[[], Any]:
    """An n×n float32 matmul in the backend, synchronised: the measured compute ceiling."""
    return k.matmul(make_input((n, n), 2), make_input((n, n), 3))


def prepare(fn: Callable[[], Any]) -> float:
    """Run ``fn`` once (compilation, caches) and return how long that first call took, in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def accelerator(k) -> str | None:
    """The accelerator the backend runs on, or None on CPU."""
    device = k.device()
    return None if device == "cpu" or device.startswith("unknown") else device
