"""The grid: which calls are made at the edges of which arguments, generated, not written call by call.

- ``get`` of each module (:data:`MODULES`): each class by its documented
  spelling, its class name, a dict config, the class and an instance; then
  what is not an identifier (None, '', an unknown name, numbers, a plain
  function, an array, dicts without a known class).
- Each class of a module, from its constructor's signature: each number
  argument at :data:`NUMBERS`, each string argument at '', an unknown value and
  its default in capitals, ``seed`` at every kind of :data:`SEEDS`; an
  initializer is then called for a (3, 4) tensor, a regulariser or constraint
  on :data:`WEIGHT`.  An initializer with a seed also says whether two
  instances with one seed, and two calls of one instance, draw the same values.
- Each declared layer (:mod:`conformance.layers`), from its declaration: each
  ``*_initializer``, ``*_regularizer`` and ``*_constraint`` argument at every
  kind of identifier, each dropout-style argument at :data:`RATES`, ``seed`` at
  :data:`SEEDS`, each integer, float, boolean and string argument at its edges;
  and each dropout-style argument at 0 and 1 in a training call.

Every value is fixed, so two runs of one stack record the same outcomes.
"""

from __future__ import annotations

import inspect
import json
import re
import zlib
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np

from conformance.edges import EdgeError, Entry, Missing, array_text, plain, shown
from conformance.engine.checks import key_of

#: (module, topic, {class: documented spelling}): the classes whose ``get`` and constructors are swept.
MODULES: dict[str, tuple[str, dict[str, str]]] = {
    "initializers": ("init", {
        "Constant": "constant", "GlorotNormal": "glorot_normal", "GlorotUniform": "glorot_uniform",
        "HeNormal": "he_normal", "HeUniform": "he_uniform", "Identity": "identity", "LecunNormal": "lecun_normal",
        "LecunUniform": "lecun_uniform", "Ones": "ones", "Orthogonal": "orthogonal", "RandomNormal": "random_normal",
        "RandomUniform": "random_uniform", "TruncatedNormal": "truncated_normal",
        "VarianceScaling": "variance_scaling", "Zeros": "zeros"}),
    "regularizers": ("regularizer", {"L1": "l1", "L1L2": "l1_l2", "L2": "l2",
                                     "OrthogonalRegularizer": "orthogonal_regularizer"}),
    "constraints": ("regularizer", {"MaxNorm": "max_norm", "MinMaxNorm": "min_max_norm", "NonNeg": "non_neg",
                                    "UnitNorm": "unit_norm"}),
}
#: Where the documentation states what ``get`` gives: None for None.
GET_DOCUMENTED = "keras.{module}.get's docstring and code: `if identifier is None: return None`"
#: The weight a regulariser or constraint is applied to, and the shape an initializer is called for.
WEIGHT = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
SHAPE = (3, 4)


@dataclass(frozen=True)
class Value:
    """An argument's value as the label shows it (``text``) and how to make it with a Keras (``make``)."""

    text: str
    make: Callable[[Any], Any]


def value(text: str, v: Any) -> Value:
    """A value that is the same whatever the Keras."""
    return Value(text, partial(constant, v))


def constant(v: Any, keras: Any) -> Any:
    return v


def instance(keras: Any, module: str, name: str) -> Any:
    """``keras.<module>.<name>()``."""
    return attribute(keras, module, name)()


def ones(keras: Any) -> np.ndarray:
    return np.ones(3, np.float32)


def seed_generator(keras: Any) -> Any:
    random = getattr(keras, "random", None)
    if random is None or not hasattr(random, "SeedGenerator"):
        raise Missing("keras.random.SeedGenerator")
    return random.SeedGenerator(1)


def custom_initializer(shape, dtype=None):
    """A user's initializer as a plain function."""
    return np.zeros(shape, np.float32)


def custom_regularizer(weight):
    """A user's regulariser as a plain function."""
    return 0.0


def custom_constraint(weight):
    """A user's constraint as a plain function."""
    return weight


NUMBERS = (value("0", 0), value("1", 1), value("-1", -1), value("0.5", 0.5), value("1e30", 1e30),
           value("nan", float("nan")))
RATES = (value("0", 0.0), value("1", 1.0), value("-0.1", -0.1), value("1.5", 1.5), value("nan", float("nan")),
         value("'0.5'", "0.5"))
