"""Regularisers: L1, L2, L1L2, OrthogonalRegularizer, custom ones, and how Dense and training use them.

Penalties are computed by :mod:`conformance.engine.oracles` from the weights the
layer holds: ``l1·Σ|w|``, ``l2·Σw²`` (no ½), and for OrthogonalRegularizer
``factor`` × the mean |dot product| of distinct L2-normalised rows (columns).
An activity penalty is divided by the batch size.  One SGD step adds the
penalty's gradient: ``2·l2·w`` for L2 and ``l1·sign(w)`` for L1.
"""

from __future__ import annotations

import numpy as np

from conformance.cases import case, family, policy_family
from conformance.cases.helpers import WEIGHTS_SET_LATER, penalty_values, random_weights, set_weights
from conformance.engine import oracles
from conformance.engine.checks import error_text
from conformance.engine.precision import POLICIES, bucket, eps, error_in_eps, round_to

TOPIC = "regularizer"
RTOL = 1e-5

#: Constructor defaults, from the Keras 3 API docs.
DOCUMENTED_DEFAULTS = {
    "L1": {"l1": 0.01},
    "L2": {"l2": 0.01},
    "L1L2": {"l1": 0.0, "l2": 0.0},
    "OrthogonalRegularizer": {"factor": 0.01, "mode": "rows"},
}
IDENTIFIERS = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2", "orthogonal_regularizer": "OrthogonalRegularizer"}


def plain(value):
    """A float from a config value (a Python float, a NumPy scalar or a serialised tensor)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


@case("regularizer-documented-defaults", "L1() is 0.01, L2() is 0.01, L1L2() is 0 and 0, OrthogonalRegularizer() is 0.01 on rows")
def documented_defaults(k, checks):
    for name, expected in DOCUMENTED_DEFAULTS.items():
        config = getattr(k.keras.regularizers, name)().get_config()
        checks.equal(f"{name} defaults", expected, {key: plain(config.get(key, "<absent>")) for key in expected})
    factory = k.keras.regularizers.l1_l2().get_config()
    checks.equal("l1_l2() defaults", {"l1": 0.0, "l2": 0.0}, {key: plain(factory.get(key)) for key in ("l1", "l2")})


@case("regularizer-string-identifiers", "regularizers.get('l1'), 'l2', 'l1_l2' and 'orthogonal_regularizer' give the documented classes")
def string_identifiers(k, checks):
    observed = {}
    for identifier in IDENTIFIERS:
        try:
            observed[identifier] = type(k.keras.regularizers.get(identifier)).__name__
        except Exception as exc:
            observed[identifier] = f"raises {type(exc).__name__}"
    checks.equal("identifier → class", IDENTIFIERS, observed)


@case("regularizer-values", "L1, L2, L1L2 and OrthogonalRegularizer (rows) on a random weight tensor equal the oracle")
def values(k, checks):
    r = k.keras.regularizers
    (w,) = random_weights(20, (12, 7))
    value = lambda reg: float(k.to_numpy(reg(k.tensor(w))))  # noqa: E731
    checks.close("L1(0.3)", oracles.l1_penalty(w, 0.3), value(r.L1(0.3)), rtol=RTOL)
    checks.close("L2(0.3)", oracles.l2_penalty(w, 0.3), value(r.L2(0.3)), rtol=RTOL)
    checks.close("L1L2(0.1, 0.2)", oracles.l1_l2_penalty(w, 0.1, 0.2), value(r.L1L2(l1=0.1, l2=0.2)), rtol=RTOL)
    checks.close("OrthogonalRegularizer(0.05, rows)", oracles.orthogonal_penalty(w, 0.05, "rows"),
                 value(r.OrthogonalRegularizer(factor=0.05, mode="rows")), rtol=RTOL)


@case("regularizer-orthogonal-columns", "OrthogonalRegularizer(0.05, mode='columns') on a random weight tensor equals the oracle")
def orthogonal_columns(k, checks):
    (w,) = random_weights(20, (12, 7))
    reg = k.keras.regularizers.OrthogonalRegularizer(factor=0.05, mode="columns")
    checks.close("OrthogonalRegularizer(0.05, columns)", oracles.orthogonal_penalty(w, 0.05, "columns"),
                 float(k.to_numpy(reg(k.tensor(w)))), rtol=RTOL)


def custom_regularizer_class(k):
    class ScaledL1(k.keras.regularizers.Regularizer):
        """A user's regulariser: strength·Σ|w|, serialisable through get_config."""

        def __init__(self, strength=0.1):
            self.strength = strength

        def __call__(self, w):
            return self.strength * k.sum_abs(w)

        def get_config(self):
            return {"strength": self.strength}

    return ScaledL1


