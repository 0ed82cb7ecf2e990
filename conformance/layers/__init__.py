"""Keras layers declared once: what each takes, creates, draws, penalises, drops and computes.

In the spirit of PyTorch's ModuleInfo, a layer that carries the four topics (initialisation,
normalisation, regularisation, dropout) is one :class:`Layer` in :mod:`conformance.layers.zoo`:

- its constructor: the documented signature (``arguments``, each with its documented default, or
  ``REQUIRED``), and the arguments its samples build it with (``args``);
- each weight (:class:`Weight`): the arguments that set its initializer, regulariser and constraint,
  its documented default initializer, its shape and the fan rule that applies to it;
- its dropout-style arguments (:class:`DropoutArg`) and whether it takes a ``seed``;
- its sample inputs (:class:`Sample`), at the edges of its shapes (a batch of one, one channel, each
  data format, each rank it accepts);
- a float64 NumPy reference of its forward computation (:mod:`conformance.layers.references`), where
  the documentation states the formula.

The templates of :mod:`conformance.cases.layers` generate the cases from these declarations (IDs
``layer-<slug>-<what>``: ``layer-conv2d-initial-weights``, ``layer-lstm-forward-mask``, ...).  A
declaration that contradicts itself (a weight without a fan rule, an argument the documented
signature does not have, a reference whose output shape is not the declared one) raises
:class:`DeclarationError` when it is declared, so at collection, naming the layer and the field.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

#: The default of an argument the constructor requires.
REQUIRED = "<required>"
#: Default initializers that scale with the fans of the weight (VarianceScaling and its named kinds).
FAN_SCALED = {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"}
#: What the other documented default initializers draw or fill.
#: ("unit_forget_bias": zeros with ones for the forget gate, the second quarter: LSTM and ConvLSTM.)
OTHER_INITIALIZERS = {"zeros", "ones", "orthogonal", "uniform", "unit_forget_bias"}

Shape = tuple[int, ...]
#: ``(args, input_shape) -> shape``: a weight's shape, or a layer's output shape.
ShapeRule = Callable[[Mapping[str, Any], Shape], Shape]
#: ``(x, weights, args) -> output``: a float64 forward computation (inference).
Reference = Callable[..., np.ndarray]


class DeclarationError(ValueError):
    """A declaration contradicts itself; the message is one line naming the layer and the field."""


def receptive_field_fans(shape: Shape) -> tuple[float, float]:
    """The fan rule of ``VarianceScaling`` (its documentation: "the number of input units in the weight
    tensor" and of output units): for a kernel of shape ``(..., in, out)``, the receptive field
    ``prod(shape[:-2])`` times ``in`` and times ``out`` (``conformance.engine.oracles.fans``)."""
    from conformance.engine.oracles import fans

    return fans(shape)


def leading_axes_fans(n: int) -> Callable[[Shape], tuple[float, float]]:
    """The fan rule of an einsum kernel whose first ``n`` axes are contracted with the input and the rest
    make the output (``VarianceScaling``'s ``input_axes`` and ``output_axes``): fan_in is the product of
    the first ``n`` lengths, fan_out of the others."""

    def rule(shape: Shape) -> tuple[float, float]:
        return float(np.prod(shape[:n])), float(np.prod(shape[n:]))

    rule.__name__ = f"leading_axes_fans({n})"
    return rule


@dataclass(frozen=True)
class Weight:
    """One weight of a layer and the arguments that govern it."""

    name: str  # the end of its path: "kernel", "recurrent_kernel", "query/kernel"
    shape: ShapeRule
    default_initializer: str  # documented, as ``initializers.get`` spells it: "glorot_uniform"
    initializer: str | None = None  # the constructor argument that sets it: "kernel_initializer"
    regularizer: str | None = None
    constraint: str | None = None
    #: The fan rule that applies to it (``receptive_field_fans`` unless the layer says otherwise); None
    #: only where its default initializer does not scale with fans.
    fans: Callable[[Shape], tuple[float, float]] | None = receptive_field_fans
    trainable: bool = True
    #: Other names it has had (Keras 2's 'depthwise_kernel' is Keras 3's 'kernel'): found by any of them.
    aliases: tuple[str, ...] = ()
    #: Whether its values must be positive (a moving variance): the samples' random values are then |N| + 0.5.
    positive: bool = False

    @property
    def arguments(self) -> tuple[str, ...]:
        return tuple(a for a in (self.initializer, self.regularizer, self.constraint) if a)


@dataclass(frozen=True)
class DropoutArg:
    """A dropout-style argument: what fraction it drops, of what, in training; in inference nothing."""

    name: str  # "dropout", "recurrent_dropout"
    drops: str  # what it drops, in words: "the inputs of each step (one mask for every step)"


@dataclass(frozen=True)
class Sample:
    """One input the layer is called on: its shape, arguments it changes, and why it is an edge."""

    name: str  # "batch-of-one", "channels-first"
    shape: Shape
    args: Mapping[str, Any] = field(default_factory=dict)
    #: Integers in [0, high) instead of floats (Embedding's indices).
    integers: int = 0
    #: A sequence mask: the number of trailing steps of each example that are masked out.
    masked_tail: tuple[int, ...] = ()
    #: Extra inputs by call-argument name (attention's ``value``), shapes.
    extra: Mapping[str, Shape] = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray | None:
        """The boolean mask ``(batch, steps)`` of ``masked_tail``, or None."""
        if not self.masked_tail:
            return None
        steps = self.shape[1]
        return np.array([[t < steps - tail for t in range(steps)] for tail in self.masked_tail])


@dataclass(frozen=True)
class Layer:
    """A Keras layer declared once; see the module's docstring."""

    slug: str  # the IDs' "<slug>": "conv2d"
    cls: str  # its class in keras.layers: "Conv2D"
    topic: str  # the topic of its forward cases: "batchnorm" for the normalisation layers, else "layer"
    arguments: Mapping[str, Any]  # the documented signature: argument -> documented default or REQUIRED
    args: Mapping[str, Any]  # what the samples build it with (every required argument)
    weights: tuple[Weight, ...] = ()
    samples: tuple[Sample, ...] = ()
    output_shape: ShapeRule | None = None
    reference: Reference | None = None
    #: What a documented default of None resolves to with ``args``, as the documentation says
    #: (MultiHeadAttention's ``value_dim=None``: "uses key_dim").
    resolved_defaults: Mapping[str, Any] = field(default_factory=dict)
    #: Arguments (besides those of the weights) that a config round trip sets to a non-default value.
    round_trip: Mapping[str, Any] = field(default_factory=dict)
    dropout: tuple[DropoutArg, ...] = ()
    seed: bool = False  # takes ``seed=``
    #: Called on ``[x, value]`` (Attention) rather than ``x, value=value`` (MultiHeadAttention).
    inputs_as_list: bool = False
    #: How it takes a mask over the value's steps: "attention_mask" (a boolean (batch, target, source)
    #: ``attention_mask=``, MultiHeadAttention) or "value_mask" (``mask=[query_mask, value_mask]``, Attention).
    attention_mask: str = ""
    #: The layer that runs it, where it is not a layer on its own: "RNN" for the recurrent cells, which
    #: are built as ``keras.layers.RNN(cell)`` (their defaults and config are the cell's).
    wrapper: str | None = None
    activity_regularizer: bool = False
    #: Whether Keras 2 (tf_keras, tf.keras 2.15) has it; Keras 3 has every declared layer from ``since``.
    keras2: bool = True
    since: str = "3.0.0"
    #: Tolerance of the forward output against the reference: max |error| <= rtol · max |reference|.
    rtol: float = 1e-5
    doc: str = ""  # a line for the documentation: what the declaration pins that a reader might not guess
    defined_at: str = ""

    def __post_init__(self) -> None:
        validate(self)

    def sample(self, name: str) -> Sample:
        return next(s for s in self.samples if s.name == name)

    def build_args(self, sample: Sample | None = None) -> dict[str, Any]:
        return {**self.args, **(sample.args if sample else {})}


def fail(layer: Layer, what: str) -> DeclarationError:
    return DeclarationError(f"layer declaration {layer.slug} ({layer.cls}), {what}")


def validate(layer: Layer) -> None:
    """Raise :class:`DeclarationError` where ``layer`` contradicts itself."""
    known = set(layer.arguments)
    for name, value in layer.arguments.items():
        if value == REQUIRED and name not in layer.args:
            raise fail(layer, f"args: the required argument {name!r} has no value")
    for source, names in (("args", layer.args), ("round_trip", layer.round_trip),
                          ("dropout", [d.name for d in layer.dropout]),
                          *((f"sample {s.name}", s.args) for s in layer.samples),
                          *((f"weight {w.name}", w.arguments) for w in layer.weights)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise fail(layer, f"{source}: {unknown[0]!r} is not an argument of {layer.cls} (arguments)")
    if layer.seed and "seed" not in known:
        raise fail(layer, "seed: 'seed' is not an argument of it (arguments)")
    if layer.attention_mask not in ("", "attention_mask", "value_mask"):
        raise fail(layer, f"attention_mask: {layer.attention_mask!r} is neither 'attention_mask' nor 'value_mask'")
    if layer.attention_mask and not any(s.extra for s in layer.samples[:1]):
        raise fail(layer, "attention_mask: its first sample has no value input to mask (extra)")
    if layer.activity_regularizer and "activity_regularizer" not in known:
        raise fail(layer, "activity_regularizer: it takes no 'activity_regularizer' (arguments)")
    for w in layer.weights:
        init = w.default_initializer
        if init not in FAN_SCALED | OTHER_INITIALIZERS:
            raise fail(layer, f"weight {w.name}: default_initializer {init!r} is not one the templates know")
        if init in FAN_SCALED and w.fans is None:
            raise fail(layer, f"weight {w.name}: its default {init} scales with fans, but it has no fan rule (fans)")
    if layer.reference is not None and layer.output_shape is None:
        raise fail(layer, "output_shape: a reference needs the declared output shape to be checked against")
    for s in layer.samples:
        check_reference_shape(layer, s)


def weight_shapes(layer: Layer, sample: Sample) -> dict[str, Shape]:
    args = layer.build_args(sample)
    return {w.name: tuple(w.shape(args, sample.shape)) for w in layer.weights}


def check_reference_shape(layer: Layer, sample: Sample) -> None:
    """Run the reference on zeros of the sample's shapes; its output must have the declared shape."""
    if layer.reference is None or layer.output_shape is None:
        return
    args = layer.build_args(sample)
    weights = {name: np.zeros(shape) for name, shape in weight_shapes(layer, sample).items()}
    x = np.full(sample.shape, 1.0)
    extra = {name: np.ones(shape) for name, shape in sample.extra.items()}
    if sample.mask is not None:
        extra["mask"] = sample.mask
    try:
        out = layer.reference(x, weights, args, **extra)
    except Exception as exc:  # a reference that cannot run on its own sample is a declaration error
        raise fail(layer, f"reference: fails on sample {sample.name}: {type(exc).__name__}: {exc}") from None
    expected = tuple(layer.output_shape(args, sample.shape))
    if tuple(out.shape) != expected:
        raise fail(layer, f"reference: gives shape {tuple(out.shape)} on sample {sample.name}, "
                          f"output_shape says {expected}")


_LAYERS: dict[str, Layer] = {}


def declare(layer: Layer) -> Layer:
    """Register ``layer`` (its slug unique)."""
    if layer.slug in _LAYERS:
        raise DeclarationError(f"layer declaration {layer.slug} is declared twice")
    caller = sys._getframe(1)
    where = f"conformance/layers/{Path(caller.f_code.co_filename).name}:{caller.f_lineno}"
    layer = dataclasses.replace(layer, defined_at=where)
    _LAYERS[layer.slug] = layer
    return layer


def declared(slug: str) -> Layer:
    """The declaration of ``slug`` ("batch-normalization")."""
    all_layers()
    return _LAYERS[slug]


def all_layers() -> list[Layer]:
    from conformance.layers import zoo  # noqa: F401  (declares them)

    return list(_LAYERS.values())