INTEGERS = (value("0", 0), value("-1", -1), value("1.5", 1.5), value("'2'", "2"))
FLOATS = (value("0", 0.0), value("-1", -1.0), value("nan", float("nan")))
BOOLEANS = (value("None", None), value("'yes'", "yes"))
SEEDS = (value("None", None), value("0", 0), value("1", 1), value("-1", -1), value("2**32", 2**32),
         value("2**64", 2**64), value("1.5", 1.5), value("'1'", "1"), value("np.int64(1)", np.int64(1)),
         Value("SeedGenerator(1)", seed_generator))
CUSTOM = {"initializers": custom_initializer, "regularizers": custom_regularizer, "constraints": custom_constraint}
#: For a layer's identifier arguments: a valid spelling and a valid class of each module.
VALID = {"initializers": ("zeros", "Zeros"), "regularizers": ("l2", "L2"), "constraints": ("non_neg", "NonNeg")}


def attribute(keras: Any, module: str, name: str) -> Any:
    """``keras.<module>.<name>``; :class:`Missing` where this Keras lacks it."""
    found = getattr(getattr(keras, module), name, None)
    if found is None:
        raise Missing(f"keras.{module}.{name}")
    return found


def identifiers(module: str, classes: dict[str, str] | None = None) -> Iterator[tuple[Value, str]]:
    """(identifier, the outcome the documentation states or ''): each class's forms, then non-identifiers."""
    for cls, spelling in (classes if classes is not None else MODULES[module][1]).items():
        yield value(repr(spelling), spelling), ""  # judged by init-string-aliases, regularizer-string-identifiers
        yield value(repr(cls), cls), ""
        yield value(repr({"class_name": cls, "config": {}}), {"class_name": cls, "config": {}}), ""
        yield Value(cls, partial(attribute, module=module, name=cls)), ""
        yield Value(f"{cls}()", partial(instance, module=module, name=cls)), ""
    yield value("None", None), "returns null"
    for v in (value("''", ""), value("'no_such_identifier'", "no_such_identifier"), value("0", 0),
              value("1.5", 1.5), value("True", True), value(CUSTOM[module].__name__, CUSTOM[module]),
              Value("np.ones(3)", ones),
              value(repr({"class_name": "NoSuchClass", "config": {}}), {"class_name": "NoSuchClass", "config": {}}),
              value(repr({"config": {}}), {"config": {}})):
        yield v, ""


def get_entries(module: str) -> list[Entry]:
    """``keras.<module>.get(identifier)`` for each identifier."""
    return [Entry(f"{module}.get({v.text})", partial(call_get, module=module, given=v),
                  documented, GET_DOCUMENTED.format(module=module) if documented else "", describe=described_get)
            for v, documented in identifiers(module)]


def call_get(k: Any, module: str, given: Value) -> Any:
    return attribute(k.keras, module, "get")(given.make(k.keras))


def described_get(result: Any) -> str:
    """What ``get`` returned: the object it was given (a function, an instance) is said so."""
    if callable(result) and not hasattr(result, "get_config") and not isinstance(result, type):
        return f"returns the function {getattr(result, '__name__', '?')}"
    return "returns " + shown(result)


def argument_values(name: str, default: Any) -> tuple[Value, ...]:
    """The edges of a constructor argument, from its name and documented default; () where none apply."""
    if name == "seed":
        return SEEDS
    if isinstance(default, bool):
        return BOOLEANS
    if isinstance(default, (int, float)):
        return NUMBERS
    if isinstance(default, str):
        return (value("''", ""), value("'no_such_value'", "no_such_value"), value(repr(default.upper()), default.upper()))
    return ()


def class_entries(module: str, cls: str, signature: inspect.Signature) -> list[Entry]:
    """``<cls>()`` and ``<cls>(<argument>=<edge>)``, each then called, for each argument of the class's
    constructor."""
    entries = [Entry(f"{cls}(){applied(module)}", partial(construct_and_apply, module=module, cls=cls))]
    for name, parameter in signature.parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        for v in argument_values(name, parameter.default):
            entries.append(Entry(f"{cls}({name}={v.text}){applied(module)}",
                                 partial(construct_and_apply, module=module, cls=cls, argument=name, given=v)))
    if "seed" in signature.parameters and module == "initializers":
        entries += [Entry(f"two {cls}(seed=1), each called for {SHAPE}",
                          partial(same, module=module, cls=cls, seed=value("1", 1), twice=False), "the same values",
                          "the initializers' docstrings: \"multiple initializers will produce the same sequence "
                          "when constructed with the same seed value\"", describe=str),
                    Entry(f"{cls}(seed=1), called twice for {SHAPE}",
                          partial(same, module=module, cls=cls, seed=value("1", 1), twice=True), describe=str),
                    Entry(f"{cls}(seed=SeedGenerator(1)), called twice for {SHAPE}",
                          partial(same, module=module, cls=cls, seed=SEEDS[-1], twice=True),
                          describe=str)]
    return entries