@case("regularizer-config-round-trip", "Dense with L1L2 and a custom Regularizer class, rebuilt from get_config, adds identical penalties")
def config_round_trip(k, checks):
    keras = k.keras
    scaled_l1 = custom_regularizer_class(k)
    original = keras.layers.Dense(6, kernel_initializer=WEIGHTS_SET_LATER,
                                  kernel_regularizer=keras.regularizers.L1L2(l1=0.1, l2=0.2),
                                  bias_regularizer=scaled_l1(0.3))
    original.build((None, 5))
    kernel, bias = random_weights(21, (5, 6), (6,))
    set_weights(original, [kernel, bias])
    with keras.utils.custom_object_scope({"ScaledL1": scaled_l1}):
        clone = keras.layers.Dense.from_config(original.get_config())
    clone.build((None, 5))
    set_weights(clone, [kernel, bias])
    expected = [oracles.l1_l2_penalty(kernel, 0.1, 0.2), oracles.l1_penalty(bias, 0.3)]
    checks.close("original penalties", expected, penalty_values(k, original.losses), rtol=RTOL)
    checks.close("clone penalties", expected, penalty_values(k, clone.losses), rtol=RTOL)


@case("regularizer-dense-losses", "Dense with kernel, bias and activity regularisers: weight penalties are in layer.losses once built, "
      "the activity penalty (divided by the batch size) after each call, replacing the previous call's")
def dense_losses(k, checks):
    keras = k.keras
    r = keras.regularizers
    layer = keras.layers.Dense(4, kernel_initializer=WEIGHTS_SET_LATER, kernel_regularizer=r.L2(0.1),
                               bias_regularizer=r.L1(0.2), activity_regularizer=r.L2(0.05))
    layer.build((None, 6))
    kernel, bias = random_weights(22, (6, 4), (4,))
    set_weights(layer, [kernel, bias])
    weight_penalties = [oracles.l2_penalty(kernel, 0.1), oracles.l1_penalty(bias, 0.2)]
    checks.close("after build", weight_penalties, sorted_like(penalty_values(k, layer.losses), weight_penalties),
                 rtol=RTOL)
    x1, x2 = random_weights(23, (8, 6), (5, 6))
    layer(x1)
    activity = oracles.l2_penalty(oracles.dense(x1, kernel, bias), 0.05) / 8
    expected = weight_penalties + [activity]
    checks.close("after a call on 8 samples", expected, sorted_like(penalty_values(k, layer.losses), expected),
                 rtol=RTOL)
    layer(x2)
    expected = weight_penalties + [oracles.l2_penalty(oracles.dense(x2, kernel, bias), 0.05) / 5]
    checks.close("after a second call on 5 samples", expected,
                 sorted_like(penalty_values(k, layer.losses), expected), rtol=RTOL)
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, layer(inputs))
    model_losses = penalty_values(k, model.losses)
    checks.note("model.losses", model_losses)
    held = all(any(np.isclose(v, p, rtol=RTOL) for v in model_losses) for p in weight_penalties)
    checks.true("model.losses holds the weight penalties", held, f"{weight_penalties} among {model_losses}")


