"""Helpers shared by the case modules, and the seed notebook's three models (no cases here).

What differs between Keras 2 and Keras 3 belongs to the adapter (conformance/backends), not here.
"""

from __future__ import annotations

import re

import numpy as np

from conformance.engine import oracles

#: Keras's documented BatchNormalization epsilon (Keras 2 and 3 API docs).
BATCHNORM_DEFAULT_EPSILON = 1e-3
#: Dropout cell: input ones(1, 10) through Dense(10) with kernel arange(100).
DROPOUT_KERNEL_1 = np.arange(100, dtype=np.float64).reshape(10, 10)
DROPOUT_KERNEL_2 = np.arange(10, dtype=np.float64).reshape(10, 1)
#: The shape of random draws wherever the shape itself is not under test: 50 000 values.  One shape for
#: them all, because JAX compiles a random-number program per shape and dtype (a third of a second each
#: on a CPU), and draws of one shape share it.
SAMPLE_SHAPE = (250, 200)
#: The kernel initializer of a layer whose weights a case sets after building it: a constant, so that
#: building draws nothing (see ``SAMPLE_SHAPE``).
WEIGHTS_SET_LATER = "zeros"


def summary_totals(model) -> dict[str, int | None]:
    """The Total / Trainable / Non-trainable counts printed by ``model.summary()``."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(str(line)))
    return parse_summary_totals("\n".join(lines))


def parse_summary_totals(text: str) -> dict[str, int | None]:
    """The counts of a summary's 'Total params: 20 (80.00 B)' lines (Keras 2 and 3 layouts)."""
    totals = {}
    for key, label in (("total", "Total"), ("trainable", "Trainable"), ("non_trainable", "Non-trainable")):
        match = re.search(rf"(?m)^\W*{label} params: ([\d,]+)", text)
        totals[key] = int(match.group(1).replace(",", "")) if match else None
    return totals


def param_split(model) -> dict[str, int]:
    """count_params and the trainable / non-trainable split counted from the weights."""
    count = lambda ws: int(sum(np.prod(w.shape) for w in ws))  # noqa: E731
    return {
        "total": int(model.count_params()),
        "trainable": count(model.trainable_weights),
        "non_trainable": count(model.non_trainable_weights),
    }


def constant_initializer(k, values, calls: list, role: str):
    """A custom initializer like the notebook's: records its call, returns ``values``."""

    def init(shape, dtype=None):
        calls.append({"role": role, "shape": shape, "dtype": dtype, "printed": str(shape)})
        return np.asarray(values(tuple(shape)), dtype=k.numpy_dtype(dtype))

    return init


def build_init_model(k, calls):
    keras = k.keras
    x1 = keras.Input(shape=(1,))
    x2 = keras.layers.Dense(
        10,
        kernel_initializer=constant_initializer(k, np.zeros, calls, "kernel"),
        bias_initializer=constant_initializer(k, np.ones, calls, "bias"),
    )(x1)
    return keras.Model(inputs=x1, outputs=x2)


def build_batchnorm_model(k):
    keras = k.keras
    x1 = keras.Input(shape=(3,))
    x2 = keras.layers.Dense(1, kernel_initializer=constant_initializer(k, lambda s: np.full(s, 2.0), [], "kernel"))(x1)
    bn = keras.layers.BatchNormalization()
    return keras.Model(inputs=x1, outputs=bn(x2)), bn


def build_dropout_model(k):
    keras = k.keras
    arange = lambda shape: np.arange(int(np.prod(shape))).reshape(shape)  # noqa: E731
    x1 = keras.Input(shape=(10,))
    x2 = keras.layers.Dense(10, kernel_initializer=constant_initializer(k, arange, [], "kernel"))(x1)
    x3 = keras.layers.Dropout(0.5)(x2, training=True)
    x4 = keras.layers.Dense(1, kernel_initializer=constant_initializer(k, arange, [], "kernel"))(x3)
    x5 = keras.layers.Dropout(0.5)(x4, training=True)
    return keras.Model(inputs=x1, outputs=x5)


def dropout_distribution():
    """Exact distribution of the dropout cell's output for input ones(1, 10)."""
    h = oracles.dense(np.ones(10), DROPOUT_KERNEL_1)
    return oracles.dense_dropout_dense_dropout(h, DROPOUT_KERNEL_2.ravel(), 0.5, 0.5)


def random_weights(seed: int, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, 1.0, size=s).astype(np.float32) for s in shapes]


def penalty_values(k, losses) -> list[float]:
    return [float(k.to_numpy(loss)) for loss in losses]



def set_weights(layer, weights) -> None:
    """``layer.set_weights`` with copies of ``weights``, so that the arrays an oracle reads stay as they were.

    JAX 0.4.26 to 0.5.3 on the CPU, running a training step read back from its persistent compilation
    cache, write the step's results into the NumPy arrays given to ``set_weights`` (the suite keeps
    that cache off there: see ``backends/jax.py``); the cases pin what Keras computes, not that.
    """
    layer.set_weights([np.array(w, copy=True) for w in weights])