def applied(module: str) -> str:
    return f"(shape={SHAPE})" if module == "initializers" else "(w)"


def apply(k: Any, module: str, obj: Any) -> Any:
    """An initializer called for ``SHAPE``, a regulariser or constraint on ``WEIGHT``, as NumPy."""
    return k.to_numpy(obj(shape=SHAPE) if module == "initializers" else obj(WEIGHT))


def construct_and_apply(k: Any, module: str, cls: str, argument: str = "", given: Value | None = None) -> Any:
    """``<cls>(<argument>=<given>)`` (``<cls>()`` without one), then called (``apply``)."""
    kwargs = {argument: given.make(k.keras)} if given is not None else {}
    return apply(k, module, attribute(k.keras, module, cls)(**kwargs))


def same(k: Any, module: str, cls: str, seed: Value, twice: bool) -> str:
    """Whether two draws are equal: of one instance called twice, or of two instances with ``seed``."""
    make = attribute(k.keras, module, cls)
    first = make(seed=seed.make(k.keras))
    a = k.to_numpy(first(shape=SHAPE))
    b = k.to_numpy((first if twice else make(seed=seed.make(k.keras)))(shape=SHAPE))
    return "the same values" if np.array_equal(a, b) else "other values"


# -- Layers ----------------------------------------------------------------------------------------------

def layer_values(decl: Any, name: str, default: Any) -> tuple[Value, ...]:
    """The edges of a declared layer's argument: by its kind (an identifier of a module, a rate, a seed),
    else by its documented default (or its sample value where the argument is required)."""
    for suffix, module in (("_initializer", "initializers"), ("_regularizer", "regularizers"),
                           ("_constraint", "constraints")):
        if name.endswith(suffix):
            spelling, cls = VALID[module]
            return (value(repr(spelling), spelling), value("'no_such_identifier'", "no_such_identifier"),
                    value(repr({"class_name": cls, "config": {}}), {"class_name": cls, "config": {}}),
                    Value(cls, partial(attribute, module=module, name=cls)),
                    Value(f"{cls}()", partial(instance, module=module, name=cls)),
                    value(CUSTOM[module].__name__, CUSTOM[module]), value("None", None))
    if name in {d.name for d in decl.dropout}:
        return RATES
    if name == "seed":
        return SEEDS
    sample = decl.args.get(name, default)
    if isinstance(sample, bool):
        return BOOLEANS
    if isinstance(sample, int):
        return INTEGERS
    if isinstance(sample, float):
        return FLOATS
    if isinstance(sample, str) and name != "dtype":
        return (value("''", ""), value("'no_such_value'", "no_such_value"), value(repr(sample.upper()), sample.upper()))
    return ()


def layer_entries(decl: Any) -> list[Entry]:
    """``<Layer>(<argument>=<edge>)`` for each argument the declaration documents; each dropout-style argument
    at 0 and 1 in a training call on the layer's default sample."""
    from conformance.layers import REQUIRED

    arguments = {**{a: d for a, d in decl.arguments.items()}, **decl.args}
    for name, default in decl.arguments.items():
        if default == REQUIRED and name not in decl.args:
            raise EdgeError(f"layer declaration {decl.slug}: argument {name} is required and has no sample "
                            "value in args, so its edges cannot be called")
    entries = []
    for name in sorted(arguments):
        for v in layer_values(decl, name, arguments[name]):
            entries.append(Entry(f"{decl.cls}({name}={v.text})", partial(construct, decl=decl, argument=name, given=v),
                                 describe=partial(accepted, argument=name)))
    masked = next((s for s in decl.samples if s.masked_tail), None)
    if masked is not None:
        for text in MASKS:
            entries.append(Entry(f"{decl.cls} on {masked.shape} with mask={text}",
                                 partial(masked_call, decl=decl, sample=masked, mask=text), describe=str))
    if decl.attention_mask:
        sample = decl.samples[0]
        for text in ATTENTION_MASKS if decl.attention_mask == "attention_mask" else MASKS:
            entries.append(Entry(f"{decl.cls} on {sample.shape} with {decl.attention_mask}={text}",
                                 partial(attention_masked_call, decl=decl, sample=sample, mask=text), describe=str))
    for d in decl.dropout:
        for rate in (0.0, 1.0):
            entries.append(Entry(f"{decl.cls}({d.name}={rate:g}) in training, on {decl.samples[0].shape}",
                                 partial(training_call, decl=decl, name=d.name, rate=rate), describe=str))
    return entries


