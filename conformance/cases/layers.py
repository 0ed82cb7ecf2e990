"""Generic templates: the cases of every layer declared in :mod:`conformance.layers.zoo`.

Each template below turns a declaration into cases named ``layer-<slug>-<what>`` (search the zoo for
the slug, this module for ``<what>``):

- ``documented-defaults``: the documented defaults in ``get_config()``, and every declared argument taken;
- ``config-round-trip``: ``from_config(get_config())`` with non-default arguments, initializers,
  regularisers and constraints rebuilds the same layer;
- ``initial-weights``: each weight drawn by its documented default initializer with its fan rule
  (a Kolmogorov–Smirnov test, false-alarm probability ``FALSE_ALARM``), and each ``*_initializer``
  argument reaching its weights (``VarianceScaling(mode="fan_out")`` at a scale of its own);
- ``regularizers``: each weight's regulariser and the activity regulariser in ``layer.losses``, and
  in the loss ``evaluate`` reports;
- ``constraints``: each ``*_constraint`` applied after a training step, not before;
- ``<argument>`` of each dropout-style argument: nothing dropped in inference, something in training;
- ``seed``: two layers with one seed drop the same units, a second call different ones;
- ``forward-<sample>``: the output against the float64 reference, in inference and in training;
- ``policy-<policy>``: weights in the policy's variable dtype, the output in its compute dtype and
  within a budget of the reference.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np
from scipy import stats

from conformance.cases import Absent, Case, add, case
from conformance.cases.dropout import check_inverted_dropout
from conformance.cases.helpers import constant_initializer
from conformance.engine import oracles
from conformance.engine.checks import FALSE_ALARM
from conformance.engine.precision import POLICIES, bucket, eps, error_in_eps, policy_needs
from conformance.layers import FAN_SCALED, REQUIRED, Layer, Sample, Weight, all_layers

TOPIC = "layer"
#: Normwise budget of a forward output under a dtype policy, in eps of its compute dtype.
POLICY_BUDGET = 64.0
#: The policies every declared layer is run under (float32 is what every forward case uses).
LAYER_POLICIES = ("mixed_float16", "mixed_bfloat16", "float64")
#: (scale, mode, distribution) of each fan-scaled default, as its documentation states.
DEFAULT_LAWS = {"glorot_uniform": (1.0, "fan_avg", "uniform"), "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
                "he_uniform": (2.0, "fan_in", "uniform"), "he_normal": (2.0, "fan_in", "truncated_normal"),
                "lecun_uniform": (1.0, "fan_in", "uniform"), "lecun_normal": (1.0, "fan_in", "truncated_normal")}
#: The LSTM gates in the order of its kernels and bias.
GATES = ("input", "forget", "cell", "output")
#: RandomUniform's documented defaults: 'uniform' draws from U(-0.05, 0.05).
UNIFORM_LIMIT = 0.05


# -- Building, calling and reading a declared layer ---------------------------------------------------

def keras_class(k, decl: Layer):
    """``keras.layers.<cls>``; :class:`Absent` where the declaration says this Keras has none."""
    cls = getattr(k.keras.layers, decl.cls, None)
    if cls is not None:
        return cls
    if k.family == "keras2" and not decl.keras2:
        raise Absent(f"Keras 2 has no layers.{decl.cls} (Keras 3 added it)")
    version = k.keras_version or "0"
    from packaging.version import Version

    if k.family == "keras3" and Version(version) < Version(decl.since):
        raise Absent(f"layers.{decl.cls} is in Keras {decl.since} and later, not in {version}")
    raise AttributeError(f"this Keras has no layers.{decl.cls}, which its declaration says it has")


def build(k, decl: Layer, sample: Sample | None = None, **overrides):
    """The declared layer built with the sample's arguments; a cell inside its wrapper (``RNN(cell)``),
    which takes the same ``dtype``."""
    args = {**decl.build_args(sample), **overrides}
    layer = keras_class(k, decl)(**args)
    if decl.wrapper is None:
        return layer
    return getattr(k.keras.layers, decl.wrapper)(layer, **({"dtype": args["dtype"]} if "dtype" in args else {}))


def unwrap(decl: Layer, layer):
    """The declared layer itself: the cell of a wrapper (whose defaults and config are the cell's)."""
    return layer.cell if decl.wrapper == "RNN" else layer


def sample_inputs(decl: Layer, sample: Sample, seed: int, dtype=np.float32) -> tuple[np.ndarray, dict[str, Any]]:
    """The sample's input (normal draws, or indices) and its extra inputs, seeded."""
    rng = np.random.default_rng(seed)
    if sample.integers:
        x = rng.integers(0, sample.integers, size=sample.shape).astype(np.int32)
    else:
        x = rng.normal(0.0, 1.0, size=sample.shape).astype(dtype)
    extra = {name: rng.normal(0.0, 1.0, size=shape).astype(dtype) for name, shape in sample.extra.items()}
    return x, extra


def call(decl: Layer, layer, x, extra: dict[str, Any], mask=None, training: bool | None = None):
    kwargs: dict[str, Any] = {} if training is None else {"training": training}
    if mask is not None:
        kwargs["mask"] = mask
    if decl.inputs_as_list:
        return layer([x, *extra.values()], **kwargs)
    return layer(x, **extra, **kwargs)


def weight_path(variable) -> str:
    """A variable's path without the layer's own name: 'kernel', 'query/kernel', 'lstm_cell/bias'."""
    path = str(getattr(variable, "path", None) or variable.name).split(":")[0]
    return path.split("/", 1)[1] if "/" in path else path


def find_weights(decl: Layer, layer) -> dict[str, Any]:
    """The layer's variable for each declared weight (the one whose path ends with its name)."""
    found = {}
    for w in decl.weights:
        names = (w.name, *w.aliases)
        matches = [v for v in layer.weights if any(weight_path(v) == n or weight_path(v).endswith("/" + n) for n in names)]
        if len(matches) != 1:
            raise LookupError(f"{decl.cls} has {len(matches)} weights named {w.name!r} among "
                              f"{[weight_path(v) for v in layer.weights]}")
        found[w.name] = matches[0]
    return found


def variable_shapes(decl: Layer, layer) -> dict[str, Any]:
    """Each declared weight's shape, and how many variables the layer has in all."""
    return {**{name: list(v.shape) for name, v in find_weights(decl, layer).items()}, "variables": len(layer.weights)}


def random_weights(k, decl: Layer, layer, seed: int) -> dict[str, np.ndarray]:
    """Assign seeded N(0, 0.5) values (|N| + 0.5 where positive) to every declared weight; return them."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, variable in find_weights(decl, layer).items():
        w = next(w for w in decl.weights if w.name == name)
        value = rng.normal(0.0, 0.5, size=tuple(variable.shape))
        value = np.abs(value) + 0.5 if w.positive else value
        variable.assign(value.astype(k.numpy_dtype(variable.dtype)))
        values[name] = k.values(variable)
    return values


def built(k, decl: Layer, sample: Sample, draws: int, **overrides):
    """The layer built by a call on the sample's inputs, with random weights; ``draws`` seeds both."""
    layer = build(k, decl, sample, **overrides)
    x, extra = sample_inputs(decl, sample, draws)
    call(decl, layer, x, extra, sample.mask)
    return layer, random_weights(k, decl, layer, draws + 1), x, extra


def initializer_arguments(decl: Layer) -> list[str]:
    return list(dict.fromkeys(w.initializer for w in decl.weights if w.initializer))


def regularizer_arguments(decl: Layer) -> list[str]:
    return list(dict.fromkeys(w.regularizer for w in decl.weights if w.regularizer))


def constraint_arguments(decl: Layer) -> list[str]:
    return list(dict.fromkeys(w.constraint for w in decl.weights if w.constraint))


def default_sample(decl: Layer) -> Sample:
    return decl.samples[0]


def register(decl: Layer, what: str, template: str, description: str, run: Callable, *, topic: str | None = None,
             needs: tuple[str, ...] = (), **params) -> None:
    import functools

    case_id = f"layer-{decl.slug}-{what}"
    add(Case(case_id, topic or decl.topic, description, functools.partial(run, decl=decl, **params), "layers",
             needs, f"layer-{{slug}}-{template}", decl.defined_at))


# -- documented-defaults and config-round-trip -------------------------------------------------------

#: What a documented default of None means, where the documentation says (``activation=None``: "no
#: activation", configured as 'linear'; ``data_format=None``: ``image_data_format()``, 'channels_last'
#: unless configured otherwise).  Any other None may also be left out of the config.
DOCUMENTED_NONE = {"activation": "linear", "data_format": "channels_last"}


def same_default(k, documented: Any, configured: Any, argument: str = "") -> bool:
    """Whether a config value is the documented default: initializers by class (``'glorot_uniform'`` is
    ``GlorotUniform``), an int for every entry of a tuple (``strides=1`` is ``(1,)``), None as
    ``DOCUMENTED_NONE`` says or left out, else equal."""
    if documented is None and argument in DOCUMENTED_NONE:
        return configured == DOCUMENTED_NONE[argument]
    if documented is None and configured == "<absent>" and argument != "seed":
        return True
    if isinstance(configured, dict) and "class_name" in configured:
        if not isinstance(documented, str):
            return False
        return type(k.keras.initializers.get(documented)).__name__ == configured["class_name"]
    if isinstance(documented, int) and not isinstance(documented, bool) and isinstance(configured, (list, tuple)):
        return all(v == documented for v in configured)
    if isinstance(documented, (list, tuple)) and isinstance(configured, (list, tuple)):
        return list(documented) == list(configured)
    return bool(documented == configured)


def shown(value: Any) -> Any:
    if isinstance(value, dict) and "class_name" in value:
        return value["class_name"]
    return list(value) if isinstance(value, tuple) else value


def documented_defaults(k, checks, decl: Layer):
    cls = keras_class(k, decl)
    taken = inspect.signature(cls.__init__).parameters
    checks.equal("documented arguments it does not take", [], [a for a in decl.arguments if a not in taken])
    config = unwrap(decl, build(k, decl)).get_config()
    differing = {}
    for argument, documented in decl.arguments.items():
        if documented == REQUIRED or argument in decl.args:
            continue
        configured = config.get(argument, "<absent>")
        documented = decl.resolved_defaults.get(argument, documented)
        if not same_default(k, documented, configured, argument):
            differing[argument] = shown(configured)
    checks.equal("arguments whose config is not the documented default", {}, differing)


def config_round_trip(k, checks, decl: Layer):
    keras = k.keras
    sample = default_sample(decl)
    settings: dict[str, Any] = dict(decl.round_trip)
    for i, argument in enumerate(initializer_arguments(decl)):
        settings[argument] = keras.initializers.Constant(0.25 * (i + 1))
    for argument in regularizer_arguments(decl):
        settings[argument] = keras.regularizers.L2(0.02)
    for argument in constraint_arguments(decl):
        settings[argument] = keras.constraints.MaxNorm(3.0)
    if decl.activity_regularizer:
        settings["activity_regularizer"] = keras.regularizers.L1(0.01)
    if decl.seed:
        settings["seed"] = 77
    original = build(k, decl, sample, **settings)
    x, extra = sample_inputs(decl, sample, 7)
    call(decl, original, x, extra, sample.mask)
    config = unwrap(decl, original).get_config()
    checks.equal("non-default arguments missing from the config", [], [a for a in settings if a not in config])
    clone = type(original).from_config(original.get_config())
    call(decl, clone, x, extra, sample.mask)
    # what the round trip keeps, not the config itself: how a config is written is the surface cases' subject
    checks.equal("config entries the clone does not keep", {},
                 config_differences(_plain_config(config), _plain_config(unwrap(decl, clone).get_config())))
    penalties = [sorted(float(k.to_numpy(loss)) for loss in layer.losses) for layer in (original, clone)]
    checks.equal("the clone's penalties after the same call", "the original's", penalties_against(penalties[0], penalties[1]))
    # by declared weight (a cell's variables lose the cell's name from their paths when rebuilt from a config)
    checks.equal("weights of the clone", variable_shapes(decl, original), variable_shapes(decl, clone))
    ours, theirs = find_weights(decl, original), find_weights(decl, clone)
    set_here = [w.name for w in decl.weights if w.initializer]  # a weight without an argument draws anew
    same = all(np.array_equal(k.values(ours[name]), k.values(theirs[name])) for name in set_here)
    checks.true("the clone's initial weights equal the original's", same,
                "Constant initializers give the same weights when rebuilt from the config")


def config_differences(original: dict, clone: dict) -> dict:
    """``{key: [original's, clone's]}`` for each config entry the clone gives otherwise (``"<absent>"`` on the
    side that lacks it): empty when the round trip keeps the config."""
    keys = sorted(original.keys() | clone.keys())
    return {key: [original.get(key, "<absent>"), clone.get(key, "<absent>")]
            for key in keys if original.get(key, "<absent>") != clone.get(key, "<absent>")}


def penalties_against(original: list[float], clone: list[float], rtol: float = 1e-6) -> str:
    """The clone's penalties in words, against the original's (each sorted): "the original's" where each is
    within ``rtol`` of the original's, else how many there are or how many differ; a value that does not
    follow every change in how penalties are scaled."""
    if len(clone) != len(original):
        return f"{len(clone)} where the original has {len(original)}"
    differ = sum(not np.isclose(c, o, rtol=rtol, atol=0.0) for o, c in zip(original, clone, strict=True))
    return "the original's" if not differ else f"{differ} of {len(original)} differ"


def _plain_config(config: dict) -> dict:
    """A config without the layer's name, with tuples as lists (what a JSON round trip keeps)."""
    import json

    plain = json.loads(json.dumps({k: v for k, v in config.items() if k != "name"}, default=str))
    return plain


# -- initial-weights ---------------------------------------------------------------------------------

def check_initial_values(k, checks, decl: Layer, w: Weight, values: np.ndarray, law: str, label: str) -> None:
    """Check draws of ``values`` against ``law``: a default initializer's name, or 'fan_out:<scale>'."""
    shape = values.shape
    fan = w.fans(shape) if w.fans is not None else None  # validate() ensures one where the law needs it
    if law.startswith("fan_out:"):
        scale = float(law.split(":")[1])
        dist = oracles.variance_scaling_distribution(shape, scale, "fan_out", "uniform", fan=fan)
        checks.ks_test(label, values, dist, alpha=FALSE_ALARM, target=f"uniform variance {scale}/fan_out of {shape}")
    elif law in FAN_SCALED:
        scale, mode, distribution = DEFAULT_LAWS[law]
        dist = oracles.variance_scaling_distribution(shape, scale, mode, distribution, fan=fan)
        checks.ks_test(label, values, dist, alpha=FALSE_ALARM,
                       target=f"{distribution} variance {scale}/{mode} of {shape} with fans {fan}")
    elif law == "uniform":
        checks.ks_test(label, values, stats.uniform(-UNIFORM_LIMIT, 2 * UNIFORM_LIMIT), alpha=FALSE_ALARM,
                       target="U(-0.05, 0.05)")
    elif law == "orthogonal":
        flat = values.reshape(-1, shape[-1])
        gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
        checks.close(label, np.eye(gram.shape[0]), gram, rtol=0.0, atol=1e-5)
    elif law == "unit_forget_bias":  # per gate (i, f, c, o): its one value, or "mixed"
        gates = np.split(values, 4, axis=-1)
        observed = {g: float(v.flat[0]) if np.all(v == v.flat[0]) else "mixed" for g, v in zip(GATES, gates, strict=True)}
        checks.equal(label, {g: 1.0 if g == "forget" else 0.0 for g in GATES}, observed)
    else:
        checks.equal(label, {"zeros": np.zeros(shape), "ones": np.ones(shape)}[law], values)


def initial_weights(k, checks, decl: Layer):
    keras = k.keras
    sample = next((s for s in decl.samples if s.name == "init"), default_sample(decl))
    layer = build(k, decl, sample)
    x, extra = sample_inputs(decl, sample, 3)
    call(decl, layer, x, extra, sample.mask)
    variables = find_weights(decl, layer)
    checks.note("weight paths", [weight_path(v) for v in layer.weights])
    declared = {w.name for w in decl.weights}
    aliases = {weight_path(v) for v in variables.values()}
    checks.equal("weights not declared", [], [weight_path(v) for v in layer.weights
                                              if not any(weight_path(v).endswith(n) for n in declared)
                                              and weight_path(v) not in aliases])
    args = decl.build_args(sample)
    for w in decl.weights:
        values = k.values(variables[w.name])
        checks.equal(f"{w.name} shape", list(w.shape(args, sample.shape)), list(values.shape))
        check_initial_values(k, checks, decl, w, values, w.default_initializer, f"{w.name} default initializer")
    # Each *_initializer argument, at a scale of its own (fan_out, so that the other fan is pinned too):
    laws = {}
    settings: dict[str, Any] = {}
    for i, argument in enumerate(initializer_arguments(decl)):
        fanned = any(w.fans is not None and w.initializer == argument for w in decl.weights)
        if fanned:
            laws[argument] = f"fan_out:{i + 2}"
            settings[argument] = keras.initializers.VarianceScaling(scale=i + 2.0, mode="fan_out",
                                                                    distribution="uniform", seed=11 + i)
        else:
            laws[argument] = f"constant:{0.5 * (i + 1)}"
            settings[argument] = keras.initializers.Constant(0.5 * (i + 1))
    if not settings:
        return
    layer = build(k, decl, sample, **settings)
    call(decl, layer, x, extra, sample.mask)
    variables = find_weights(decl, layer)
    for w in decl.weights:
        if not w.initializer:
            continue
        values = k.values(variables[w.name])
        law = laws[w.initializer]
        label = f"{w.name} from {w.initializer}"
        if law.startswith("constant:") and w.default_initializer == "unit_forget_bias":
            # "Setting it to True will also force bias_initializer="zeros"" (LSTM's documentation)
            check_initial_values(k, checks, decl, w, values, "unit_forget_bias", label)
        elif law.startswith("constant:"):
            checks.equal(label, np.full(values.shape, float(law.split(":")[1])), values)
        else:
            check_initial_values(k, checks, decl, w, values, law, label)


# -- regularizers and constraints ----------------------------------------------------------------------

def model_of(k, decl: Layer, layer, sample: Sample):
    keras = k.keras
    inputs = keras.Input(shape=sample.shape[1:], batch_size=sample.shape[0],
                         dtype="int32" if sample.integers else "float32")
    extra = {name: keras.Input(shape=shape[1:], batch_size=shape[0]) for name, shape in sample.extra.items()}
    outputs = call(decl, layer, inputs, extra)
    return keras.Model([inputs, *extra.values()] if extra else inputs, outputs)


def feed(x, extra):
    return [x, *extra.values()] if extra else x


def regularizers(k, checks, decl: Layer):
    from conformance.cases.regularizers import RTOL, sorted_like

    keras = k.keras
    sample = default_sample(decl)
    factors = {argument: 0.01 * (i + 1) for i, argument in enumerate(regularizer_arguments(decl))}
    settings: dict[str, Any] = {argument: keras.regularizers.L2(f) for argument, f in factors.items()}
    if decl.activity_regularizer:
        settings["activity_regularizer"] = keras.regularizers.L2(0.05)
    layer, values, x, extra = built(k, decl, sample, 31, **settings)
    weights = [oracles.l2_penalty(values[w.name], factors[w.regularizer]) for w in decl.weights if w.regularizer]
    y = k.values(call(decl, layer, x, extra))
    observed = [float(k.to_numpy(loss)) for loss in layer.losses]
    matched = sorted_like(observed, weights)
    checks.close("weight penalties in layer.losses", weights, matched[:len(weights)], rtol=RTOL, key="weight-penalties")
    rest = matched[len(weights):]
    if decl.activity_regularizer:
        activity = oracles.l2_penalty(y, 0.05)
        checks.equal("activity penalty in layer.losses", DIVIDED, activity_kind(rest, activity, sample.shape[0]),
                     key="activity-penalty")
    else:
        checks.equal("penalties besides the weights'", [], rest, key="other-penalties")
    model = model_of(k, decl, layer, sample)
    model.compile(loss="mse")
    loss = float(np.ravel(model.evaluate(feed(x, extra), np.zeros(y.shape, np.float32), batch_size=sample.shape[0],
                                         verbose=0))[0])
    mse, weight_penalties = oracles.mean_squared_error(y, np.zeros_like(y)), sum(matched[:len(weights)])
    total = mse + sum(observed)
    checks.which("evaluate's loss", IN_LOSS, {IN_LOSS: total,
                                              f"{IN_LOSS} but the weights'": total - weight_penalties,
                                              f"{IN_LOSS}, the weights' twice": total + weight_penalties},
                 loss, rtol=RTOL, key="evaluate-loss")


#: What evaluate's loss is, documented: the compiled loss plus every penalty in ``model.losses``, once.
IN_LOSS = "the mse plus the penalties in layer.losses"


#: What the activity penalty documented since Keras 3.14 is: the regulariser of the outputs over the batch size.
DIVIDED = "the regulariser of the outputs divided by the batch size"


def activity_kind(rest: list[float], activity: float, batch: int) -> Any:
    """What the penalties left besides the weights' are, against the regulariser of the outputs
    ``activity``: divided by the batch size (documented), not divided, absent, or the numbers."""
    from conformance.cases.regularizers import RTOL

    if len(rest) == 1 and np.isclose(rest[0], activity / batch, rtol=RTOL):
        return DIVIDED
    if len(rest) == 1 and np.isclose(rest[0], activity, rtol=RTOL):
        return "the regulariser of the outputs, not divided by the batch size"
    return "absent" if not rest else {"penalties": rest, "outputs' regulariser": activity, "batch": batch}


def constraints(k, checks, decl: Layer):
    keras = k.keras
    sample = default_sample(decl)
    settings: dict[str, Any] = {argument: keras.constraints.NonNeg() for argument in constraint_arguments(decl)}
    if "unit_forget_bias" in decl.arguments:
        settings["unit_forget_bias"] = False  # else the forget gate's bias starts at 1 whatever its initializer
    for w in decl.weights:
        if w.constraint and w.initializer:
            settings[w.initializer] = keras.initializers.Constant(-1.0)
    layer = build(k, decl, sample, **settings)
    model = model_of(k, decl, layer, sample)
    constrained = [w for w in decl.weights if w.constraint]
    variables = find_weights(decl, layer)
    before = {w.name: k.values(variables[w.name]) for w in constrained}
    changed = [name for name, v in before.items() if not np.all(v == -1.0)]
    checks.equal("constrained weights changed before training", [], changed)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    x, extra = sample_inputs(decl, sample, 41)
    target = np.zeros(k.to_numpy(model(feed(x, extra))).shape, np.float32)
    model.train_on_batch(feed(x, extra), target)
    after = {w.name: k.values(variables[w.name]) for w in constrained}
    untouched = [name for name, v in after.items() if not np.all(v == 0.0)]
    checks.equal("constrained weights after a step (NonNeg: -1 becomes 0)", "every one",
                 "every one" if not untouched else "none" if len(untouched) == len(after) else untouched)


# -- dropout-style arguments and seeds ------------------------------------------------------------------

def twin(k, decl: Layer, sample: Sample, values: dict[str, np.ndarray], x, extra, **overrides):
    """A second layer like one ``built`` gave: built by a call on the same inputs, given the same weights."""
    layer = build(k, decl, sample, **overrides)
    call(decl, layer, x, extra, sample.mask)
    for name, variable in find_weights(decl, layer).items():
        variable.assign(values[name].astype(k.numpy_dtype(variable.dtype)))
    return layer


def dropout_argument(k, checks, decl: Layer, argument: str):
    sample = default_sample(decl)
    quiet, values, x, extra = built(k, decl, sample, 51, **{argument: 0.0})
    noisy = twin(k, decl, sample, values, x, extra, **{argument: 0.5})
    reference = k.values(call(decl, quiet, x, extra, sample.mask, training=False))
    inference = k.values(call(decl, noisy, x, extra, sample.mask, training=False))
    training_off = k.values(call(decl, quiet, x, extra, sample.mask, training=True))
    training = k.values(call(decl, noisy, x, extra, sample.mask, training=True))
    scale = float(np.max(np.abs(reference))) or 1.0
    checks.close(f"{argument}=0.5 in inference", reference, inference, rtol=0.0, atol=1e-6 * scale)
    checks.close(f"{argument}=0 in training", reference, training_off, rtol=0.0, atol=1e-6 * scale)
    checks.true(f"{argument}=0.5 in training changes the output", not np.allclose(training, reference),
                "some output differs from inference's")


def seed(k, checks, decl: Layer):
    sample = default_sample(decl)
    noise = {d.name: 0.5 for d in decl.dropout}
    first, values, x, extra = built(k, decl, sample, 61, seed=1234, **noise)
    second = twin(k, decl, sample, values, x, extra, seed=1234, **noise)
    a1 = k.values(call(decl, first, x, extra, sample.mask, training=True))
    b1 = k.values(call(decl, second, x, extra, sample.mask, training=True))
    a2 = k.values(call(decl, first, x, extra, sample.mask, training=True))
    checks.true("two layers with seed=1234 give the same first training output", np.array_equal(a1, b1),
                "equal to the last bit")
    checks.true("a second call draws anew", not np.array_equal(a1, a2), "the second training output differs")


# -- forward and policies --------------------------------------------------------------------------------

def reference_output(decl: Layer, x, values, args, extra, sample: Sample) -> np.ndarray:
    assert decl.reference is not None
    more = dict(extra)
    if sample.mask is not None:
        more["mask"] = sample.mask
    return decl.reference(np.asarray(x, np.float64), values, args, **more)


def forward(k, checks, decl: Layer, sample_name: str):
    sample = decl.sample(sample_name)
    layer, values, x, extra = built(k, decl, sample, 71)
    args = decl.build_args(sample)
    extra64 = {n: v.astype(np.float64) for n, v in extra.items()}
    expected = reference_output(decl, x, values, args, extra64, sample)
    scale = float(np.max(np.abs(expected))) or 1.0
    inference = k.values(call(decl, layer, x, extra, sample.mask, training=False))
    checks.close("inference output", expected, inference, rtol=0.0, atol=decl.rtol * scale)
    checks.measure("inference error in eps", error_in_eps(inference, expected, "float32"))
    if decl.dropout and decl.topic == "dropout":
        return  # in training it drops: conformance/cases/dropout.py pins what
    if decl.slug == "batch-normalization":
        axis = args.get("axis", -1)
        expected = oracles.batchnorm_training(x, values["gamma"], values["beta"], args.get("epsilon", 1e-3), axis)
        scale = float(np.max(np.abs(expected))) or 1.0
    training = k.values(call(decl, layer, x, extra, sample.mask, training=True))
    checks.close("training output", expected, training, rtol=0.0, atol=decl.rtol * scale)
    if decl.slug == "batch-normalization":  # one update of each moving statistic with the batch's
        variables = find_weights(decl, layer)
        momentum = args.get("momentum", 0.99)
        mean, variance = oracles.batch_moments(x, args.get("axis", -1))
        for name, batch in (("moving_mean", mean), ("moving_variance", variance)):
            checks.close(f"{name} after the training call", oracles.moving_average(values[name], batch, momentum),
                         k.values(variables[name]), rtol=1e-6, atol=1e-7)


def precision_carried(error: float, compute: str) -> str:
    """What a policy's output is within: "within" its compute dtype's budget (``POLICY_BUDGET`` eps); for a
    float64 policy computed in float32, "float32's precision" (within that budget of float32); else the
    power of two of eps above the error ("≤ 128 eps of bfloat16", ``precision.bucket``).  A category, not
    the measured error (kept apart as ``error in eps``), so that the same Keras on another CPU records the
    same value."""
    if error <= POLICY_BUDGET:
        return "within"
    if compute == "float64" and error * eps("float64") / eps("float32") <= POLICY_BUDGET:
        return "float32's precision"
    return bucket(error) if not math.isfinite(error) else f"{bucket(error)} of {compute}"


def policy(k, checks, decl: Layer, policy: str):
    p = POLICIES[policy]
    sample = default_sample(decl)
    layer, values, x, extra = built(k, decl, sample, 81, dtype=policy)
    variables = find_weights(decl, layer)
    checks.equal("weight dtypes", {name: p.variable for name in variables},
                 {name: k.dtype_name(v) for name, v in variables.items()})
    output = call(decl, layer, x, extra, sample.mask, training=False)
    checks.equal("output dtype", p.compute, k.dtype_name(output))
    if decl.reference is None:
        return
    from conformance.engine.precision import round_to

    xr = x if sample.integers else round_to(x, p.compute).astype(np.float64)
    extra_r = {n: round_to(v, p.compute).astype(np.float64) for n, v in extra.items()}
    expected = reference_output(decl, xr, values, decl.build_args(sample), extra_r, sample)
    error = error_in_eps(k.values(output), expected, p.compute)
    checks.measure("error in eps", error)
    checks.record("output within the budget of the reference", f"<= {POLICY_BUDGET:g} eps of {p.compute}",
                  precision_carried(error, p.compute), error <= POLICY_BUDGET,
                  f"normwise error {error:.3g} eps of {p.compute} (eps {eps(p.compute):.3g})", kind="numeric")


# -- Registration -----------------------------------------------------------------------------------------

def register_all() -> None:
    for decl in all_layers():
        name = decl.cls
        register(decl, "documented-defaults", "documented-defaults",
                 f"{name}() has the documented defaults and takes every documented argument", documented_defaults)
        register(decl, "config-round-trip", "config-round-trip",
                 f"{name}.from_config(get_config()) with non-default arguments rebuilds the same layer", config_round_trip)
        if decl.weights:
            laws = ", ".join(f"{w.name} {w.default_initializer}" for w in decl.weights)
            register(decl, "initial-weights", "initial-weights",
                     f"{name}'s weights start from their documented initializers ({laws}) with their fan rules, "
                     "and each *_initializer argument reaches its weights", initial_weights, topic="init")
        if regularizer_arguments(decl) or decl.activity_regularizer:
            register(decl, "regularizers", "regularizers",
                     f"{name}'s regularisers add their penalties to layer.losses and to the loss evaluate reports",
                     regularizers, topic="regularizer")
        if constraint_arguments(decl):
            register(decl, "constraints", "constraints",
                     f"{name}'s constraints hold after a training step, not before", constraints, topic="regularizer",
                     needs=("train",))
        for d in decl.dropout:
            slug = d.name.replace("_", "-")
            register(decl, slug if slug != decl.slug else f"{slug}-argument", "{argument}",
                     f"{name}({d.name}=0.5) drops {d.drops} in training only", dropout_argument, topic="dropout",
                     argument=d.name)
        if decl.seed:
            register(decl, "seed", "seed", f"two {name} layers with one seed drop the same units; a second call others",
                     seed, topic="dropout")
        if decl.reference is not None:
            for s in decl.samples:
                if s.name != "init":
                    register(decl, f"forward-{s.name}", "forward-{sample}",
                             f"{name} on {s.shape}{' ' + str(dict(s.args)) if s.args else ''} equals the float64 "
                             f"reference ({decl.reference.__name__ if hasattr(decl.reference, '__name__') else 'identity'})",
                             forward, sample_name=s.name)
        for p in LAYER_POLICIES:
            register(decl, f"policy-{p}", "policy-{policy}",
                     f"{name} under {p}: weights in {POLICIES[p].variable}, output in {POLICIES[p].compute}"
                     + (f" within {POLICY_BUDGET:g} eps of the reference" if decl.reference else ""),
                     policy, needs=policy_needs(p), policy=p)


register_all()


# -- What the recurrent dropout masks are, where the documentation says ----------------------------------

#: SimpleRNN's units in the mask cases, and its batch: 16 × 64 = 1024 units per mask.
MASK_UNITS, MASK_BATCH, MASK_STEPS = 64, 16, 4


@case("layer-simple-rnn-dropout-masks",
      "SimpleRNN(dropout=0.5) and SimpleRNN(recurrent_dropout=0.5) in training drop half the units, with one mask "
      "for every step of a sequence (\"the same mask is used for every step\", DropoutRNNCell)", topic="dropout")
def simple_rnn_dropout_masks(k, checks):
    """Identity kernels, no bias, a linear activation: each output is what the mask lets through, times 2."""
    rnn = k.keras.layers.SimpleRNN
    eye = constant_initializer(k, lambda shape: np.eye(*shape), [], "identity")  # Keras 3.0 has no 'identity'
    common = dict(units=MASK_UNITS, activation="linear", use_bias=False, return_sequences=True)
    # dropout: h_t = (x_t ⊙ m / 0.5) · I with x_t = 1, the recurrent kernel 0: h_t = 2m at every step
    layer = rnn(kernel_initializer=eye, recurrent_initializer="zeros", dropout=0.5, **common)
    out = k.values(layer(np.ones((MASK_BATCH, MASK_STEPS, MASK_UNITS), np.float32), training=True))
    check_inverted_dropout(checks, np.ones(out[:, 0].shape), out[:, 0], 0.5, prefix="dropout: ")
    checks.equal("dropout: steps whose mask differs from the first's", 0,
                 int(sum(not np.array_equal(out[:, t], out[:, 0]) for t in range(MASK_STEPS))))
    # recurrent_dropout: x_0 = 1 then 0, both kernels I: h_0 = 1, h_t = h_{t−1} ⊙ m_r / 0.5
    layer = rnn(kernel_initializer=eye, recurrent_initializer=eye, recurrent_dropout=0.5, **common)
    x = np.zeros((MASK_BATCH, MASK_STEPS, MASK_UNITS), np.float32)
    x[:, 0] = 1.0
    out = k.values(layer(x, training=True))
    checks.true("recurrent dropout: the first step is not dropped", bool(np.all(out[:, 0] == 1)),
                "the initial state is zeros, so its mask changes nothing")
    check_inverted_dropout(checks, out[:, 0], out[:, 1], 0.5, prefix="recurrent dropout: ")
    doubling = 2.0 ** np.arange(1, MASK_STEPS - 1)[None, :, None] * out[:, 1:2]  # h_t = 2^(t−1)·h_1
    checks.true("recurrent dropout: the same mask at every step", bool(np.all(out[:, 2:] == doubling)),
                "h_t = 2^(t−1)·h_1: a unit kept once is kept at every step")
