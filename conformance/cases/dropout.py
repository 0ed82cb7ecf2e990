"""The dropout family: Dropout, SpatialDropout1D/2D/3D, GaussianDropout, GaussianNoise, AlphaDropout.

Exact checks where the behaviour is exact (a kept unit is ``x/(1 − rate)``, a
dropped one 0; AlphaDropout's affine map), and statistical ones where it is
random (the drop fraction by an exact binomial test, noise distributions by a
Kolmogorov–Smirnov test), each with false-alarm probability ``FALSE_ALARM``.
Rates other than 0.5 are used throughout: a keep probability of ``rate``
instead of ``1 − rate`` is invisible at 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from conformance.cases import case, family, policy_family
from conformance.cases.helpers import SAMPLE_SHAPE, set_weights
from conformance.engine import oracles
from conformance.engine.checks import FALSE_ALARM
from conformance.engine.precision import POLICIES, eps, round_to

TOPIC = "dropout"


def positive_inputs(seed: int, shape) -> np.ndarray:
    """Values in [1, 2): a dropped unit (0) can never be mistaken for a kept one."""
    return np.random.default_rng(seed).uniform(1.0, 2.0, size=shape).astype(np.float32)


def raised(fn) -> str:
    """The exception type ``fn()`` raises, or 'no error'."""
    try:
        fn()
    except Exception as exc:
        return type(exc).__name__
    return "no error"


def check_inverted_dropout(checks, x, y, rate, prefix=""):
    """Every unit is 0 or exactly x/(1 − rate), and the dropped fraction is ``rate``."""
    dropped = y == 0
    kept_ok = np.allclose(y[~dropped], x[~dropped] * oracles.dropout_keep_scale(rate), rtol=1e-6, atol=0)
    checks.true(f"{prefix}kept units are x/(1-rate)", kept_ok, f"kept values equal x·{oracles.dropout_keep_scale(rate):.6g}")
    checks.binomial_test(f"{prefix}dropped fraction", int(dropped.sum()), dropped.size, rate,
                         alpha=FALSE_ALARM, what="dropped units")


@family("dropout-rate-{rate}",
        "Dropout({rate}) in training drops a fraction {rate} of units and scales the rest by 1/(1-{rate})",
        [{"rate": 0.1}, {"rate": 0.3}, {"rate": 0.7}])
def rate(k, checks, rate):
    x = positive_inputs(1, SAMPLE_SHAPE)
    y = k.to_numpy(k.keras.layers.Dropout(rate)(x, training=True))
    check_inverted_dropout(checks, x, y, rate)


@case("dropout-rate-0-and-1", "Dropout(0.0) in training is the identity; Dropout(1.0) in training outputs zeros")
def rate_0_and_1(k, checks):
    x = positive_inputs(2, (8, 16))
    checks.equal("rate 0", x, k.to_numpy(k.keras.layers.Dropout(0.0)(x, training=True)))
    try:
        y = k.to_numpy(k.keras.layers.Dropout(1.0)(x, training=True))
        observed = "all zeros" if np.all(y == 0) else f"{int(np.sum(y != 0))} non-zero units"
    except Exception as exc:
        observed = f"raises {type(exc).__name__}"
    checks.equal("rate 1", "all zeros", observed)


@case("dropout-inference-is-identity", "Dropout, SpatialDropout2D, GaussianDropout, GaussianNoise and AlphaDropout are the identity "
      "when called with training=False or with no training argument")
def inference_identity(k, checks):
    layers = k.keras.layers
    x = positive_inputs(3, (4, 5, 6, 7))
    for name, layer in [("Dropout", layers.Dropout(0.3)), ("SpatialDropout2D", layers.SpatialDropout2D(0.3)),
                        ("GaussianDropout", layers.GaussianDropout(0.3)), ("GaussianNoise", layers.GaussianNoise(0.3)),
                        ("AlphaDropout", layers.AlphaDropout(0.3))]:
        checks.equal(f"{name}(x, training=False)", x, k.to_numpy(layer(x, training=False)))
        checks.equal(f"{name}(x)", x, k.to_numpy(layer(x)))


@case("dropout-noise-shape", "Dropout(0.3, noise_shape=(64, 1, 8)) drops whole rows along axis 1, at rate 0.3")
def noise_shape(k, checks):
    x = positive_inputs(4, (64, 50, 8))
    y = k.to_numpy(k.keras.layers.Dropout(0.3, noise_shape=(64, 1, 8))(x, training=True))
    dropped = y == 0
    checks.true("mask constant along axis 1", np.all(dropped == dropped[:, :1, :]), "each (sample, feature) column all kept or all dropped")
    check_inverted_dropout(checks, x[:, 0, :], y[:, 0, :], 0.3, prefix="first row: ")


@case("dropout-invalid-noise-shape", "a noise_shape that cannot broadcast to the input raises an error when called")
def invalid_noise_shape(k, checks):
    x = positive_inputs(5, (4, 5, 6))
    layer = k.keras.layers.Dropout(0.3, noise_shape=(4, 3, 6))
    error = raised(lambda: k.to_numpy(layer(x, training=True)))
    checks.record("raises", "an exception", error, error != "no error", "any exception type")


@case("dropout-invalid-rate", "Dropout(-0.1) and Dropout(1.5) raise ValueError when constructed")
def invalid_rate(k, checks):
    checks.equal("Dropout(-0.1)", "ValueError", raised(lambda: k.keras.layers.Dropout(-0.1)))
    checks.equal("Dropout(1.5)", "ValueError", raised(lambda: k.keras.layers.Dropout(1.5)))


@case("dropout-seeding", "two fresh Dropout(0.4, seed=7) layers drop the same units; one layer's successive calls drop different ones")
def seeding(k, checks):
    x = positive_inputs(6, SAMPLE_SHAPE)
    first = k.keras.layers.Dropout(0.4, seed=7)
    a = k.to_numpy(first(x, training=True))
    b = k.to_numpy(k.keras.layers.Dropout(0.4, seed=7)(x, training=True))
    checks.equal("fresh layers, same seed, same mask", True, bool(np.array_equal(a == 0, b == 0)))
    again = k.to_numpy(first(x, training=True))
    checks.equal("successive calls, same mask", False, bool(np.array_equal(a == 0, again == 0)))


# -- Spatial dropout ---------------------------------------------------------------------------

SPATIAL: list[dict[str, Any]] = [
    {"name": "1d", "cls": "SpatialDropout1D", "shape": (256, 10, 16), "data_format": None},
    {"name": "2d-channels-last", "cls": "SpatialDropout2D", "shape": (128, 6, 5, 16), "data_format": "channels_last"},
    {"name": "2d-channels-first", "cls": "SpatialDropout2D", "shape": (128, 16, 6, 5), "data_format": "channels_first"},
    {"name": "3d-channels-last", "cls": "SpatialDropout3D", "shape": (128, 3, 4, 5, 16), "data_format": "channels_last"},
    {"name": "3d-channels-first", "cls": "SpatialDropout3D", "shape": (128, 16, 3, 4, 5), "data_format": "channels_first"},
]


@family("dropout-spatial-{name}",
        lambda name, cls, shape, data_format: f"{cls}(0.3{'' if data_format is None else ', ' + data_format}) on "
        f"{shape} drops whole channels, at rate 0.3, scaling the rest by 1/0.7", SPATIAL)
def spatial(k, checks, name, cls, shape, data_format):
    kwargs = {} if data_format is None else {"data_format": data_format}
    layer = getattr(k.keras.layers, cls)(0.3, **kwargs)
    x = positive_inputs(7, shape)
    y = k.to_numpy(layer(x, training=True))
    channel_axis = 1 if data_format == "channels_first" else -1
    # One row per (sample, channel), all that channel's positions along it.
    xs = np.moveaxis(x, channel_axis, 1).reshape(shape[0] * shape[channel_axis], -1)
    ys = np.moveaxis(y, channel_axis, 1).reshape(xs.shape)
    dropped = ys == 0
    checks.true("whole channels dropped", np.all(dropped == dropped[:, :1]), "each channel all kept or all dropped")
    check_inverted_dropout(checks, xs[:, 0], ys[:, 0], 0.3, prefix="per channel: ")


# -- Noise layers --------------------------------------------------------------------------------


@case("dropout-gaussian-dropout", "GaussianDropout(0.4) in training multiplies by N(1, sqrt(0.4/0.6))")
def gaussian_dropout(k, checks):
    x = positive_inputs(8, SAMPLE_SHAPE)
    y = k.to_numpy(k.keras.layers.GaussianDropout(0.4, seed=1)(x, training=True)).astype(np.float64)
    sigma = oracles.gaussian_dropout_stddev(0.4)
    checks.ks_test("noise y/x", y / x, stats.norm(1.0, sigma), alpha=FALSE_ALARM, target=f"N(1, {sigma:.4g})")


@case("dropout-gaussian-noise", "GaussianNoise(0.7) in training adds N(0, 0.7)")
def gaussian_noise(k, checks):
    x = positive_inputs(9, SAMPLE_SHAPE)
    y = k.to_numpy(k.keras.layers.GaussianNoise(0.7, seed=1)(x, training=True)).astype(np.float64)
    checks.ks_test("noise y − x", y - x, stats.norm(0.0, 0.7), alpha=FALSE_ALARM, target="N(0, 0.7)")


@case("dropout-alpha-dropout", "AlphaDropout(0.2) maps kept x to a·x + b and dropped units to a·α′ + b, drops a fraction 0.2, "
      "and keeps mean 0 and variance 1 of a standard normal input (z-tests)")
def alpha_dropout(k, checks):
    rate = 0.2
    x = np.random.default_rng(10).normal(0.0, 1.0, size=SAMPLE_SHAPE).astype(np.float32)
    y = k.to_numpy(k.keras.layers.AlphaDropout(rate, seed=1)(x, training=True)).astype(np.float64)
    a, b = oracles.alpha_dropout_affine(rate)
    dropped_value = a * oracles.ALPHA_PRIME + b
    dropped = np.isclose(y, dropped_value, rtol=1e-6, atol=1e-6)
    kept_ok = np.allclose(y[~dropped], a * x[~dropped].astype(np.float64) + b, rtol=1e-5, atol=1e-5)
    checks.true("kept units are a·x + b", kept_ok, f"a={a:.6g}, b={b:.6g}")
    checks.binomial_test("dropped fraction", int(dropped.sum()), dropped.size, rate, alpha=FALSE_ALARM,
                         what=f"units equal to a·α′ + b = {dropped_value:.6g}")
    m2, m4 = oracles.alpha_dropout_moments(rate)
    checks.z_test("output mean", y.mean(), y.size, 0.0, np.sqrt(m2), alpha=FALSE_ALARM)
    checks.z_test("output second moment (variance about 0)", np.mean(y**2), y.size, m2, np.sqrt(m4 - m2**2),
                  alpha=FALSE_ALARM)


# -- The training flag through the call paths ----------------------------------------------------


def dropout_model(k, rate=0.6):
    inputs = k.keras.Input(shape=(50,))
    return k.keras.Model(inputs, k.keras.layers.Dropout(rate)(inputs))


@case("dropout-training-flag-call-paths", "Dropout in a model: model(x) and predict(x) are the identity, model(x, training=True) drops")
def training_flag_call_paths(k, checks):
    model = dropout_model(k)
    x = positive_inputs(11, (64, 50))
    applied = lambda y: bool(np.any(np.asarray(y) == 0))  # noqa: E731  (inputs are never 0)
    checks.equal("model(x) drops", False, applied(k.to_numpy(model(x))))
    checks.equal("model(x, training=False) drops", False, applied(k.to_numpy(model(x, training=False))))
    checks.equal("model(x, training=True) drops", True, applied(k.to_numpy(model(x, training=True))))
    checks.equal("predict(x) drops", False, applied(model.predict(x, verbose=0)))


@case("dropout-fit-applies-dropout", "fit trains with Dropout(0.6) on and evaluate measures with it off: through a ±1 kernel on ones, "
      "the evaluate loss is 0 and the fit loss 50·0.6/0.4 = 75 (z-test)", needs=("train",))
def fit_applies_dropout(k, checks):
    rate, units, batch = 0.6, 50, 4096
    signs = np.where(np.arange(units) % 2 == 0, 1.0, -1.0).reshape(units, 1)
    inputs = k.keras.Input(shape=(units,))
    dense = k.keras.layers.Dense(1, kernel_initializer=k.keras.initializers.Constant(0.0), use_bias=False)
    model = k.keras.Model(inputs, dense(k.keras.layers.Dropout(rate)(inputs)))
    set_weights(dense, [signs.astype(np.float32)])
    model.compile(optimizer=k.keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    x, y = np.ones((batch, units), np.float32), np.zeros((batch, 1), np.float32)
    fit_loss = model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    eval_loss = float(np.ravel(model.evaluate(x, y, batch_size=batch, verbose=0))[0])
    checks.close("evaluate loss", 0.0, eval_loss, rtol=0, atol=1e-6)
    mean, std = oracles.squared_dropout_sum_moments(units, rate)
    checks.z_test("fit loss", fit_loss, batch, mean, std, alpha=FALSE_ALARM)


# -- dtype policies ------------------------------------------------------------------------------------


@policy_family("dropout-policy-{policy}",
        lambda policy: f"under dtype='{policy}', Dropout(0.3), GaussianNoise(0.5) and GaussianDropout(0.3) output "
        f"{POLICIES[policy].compute}: kept units within 1.5 eps of x/0.7 (relatively), the dropped fraction 0.3, the noise drawn "
        f"as N(0, 0.5) and N(1, sqrt(0.3/0.7)) rounded to {POLICIES[policy].compute}")
def policy_axis(k, checks, policy):
    dtype = POLICIES[policy].compute
    layers = k.keras.layers
    x = round_to(positive_inputs(31, SAMPLE_SHAPE), dtype)
    y = layers.Dropout(0.3, dtype=policy)(x.astype(np.float32), training=True)
    checks.equal("Dropout output dtype", dtype, k.dtype_name(y))
    y = k.values(y)
    dropped = y == 0
    # Each of 0.7, its reciprocal and the product may be rounded to the dtype, by half an eps each at most.
    exact = x[~dropped] * oracles.dropout_keep_scale(0.3)
    error = np.abs(y[~dropped] - exact) / exact
    checks.true("kept units are x/(1-rate)", bool(np.all(error <= 1.5 * eps(dtype))),
                f"kept values within 1.5 eps of {dtype} of x/0.7, relatively (three roundings)")
    checks.binomial_test("dropped fraction", int(dropped.sum()), dropped.size, 0.3, alpha=FALSE_ALARM, what="dropped units")
    zeros = np.zeros(SAMPLE_SHAPE, np.float32)
    noise = layers.GaussianNoise(0.5, dtype=policy)(zeros, training=True)
    checks.equal("GaussianNoise output dtype", dtype, k.dtype_name(noise))
    checks.fit_in_dtype("GaussianNoise noise", k.values(noise), stats.norm(0.0, 0.5), dtype, alpha=FALSE_ALARM,
                        target="N(0, 0.5)")
    factors = layers.GaussianDropout(0.3, dtype=policy)(zeros + 1.0, training=True)
    checks.equal("GaussianDropout output dtype", dtype, k.dtype_name(factors))
    checks.fit_in_dtype("GaussianDropout factors", k.values(factors),
                        stats.norm(1.0, oracles.gaussian_dropout_stddev(0.3)), dtype, alpha=FALSE_ALARM,
                        target="N(1, sqrt(0.3/0.7))")


# -- rates very close to 0 and 1 -----------------------------------------------------------------------


@family("dropout-rate-{rate}",
        "Dropout({rate}) on 2²² float32 ones: each kept unit within one eps of float32 of 1/(1 − {rate}) "
        "(1 − rate computed exactly: in float32 it is off by a percent near 1), the dropped fraction {rate}",
        [{"rate": 1e-06}, {"rate": 0.999999}])
def rate_near_0_or_1(k, checks, rate):
    x = np.ones(1 << 22, np.float32)
    y = k.values(k.keras.layers.Dropout(rate)(x, training=True))
    kept = y[y != 0]
    scale = oracles.dropout_keep_scale(rate)
    checks.record("kept units are 1/(1-rate)", f"{scale:.9g} within one eps of float32",
                  f"{np.unique(kept)[:3].tolist()}" if kept.size else "none kept",
                  bool(kept.size and np.all(np.abs(kept - scale) <= scale * eps("float32"))), f"|kept − {scale:.9g}| ≤ eps·{scale:.9g}")
    checks.binomial_test("dropped fraction", int(y.size - kept.size), y.size, rate, alpha=FALSE_ALARM, what="dropped units")