def training_call(k: Any, decl: Any, name: str, rate: float) -> str:
    """The layer's training output on its default sample with ``name=rate``, against its inference output:
    what a rate at its limit does (``float32 (4, 6), all zeros``; ``…, the inference output``)."""
    from conformance.cases.layers import build, call, sample_inputs

    layer_class(k, decl)
    sample = decl.samples[0]
    x, extra = sample_inputs(decl, sample, 5)
    layer = build(k, decl, sample, **{name: rate})
    training = k.to_numpy(call(decl, layer, x, extra, sample.mask, training=True))
    inference = k.to_numpy(call(decl, layer, x, extra, sample.mask, training=False))
    same = "the inference output" if np.array_equal(training, inference) else "not the inference output"
    return f"returns {array_text(training)}, {same}"


#: The masks a layer that takes one is called with, from the sample's own boolean (batch, steps) mask: by
#: dtype, by rank, every step masked, and a mask of the wrong length.
MASKS = ("int32", "float32", "rank 1 (steps)", "rank 3 (batch, steps, 1)", "all False", "one step short")
#: What the entries of one case share: the layer a mask entry calls and its output with the sample's own mask
#: (``sweep_layer`` empties it at the start of each case).
SHARED: dict[str, Any] = {}


def mask_of(text: str, mask: np.ndarray) -> np.ndarray:
    return {"int32": mask.astype(np.int32), "float32": mask.astype(np.float32), "rank 1 (steps)": mask[0],
            "rank 3 (batch, steps, 1)": mask[..., None], "all False": np.zeros_like(mask),
            "one step short": mask[:, :-1]}[text]


def masked_call(k: Any, decl: Any, sample: Any, mask: str) -> str:
    """The layer's inference output on ``sample`` with the mask ``mask``, against the output with the sample's
    own boolean mask: what a mask of another dtype, rank or length does.  One layer serves every mask."""
    from conformance.cases.layers import call, sample_inputs

    layer_class(k, decl)
    x, extra = sample_inputs(decl, sample, 7)

    def masked(layer: Any, m: np.ndarray) -> np.ndarray:
        return k.to_numpy(call(decl, layer, x, extra, m, training=False))

    return against_reference(k, decl, sample, decl.slug, masked, sample.mask, mask_of(mask, sample.mask),
                             "the sample's mask")


def against_reference(k: Any, decl: Any, sample: Any, key: str, masked: Callable[[Any, np.ndarray], np.ndarray],
                      reference_mask: np.ndarray, mask: np.ndarray, reference_name: str) -> str:
    """``masked(layer, mask)`` against ``masked(layer, reference_mask)``, said in words; the layer and its
    reference output are built once per case and kept in SHARED under ``key``."""
    from conformance.cases.layers import build

    if key not in SHARED:
        layer = build(k, decl, sample)
        SHARED[key] = layer, masked(layer, reference_mask)
    layer, reference = SHARED[key]
    out = masked(layer, mask)
    same = out.shape == reference.shape and bool(np.allclose(out, reference, rtol=1e-6, atol=1e-6))
    return f"returns {array_text(out)}, {'as' if same else 'not as'} with {reference_name}"


#: The attention masks a layer that takes ``attention_mask`` is called with, from a boolean (batch, target,
#: source) mask whose example i hides its last i + 1 source steps from every query: by dtype, by rank, every
#: step masked, and a mask one source step short.
ATTENTION_MASKS = ("int32", "float32", "rank 2 (target, source)", "rank 4 (batch, 1, target, source)",
                   "all False", "one source step short")