def sorted_like(observed: list[float], expected: list[float]) -> list[float]:
    """``observed`` reordered to follow ``expected`` (nearest match), so order does not matter."""
    remaining = list(observed)
    ordered = []
    for target in expected:
        if not remaining:
            break
        best = min(remaining, key=lambda v: abs(v - target))
        remaining.remove(best)
        ordered.append(best)
    return ordered + remaining


@case("regularizer-frozen-layer-adds-no-weight-penalty", "a Dense with kernel_regularizer and trainable=False contributes no weight penalty")
def frozen_layer(k, checks):
    layer = k.keras.layers.Dense(4, kernel_initializer=WEIGHTS_SET_LATER,
                                 kernel_regularizer=k.keras.regularizers.L2(0.1))
    layer.build((None, 3))
    kernel, bias = random_weights(25, (3, 4), (4,))
    set_weights(layer, [kernel, bias])
    layer.trainable = False
    checks.equal("layer.losses when frozen", [], penalty_values(k, layer.losses))
    layer.trainable = True
    checks.close("layer.losses when trainable again", [oracles.l2_penalty(kernel, 0.1)],
                 penalty_values(k, layer.losses), rtol=RTOL)


@case("regularizer-penalties-in-evaluate-loss", "evaluate reports mse + 0.05·Σw² + 0.05·Σ|b| for a Dense with L2 kernel and L1 bias regularisers, "
      "without training (so inference-only backends run it too)")
def evaluate_loss(k, checks):
    keras = k.keras
    inputs = keras.Input(shape=(5,))
    layer = keras.layers.Dense(3, kernel_initializer=WEIGHTS_SET_LATER, kernel_regularizer=keras.regularizers.L2(0.05),
                               bias_regularizer=keras.regularizers.L1(0.05))
    model = keras.Model(inputs, layer(inputs))
    kernel, bias, x, y = random_weights(26, (5, 3), (3,), (8, 5), (8, 3))
    set_weights(layer, [kernel, bias])
    model.compile(loss="mse")
    loss = float(np.ravel(model.evaluate(x, y, batch_size=8, verbose=0))[0])
    data_loss = oracles.mean_squared_error(oracles.dense(x, kernel, bias), y)
    checks.close("evaluated loss", data_loss + oracles.l2_penalty(kernel, 0.05) + oracles.l1_penalty(bias, 0.05),
                 loss, rtol=RTOL)
    checks.note("data loss", data_loss)


#: regulariser name → (factory kwargs, penalty oracle, penalty gradient oracle)
TRAINING = {
    "l2": (lambda r: r.L2(0.05), lambda w: oracles.l2_penalty(w, 0.05), lambda w: 2 * 0.05 * w),
    "l1": (lambda r: r.L1(0.05), lambda w: oracles.l1_penalty(w, 0.05), lambda w: 0.05 * np.sign(w)),
    "l1-l2": (lambda r: r.L1L2(l1=0.03, l2=0.04), lambda w: oracles.l1_l2_penalty(w, 0.03, 0.04),
              lambda w: 0.03 * np.sign(w) + 2 * 0.04 * w),
}


@family("regularizer-sgd-step-{name}",
        "one SGD step (learning rate 0.1) with a {name} kernel and bias regulariser: the loss includes both "
        "penalties and the new weights are w − 0.1·(∂mse/∂w + the penalty's gradient)",
        [{"name": name} for name in TRAINING], needs=("train",))
