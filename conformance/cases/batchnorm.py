"""BatchNormalization: defaults, outputs in training and inference, moving statistics,
weight counts, frozen layers, call paths, regularisers and gradients.

Every expected value comes from :mod:`conformance.engine.oracles`: training mode
normalises with the batch mean and the *biased* batch variance; inference uses
the moving statistics; each training step updates
``moving = moving·momentum + batch·(1 − momentum)`` with that same biased variance.
"""

from __future__ import annotations

import numpy as np

from conformance.cases import case, family, policy_family
from conformance.cases.helpers import param_split, set_weights
from conformance.engine import oracles
from conformance.engine.precision import (
    POLICIES,
    bucket,
    error_in_eps,
    is_half,
    max_finite,
    policy_needs,
    policy_params,
    round_to,
    rounded_error_in_eps,
)
from conformance.layers import declared

TOPIC = "batchnorm"
#: float32 layers against float64 oracles.
RTOL, ATOL = 1e-4, 1e-4

#: The documented defaults, from BatchNormalization's declaration (conformance/layers/zoo.py).
DOCUMENTED_DEFAULTS = {key: declared("batch-normalization").arguments[key]
                       for key in ("axis", "momentum", "epsilon", "center", "scale")}
#: Its default initializers, by class ('zeros' is Zeros).
DEFAULT_INITIALIZERS = {key: str(declared("batch-normalization").arguments[key]).capitalize()
                        for key in ("beta_initializer", "gamma_initializer", "moving_mean_initializer",
                                    "moving_variance_initializer")}


def sample(seed: int, shape, loc=3.0, scale=2.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, scale, size=shape).astype(np.float32)


def channel_params(seed: int, channels: int):
    """Non-trivial gamma, beta, moving mean and moving variance, so each one shows."""
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0.5, 2.0, channels)
    beta = rng.normal(0.0, 1.0, channels)
    mean = rng.normal(0.0, 1.0, channels)
    var = rng.uniform(0.5, 2.0, channels)
    return [p.astype(np.float32) for p in (gamma, beta, mean, var)]


def built_layer(k, shape, axis, **kwargs):
    layer = k.keras.layers.BatchNormalization(axis=axis, **kwargs)
    layer.build(shape)
    params = channel_params(1, shape[axis])
    set_weights(layer, params)
    return layer, params


def initializer_name(config_value) -> str:
    """'Zeros' from a Keras 2 or Keras 3 serialised initializer (or a string alias)."""
    if isinstance(config_value, dict):
        return config_value.get("class_name", "?")
    return str(config_value)


@case("batchnorm-documented-defaults", "BatchNormalization() has axis -1, momentum 0.99, epsilon 0.001, center and scale on, "
      "and initializers zeros / ones / zeros / ones")
def documented_defaults(k, checks):
    config = k.keras.layers.BatchNormalization().get_config()
    axis = config.get("axis")
    observed = {key: config.get(key, "<absent>") for key in DOCUMENTED_DEFAULTS}
    observed["axis"] = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    checks.equal("arguments", DOCUMENTED_DEFAULTS, observed)
    checks.equal("initializers", DEFAULT_INITIALIZERS,
                 {key: initializer_name(config.get(key)) for key in DEFAULT_INITIALIZERS})


@case("batchnorm-config-round-trip", "from_config(get_config()) keeps axis, momentum, epsilon, center and scale")
def config_round_trip(k, checks):
    bn_cls = k.keras.layers.BatchNormalization
    kwargs = {"axis": 1, "momentum": 0.8, "epsilon": 0.01, "center": False, "scale": True}
    config = bn_cls(**kwargs).get_config()
    clone = bn_cls.from_config(config)
    observed = {key: getattr(clone, key) for key in kwargs}
    observed["axis"] = observed["axis"][0] if isinstance(observed["axis"], (list, tuple)) else observed["axis"]
    checks.equal("clone's arguments", kwargs, observed)