def attention_mask_of(text: str, mask: np.ndarray) -> np.ndarray:
    return {"int32": mask.astype(np.int32), "float32": mask.astype(np.float32), "rank 2 (target, source)": mask[0],
            "rank 4 (batch, 1, target, source)": mask[:, None], "all False": np.zeros_like(mask),
            "one source step short": mask[..., :-1]}[text]


def attention_masked_call(k: Any, decl: Any, sample: Any, mask: str) -> str:
    """The layer's inference output on ``sample`` with the mask ``mask`` over the value's steps, against its
    output with the boolean mask that hides example i's last i + 1 steps (``attention_mask=``, or
    ``mask=[None, value_mask]`` as ``decl.attention_mask`` says): what a mask of another dtype, rank or length
    does."""
    from conformance.cases.layers import call, sample_inputs

    layer_class(k, decl)
    x, extra = sample_inputs(decl, sample, 11)
    batch, target, source = sample.shape[0], sample.shape[1], next(iter(sample.extra.values()))[1]
    shape = (batch, target, source) if decl.attention_mask == "attention_mask" else (batch, source)
    boolean = np.ones(shape, bool)
    for example in range(batch):  # example i hides its last i + 1 steps: a mask that differs along the batch
        boolean[example, ..., source - example - 1:] = False
    variant = (attention_mask_of if decl.attention_mask == "attention_mask" else mask_of)(mask, boolean)

    def masked(layer: Any, m: np.ndarray) -> np.ndarray:
        if decl.attention_mask == "attention_mask":
            return k.to_numpy(layer(x, **extra, attention_mask=m, training=False))
        return k.to_numpy(call(decl, layer, x, extra, [None, m], training=False))

    return against_reference(k, decl, sample, f"{decl.slug} attention", masked, boolean, variant, "the boolean mask")


def construct(k: Any, decl: Any, argument: str, given: Value) -> Any:
    """The declared layer with its sample arguments and ``argument=given``."""
    return layer_class(k, decl)(**{**decl.args, argument: given.make(k.keras)})


def layer_class(k: Any, decl: Any) -> Any:
    """``keras.layers.<cls>`` of a declaration; :class:`Missing` where this Keras lacks it."""
    return attribute(k.keras, "layers", decl.cls)


def accepted(layer: Any, argument: str) -> str:
    """A constructed layer: what its config holds for the argument (how Keras took the value)."""
    try:
        config = layer.get_config()
    except Exception as exc:  # noqa: BLE001  (that is its outcome)
        return f"accepts it; get_config raises {type(exc).__name__}"
    held = config.get(argument, "(not in the config)")
    return f"accepts it; config: {json.dumps(plain(unserialized(held)), sort_keys=True)}"


#: What ``keras.saving.serialize_keras_object`` adds around an object's own config: how a config is written
#: is the ``surface-`` cases' subject (Keras 3.0.2 moved every ``module`` from ``keras.src.…`` to ``keras.…``).
SERIALIZATION = ("module", "registered_name")


def unserialized(value: Any) -> Any:
    """``value`` with the serialization's ``module`` and ``registered_name`` left out of every object in it."""
    if isinstance(value, dict):
        return {k: unserialized(v) for k, v in value.items() if not ("class_name" in value and k in SERIALIZATION)}
    return value


# -- Keys -------------------------------------------------------------------------------------------------

def key_for(label: str) -> str:
    """The check key of an entry: ``key_of(label)`` with quoted strings and minus signs said in words, and a digest of the label where its first argument
    has capitals (``get('L1')``, ``get(L1)`` and ``get('l1')`` would share a key otherwise)."""
    words = re.sub(r"'([^']*)'", r" quoted \1 ", label)  # 'l2' is not L2, '0.5' not 0.5
    key = key_of(re.sub(r"(?<![\w.])-(?=\d)", " minus ", words))  # -1 is not 1
    argument = re.search(r"\((.*?)\)", label)
    text = re.sub(r"\b(None|True|False)\b", "", argument.group(1)) if argument else ""
    if text != text.lower():
        key += f"-{zlib.crc32(label.encode()):08x}"
    return key


def unique_keys(entries: list[Entry], where: str) -> list[str]:
    keys = [key_for(e.label) for e in entries]
    seen: dict[str, str] = {}
    for key, e in zip(keys, entries, strict=True):
        if key in seen:
            raise EdgeError(f"{where}: the grid entries {seen[key]} and {e.label} share the check key {key}")
        seen[key] = e.label
    return keys


