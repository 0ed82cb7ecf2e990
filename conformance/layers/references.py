"""Float64 NumPy references of the declared layers' forward computations, from their documented formulas.

Each takes the input ``x``, the layer's weights by name (``{"kernel": ..., "bias": ...}``) and its
constructor arguments, and returns the output of a call in inference.  Inputs are channels-last unless
``data_format="channels_first"`` says otherwise; convolutions are written as sums over kernel offsets,
the recurrent layers as their step equations, so that each can be read against the documentation.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping

import numpy as np

Weights = Mapping[str, np.ndarray]
Args = Mapping[str, Any]


def as_tuple(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * rank


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# -- Convolutions --------------------------------------------------------------------------------------

def channels_last(x: np.ndarray, args: Args) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if args.get("data_format") == "channels_first" else x


def restore_format(y: np.ndarray, args: Args) -> np.ndarray:
    return np.moveaxis(y, -1, 1) if args.get("data_format") == "channels_first" else y


def pad_same(x: np.ndarray, kernel_size, strides, dilation) -> np.ndarray:
    """Zero padding of 'same': output length ceil(n / stride), the odd zero at the end."""
    pads = [(0, 0)]
    for n, k, s, d in zip(x.shape[1:-1], kernel_size, strides, dilation, strict=True):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)])


def correlate(x: np.ndarray, kernel: np.ndarray, strides, padding: str, dilation) -> np.ndarray:
    """``y[b, o] = Σ_k x[b, o·s + k·d] · kernel[k]`` over kernel offsets k (channels last, kernel
    ``(*kernel_size, in, out)``): the cross-correlation every Keras convolution computes."""
    kernel_size = kernel.shape[:-2]
    if padding == "same":
        x = pad_same(x, kernel_size, strides, dilation)
    spatial = x.shape[1:-1]
    out = [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(spatial, kernel_size, strides, dilation, strict=True)]
    y = np.zeros((x.shape[0], *out, kernel.shape[-1]))
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        index = tuple(slice(o * d, o * d + (m - 1) * s + 1, s) for o, d, m, s in zip(offset, dilation, out, strides, strict=True))
        y += x[(slice(None), *index, slice(None))] @ kernel[offset]
    return y


def conv(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``Conv1D``/``Conv2D``/``Conv3D``: correlate with ``kernel``, add ``bias``."""
    rank = w["kernel"].ndim - 2
    y = correlate(channels_last(x, args), w["kernel"], as_tuple(args.get("strides", 1), rank),
                  args.get("padding", "valid"), as_tuple(args.get("dilation_rate", 1), rank))
    return restore_format(y + w.get("bias", 0.0), args)


