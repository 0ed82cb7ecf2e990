"""Weight initialisation: every built-in initializer, its defaults, aliases, fans and seeding.

Distributions are checked by a Kolmogorov–Smirnov test against the exact
target distribution from :mod:`conformance.engine.oracles` (false-alarm probability
``FALSE_ALARM`` each, with at least 50 000 draws: enough to detect a 10 %
error in scale).  Deterministic properties (bounds, orthogonality, identity,
seeding) are checked exactly.
"""

from __future__ import annotations

import warnings

import numpy as np

from conformance.cases import case, family, policy_family
from conformance.cases.helpers import SAMPLE_SHAPE
from conformance.engine import oracles
from conformance.engine.checks import FALSE_ALARM
from conformance.engine.precision import POLICIES, error_in_eps, round_to

TOPIC = "init"
#: Shapes with >= 50 000 entries: a dense kernel (fan in 250, fan out 200) and a 5×5 convolution kernel
#: (receptive field 25).
DENSE_SHAPE = SAMPLE_SHAPE
CONV_SHAPE = (5, 5, 32, 64)


def draw(k, initializer, shape) -> np.ndarray:
    return k.to_numpy(initializer(shape, dtype="float32")).astype(np.float64)


def class_name(obj) -> str:
    return type(obj).__name__


# -- Documented defaults and aliases --------------------------------------------------------