#: Input layouts: 2-D, 3-D and 4-D inputs, channels last (axis -1) and channels first (axis 1).
LAYOUTS = [
    {"name": "2d-axis-1", "shape": (8, 5), "axis": -1},
    {"name": "3d-axis-1", "shape": (6, 7, 5), "axis": -1},
    {"name": "3d-axis1", "shape": (6, 5, 7), "axis": 1},
    {"name": "4d-axis-1", "shape": (4, 5, 6, 3), "axis": -1},
    {"name": "4d-axis1", "shape": (4, 3, 5, 6), "axis": 1},
]


@family("batchnorm-output-{name}",
        lambda name, shape, axis: f"on a {len(shape)}-D input {shape} with axis={axis}: training output uses the batch "
        "mean and biased variance, inference output the moving statistics", LAYOUTS)
def outputs(k, checks, name, shape, axis):
    layer, (gamma, beta, mean, var) = built_layer(k, shape, axis)
    x = sample(2, shape)
    b = lambda v: oracles.broadcast_along(v, len(shape), axis)  # noqa: E731
    expected_inference = oracles.batchnorm_inference(x, b(gamma), b(beta), b(mean), b(var), layer.epsilon)
    checks.close("inference output", expected_inference, k.to_numpy(layer(x, training=False)), rtol=RTOL, atol=ATOL)
    expected_training = oracles.batchnorm_training(x, gamma, beta, layer.epsilon, axis)
    checks.close("training output", expected_training, k.to_numpy(layer(x, training=True)), rtol=RTOL, atol=ATOL)


MOVING_STATISTICS = [
    {"name": "one-step-default-momentum", "shape": (6, 4), "axis": -1, "momentum": None, "steps": 1},
    {"name": "five-steps-momentum-0.9", "shape": (6, 4), "axis": -1, "momentum": 0.9, "steps": 5},
    {"name": "three-steps-momentum-0.5-4d", "shape": (4, 3, 3, 2), "axis": -1, "momentum": 0.5, "steps": 3},
    {"name": "three-steps-momentum-0.7-4d-axis1", "shape": (4, 2, 3, 3), "axis": 1, "momentum": 0.7, "steps": 3},
]


@family("batchnorm-moving-statistics-{name}",
        lambda name, shape, axis, momentum, steps: f"after {steps} training call(s) on {shape} with "
        f"{'default momentum' if momentum is None else f'momentum {momentum}'}, moving mean and variance follow "
        "moving·momentum + batch·(1 − momentum) with the biased batch variance", MOVING_STATISTICS)
def moving_statistics(k, checks, name, shape, axis, momentum, steps):
    kwargs = {} if momentum is None else {"momentum": momentum}
    layer = k.keras.layers.BatchNormalization(axis=axis, **kwargs)
    layer.build(shape)
    channels = shape[axis]
    moving_mean, moving_var = (k.to_numpy(w) for w in layer.get_weights()[2:])
    checks.equal("starting moving mean, variance", [np.zeros(channels), np.ones(channels)],
                 [moving_mean, moving_var])
    m = 0.99 if momentum is None else momentum
    expected_mean, expected_var = np.zeros(channels), np.ones(channels)
    for step in range(steps):
        x = sample(10 + step, shape, loc=step - 1.0, scale=1.0 + step)
        layer(x, training=True)
        batch_mean, batch_var = oracles.batch_moments(x, axis)
        expected_mean = oracles.moving_average(expected_mean, batch_mean, m)
        expected_var = oracles.moving_average(expected_var, batch_var, m)
    observed_mean, observed_var = (k.to_numpy(w) for w in layer.get_weights()[2:])
    checks.close("moving mean", expected_mean, observed_mean, rtol=1e-5, atol=1e-6)
    checks.close("moving variance (biased batch variance)", expected_var, observed_var, rtol=1e-5, atol=1e-6)