def sgd_step(k, checks, name):
    make, penalty, penalty_grad = TRAINING[name]
    keras = k.keras
    inputs = keras.Input(shape=(5,))
    layer = keras.layers.Dense(3, kernel_initializer=WEIGHTS_SET_LATER, kernel_regularizer=make(keras.regularizers),
                               bias_regularizer=make(keras.regularizers))
    model = keras.Model(inputs, layer(inputs))
    kernel, bias, x, y = random_weights(24, (5, 3), (3,), (8, 5), (8, 3))
    set_weights(layer, [kernel, bias])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    loss = float(np.ravel(model.train_on_batch(x, y))[0])
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    residual = oracles.dense(x64, kernel, bias) - y64
    data_loss = oracles.mean_squared_error(residual, 0.0)
    checks.close("reported loss", data_loss + penalty(kernel) + penalty(bias), loss, rtol=RTOL)
    scale = 2.0 / residual.size  # ∂ mean(r²) / ∂r
    new_kernel = kernel - 0.1 * (scale * x64.T @ residual + penalty_grad(kernel.astype(np.float64)))
    new_bias = bias - 0.1 * (scale * residual.sum(axis=0) + penalty_grad(bias.astype(np.float64)))
    observed_kernel, observed_bias = layer.get_weights()
    checks.close("updated kernel", new_kernel, observed_kernel, rtol=1e-4, atol=1e-6)
    checks.close("updated bias", new_bias, observed_bias, rtol=1e-4, atol=1e-6)


# -- dtype policies ------------------------------------------------------------------------------------
#: Penalties against the oracle on the stored weights, in eps of the variable dtype: fifteen squares or
#: absolute values summed and scaled, a few roundings each in the worst case: 8.
PENALTY_BUDGET = 8.0
#: The float32 arithmetic of the evaluated loss (mse + penalties, float32: keras.losses.Loss computes in
#: floatx()), in eps of float32 relative to it: 16.
EVALUATE_ARITHMETIC_EPS = 16.0


def evaluate_allowance(outputs: np.ndarray, products: np.ndarray, targets: np.ndarray, dtype: str) -> float:
    """How far an evaluated mse + penalties may lie from the oracle's when every output is computed in
    ``dtype`` as Keras does: the product x·W and the sum x·W + b each rounded to ``dtype`` (the oracle rounds
    once), so each output ŷᵢ may move by aᵢ = eps·(|x·Wᵢ| + |ŷᵢ|), and the mse by at most
    (1/N)·Σ(2|ŷᵢ − yᵢ|·aᵢ + aᵢ²); plus ``EVALUATE_ARITHMETIC_EPS`` of float32 for the loss's own arithmetic
    (added by the caller).  A penalty counted twice or left out moves the loss by the penalty itself, far
    more."""
    a = eps(dtype) * (np.abs(products) + np.abs(outputs))
    return float(np.mean(2 * np.abs(outputs - targets) * a + a * a))


#: The dtype of a loss: keras.losses.Loss computes in floatx() unless told otherwise (float32), and the
#: mixed-precision guides keep the loss in float32; a training step adds the penalties to it.
LOSS_DTYPE = "float32"


def penalty_dtypes_and_values(k, checks, layer, expected: list[float], dtype: str) -> None:
    """Each penalty in ``layer.losses`` is ``dtype`` and within budget of ``expected`` (in order of size)."""
    losses = list(layer.losses)
    checks.equal("penalty dtypes", [dtype] * len(expected), [k.dtype_name(t) for t in losses])
    observed = sorted_like([float(k.values(t)) for t in losses], expected)
    error = error_in_eps(observed, expected, dtype) if len(observed) == len(expected) else float("inf")
    checks.measure("penalties: error in eps", error)
    checks.record("penalties", expected, observed, error <= PENALTY_BUDGET,
                  f"within {PENALTY_BUDGET:g} eps of {dtype} of the oracle on the stored weights ({bucket(error)})",
                  kind="numeric")


@policy_family("regularizer-policy-{policy}",
        lambda policy: f"under dtype='{policy}', a Dense's L2 kernel and L1 bias penalties are "
        f"{POLICIES[policy].variable} (its variables' dtype) and equal the oracle on the stored weights; evaluate "
        "reports mse + penalties; the summed training loss (compute_loss) is float32, the dtype of losses")