#: Constructor defaults, from the Keras API docs of each initializer.
DOCUMENTED_DEFAULTS = {
    "Constant": {"value": 0.0},
    "RandomNormal": {"mean": 0.0, "stddev": 0.05, "seed": None},
    "RandomUniform": {"minval": -0.05, "maxval": 0.05, "seed": None},
    "TruncatedNormal": {"mean": 0.0, "stddev": 0.05, "seed": None},
    "VarianceScaling": {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": None},
    "Orthogonal": {"gain": 1.0, "seed": None},
    "Identity": {"gain": 1.0},
}

#: String identifiers and the class each names.
ALIASES = {
    "zeros": "Zeros", "ones": "Ones", "constant": "Constant",
    "random_normal": "RandomNormal", "random_uniform": "RandomUniform", "truncated_normal": "TruncatedNormal",
    "glorot_normal": "GlorotNormal", "glorot_uniform": "GlorotUniform",
    "he_normal": "HeNormal", "he_uniform": "HeUniform",
    "lecun_normal": "LecunNormal", "lecun_uniform": "LecunUniform",
    "variance_scaling": "VarianceScaling", "orthogonal": "Orthogonal", "identity": "Identity",
}


@case("init-documented-defaults", "each initializer's constructor defaults are the documented ones (stddev 0.05, ±0.05, fan_in, …)")
def documented_defaults(k, checks):
    for name, expected in DOCUMENTED_DEFAULTS.items():
        config = getattr(k.keras.initializers, name)().get_config()
        checks.equal(f"{name} defaults", expected, {key: config.get(key, "<absent>") for key in expected})


@case("init-string-aliases", "initializers.get('glorot_uniform') and the other string identifiers give the documented classes")
def string_aliases(k, checks):
    observed = {alias: class_name(k.keras.initializers.get(alias)) for alias in ALIASES}
    checks.equal("alias → class", ALIASES, observed)


# -- Distributions ---------------------------------------------------------------------------

#: (class, constructor kwargs, scale, mode, distribution): the variance-scaling family as documented.
VARIANCE_SCALING_FAMILY = {
    "glorot-normal": ("GlorotNormal", 1.0, "fan_avg", "truncated_normal"),
    "glorot-uniform": ("GlorotUniform", 1.0, "fan_avg", "uniform"),
    "he-normal": ("HeNormal", 2.0, "fan_in", "truncated_normal"),
    "he-uniform": ("HeUniform", 2.0, "fan_in", "uniform"),
    "lecun-normal": ("LecunNormal", 1.0, "fan_in", "truncated_normal"),
    "lecun-uniform": ("LecunUniform", 1.0, "fan_in", "uniform"),
}


def check_distribution(k, checks, initializer, shape, dist, target: str, bound: float | None = None) -> None:
    values = draw(k, initializer, shape)
    checks.equal("shape", list(shape), list(values.shape))
    checks.ks_test("distribution", values, dist, alpha=FALSE_ALARM, target=target)
    if bound is not None:
        checks.true("within bounds", np.max(np.abs(values)) <= bound * (1 + 1e-6), f"every |value| <= {bound:.6g}")


def check_variance_scaling(k, checks, initializer, shape, scale, mode, distribution) -> None:
    """Draw ``initializer`` on ``shape`` and test the draws against VarianceScaling's law."""
    dist = oracles.variance_scaling_distribution(shape, scale, mode, distribution)
    bound = dist.support()[1]
    check_distribution(k, checks, initializer, shape, dist, f"{distribution} variance {scale}/{mode} of {shape}",
                       bound if np.isfinite(bound) else None)


@family("init-{slug}-{shape_name}",
        "{cls} on a {shape_name} kernel {shape} draws {distribution} with variance {scale}/{mode}",
        [{"slug": slug, "cls": cls, "scale": scale, "mode": mode, "distribution": distribution,
          "shape": shape, "shape_name": shape_name}
         for slug, (cls, scale, mode, distribution) in VARIANCE_SCALING_FAMILY.items()
         for shape, shape_name in ((DENSE_SHAPE, "dense"), (CONV_SHAPE, "conv2d"))])
def named_variance_scaling(k, checks, slug, cls, scale, mode, distribution, shape, shape_name):
    initializer = getattr(k.keras.initializers, cls)(seed=1234)
    check_variance_scaling(k, checks, initializer, shape, scale, mode, distribution)


@family("init-variance-scaling-{mode}-{distribution}-{shape_name}",
        "VarianceScaling(scale=2.5, mode={mode}, distribution={distribution}) on {shape}",
        [{"mode": mode, "distribution": distribution, "shape": CONV_SHAPE, "shape_name": "conv2d"}
         for mode in ("fan_in", "fan_out", "fan_avg")
         for distribution in ("truncated_normal", "untruncated_normal", "uniform")]
        + [{"mode": "fan_avg", "distribution": "uniform", "shape": (60_000,), "shape_name": "1d"},
           {"mode": "fan_out", "distribution": "truncated_normal", "shape": (3, 4, 80, 60),
            "shape_name": "conv2d-nonsquare"}])
def variance_scaling(k, checks, mode, distribution, shape, shape_name):
    initializer = k.keras.initializers.VarianceScaling(scale=2.5, mode=mode, distribution=distribution, seed=99)
    check_variance_scaling(k, checks, initializer, shape, 2.5, mode, distribution)


@case("init-random-normal-distribution", "RandomNormal(mean=1.5, stddev=0.3) draws N(1.5, 0.3)")
def random_normal(k, checks):
    from scipy import stats

    init = k.keras.initializers.RandomNormal(mean=1.5, stddev=0.3, seed=5)
    check_distribution(k, checks, init, DENSE_SHAPE, stats.norm(1.5, 0.3), "N(1.5, 0.3)")


@case("init-random-uniform-distribution", "RandomUniform(minval=-0.2, maxval=0.6) draws U(-0.2, 0.6) within its bounds")
def random_uniform(k, checks):
    from scipy import stats

    init = k.keras.initializers.RandomUniform(minval=-0.2, maxval=0.6, seed=5)
    values = draw(k, init, DENSE_SHAPE)
    checks.ks_test("distribution", values, stats.uniform(-0.2, 0.8), alpha=FALSE_ALARM, target="U(-0.2, 0.6)")
    checks.true("within bounds", values.min() >= -0.2 and values.max() <= 0.6, "-0.2 <= value <= 0.6")


@case("init-truncated-normal-distribution", "TruncatedNormal(mean=0.5, stddev=0.2) draws N(0.5, 0.2) truncated to 2 stddev")
def truncated_normal(k, checks):
    from scipy import stats

    init = k.keras.initializers.TruncatedNormal(mean=0.5, stddev=0.2, seed=5)
    dist = stats.truncnorm(-2.0, 2.0, loc=0.5, scale=0.2)
    values = draw(k, init, DENSE_SHAPE)
    checks.ks_test("distribution", values, dist, alpha=FALSE_ALARM, target="N(0.5, 0.2) truncated to [0.1, 0.9]")
    checks.true("within bounds", values.min() >= 0.1 - 1e-6 and values.max() <= 0.9 + 1e-6, "0.1 <= value <= 0.9")


#: Draws for the truncation test: an implementation that keeps a value beyond 2 stddev with
#: probability p per draw shows it with probability 1 − (1 − p)^n; for Keras's PyTorch backend
#: (p = P(|Z| > 2)^4 ≈ 4.3e-6) that is 1 − 5e-10 at n = 5e6.
TRUNCATION_DRAWS = 5_000_000


@case("init-truncated-normal-never-beyond-two-stddev", f"TruncatedNormal(stddev=1) never draws beyond ±2 stddev, in {TRUNCATION_DRAWS:,} draws")
def truncated_normal_bound(k, checks):
    init = k.keras.initializers.TruncatedNormal(mean=0.0, stddev=1.0, seed=11)
    values = draw(k, init, (TRUNCATION_DRAWS,))
    beyond = int(np.count_nonzero(np.abs(values) > 2.0 * (1 + 1e-6)))
    checks.true("no draw beyond 2 stddev", beyond == 0,
                f"{beyond} of {TRUNCATION_DRAWS} draws beyond ±2 (a true truncated normal has none)")


# -- Deterministic initializers ---------------------------------------------------------------


@case("init-constant-values", "Zeros, Ones and Constant(3.5) fill exactly, in the requested shape")
def constant_values(k, checks):
    inits = k.keras.initializers
    shape = (3, 4)
    checks.equal("Zeros", np.zeros(shape), draw(k, inits.Zeros(), shape))
    checks.equal("Ones", np.ones(shape), draw(k, inits.Ones(), shape))
    checks.equal("Constant(3.5)", np.full(shape, 3.5), draw(k, inits.Constant(3.5), shape))


@case("init-orthogonal", "Orthogonal(gain=2) gives orthogonal columns (tall), rows (wide) and flattened conv kernels, norm = gain")
def orthogonal(k, checks):
    init = k.keras.initializers.Orthogonal(gain=2.0, seed=3)
    tall = draw(k, init, (64, 32))
    checks.close("tall: WᵀW = gain²·I", 4.0 * np.eye(32), tall.T @ tall, rtol=0, atol=1e-4)
    wide = draw(k, init, (32, 64))
    checks.close("wide: WWᵀ = gain²·I", 4.0 * np.eye(32), wide @ wide.T, rtol=0, atol=1e-4)
    conv = draw(k, init, (3, 3, 16, 32)).reshape(-1, 32)
    checks.close("conv (3,3,16,32) as (144, 32): WᵀW = gain²·I", 4.0 * np.eye(32), conv.T @ conv, rtol=0, atol=1e-4)


@case("init-identity", "Identity(gain=3) is 3·eye for square and rectangular 2-D shapes and refuses other ranks")
def identity(k, checks):
    init = k.keras.initializers.Identity(gain=3.0)
    checks.equal("(4, 4)", 3.0 * np.eye(4), draw(k, init, (4, 4)))
    checks.equal("(4, 6)", 3.0 * np.eye(4, 6), draw(k, init, (4, 6)))
    try:
        draw(k, init, (2, 3, 4))
        raised = "no error"
    except Exception as exc:
        raised = type(exc).__name__
    checks.equal("(2, 3, 4) raises", "ValueError", raised)


# -- Seeding and configuration ----------------------------------------------------------------


@case("init-seeded-repeats", "a seeded initializer gives the same values on every call, and so does a second one with the same seed")
def seeded_repeats(k, checks):
    inits = k.keras.initializers
    first = inits.RandomNormal(seed=7)
    a, b = draw(k, first, SAMPLE_SHAPE), draw(k, first, SAMPLE_SHAPE)
    checks.true("same instance, two calls", np.array_equal(a, b), "both calls give identical values")
    checks.true("two instances, same seed", np.array_equal(a, draw(k, inits.RandomNormal(seed=7), SAMPLE_SHAPE)),
                "identical values")
    checks.true("different seed differs", not np.array_equal(a, draw(k, inits.RandomNormal(seed=8), SAMPLE_SHAPE)),
                "seed 8 gives other values than seed 7")


@case("init-unseeded-calls-repeat", "an unseeded initializer instance repeats its values when called again (a seed is fixed at construction), "
      "while two unseeded instances differ")
def unseeded_calls_repeat(k, checks):
    # Keras docs (RandomNormal, seed): "an initializer seeded with an integer or None (unseeded)
    # will produce the same random values across multiple calls".
    init = k.keras.initializers.RandomUniform()
    with warnings.catch_warnings():  # Keras 2 warns that the repeat is identical: that is the point
        warnings.simplefilter("ignore", UserWarning)
        a, b = draw(k, init, SAMPLE_SHAPE), draw(k, init, SAMPLE_SHAPE)
    checks.equal("two calls give identical values", True, bool(np.array_equal(a, b)))
    other = draw(k, k.keras.initializers.RandomUniform(), SAMPLE_SHAPE)
    checks.equal("two unseeded instances give identical values", False, bool(np.array_equal(a, other)))


CONFIGURED = {
    "RandomNormal": {"mean": 0.2, "stddev": 0.7, "seed": 11},
    "RandomUniform": {"minval": -1.0, "maxval": 2.0, "seed": 11},
    "TruncatedNormal": {"mean": -0.1, "stddev": 0.3, "seed": 11},
    "VarianceScaling": {"scale": 3.0, "mode": "fan_out", "distribution": "uniform", "seed": 11},
    "Orthogonal": {"gain": 1.5, "seed": 11},
    "Constant": {"value": 2.5},
    "Identity": {"gain": 0.5},
}


@case("init-config-round-trip", "from_config(get_config()) keeps every argument and, when seeded, the values")
def config_round_trip(k, checks):
    for name, kwargs in CONFIGURED.items():
        cls = getattr(k.keras.initializers, name)
        original = cls(**kwargs)
        config = original.get_config()
        checks.equal(f"{name} config keeps arguments", kwargs, {key: config.get(key, "<absent>") for key in kwargs})
        clone = cls.from_config(config)
        checks.true(f"{name} clone draws the same",
                    np.array_equal(draw(k, original, SAMPLE_SHAPE), draw(k, clone, SAMPLE_SHAPE)),
                    "identical values from original and clone")


@case("init-layer-defaults", "Dense uses GlorotUniform / Zeros; BatchNormalization uses Zeros, Ones, Zeros, Ones")
def layer_defaults(k, checks):
    layers = k.keras.layers
    dense = layers.Dense(3)
    checks.equal("Dense kernel, bias", ["GlorotUniform", "Zeros"],
                 [class_name(dense.kernel_initializer), class_name(dense.bias_initializer)])
    bn = layers.BatchNormalization()
    checks.equal("BatchNormalization beta, gamma, moving mean, moving variance",
                 ["Zeros", "Ones", "Zeros", "Ones"],
                 [class_name(bn.beta_initializer), class_name(bn.gamma_initializer),
                  class_name(bn.moving_mean_initializer), class_name(bn.moving_variance_initializer)])


@case("init-custom-initializer-arguments", "a custom initializer is called once per weight when the layer is built (not when constructed), "
      "with the shape as a tuple of ints and a dtype NumPy understands")
def custom_initializer_arguments(k, checks):
    calls = []

    def init(shape, dtype=None):
        calls.append((shape, dtype))
        return np.full(tuple(shape), 0.5, dtype=k.numpy_dtype(dtype))

    layer = k.keras.layers.Dense(4, kernel_initializer=init, bias_initializer=init)
    checks.equal("calls at construction", 0, len(calls))
    layer(np.ones((2, 3), dtype=np.float32))
    checks.equal("calls at build (kernel, bias)", [[3, 4], [4]], [[int(d) for d in s] for s, _ in calls])
    checks.equal("shape type", "tuple", type(calls[0][0]).__name__)
    try:
        np.dtype(calls[0][1])
        understood = True
    except TypeError:
        understood = False
    checks.equal("dtype NumPy understands", True, understood)
    checks.note("dtype received", repr(calls[0][1]))
    layer(np.ones((2, 3), dtype=np.float32))
    checks.equal("calls after a second layer call", 2, len(calls))


# -- dtype policies ------------------------------------------------------------------------------------
#: Dense's output against the oracle on its inputs and weights as cast to the compute dtype, in eps of it:
#: eight products summed, then a bias, rounded once each at most (float32 and float64 accumulate exactly
#: enough; half precision may accumulate in its own dtype on some backends): 8.
DENSE_BUDGET = 8.0
#: GlorotUniform on a 250×200 kernel: U(±sqrt(6/450)).
GLOROT_SHAPE = DENSE_SHAPE


@policy_family("init-policy-{policy}",
        lambda policy: f"under dtype='{policy}', Dense stores kernel and bias in {POLICIES[policy].variable} and "
        f"outputs {POLICIES[policy].compute} within {DENSE_BUDGET:g} eps of the oracle; GlorotUniform returns the "
        f"dtype it is asked for, and its {POLICIES[policy].compute} draws follow U(±sqrt(6/450)) rounded to that dtype")
def policy_axis(k, checks, policy):
    p = POLICIES[policy]
    layer = k.keras.layers.Dense(3, bias_initializer="random_normal", dtype=policy)
    layer.build((None, 8))
    checks.equal("variable dtypes", {"kernel": p.variable, "bias": p.variable},
                 {"kernel": k.dtype_name(layer.kernel), "bias": k.dtype_name(layer.bias)})
    x = round_to(np.random.default_rng(41).normal(size=(16, 8)).astype(np.float32), p.compute)
    y = layer(x.astype(np.float32))
    checks.equal("output dtype", p.compute, k.dtype_name(y))
    kernel, bias = (round_to(k.values(w), p.compute) for w in (layer.kernel, layer.bias))
    expected = oracles.dense(x, kernel, bias)
    scale = float(np.max(np.abs(x) @ np.abs(kernel) + np.abs(bias)))
    error = error_in_eps(k.values(y), expected, p.compute, scale)
    checks.measure("output: error in eps", error)
    checks.true("output", error <= DENSE_BUDGET,
                f"within {DENSE_BUDGET:g} eps of {p.compute} of x·W + b on the cast inputs and weights (measured {error:.3g})")
    initializer = k.keras.initializers.GlorotUniform(seed=3)
    drawn = initializer(GLOROT_SHAPE, dtype=p.compute)
    checks.equal("initializer's dtypes", [p.variable, p.compute],
                 [k.dtype_name(initializer(GLOROT_SHAPE, dtype=p.variable)), k.dtype_name(drawn)])
    values = k.values(drawn)
    dist = oracles.variance_scaling_distribution(GLOROT_SHAPE, 1.0, "fan_avg", "uniform")
    limit = round_to(dist.support()[1], p.compute)
    checks.true("within the rounded limit", bool(np.max(np.abs(values)) <= limit), f"every |value| <= {float(limit):.6g}")
    checks.fit_in_dtype("distribution", values, dist, p.compute, alpha=FALSE_ALARM, target="U(±sqrt(6/450))")