def conv_transpose(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``Conv*Transpose`` with ``padding="valid"``: the adjoint of ``conv``, each input position
    adding ``x[i] · kernelᵀ[k]`` at ``i·s + k·d``; the kernel is ``(*kernel_size, filters, in)``."""
    kernel = w["kernel"]
    rank = kernel.ndim - 2
    strides, dilation = as_tuple(args.get("strides", 1), rank), as_tuple(args.get("dilation_rate", 1), rank)
    x = channels_last(x, args)
    spatial = x.shape[1:-1]
    out = [(n - 1) * s + (k - 1) * d + 1 for n, k, s, d in zip(spatial, kernel.shape[:-2], strides, dilation, strict=True)]
    y = np.zeros((x.shape[0], *out, kernel.shape[-2]))
    for offset in itertools.product(*(range(k) for k in kernel.shape[:-2])):
        index = tuple(slice(o * d, o * d + (n - 1) * s + 1, s) for o, d, n, s in zip(offset, dilation, spatial, strides, strict=True))
        y[(slice(None), *index, slice(None))] += x @ kernel[offset].T
    return restore_format(y + w.get("bias", 0.0), args)


def depthwise(x: np.ndarray, kernel: np.ndarray, args: Args) -> np.ndarray:
    """Each input channel c correlated with its own ``kernel[..., c, m]``; output channel ``c·M + m``."""
    rank = kernel.ndim - 2
    parts = [correlate(x[..., c:c + 1], kernel[..., c:c + 1, :], as_tuple(args.get("strides", 1), rank),
                       args.get("padding", "valid"), as_tuple(args.get("dilation_rate", 1), rank))
             for c in range(kernel.shape[-2])]
    return np.concatenate(parts, axis=-1)


def depthwise_conv(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``DepthwiseConv1D``/``2D``: ``depthwise`` with ``kernel`` (Keras 2: ``depthwise_kernel``), then ``bias``."""
    y = depthwise(channels_last(x, args), w["kernel"], args)
    return restore_format(y + w.get("bias", 0.0), args)


def separable_conv(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``SeparableConv*``: ``depthwise`` with ``depthwise_kernel``, then a 1×…×1 convolution with
    ``pointwise_kernel``, then ``bias``."""
    y = depthwise(channels_last(x, args), w["depthwise_kernel"], args)
    pointwise = w["pointwise_kernel"].reshape(w["pointwise_kernel"].shape[-2:])
    return restore_format(y @ pointwise + w.get("bias", 0.0), args)


# -- Embedding, Dense, EinsumDense ------------------------------------------------------------------------

def embedding(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """Row ``i`` of ``embeddings`` for each index ``i``."""
    return w["embeddings"][x.astype(np.int64)]


def dense(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``x · kernel + bias`` over the last axis."""
    return x @ w["kernel"] + w.get("bias", 0.0)


def einsum_dense(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``einsum(equation, x, kernel) + bias`` (bias along ``bias_axes``, broadcast over the rest)."""
    y = np.einsum(args["equation"], x, w["kernel"])
    if "bias" not in w:
        return y
    output_spec = args["equation"].split("->")[1]
    bias_axes = args["bias_axes"]
    shape = [y.shape[i] if c in bias_axes else 1 for i, c in enumerate(output_spec)]
    return y + w["bias"].reshape(shape)


# -- Normalisation ----------------------------------------------------------------------------------------

def layer_normalization(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``(x − mean) / sqrt(var + epsilon) · gamma + beta``, moments over ``axis`` of each example."""
    axis = args.get("axis", -1)
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    return (x - mean) / np.sqrt(var + args.get("epsilon", 1e-3)) * w.get("gamma", 1.0) + w.get("beta", 0.0)


def group_normalization(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """Channels (the last axis) split into ``groups`` of consecutive channels; each example's group
    normalised with the moments over its positions and channels, then ``· gamma + beta``."""
    groups = args.get("groups", 32)
    shape = x.shape
    grouped = x.reshape(*shape[:-1], groups, shape[-1] // groups)
    axes = tuple(range(1, grouped.ndim - 2)) + (grouped.ndim - 1,)
    mean = grouped.mean(axis=axes, keepdims=True)
    var = grouped.var(axis=axes, keepdims=True)
    y = ((grouped - mean) / np.sqrt(var + args.get("epsilon", 1e-3))).reshape(shape)
    return y * w.get("gamma", 1.0) + w.get("beta", 0.0)


def rms_normalization(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``x / sqrt(mean(x²) + epsilon) · scale``, the mean over ``axis``."""
    ms = np.mean(np.square(x), axis=args.get("axis", -1), keepdims=True)
    return x / np.sqrt(ms + args.get("epsilon", 1e-6)) * w["scale"]


def unit_normalization(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``x / ‖x‖₂`` along ``axis``."""
    return x / np.sqrt(np.sum(np.square(x), axis=args.get("axis", -1), keepdims=True))


def batch_normalization(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """Inference: ``(x − moving_mean) / sqrt(moving_variance + epsilon) · gamma + beta`` along ``axis``."""
    axis = args.get("axis", -1) % x.ndim
    shape = [x.shape[i] if i == axis else 1 for i in range(x.ndim)]
    get = lambda name, default: w[name].reshape(shape) if name in w else default  # noqa: E731
    return ((x - get("moving_mean", 0.0)) / np.sqrt(get("moving_variance", 1.0) + args.get("epsilon", 1e-3))
            * get("gamma", 1.0) + get("beta", 0.0))


def prelu(x: np.ndarray, w: Weights, args: Args) -> np.ndarray:
    """``max(x, 0) + alpha · min(x, 0)``."""
    return np.maximum(x, 0.0) + w["alpha"] * np.minimum(x, 0.0)


# -- Recurrent layers ----------------------------------------------------------------------------------

def run_steps(x: np.ndarray, step, state: tuple[np.ndarray, ...], args: Args, mask: np.ndarray | None):
    """Apply ``step(x_t, state) -> (output, state)`` along the time axis; a masked step keeps the state
    and the previous output.  Returns the last output, or every output with ``return_sequences``."""
    outputs = []
    output = state[0]
    for t in range(x.shape[1]):
        new_output, new_state = step(x[:, t], state)
        if mask is not None:
            keep = mask[:, t:t + 1]
            new_output = np.where(keep, new_output, output)
            new_state = tuple(np.where(keep, n, o) for n, o in zip(new_state, state, strict=True))
        output, state = new_output, new_state
        outputs.append(output)
    return np.stack(outputs, axis=1) if args.get("return_sequences") else output


def simple_rnn(x: np.ndarray, w: Weights, args: Args, mask: np.ndarray | None = None) -> np.ndarray:
    """``h_t = tanh(x_t · kernel + h_{t−1} · recurrent_kernel + bias)``, ``h_0 = 0``."""
    h0 = np.zeros((x.shape[0], w["kernel"].shape[1]))

    def step(xt, state):
        h = np.tanh(xt @ w["kernel"] + state[0] @ w["recurrent_kernel"] + w.get("bias", 0.0))
        return h, (h,)

    return run_steps(x, step, (h0,), args, mask)


def gru(x: np.ndarray, w: Weights, args: Args, mask: np.ndarray | None = None) -> np.ndarray:
    """GRU with ``reset_after=True`` (the default): gates in the order z, r, h; ``bias`` holds an input
    and a recurrent bias; ``h̃ = tanh(x·W_h + b_h + r ⊙ (h·U_h + b'_h))``, ``h = z ⊙ h_{t−1} + (1 − z) ⊙ h̃``."""
    units = w["recurrent_kernel"].shape[0]
    bias = w.get("bias", np.zeros((2, 3 * units)))
    h0 = np.zeros((x.shape[0], units))

    def step(xt, state):
        h_prev = state[0]
        xz, xr, xh = np.split(xt @ w["kernel"] + bias[0], 3, axis=-1)
        hz, hr, hh = np.split(h_prev @ w["recurrent_kernel"] + bias[1], 3, axis=-1)
        z, r = sigmoid(xz + hz), sigmoid(xr + hr)
        h = z * h_prev + (1 - z) * np.tanh(xh + r * hh)
        return h, (h,)

    return run_steps(x, step, (h0,), args, mask)


def lstm(x: np.ndarray, w: Weights, args: Args, mask: np.ndarray | None = None) -> np.ndarray:
    """LSTM: gates in the order i, f, c, o of ``x·kernel + h·recurrent_kernel + bias``;
    ``c_t = f ⊙ c_{t−1} + i ⊙ tanh(ĉ)``, ``h_t = o ⊙ tanh(c_t)``."""
    units = w["recurrent_kernel"].shape[0]
    zeros = np.zeros((x.shape[0], units))

    def step(xt, state):
        h_prev, c_prev = state
        i, f, c_hat, o = np.split(xt @ w["kernel"] + h_prev @ w["recurrent_kernel"] + w.get("bias", 0.0), 4, axis=-1)
        c = sigmoid(f) * c_prev + sigmoid(i) * np.tanh(c_hat)
        h = sigmoid(o) * np.tanh(c)
        return h, (h, c)

    return run_steps(x, step, (zeros, zeros), args, mask)


# -- Attention ------------------------------------------------------------------------------------------

def attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, w: Weights) -> np.ndarray:
    """Per head, ``softmax(q·kᵀ / sqrt(head_dim))·v`` (``(batch, steps, heads, head_dim)`` each), then the
    output projection ``attention_output``."""
    scores = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
    attended = np.einsum("bhqs,bshk->bqhk", softmax(scores), v)
    return np.einsum("bqhk,hko->bqo", attended, w["attention_output/kernel"]) + w.get("attention_output/bias", 0.0)


def project(t: np.ndarray, w: Weights, name: str) -> np.ndarray:
    """An attention projection: ``(batch, steps, dim) · (dim, heads, head_dim) + (heads, head_dim)``."""
    return np.einsum("btd,dhk->bthk", t, w[f"{name}/kernel"]) + w.get(f"{name}/bias", 0.0)


def multi_head_attention(x: np.ndarray, w: Weights, args: Args, value: np.ndarray | None = None) -> np.ndarray:
    """Query from ``x``, key and value from ``value`` (or ``x``): :func:`attend`."""
    value = x if value is None else value
    return attend(project(x, w, "query"), project(value, w, "key"), project(value, w, "value"), w)


def grouped_query_attention(x: np.ndarray, w: Weights, args: Args, value: np.ndarray | None = None) -> np.ndarray:
    """``MultiHeadAttention`` with ``num_key_value_heads`` key and value heads, each shared by
    ``num_query_heads / num_key_value_heads`` consecutive query heads."""
    value = x if value is None else value
    repeats = args["num_query_heads"] // args["num_key_value_heads"]
    k, v = (np.repeat(project(value, w, name), repeats, axis=2) for name in ("key", "value"))
    return attend(project(x, w, "query"), k, v, w)


def dot_attention(x: np.ndarray, w: Weights, args: Args, value: np.ndarray | None = None) -> np.ndarray:
    """``Attention`` (``score_mode="dot"``, no scale): ``softmax(query · valueᵀ) · value``, query ``x``."""
    value = x if value is None else value
    return softmax(np.einsum("bqd,bsd->bqs", x, value)) @ value


def additive_attention(x: np.ndarray, w: Weights, args: Args, value: np.ndarray | None = None) -> np.ndarray:
    """``AdditiveAttention`` (Bahdanau): scores ``sum(scale · tanh(query + key), axis=-1)``, key = value,
    then ``softmax(scores) · value``; ``scale`` is 1 without ``use_scale``."""
    value = x if value is None else value
    scale = w.get("scale", 1.0) if args.get("use_scale", True) else 1.0
    scores = np.sum(scale * np.tanh(x[:, :, None, :] + value[:, None, :, :]), axis=-1)
    return softmax(scores) @ value