def policy_axis(k, checks, policy):
    p = POLICIES[policy]
    keras = k.keras
    inputs = keras.Input(shape=(5,))
    layer = keras.layers.Dense(3, kernel_initializer=WEIGHTS_SET_LATER, kernel_regularizer=keras.regularizers.L2(0.05),
                               bias_regularizer=keras.regularizers.L1(0.05), dtype=policy)
    model = keras.Model(inputs, layer(inputs))
    kernel, bias, x, y = random_weights(27, (5, 3), (3,), (8, 5), (8, 3))
    set_weights(layer, [kernel, bias])
    kernel, bias = k.values(layer.kernel), k.values(layer.bias)  # as stored
    penalties = [oracles.l2_penalty(kernel, 0.05), oracles.l1_penalty(bias, 0.05)]
    penalty_dtypes_and_values(k, checks, layer, penalties, p.variable)
    model.compile(loss="mse")
    try:  # the data loss plus every penalty, as a training step sums them (the same keywords in Keras 2 and 3)
        xt, yt = k.tensor(x), k.tensor(y)
        total = k.dtype_name(model.compute_loss(x=xt, y=yt, y_pred=model(xt)))
    except Exception as exc:
        total = f"raises {error_text(exc)}"
    checks.equal("summed training loss dtype", LOSS_DTYPE, total)
    try:
        loss = float(np.ravel(model.evaluate(x, y, batch_size=8, verbose=0))[0])
    except Exception as exc:
        loss = f"raises {error_text(exc)}"
    xc, kc = round_to(x, p.compute), round_to(kernel, p.compute)
    outputs = round_to(oracles.dense(xc, kc, round_to(bias, p.compute)), p.compute)
    expected = oracles.mean_squared_error(outputs, y) + sum(penalties)
    dtype = p.compute if p.half else "float32"
    allowed = evaluate_allowance(outputs, xc.astype(np.float64) @ kc, y, p.compute) \
        + EVALUATE_ARITHMETIC_EPS * eps("float32") * expected
    budget = allowed / expected / eps(dtype)
    error = error_in_eps(loss, expected, dtype) if isinstance(loss, float) else float("inf")
    checks.record("evaluated loss", expected, loss, error <= budget,
                  f"within {budget:.2g} eps of {dtype} of mse + penalties: one more rounding of each output to "
                  f"{p.compute} than the oracle's, and float32 arithmetic ({bucket(error)})", kind="numeric")


#: Weights of 300: float16 holds them and 0.01·Σw² = 3 600, but not their squares (9·10⁴ > 65 504).
LARGE_WEIGHT = 300.0


@policy_family("regularizer-large-weights-{policy}",
        lambda policy: f"under dtype='{policy}', L2(0.01) on a 2×2 kernel of {LARGE_WEIGHT:g}s (squares beyond "
        "float16's range, the penalty 3 600 within it) is finite and equals the oracle", "float16", "mixed_float16")
def large_weights(k, checks, policy):
    layer = k.keras.layers.Dense(2, use_bias=False, kernel_initializer=WEIGHTS_SET_LATER,
                                  kernel_regularizer=k.keras.regularizers.L2(0.01), dtype=policy)
    layer.build((None, 2))
    set_weights(layer, [np.full((2, 2), LARGE_WEIGHT, np.float32)])
    with np.errstate(over="ignore"):  # the overflow is under test; the NumPy backend would warn of it
        penalty = layer.losses[0]
    dtype = POLICIES[policy].variable
    checks.equal("penalty dtype", dtype, k.dtype_name(penalty))
    expected = float(round_to(oracles.l2_penalty(np.full((2, 2), LARGE_WEIGHT), 0.01), dtype))
    observed = float(k.values(penalty))
    checks.record("penalty", expected, observed, error_in_eps(observed, expected, dtype) <= PENALTY_BUDGET,
                  f"finite and within {PENALTY_BUDGET:g} eps of {dtype} of 0.01·Σw²", kind="numeric")