@case("batchnorm-weight-counts-center-scale", "for every center/scale combination: (2 + center + scale)·C weights, center + scale of them trainable")
def weight_counts(k, checks):
    channels = 4
    for center in (True, False):
        for scale in (True, False):
            inputs = k.keras.Input(shape=(channels,))
            model = k.keras.Model(inputs, k.keras.layers.BatchNormalization(center=center, scale=scale)(inputs))
            trainable = (int(center) + int(scale)) * channels
            expected = {"total": trainable + 2 * channels, "trainable": trainable, "non_trainable": 2 * channels}
            checks.equal(f"center={center}, scale={scale}: counts", expected, param_split(model))
            names = (["gamma"] if scale else []) + (["beta"] if center else [])
            checks.equal(f"center={center}, scale={scale}: trainable weights", names,
                         [k.weight_name(w) for w in model.trainable_weights])


@case("batchnorm-frozen-runs-in-inference", "with trainable=False, BatchNormalization(x, training=True) uses the moving statistics and leaves them as they are")
def frozen_runs_in_inference(k, checks):
    shape = (8, 3)
    layer, (gamma, beta, mean, var) = built_layer(k, shape, -1)
    layer.trainable = False
    x = sample(3, shape)
    y = k.to_numpy(layer(x, training=True))
    checks.close("output", oracles.batchnorm_inference(x, gamma, beta, mean, var, layer.epsilon), y, rtol=RTOL, atol=ATOL)
    checks.close("moving statistics unchanged", [mean, var], [k.to_numpy(w) for w in layer.get_weights()[2:]],
                 rtol=0, atol=0)
    checks.equal("trainable weights when frozen", 0, len(layer.trainable_weights))


def bn_model(k, shape):
    inputs = k.keras.Input(shape=shape[1:])
    layer = k.keras.layers.BatchNormalization()
    model = k.keras.Model(inputs, layer(inputs))
    set_weights(layer, channel_params(1, shape[-1]))
    return model, layer


@case("batchnorm-predict-and-call-use-moving-statistics", "in a model, predict(x) and model(x) normalise with the moving statistics and change none of them")
def predict_and_call(k, checks):
    shape = (16, 3)
    model, layer = bn_model(k, shape)
    gamma, beta, mean, var = channel_params(1, shape[-1])
    x = sample(4, shape)
    expected = oracles.batchnorm_inference(x, gamma, beta, mean, var, layer.epsilon)
    checks.close("predict", expected, model.predict(x, verbose=0), rtol=RTOL, atol=ATOL)
    checks.close("model(x)", expected, k.to_numpy(model(x)), rtol=RTOL, atol=ATOL)
    checks.close("moving statistics unchanged", [mean, var], [k.to_numpy(w) for w in layer.get_weights()[2:]],
                 rtol=0, atol=0)


