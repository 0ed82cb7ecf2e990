"""The declared layers: one :func:`declare` each (see :mod:`conformance.layers`).

Documented defaults are those of the Keras API reference (each argument's "Defaults to ..."); the
arguments are the documented ones that bear on the four topics or on the shapes, not every argument
a class takes.  Shapes are written ``(batch, ..., channels)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from conformance.layers import REQUIRED, DropoutArg, Layer, Sample, Shape, ShapeRule, Weight, declare, leading_axes_fans
from conformance.layers import references as ref

Args = Mapping[str, Any]


def channels(args: Args, shape: Shape) -> int:
    return shape[1] if args.get("data_format") == "channels_first" else shape[-1]


def spatial(args: Args, shape: Shape) -> Shape:
    return shape[2:] if args.get("data_format") == "channels_first" else shape[1:-1]


def rank(args: Args, shape: Shape) -> int:
    """The number of spatial axes of a convolution's input."""
    return len(spatial(args, shape))


def kernel_size(args: Args, rank: int) -> Shape:
    return ref.as_tuple(args["kernel_size"], rank)


def conv_output(args: Args, shape: Shape, out_channels: int) -> Shape:
    """Each spatial length ``n`` becomes ``ceil(n / s)`` ('same') or ``floor((n − (k−1)·d − 1) / s) + 1``."""
    rank = len(spatial(args, shape))
    lengths = []
    for n, k, s, d in zip(spatial(args, shape), kernel_size(args, rank), ref.as_tuple(args.get("strides", 1), rank),
                          ref.as_tuple(args.get("dilation_rate", 1), rank), strict=True):
        lengths.append(-(-n // s) if args.get("padding") == "same" else (n - (k - 1) * d - 1) // s + 1)
    if args.get("data_format") == "channels_first":
        return (shape[0], out_channels, *lengths)
    return (shape[0], *lengths, out_channels)


def bias(size) -> Weight:
    """The bias of a layer with ``use_bias``: ``size(args, shape)`` entries, zeros by default."""
    return Weight("bias", lambda a, s: (size(a, s),), "zeros", "bias_initializer", "bias_regularizer",
                  "bias_constraint", fans=None)


CONV_ARGS = {"filters": REQUIRED, "kernel_size": REQUIRED, "strides": 1, "padding": "valid", "data_format": None,
             "dilation_rate": 1, "activation": None, "use_bias": True, "kernel_initializer": "glorot_uniform",
             "bias_initializer": "zeros", "kernel_regularizer": None, "bias_regularizer": None,
             "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
CONV_ROUND_TRIP = {"padding": "same", "use_bias": True}


def conv_samples(rank: int) -> tuple[Sample, ...]:
    """Edges of a convolution's input: a batch of one, one channel, channels first, 'same' with strides, dilation."""
    n = {1: 9, 2: 7, 3: 5}[rank]
    side = (n,) * rank
    return (Sample("default", (2, *side, 3)),
            Sample("batch-of-one", (1, *side, 3)),
            Sample("one-channel", (2, *side, 1)),
            Sample("channels-first", (2, 3, *side), {"data_format": "channels_first"}),
            Sample("strided-same", (2, *side, 3), {"strides": 2, "padding": "same"}),
            Sample("dilated", (2, *side, 3), {"dilation_rate": 2}))


#: rank -> (slug, class) of the convolution and of its transpose
CONVOLUTIONS = {1: ("conv1d", "Conv1D", "conv1d-transpose", "Conv1DTranspose"),
                2: ("conv2d", "Conv2D", "conv2d-transpose", "Conv2DTranspose"),
                3: ("conv3d", "Conv3D", "conv3d-transpose", "Conv3DTranspose")}
for _rank, (_slug, _cls, _transpose_slug, _transpose_cls) in CONVOLUTIONS.items():
    declare(Layer(
        _slug, _cls, "layer",
        arguments={**CONV_ARGS, "groups": 1,
                   "strides": 1 if _rank == 1 else (1,) * _rank, "dilation_rate": 1 if _rank == 1 else (1,) * _rank},
        args={"filters": 4, "kernel_size": 3},
        weights=(Weight("kernel", lambda a, s: (*kernel_size(a, rank(a, s)), channels(a, s), a["filters"]),
                        "glorot_uniform", "kernel_initializer", "kernel_regularizer", "kernel_constraint"),
                 bias(lambda a, s: a["filters"])),
        samples=(*conv_samples(_rank), Sample("init", (1, *(8,) * _rank, 32), {"filters": 64, "kernel_size": 5})),
        output_shape=lambda a, s: conv_output(a, s, a["filters"]),
        reference=ref.conv, round_trip=CONV_ROUND_TRIP, activity_regularizer=True))

    declare(Layer(
        _transpose_slug, _transpose_cls, "layer",
        arguments={**CONV_ARGS, "output_padding": None,
                   "strides": 1 if _rank == 1 else (1,) * _rank, "dilation_rate": 1 if _rank == 1 else (1,) * _rank},
        args={"filters": 4, "kernel_size": 3},
        weights=(Weight("kernel", lambda a, s: (*kernel_size(a, rank(a, s)), a["filters"], channels(a, s)),
                        "glorot_uniform", "kernel_initializer", "kernel_regularizer", "kernel_constraint"),
                 bias(lambda a, s: a["filters"])),
        samples=(Sample("default", (2, *(5,) * _rank, 3)),
                 Sample("batch-of-one", (1, *(5,) * _rank, 3)),
                 Sample("one-channel", (2, *(5,) * _rank, 1)),
                 Sample("channels-first", (2, 3, *(5,) * _rank), {"data_format": "channels_first"}),
                 Sample("strided", (2, *(5,) * _rank, 3), {"strides": 2}),
                 Sample("init", (1, *(4,) * _rank, 64), {"filters": 32, "kernel_size": 5})),
        output_shape=lambda a, s: (
            (s[0], a["filters"], *((n - 1) * st + k for n, st, k in zip(
                spatial(a, s), ref.as_tuple(a.get("strides", 1), rank(a, s)), kernel_size(a, rank(a, s)), strict=True)))
            if a.get("data_format") == "channels_first" else
            (s[0], *((n - 1) * st + k for n, st, k in zip(
                spatial(a, s), ref.as_tuple(a.get("strides", 1), rank(a, s)), kernel_size(a, rank(a, s)), strict=True)), a["filters"])),
        reference=ref.conv_transpose, round_trip={"strides": 2}, activity_regularizer=True,
        doc="the kernel is (*kernel_size, filters, in_channels), so its fan_in counts the filters"))

DEPTHWISE_ARGS = {"kernel_size": REQUIRED, "strides": 1, "padding": "valid", "depth_multiplier": 1, "data_format": None,
                  "dilation_rate": 1, "activation": None, "use_bias": True, "depthwise_initializer": "glorot_uniform",
                  "bias_initializer": "zeros", "depthwise_regularizer": None, "bias_regularizer": None,
                  "activity_regularizer": None, "depthwise_constraint": None, "bias_constraint": None}

#: rank -> (slug, class) of the depthwise and of the separable convolution
DEPTHWISE = {1: ("depthwise-conv1d", "DepthwiseConv1D", "separable-conv1d", "SeparableConv1D"),
             2: ("depthwise-conv2d", "DepthwiseConv2D", "separable-conv2d", "SeparableConv2D")}
for _rank, (_slug, _cls, _separable_slug, _separable_cls) in DEPTHWISE.items():
    declare(Layer(
        _slug, _cls, "layer",
        arguments={**DEPTHWISE_ARGS, "strides": 1 if _rank == 1 else (1,) * _rank,
                   "dilation_rate": 1 if _rank == 1 else (1,) * _rank},
        args={"kernel_size": 3, "depth_multiplier": 2},
        weights=(Weight("kernel", lambda a, s: (*kernel_size(a, rank(a, s)), channels(a, s), a["depth_multiplier"]),
                        "glorot_uniform", "depthwise_initializer", "depthwise_regularizer", "depthwise_constraint",
                        aliases=("depthwise_kernel",)),
                 bias(lambda a, s: channels(a, s) * a["depth_multiplier"])),
        samples=(*conv_samples(_rank), Sample("init", (1, *(8,) * _rank, 64), {"kernel_size": 5, "depth_multiplier": 8})),
        output_shape=lambda a, s: conv_output(a, s, channels(a, s) * a["depth_multiplier"]),
        reference=ref.depthwise_conv, round_trip={"depth_multiplier": 3}, activity_regularizer=True))

    declare(Layer(
        _separable_slug, _separable_cls, "layer",
        arguments={**{k: v for k, v in CONV_ARGS.items() if k not in ("kernel_initializer", "kernel_regularizer", "kernel_constraint")},
                   "strides": 1 if _rank == 1 else (1,) * _rank, "dilation_rate": 1 if _rank == 1 else (1,) * _rank,
                   "depth_multiplier": 1, "depthwise_initializer": "glorot_uniform",
                   "pointwise_initializer": "glorot_uniform", "depthwise_regularizer": None,
                   "pointwise_regularizer": None, "depthwise_constraint": None, "pointwise_constraint": None},
        args={"filters": 4, "kernel_size": 3, "depth_multiplier": 2},
        weights=(Weight("depthwise_kernel", lambda a, s: (*kernel_size(a, rank(a, s)), channels(a, s), a["depth_multiplier"]),
                        "glorot_uniform", "depthwise_initializer", "depthwise_regularizer", "depthwise_constraint"),
                 Weight("pointwise_kernel", lambda a, s: (*(1,) * rank(a, s), channels(a, s) * a["depth_multiplier"], a["filters"]),
                        "glorot_uniform", "pointwise_initializer", "pointwise_regularizer", "pointwise_constraint"),
                 bias(lambda a, s: a["filters"])),
        samples=(*conv_samples(_rank),
                 Sample("init", (1, *(8,) * _rank, 64), {"filters": 128, "kernel_size": 5, "depth_multiplier": 8})),
        output_shape=lambda a, s: conv_output(a, s, a["filters"]),
        reference=ref.separable_conv, round_trip={"depth_multiplier": 3}, activity_regularizer=True))

declare(Layer(
    "dense", "Dense", "layer",
    arguments={"units": REQUIRED, "activation": None, "use_bias": True, "kernel_initializer": "glorot_uniform",
               "bias_initializer": "zeros", "kernel_regularizer": None, "bias_regularizer": None,
               "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None},
    args={"units": 3},
    weights=(Weight("kernel", lambda a, s: (s[-1], a["units"]), "glorot_uniform", "kernel_initializer",
                    "kernel_regularizer", "kernel_constraint"),
             bias(lambda a, s: a["units"])),
    samples=(Sample("default", (4, 5)), Sample("batch-of-one", (1, 5)), Sample("one-feature", (4, 1)),
             Sample("rank-3", (2, 3, 5)), Sample("init", (1, 250), {"units": 200})),
    output_shape=lambda a, s: (*s[:-1], a["units"]), reference=ref.dense, activity_regularizer=True))

declare(Layer(
    "embedding", "Embedding", "layer",
    arguments={"input_dim": REQUIRED, "output_dim": REQUIRED, "embeddings_initializer": "uniform",
               "embeddings_regularizer": None, "embeddings_constraint": None, "mask_zero": False},
    args={"input_dim": 10, "output_dim": 4},
    weights=(Weight("embeddings", lambda a, s: (a["input_dim"], a["output_dim"]), "uniform", "embeddings_initializer",
                    "embeddings_regularizer", "embeddings_constraint", fans=None),),
    samples=(Sample("default", (3, 5), integers=10), Sample("batch-of-one", (1, 5), integers=10),
             Sample("one-index", (3, 1), integers=10), Sample("rank-3", (2, 3, 4), integers=10),
             Sample("init", (1, 4), {"input_dim": 500, "output_dim": 100}, integers=500)),
    output_shape=lambda a, s: (*s, a["output_dim"]), reference=ref.embedding, round_trip={"mask_zero": True},
    doc="its default initializer is 'uniform' (RandomUniform, ±0.05), which does not scale with fans"))

declare(Layer(
    "einsum-dense", "EinsumDense", "layer",
    arguments={"equation": REQUIRED, "output_shape": REQUIRED, "activation": None, "bias_axes": None,
               "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros", "kernel_regularizer": None,
               "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None},
    args={"equation": "abc,cde->abde", "output_shape": (None, 4, 6), "bias_axes": "de"},
    weights=(Weight("kernel", lambda a, s: (s[-1], *a["output_shape"][1:]), "glorot_uniform", "kernel_initializer",
                    "kernel_regularizer", "kernel_constraint", fans=leading_axes_fans(1)),
             Weight("bias", lambda a, s: tuple(a["output_shape"][1:]), "zeros", "bias_initializer", "bias_regularizer",
                    "bias_constraint", fans=None)),
    samples=(Sample("default", (2, 3, 5)), Sample("batch-of-one", (1, 3, 5)), Sample("one-feature", (2, 3, 1)),
             Sample("init", (1, 2, 100), {"output_shape": (None, 20, 30)})),
    output_shape=lambda a, s: (*s[:-1], *a["output_shape"][1:]), reference=ref.einsum_dense,
    doc="a kernel (in, 4, 6) has fan_in in and fan_out 4·6: the contracted and the output axes"))

ATTENTION_ARGS = {"dropout": 0.0, "use_bias": True, "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
                  "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
                  "kernel_constraint": None, "bias_constraint": None, "seed": None}


def attention_weights(heads: Mapping[str, str], head_dim: str) -> tuple[Weight, ...]:
    """The projections of a multi-head attention: ``query``, ``key`` and ``value`` kernels
    ``(dim, heads, head_dim)`` (fan_in dim, fan_out heads·head_dim) with biases ``(heads, head_dim)``, and
    ``attention_output`` ``(query heads, head_dim, dim)`` (fan_in heads·head_dim); ``heads`` names the
    argument that gives each projection's number of heads."""
    def kernel(n: str) -> ShapeRule:
        return lambda a, s: (s[-1], a[n], a[head_dim])

    def bias(n: str) -> ShapeRule:
        return lambda a, s: (a[n], a[head_dim])

    kernels = tuple(Weight(f"{name}/kernel", kernel(n), "glorot_uniform", "kernel_initializer", "kernel_regularizer",
                           "kernel_constraint", fans=leading_axes_fans(1)) for name, n in heads.items())
    biases = tuple(Weight(f"{name}/bias", bias(n), "zeros", "bias_initializer", "bias_regularizer", "bias_constraint",
                          fans=None) for name, n in heads.items())
    output = (Weight("attention_output/kernel", lambda a, s: (a[heads["query"]], a[head_dim], s[-1]), "glorot_uniform",
                     "kernel_initializer", "kernel_regularizer", "kernel_constraint", fans=leading_axes_fans(2)),
              Weight("attention_output/bias", lambda a, s: (s[-1],), "zeros", "bias_initializer", "bias_regularizer",
                     "bias_constraint", fans=None))
    return (*kernels, *biases, *output)


declare(Layer(
    "multi-head-attention", "MultiHeadAttention", "layer",
    arguments={"num_heads": REQUIRED, "key_dim": REQUIRED, "value_dim": None, "output_shape": None,
               "attention_axes": None, **ATTENTION_ARGS},
    args={"num_heads": 2, "key_dim": 4}, resolved_defaults={"value_dim": 4},
    weights=attention_weights({"query": "num_heads", "key": "num_heads", "value": "num_heads"}, "key_dim"),
    samples=(Sample("default", (2, 3, 6), extra={"value": (2, 5, 6)}),
             Sample("batch-of-one", (1, 3, 6), extra={"value": (1, 5, 6)}),
             Sample("one-step", (2, 1, 6), extra={"value": (2, 1, 6)}),
             Sample("init", (1, 2, 128), {"num_heads": 8, "key_dim": 32}, extra={"value": (1, 2, 128)})),
    output_shape=lambda a, s: s, reference=ref.multi_head_attention,
    dropout=(DropoutArg("dropout", "attention probabilities"),), seed=True, attention_mask="attention_mask",
    doc="kernels (dim, heads, key_dim) have fan_in dim and fan_out heads·key_dim; its activity_regularizer "
        "applies to each of its four projections ('for dense layer activity'), so it is not declared as the "
        "layer's own"))

declare(Layer(
    "group-query-attention", "GroupQueryAttention", "layer",
    arguments={"head_dim": REQUIRED, "num_query_heads": REQUIRED, "num_key_value_heads": REQUIRED, **ATTENTION_ARGS},
    args={"head_dim": 4, "num_query_heads": 4, "num_key_value_heads": 2},
    weights=attention_weights({"query": "num_query_heads", "key": "num_key_value_heads",
                               "value": "num_key_value_heads"}, "head_dim"),
    samples=(Sample("default", (2, 3, 6), extra={"value": (2, 5, 6)}),
             Sample("one-key-value-head", (2, 3, 6), {"num_key_value_heads": 1}, extra={"value": (2, 5, 6)}),
             Sample("init", (1, 2, 128), {"head_dim": 32, "num_query_heads": 8, "num_key_value_heads": 4},
                    extra={"value": (1, 2, 128)})),
    output_shape=lambda a, s: s, reference=ref.grouped_query_attention,
    dropout=(DropoutArg("dropout", "attention probabilities"),), seed=True, keras2=False,
    attention_mask="attention_mask",
    doc="keras.layers.GroupQueryAttention (GroupedQueryAttention in its module): each key and value head serves "
        "num_query_heads / num_key_value_heads consecutive query heads; its activity_regularizer, as "
        "MultiHeadAttention's, applies to each projection"))

declare(Layer(
    "additive-attention", "AdditiveAttention", "layer",
    arguments={"use_scale": True, "dropout": 0.0},
    args={},
    weights=(Weight("scale", lambda a, s: (s[-1],), "glorot_uniform"),),
    samples=(Sample("default", (2, 3, 4), extra={"value": (2, 5, 4)}),
             Sample("batch-of-one", (1, 3, 4), extra={"value": (1, 5, 4)}),
             Sample("init", (1, 3, 256), extra={"value": (1, 5, 256)})),
    output_shape=lambda a, s: s, reference=ref.additive_attention, round_trip={"dropout": 0.1},
    inputs_as_list=True, dropout=(DropoutArg("dropout", "attention scores"),), attention_mask="value_mask",
    doc="its scale (dim,) has no initializer argument; it starts from glorot_uniform (its build(); the "
        "documentation says only 'a scalar variable'), whose fans for one axis are its length"))

declare(Layer(
    "attention", "Attention", "layer",
    arguments={"use_scale": False, "score_mode": "dot", "dropout": 0.0, "seed": None},
    args={},
    samples=(Sample("default", (2, 3, 4), extra={"value": (2, 5, 4)}),
             Sample("batch-of-one", (1, 3, 4), extra={"value": (1, 5, 4)}),
             Sample("one-step", (2, 1, 4), extra={"value": (2, 1, 4)})),
    output_shape=lambda a, s: s, reference=ref.dot_attention, round_trip={"use_scale": True}, inputs_as_list=True,
    dropout=(DropoutArg("dropout", "attention scores"),), seed=True, attention_mask="value_mask"))

RNN_ARGS = {"units": REQUIRED, "activation": "tanh", "use_bias": True, "kernel_initializer": "glorot_uniform",
            "recurrent_initializer": "orthogonal", "bias_initializer": "zeros", "kernel_regularizer": None,
            "recurrent_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "recurrent_constraint": None, "bias_constraint": None, "dropout": 0.0,
            "recurrent_dropout": 0.0, "return_sequences": False, "return_state": False, "go_backwards": False,
            "stateful": False, "unroll": False, "seed": None}
RNN_DROPOUT = (DropoutArg("dropout", "the inputs of every step"),
               DropoutArg("recurrent_dropout", "the state carried into every step"))
RNN_SAMPLES = (Sample("default", (2, 5, 3)), Sample("batch-of-one", (1, 5, 3)), Sample("one-step", (2, 1, 3)),
               Sample("one-feature", (2, 5, 1)), Sample("sequences", (2, 5, 3), {"return_sequences": True}),
               Sample("mask", (3, 5, 3), masked_tail=(0, 2, 4)),
               Sample("init", (1, 2, 128), {"units": 64}))


def rnn_weights(gates: int, bias_shape=None, bias_default="zeros") -> tuple[Weight, ...]:
    return (Weight("kernel", lambda a, s: (s[-1], gates * a["units"]), "glorot_uniform", "kernel_initializer",
                   "kernel_regularizer", "kernel_constraint"),
            Weight("recurrent_kernel", lambda a, s: (a["units"], gates * a["units"]), "orthogonal",
                   "recurrent_initializer", "recurrent_regularizer", "recurrent_constraint"),
            Weight("bias", bias_shape or (lambda a, s: (gates * a["units"],)), bias_default, "bias_initializer",
                   "bias_regularizer", "bias_constraint", fans=None))


def rnn_output(a: Args, s: Shape) -> Shape:
    return (s[0], s[1], a["units"]) if a.get("return_sequences") else (s[0], a["units"])


SIMPLE_RNN = declare(Layer("simple-rnn", "SimpleRNN", "layer", arguments=RNN_ARGS, args={"units": 4}, weights=rnn_weights(1),
              samples=RNN_SAMPLES, output_shape=rnn_output, reference=ref.simple_rnn, dropout=RNN_DROPOUT,
              seed=True, activity_regularizer=True, round_trip={"return_sequences": True}))
GRU = declare(Layer("gru", "GRU", "layer", arguments={**RNN_ARGS, "recurrent_activation": "sigmoid", "reset_after": True},
              args={"units": 4}, weights=rnn_weights(3, lambda a, s: (2, 3 * a["units"])), samples=RNN_SAMPLES,
              output_shape=rnn_output, reference=ref.gru, dropout=RNN_DROPOUT, seed=True, activity_regularizer=True,
              round_trip={"return_sequences": True}, rtol=2e-5,
              doc="reset_after=True: the bias holds an input row and a recurrent row"))
LSTM = declare(Layer("lstm", "LSTM", "layer",
              arguments={**RNN_ARGS, "recurrent_activation": "sigmoid", "unit_forget_bias": True},
              args={"units": 4}, weights=rnn_weights(4, bias_default="unit_forget_bias"), samples=RNN_SAMPLES,
              output_shape=rnn_output, reference=ref.lstm, dropout=RNN_DROPOUT, seed=True, activity_regularizer=True,
              round_trip={"return_sequences": True}, rtol=2e-5,
              doc="unit_forget_bias=True: the bias starts at zeros with ones for the forget gate"))

#: What a recurrent layer takes that its cell does not: how the sequence is run, and the activity regulariser.
SEQUENCE_ARGS = ("activity_regularizer", "return_sequences", "return_state", "go_backwards", "stateful", "unroll")
for _layer, _slug, _cls in ((SIMPLE_RNN, "simple-rnn-cell", "SimpleRNNCell"), (GRU, "gru-cell", "GRUCell"),
                            (LSTM, "lstm-cell", "LSTMCell")):
    declare(dataclasses.replace(
        _layer, slug=_slug, cls=_cls, arguments={k: v for k, v in _layer.arguments.items() if k not in SEQUENCE_ARGS},
        samples=tuple(s for s in RNN_SAMPLES if s.name in ("default", "mask", "init")), activity_regularizer=False,
        round_trip={}, wrapper="RNN", doc=f"run as keras.layers.RNN({_cls}(...)); {_layer.doc or 'as ' + _layer.cls}"))

CONV_LSTM_ARGS = {**{k: v for k, v in RNN_ARGS.items() if k not in ("units", "unroll")},
                  "filters": REQUIRED, "kernel_size": REQUIRED, "strides": 1, "padding": "valid", "data_format": None,
                  "dilation_rate": 1, "recurrent_activation": "sigmoid", "unit_forget_bias": True}
#: rank -> (slug, class, side of its samples, its init sample's arguments and channels)
CONV_LSTMS = {1: ("conv-lstm1d", "ConvLSTM1D", 6, {"filters": 16, "kernel_size": 5}, 64),
              2: ("conv-lstm2d", "ConvLSTM2D", 6, {"filters": 16, "kernel_size": 5}, 64),
              3: ("conv-lstm3d", "ConvLSTM3D", 4, {"filters": 16, "kernel_size": 3}, 32)}
for _rank, (_slug, _cls, _side, _init, _channels) in CONV_LSTMS.items():
    declare(Layer(
        _slug, _cls, "layer", arguments=CONV_LSTM_ARGS,
        args={"filters": 2, "kernel_size": 3},
        weights=(Weight("kernel", lambda a, s: (*kernel_size(a, len(s) - 3), s[-1], 4 * a["filters"]), "glorot_uniform",
                        "kernel_initializer", "kernel_regularizer", "kernel_constraint"),
                 Weight("recurrent_kernel", lambda a, s: (*kernel_size(a, len(s) - 3), a["filters"], 4 * a["filters"]),
                        "orthogonal", "recurrent_initializer", "recurrent_regularizer", "recurrent_constraint"),
                 Weight("bias", lambda a, s: (4 * a["filters"],), "unit_forget_bias", "bias_initializer",
                        "bias_regularizer", "bias_constraint", fans=None)),
        samples=(Sample("default", (2, 3, *(_side,) * _rank, 2)), Sample("batch-of-one", (1, 3, *(_side,) * _rank, 2)),
                 Sample("init", (1, 2, *(_side,) * _rank, _channels), _init)),
        dropout=RNN_DROPOUT, seed=True, activity_regularizer=True, round_trip={"return_sequences": True},
        doc="no reference: its forward computation is not checked, only the four topics"))

NORM_ARGS = {"axis": -1, "epsilon": 1e-3, "center": True, "scale": True, "beta_initializer": "zeros",
             "gamma_initializer": "ones", "beta_regularizer": None, "gamma_regularizer": None,
             "beta_constraint": None, "gamma_constraint": None}


def gamma_beta(size) -> tuple[Weight, ...]:
    return (Weight("gamma", lambda a, s: (size(a, s),), "ones", "gamma_initializer", "gamma_regularizer",
                   "gamma_constraint", fans=None),
            Weight("beta", lambda a, s: (size(a, s),), "zeros", "beta_initializer", "beta_regularizer",
                   "beta_constraint", fans=None))


declare(Layer(
    "layer-normalization", "LayerNormalization", "batchnorm", arguments=NORM_ARGS, args={},
    weights=gamma_beta(lambda a, s: s[-1]),
    samples=(Sample("default", (4, 6)), Sample("batch-of-one", (1, 6)), Sample("one-feature", (4, 1)),
             Sample("rank-3", (2, 3, 5)), Sample("rank-4", (2, 3, 4, 5)), Sample("epsilon-0.1", (4, 6), {"epsilon": 0.1})),
    output_shape=lambda a, s: s, reference=ref.layer_normalization, round_trip={"epsilon": 0.01},
    doc="a single feature normalises to beta: its variance is 0"))

declare(Layer(
    "group-normalization", "GroupNormalization", "batchnorm", arguments={**NORM_ARGS, "groups": 32},
    args={"groups": 2}, weights=gamma_beta(lambda a, s: s[-1]),
    samples=(Sample("default", (3, 4)), Sample("batch-of-one", (1, 4)), Sample("rank-3", (2, 5, 4)),
             Sample("rank-4", (2, 3, 3, 4)), Sample("one-channel-per-group", (2, 5, 4), {"groups": 4}),
             Sample("one-group", (2, 5, 4), {"groups": 1}), Sample("epsilon-0.1", (2, 5, 4), {"epsilon": 0.1})),
    output_shape=lambda a, s: s, reference=ref.group_normalization, round_trip={"epsilon": 0.01, "groups": 4}))

declare(Layer(
    "rms-normalization", "RMSNormalization", "batchnorm", arguments={"axis": -1, "epsilon": 1e-6}, args={},
    weights=(Weight("scale", lambda a, s: (s[-1],), "ones", fans=None),),
    samples=(Sample("default", (4, 6)), Sample("batch-of-one", (1, 6)), Sample("one-feature", (4, 1)),
             Sample("rank-3", (2, 3, 5)), Sample("epsilon-0.1", (4, 6), {"epsilon": 0.1})),
    output_shape=lambda a, s: s, reference=ref.rms_normalization, round_trip={"epsilon": 0.01},
    keras2=False, since="3.9.0", doc="its weight 'scale' has no initializer, regulariser or constraint argument"))

declare(Layer(
    "unit-normalization", "UnitNormalization", "batchnorm", arguments={"axis": -1}, args={},
    samples=(Sample("default", (4, 6)), Sample("batch-of-one", (1, 6)), Sample("rank-3", (2, 3, 5))),
    output_shape=lambda a, s: s, reference=ref.unit_normalization))

declare(Layer(
    "batch-normalization", "BatchNormalization", "batchnorm",
    arguments={**NORM_ARGS, "momentum": 0.99, "moving_mean_initializer": "zeros", "moving_variance_initializer": "ones"},
    args={},
    weights=(*gamma_beta(lambda a, s: s[a.get("axis", -1)]),
             Weight("moving_mean", lambda a, s: (s[a.get("axis", -1)],), "zeros", "moving_mean_initializer",
                    fans=None, trainable=False),
             Weight("moving_variance", lambda a, s: (s[a.get("axis", -1)],), "ones", "moving_variance_initializer",
                    fans=None, trainable=False, positive=True)),
    samples=(Sample("default", (8, 3)), Sample("batch-of-one", (1, 3)), Sample("one-channel", (8, 1)),
             Sample("rank-4", (2, 3, 3, 4)), Sample("channels-first", (2, 4, 3, 3), {"axis": 1}),
             Sample("rank-3-axis-1", (2, 4, 5), {"axis": 1}), Sample("rank-1", (5,), {"axis": 0})),
    output_shape=lambda a, s: s, reference=ref.batch_normalization, round_trip={"momentum": 0.9, "epsilon": 0.01},
    doc="moving statistics are weights that no regulariser or constraint argument reaches"))

declare(Layer(
    "prelu", "PReLU", "layer",
    arguments={"alpha_initializer": "zeros", "alpha_regularizer": None, "alpha_constraint": None, "shared_axes": None},
    args={},
    weights=(Weight("alpha", lambda a, s: tuple(1 if i + 1 in (a.get("shared_axes") or ()) else n
                                                for i, n in enumerate(s[1:])),
                    "zeros", "alpha_initializer", "alpha_regularizer", "alpha_constraint", fans=None),),
    samples=(Sample("default", (4, 6)), Sample("batch-of-one", (1, 6)), Sample("rank-4", (2, 3, 3, 2)),
             Sample("shared-axes", (2, 3, 3, 2), {"shared_axes": [1, 2]})),
    output_shape=lambda a, s: s, reference=ref.prelu, round_trip={"shared_axes": [1]}))

# -- The dropout and noise family: no weights; what they drop is pinned by conformance/cases/dropout.py ----

IDENTITY = lambda x, w, a: x  # noqa: E731  (inference: each is the identity)
NOISE_SAMPLES = (Sample("default", (4, 6)), Sample("batch-of-one", (1, 6)), Sample("rank-4", (2, 3, 3, 2)))
for _cls, _slug, _arg in (("Dropout", "dropout", "rate"), ("GaussianDropout", "gaussian-dropout", "rate"),
                          ("GaussianNoise", "gaussian-noise", "stddev"), ("AlphaDropout", "alpha-dropout", "rate")):
    declare(Layer(_slug, _cls, "dropout",
                  arguments={_arg: REQUIRED, "seed": None, **({"noise_shape": None} if _cls in ("Dropout", "AlphaDropout") else {})},
                  args={_arg: 0.5}, samples=NOISE_SAMPLES, output_shape=lambda a, s: s, reference=IDENTITY,
                  dropout=(DropoutArg(_arg, "the inputs"),), seed=True, round_trip={_arg: 0.25},
                  since="3.0.2" if _cls == "AlphaDropout" else "3.0.0"))

for _rank, (_slug, _cls) in {1: ("spatial-dropout1d", "SpatialDropout1D"), 2: ("spatial-dropout2d", "SpatialDropout2D"),
                             3: ("spatial-dropout3d", "SpatialDropout3D")}.items():
    declare(Layer(
        _slug, _cls, "dropout",
        arguments={"rate": REQUIRED, "seed": None, **({"data_format": None} if _rank > 1 else {})},
        args={"rate": 0.5},
        samples=(Sample("default", (2, *(4,) * _rank, 3)), Sample("batch-of-one", (1, *(4,) * _rank, 3)),
                 *((Sample("channels-first", (2, 3, *(4,) * _rank), {"data_format": "channels_first"}),) if _rank > 1 else ())),
        output_shape=lambda a, s: s, reference=IDENTITY, dropout=(DropoutArg("rate", "whole channels"),), seed=True,
        round_trip={"rate": 0.25}))