@case("batchnorm-fit-updates-moving-statistics", "one fit step (one batch, learning rate 0) normalises with batch statistics and moves the moving ones", needs=("train",))
def fit_updates(k, checks):
    shape = (16, 3)
    model, layer = bn_model(k, shape)
    gamma, beta, mean, var = channel_params(1, shape[-1])
    model.compile(optimizer=k.keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    x, y = sample(5, shape), sample(6, shape, loc=0.0, scale=1.0)
    history = model.fit(x, y, batch_size=shape[0], epochs=1, verbose=0, shuffle=False)
    batch_mean, batch_var = oracles.batch_moments(x, -1)
    checks.close("moving mean", oracles.moving_average(mean, batch_mean, 0.99), k.to_numpy(layer.moving_mean),
                 rtol=1e-5, atol=1e-6)
    checks.close("moving variance", oracles.moving_average(var, batch_var, 0.99), k.to_numpy(layer.moving_variance),
                 rtol=1e-5, atol=1e-6)
    expected_loss = oracles.mean_squared_error(oracles.batchnorm_training(x, gamma, beta, layer.epsilon), y)
    checks.close("training loss (batch statistics)", expected_loss, history.history["loss"][0], rtol=1e-4)


@case("batchnorm-gamma-beta-regularizers", "gamma_regularizer=l2(0.1) and beta_regularizer=l1(0.2) add exactly those penalties to layer.losses")
def gamma_beta_regularizers(k, checks):
    r = k.keras.regularizers
    layer = k.keras.layers.BatchNormalization(gamma_regularizer=r.l2(0.1), beta_regularizer=r.l1(0.2))
    layer.build((4, 5))
    gamma, beta, mean, var = channel_params(7, 5)
    set_weights(layer, [gamma, beta, mean, var])
    expected = sorted([oracles.l2_penalty(gamma, 0.1), oracles.l1_penalty(beta, 0.2)])
    observed = sorted(float(k.to_numpy(loss)) for loss in layer.losses)
    checks.close("layer.losses (sorted)", expected, observed, rtol=1e-5)


@case("batchnorm-masked-statistics", "with a sequence mask, training mode normalises with the mean and biased variance of the unmasked "
      "positions only, and the moving statistics move towards those")
def masked_statistics(k, checks):
    shape = (4, 6, 3)
    layer = k.keras.layers.BatchNormalization(momentum=0.5)
    layer.build(shape)
    gamma, beta, _, _ = channel_params(11, 3)
    set_weights(layer, [gamma, beta, np.zeros(3, np.float32), np.ones(3, np.float32)])
    x = sample(12, shape)
    mask = np.random.default_rng(13).random(shape[:2]) < 0.6
    y = k.to_numpy(layer(x, training=True, mask=k.tensor(mask)))
    mean, var = oracles.masked_batch_moments(x, mask)
    expected = gamma * (x - mean) / np.sqrt(var + layer.epsilon) + beta
    checks.close("output at unmasked positions", expected[mask], y[mask], rtol=RTOL, atol=ATOL)
    moving_mean, moving_var = (k.to_numpy(w) for w in layer.get_weights()[2:])
    checks.close("moving mean", oracles.moving_average(np.zeros(3), mean, 0.5), moving_mean, rtol=1e-4, atol=1e-5)
    checks.close("moving variance", oracles.moving_average(np.ones(3), var, 0.5), moving_var, rtol=1e-4, atol=1e-5)


@family("batchnorm-gradients-{name}",
        "in training mode on {shape}, axis={axis}: gradients w.r.t. input, gamma and beta equal the analytic ones",
        [{"name": "2d", "shape": (12, 4), "axis": -1}, {"name": "4d-axis1", "shape": (3, 2, 4, 4), "axis": 1}],
        needs=("gradients",))
def gradients(k, checks, name, shape, axis):
    layer, (gamma, beta, _, _) = built_layer(k, shape, axis)
    x = sample(8, shape)
    upstream = np.random.default_rng(9).normal(size=shape)
    dx, dgamma, dbeta = oracles.batchnorm_training_gradients(x, gamma, layer.epsilon, upstream, axis)
    grads = k.gradients(layer, x, upstream)
    checks.close("d/d inputs", dx, grads["inputs"], rtol=1e-3, atol=1e-4)
    checks.close("d/d gamma", dgamma, grads["gamma"], rtol=1e-3, atol=1e-4)
    checks.close("d/d beta", dbeta, grads["beta"], rtol=1e-3, atol=1e-4)


#: Inputs 10⁴ + N(0, 1) in float32.  Each input already carries up to half an ulp of 10⁴ (4.9e-4) of rounding,
#: and so do the batch mean and, in the affine form x·(γ/σ) + (β − μ·γ/σ) that TensorFlow normalises with, the
#: two products near 10⁴: a two-pass variance, E[(x − μ)²], normalises within a few ulps of 10⁴ of the float64
#: oracle (1.3 on JAX, 4.1 on TensorFlow), so the budget is eight (0.0078).  The one-pass E[x²] − E[x]²
#: subtracts two numbers near 10⁸, whose ulp is 8: nothing of a unit variance is left, and the result may be
#: negative (keras-team/keras#19649 asks how far BatchNormalization's outputs drift as inputs grow).
LARGE_MEAN = 1e4
LARGE_MEAN_BUDGET = float(8 * np.spacing(np.float32(LARGE_MEAN)))


@case("batchnorm-large-mean-training", "in training mode on inputs 10⁴ + N(0, 1) in float32, the batch variance is "
      "computed stably: outputs finite and within 8 ulps of 10⁴ of the float64 oracle, the moving variance "
      "non-negative and within 1 % of the oracle's")
def large_mean_training(k, checks):
    shape = (256, 4)
    x = (LARGE_MEAN + np.random.default_rng(21).normal(0.0, 1.0, shape)).astype(np.float32)
    layer = k.keras.layers.BatchNormalization(momentum=0.5)
    layer.build(shape)
    y = k.to_numpy(layer(x, training=True)).astype(np.float64)
    _, batch_var = oracles.batch_moments(x, -1)
    expected = oracles.batchnorm_training(x, np.ones(4), np.zeros(4), layer.epsilon)
    moving_var = k.to_numpy(layer.moving_variance).astype(np.float64)
    # One check each for the outputs and the moving variance: where the variance is computed in one pass,
    # whether its garbage comes out negative (NaN outputs) depends on the order of summation, not on Keras.
    checks.true("outputs finite and within the float32 budget",
                bool(np.isfinite(y).all() and np.all(np.abs(y - expected) <= LARGE_MEAN_BUDGET)),
                f"every output finite and within {LARGE_MEAN_BUDGET:.2g} (8 ulps of 10⁴) of the oracle")
    checks.true("moving variance non-negative and within 1 % of the oracle",
                bool(np.all(moving_var >= 0)
                     and np.allclose(moving_var, oracles.moving_average(np.ones(4), batch_var, 0.5), rtol=1e-2, atol=0)),
                "moving variance = 0.5 + 0.5·(biased batch variance) ≥ 0, to 1 %")


# -- dtype policies ------------------------------------------------------------------------------------
#: Budgets in eps of the compute dtype.  In float32 and float64 the mean, the variance and the
#: normalisation each round a few times: 16, relative to the size of the terms
#: (oracles.batchnorm_error_scale).  In 16 bits Keras normalises in float32 and rounds once at the end:
#: half an eps relative to each output, plus one for the float32 arithmetic
#: (precision.rounded_error_in_eps): 1.5.
POLICY_BUDGET = {"float16": 1.5, "bfloat16": 1.5, "float32": 16.0, "float64": 16.0}
WEIGHT_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")


def batchnorm_error(observed, expected, dtype, scale=None) -> float:
    """The error of BatchNormalization's result in eps of ``dtype``: in 16 bits, of a float32 result rounded
    once, relative to each output; otherwise normwise, relative to ``scale`` (default: the largest expected
    value)."""
    measure = rounded_error_in_eps if is_half(dtype) else error_in_eps
    return measure(observed, expected, dtype, scale)


def within_budget(checks, name, expected, observed, dtype, budget, *, scale=None, key=""):
    """A check that ``observed`` is within ``budget`` eps of ``dtype`` of ``expected`` (:func:`batchnorm_error`)."""
    error = batchnorm_error(observed, expected, dtype, scale)
    checks.measure(f"{name}: error in eps of {dtype}", error)
    return checks.record(name, f"within {budget:g} eps of {dtype}", f"{bucket(error)} of {dtype}", error <= budget,
                         f"{'error per output' if is_half(dtype) else 'normwise error'} {error:.3g} eps "
                         f"of {dtype} against the float64 oracle, budget {budget:g}",
                         key=key)


@policy_family("batchnorm-policy-{policy}",
        lambda policy: f"BatchNormalization(dtype='{policy}'): gamma, beta and the moving statistics are "
        f"{POLICIES[policy].variable}, outputs {POLICIES[policy].compute}; training and inference outputs and the "
        "moving statistics within budget of the float64 oracle on the inputs as cast to the compute dtype")
def policy_axis(k, checks, policy):
    p = POLICIES[policy]
    shape = (16, 4)
    layer = k.keras.layers.BatchNormalization(momentum=0.5, dtype=policy)
    layer.build(shape)
    set_weights(layer, channel_params(1, 4))
    checks.equal("variable dtypes", {name: p.variable for name in WEIGHT_NAMES},
                 {name: k.dtype_name(getattr(layer, name)) for name in WEIGHT_NAMES})
    gamma, beta, mean, var = (k.values(getattr(layer, name)) for name in WEIGHT_NAMES)
    x = round_to(sample(2, shape), p.compute)  # what the layer computes from: its input cast to the compute dtype
    inference = layer(x.astype(np.float32), training=False)
    checks.equal("output dtype", p.compute, k.dtype_name(inference))
    budget = POLICY_BUDGET[p.compute]
    within_budget(checks, "inference output", oracles.batchnorm_inference(x, gamma, beta, mean, var, layer.epsilon),
                  k.values(inference), p.compute, budget,
                  scale=oracles.batchnorm_error_scale(x, gamma, beta, mean, var, layer.epsilon))
    training = k.values(layer(x.astype(np.float32), training=True))
    batch_mean, batch_var = oracles.batch_moments(x, -1)
    within_budget(checks, "training output", oracles.batchnorm_training(x, gamma, beta, layer.epsilon),
                  training, p.compute, budget,
                  scale=oracles.batchnorm_error_scale(x, gamma, beta, batch_mean, batch_var, layer.epsilon))
    expected = [round_to(oracles.moving_average(mean, batch_mean, 0.5), p.variable),
                round_to(oracles.moving_average(var, batch_var, 0.5), p.variable)]
    within_budget(checks, "moving statistics", np.concatenate(expected),
                  np.concatenate([k.values(layer.moving_mean), k.values(layer.moving_variance)]),
                  p.variable, POLICY_BUDGET[p.variable])


#: Inputs 300 + 300·N(0, 1): float16 holds each of them, but not their variance (9·10⁴ > 65 504), nor the
#: squares of their deviations.  Momentum 0.01 carries that variance into the moving variance.
WIDE_RANGE_SHAPE = (512, 4)


def wide_range_description(policy: str) -> str:
    stored = POLICIES[policy].variable
    return (f"BatchNormalization(dtype='{policy}') in training on inputs 300 + 300·N(0, 1), whose variance float16 "
            "cannot hold: statistics computed in float32 (outputs finite, within budget), the moving variance the "
            f"oracle's as stored in {stored}" + (" (beyond its range: inf)" if stored == "float16" else ""))


@policy_family("batchnorm-policy-{policy}-wide-range", wide_range_description, "float16", "mixed_float16")
def policy_wide_range(k, checks, policy):
    p = POLICIES[policy]
    x = round_to(300.0 + 300.0 * np.random.default_rng(22).normal(size=WIDE_RANGE_SHAPE), p.compute)
    layer = k.keras.layers.BatchNormalization(momentum=0.01, dtype=policy)
    layer.build(WIDE_RANGE_SHAPE)
    with np.errstate(over="ignore"):  # the overflow is under test; the NumPy backend would warn of it
        y = k.values(layer(x.astype(np.float32), training=True))
    batch_mean, batch_var = oracles.batch_moments(x, -1)
    within_budget(checks, "training output", oracles.batchnorm_training(x, np.ones(4), np.zeros(4), layer.epsilon),
                  y, p.compute, POLICY_BUDGET[p.compute],
                  scale=oracles.batchnorm_error_scale(x, np.ones(4), np.zeros(4), batch_mean, batch_var, layer.epsilon))
    expected = round_to(oracles.moving_average(np.ones(4), batch_var, 0.01), p.variable)
    observed = k.values(layer.moving_variance)
    checks.note("batch variance", batch_var)
    same_overflow = bool(np.array_equal(np.isinf(expected), np.isinf(observed)))
    finite = np.isfinite(expected)
    checks.true("moving variance as stored", same_overflow and batchnorm_error(observed[finite], expected[finite], p.variable)
                <= POLICY_BUDGET[p.variable],
                f"the oracle's moving variance rounded to {p.variable} (max finite {max_finite(p.variable):g}), "
                f"within {POLICY_BUDGET[p.variable]:g} eps")


#: Under a mixed policy the layer sees its inputs in float16 or bfloat16, whose steps at 10⁴ are 8 and 64:
#: 10⁴ + 100·N(0, 1) keeps a spread of many steps.  Statistics in float32 normalise within 1.5 eps of each
#: output; in the 16-bit dtype the batch mean alone is off by up to half a step (4 or 32), 0.04 or 0.3 of a
#: standard deviation.  The float32 moving variance: a sum of n squared deviations added one after another
#: errs by up to about n eps (Higham's γₙ), 256 here; the one-pass E[x²] − E[x]² by about eps·E[x²]/σ²,
#: 10⁴ eps.
LARGE_MEAN_SPREAD = 100.0


def large_mean_mixed_description(policy: str) -> str:
    compute = POLICIES[policy].compute
    return (f"BatchNormalization(dtype='{policy}') in training on inputs 10⁴ + 100·N(0, 1) as cast to {compute}: "
            f"statistics computed in float32, so outputs within {POLICY_BUDGET[compute]:g} eps of {compute} of the "
            "float64 oracle relative to each output, and the float32 moving variance non-negative and within "
            "256 eps (one per value summed)")


@policy_family("batchnorm-large-mean-training-{policy}", large_mean_mixed_description, "mixed_float16", "mixed_bfloat16")
def large_mean_training_mixed(k, checks, policy):
    p = POLICIES[policy]
    shape = (256, 4)
    x = round_to(LARGE_MEAN + LARGE_MEAN_SPREAD * np.random.default_rng(26).normal(size=shape), p.compute)
    layer = k.keras.layers.BatchNormalization(momentum=0.5, dtype=policy)
    layer.build(shape)
    y = k.values(layer(x.astype(np.float32), training=True))
    gamma, beta = np.ones(4), np.zeros(4)
    batch_mean, batch_var = oracles.batch_moments(x, -1)
    within_budget(checks, "training output", oracles.batchnorm_training(x, gamma, beta, layer.epsilon), y, p.compute,
                  POLICY_BUDGET[p.compute],
                  scale=oracles.batchnorm_error_scale(x, gamma, beta, batch_mean, batch_var, layer.epsilon))
    moving_var = k.values(layer.moving_variance)
    checks.true("moving variance non-negative", bool(np.all(moving_var >= 0)), "every moving variance ≥ 0")
    within_budget(checks, "moving variance", oracles.moving_average(np.ones(4), batch_var, 0.5), moving_var,
                  p.variable, float(shape[0]))


#: Accuracy at realistic sizes: (batch, features) and (batch, height, width, channels), channels last.
ACCURACY_LAYOUTS = {"2d": (32, 256), "4d": (32, 28, 28, 64)}


@family("batchnorm-accuracy-{policy}-{layout}",
        lambda policy, layout: f"BatchNormalization(dtype='{policy}') on {ACCURACY_LAYOUTS[layout]}: training and "
        "inference outputs against the float64 oracle, the error measured in eps of the compute dtype and "
        "recorded as the power of two above it",
        [dict(p, layout=layout) for layout in ACCURACY_LAYOUTS
         for p in policy_params("float32", "mixed_float16", "mixed_bfloat16")], needs=policy_needs)
def accuracy(k, checks, policy, layout):
    p = POLICIES[policy]
    shape = ACCURACY_LAYOUTS[layout]
    channels = shape[-1]
    layer = k.keras.layers.BatchNormalization(dtype=policy)
    layer.build(shape)
    set_weights(layer, channel_params(3, channels))
    gamma, beta, mean, var = (k.values(getattr(layer, name)) for name in WEIGHT_NAMES)
    x = round_to(sample(23, shape), p.compute)
    budget = POLICY_BUDGET[p.compute]
    b = lambda v: oracles.broadcast_along(v, len(shape), -1)  # noqa: E731
    within_budget(checks, "inference output",
                  oracles.batchnorm_inference(x, b(gamma), b(beta), b(mean), b(var), layer.epsilon),
                  k.values(layer(x.astype(np.float32), training=False)), p.compute, budget,
                  scale=oracles.batchnorm_error_scale(x, gamma, beta, mean, var, layer.epsilon))
    batch_mean, batch_var = oracles.batch_moments(x, -1)
    within_budget(checks, "training output", oracles.batchnorm_training(x, gamma, beta, layer.epsilon),
                  k.values(layer(x.astype(np.float32), training=True)), p.compute, budget,
                  scale=oracles.batchnorm_error_scale(x, gamma, beta, batch_mean, batch_var, layer.epsilon))


# -- numerically hard inputs ------------------------------------------------------------------------


@case("batchnorm-near-constant-channels", "in training mode on float32 channels with variance 0, 10⁻⁸ (where epsilon "
      "dominates) and 4: outputs γ·(x − μ)/sqrt(σ² + ε) + β (β on the constant channel) within budget, the moving "
      "variance the oracle's")
def near_constant_channels(k, checks):
    rng = np.random.default_rng(24)
    shape = (64, 3)
    x = np.stack([np.full(shape[0], 5.0), 5.0 + 1e-4 * rng.normal(size=shape[0]), 5.0 + 2.0 * rng.normal(size=shape[0])],
                 axis=1).astype(np.float32)
    layer, (gamma, beta, _, _) = built_layer(k, shape, -1, momentum=0.5)
    y = k.values(layer(x, training=True))
    batch_mean, batch_var = oracles.batch_moments(x, -1)
    expected = oracles.batchnorm_training(x, gamma, beta, layer.epsilon)
    for channel, name in enumerate(("constant channel", "channel of variance 1e-8", "channel of variance 4")):
        scale = oracles.batchnorm_error_scale(x[:, channel:channel + 1], gamma[channel:channel + 1], beta[channel:channel + 1],
                                              batch_mean[channel:channel + 1], batch_var[channel:channel + 1], layer.epsilon)
        within_budget(checks, name, expected[:, channel], y[:, channel], "float32", POLICY_BUDGET["float32"], scale=scale)
    checks.close("moving variance", oracles.moving_average(channel_params(1, 3)[3], batch_var, 0.5),
                 k.values(layer.moving_variance), rtol=1e-5, atol=1e-7)


@case("batchnorm-batch-of-one-training", "in training mode on a batch of one, the batch variance is 0: outputs are β, "
      "the moving mean moves towards the input and the moving variance towards 0")
def batch_of_one(k, checks):
    shape = (1, 4)
    layer, (gamma, beta, mean, var) = built_layer(k, shape, -1, momentum=0.5)
    x = sample(25, shape)
    y = k.values(layer(x, training=True))
    within_budget(checks, "outputs", beta[None, :], y, "float32", POLICY_BUDGET["float32"],
                  scale=oracles.batchnorm_error_scale(x, gamma, beta, x[0], np.zeros(4), layer.epsilon))
    checks.close("moving mean, variance", [oracles.moving_average(mean, x[0], 0.5), oracles.moving_average(var, 0.0, 0.5)],
                 [k.values(layer.moving_mean), k.values(layer.moving_variance)], rtol=1e-6, atol=1e-7)


@case("batchnorm-masked-all-false", "in training mode with a mask that is false everywhere (a batch of padding only), "
      "the outputs are finite and the moving statistics stay as they were: masked positions are not taken "
      "into account (documented), and none is left")
def masked_all_false(k, checks):
    shape = (4, 6, 3)
    layer, (gamma, beta, mean, var) = built_layer(k, shape, -1, momentum=0.5)
    y = k.values(layer(sample(26, shape), training=True, mask=k.tensor(np.zeros(shape[:2], bool))))
    checks.true("outputs finite", bool(np.isfinite(y).all()), "no NaN or inf in the outputs")
    observed = [k.values(layer.moving_mean), k.values(layer.moving_variance)]
    checks.note("moving mean, variance after the step", observed)
    checks.equal("moving statistics unchanged", [mean, var], observed)
