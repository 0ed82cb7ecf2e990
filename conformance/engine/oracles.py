"""Reference oracles in NumPy float64, written from the documented formulas.

Nothing here imports a framework: every expected value a case checks is
computed by these functions (or read from the notebook's printed output).
"""

from __future__ import annotations

import itertools

import numpy as np


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Dense layer without activation: ``y = x·W + b``."""
    y = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64)
    return y if bias is None else y + np.asarray(bias, np.float64)


def batchnorm_inference(x, gamma, beta, moving_mean, moving_variance, epsilon):
    """BatchNormalization in inference: ``γ·(x − moving_mean)/sqrt(moving_variance + ε) + β``.

    ``gamma``, ``beta`` and the moving statistics broadcast along the
    normalised axis (the last one unless the caller reshapes them).
    """
    x = np.asarray(x, np.float64)
    return gamma * (x - moving_mean) / np.sqrt(np.asarray(moving_variance, np.float64) + epsilon) + beta


def l1_penalty(weights: np.ndarray, l1: float) -> float:
    """L1 regulariser: ``l1·Σ|w|``."""
    return float(l1 * np.sum(np.abs(np.asarray(weights, np.float64))))


def l2_penalty(weights: np.ndarray, l2: float) -> float:
    """L2 regulariser: ``l2·Σw²`` (no factor ½)."""
    return float(l2 * np.sum(np.square(np.asarray(weights, np.float64))))


def l1_l2_penalty(weights: np.ndarray, l1: float, l2: float) -> float:
    """L1L2 regulariser: ``l1·Σ|w| + l2·Σw²``."""
    return l1_penalty(weights, l1) + l2_penalty(weights, l2)


def mean_squared_error(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """``mean((y_pred − y_true)²)`` over all elements (Keras's 'mse' averaged over the batch)."""
    d = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return float(np.mean(d * d))


def dropout_keep_scale(rate: float) -> float:
    """Inverted dropout: a kept unit is multiplied by ``1/(1 − rate)``, so the mean is unchanged."""
    return 1.0 / (1.0 - rate)


def dense_dropout_dense_dropout(h: np.ndarray, w: np.ndarray, rate1: float, rate2: float):
    """Exact distribution of ``Dropout(rate2)(Dropout(rate1)(h)·w)`` for one sample.

    ``h`` is the first layer's output (n units), ``w`` the second Dense kernel
    (n,) with zero bias.  Enumerates the 2**n masks of the first dropout and
    the keep/drop of the second.

    Returns ``(values, probabilities)``: the possible outputs, sorted and
    unique, and the probability of each.
    """
    h = np.asarray(h, np.float64)
    w = np.asarray(w, np.float64)
    n = h.size
    s1, s2 = dropout_keep_scale(rate1), dropout_keep_scale(rate2)
    outcomes: dict[float, float] = {}
    for mask in itertools.product((0, 1), repeat=n):
        m = np.array(mask, dtype=np.float64)
        kept = int(m.sum())
        p_mask = (1 - rate1) ** kept * rate1 ** (n - kept)
        value = s2 * s1 * float(np.sum(m * h * w))
        outcomes[value] = outcomes.get(value, 0.0) + p_mask * (1 - rate2)
        outcomes[0.0] = outcomes.get(0.0, 0.0) + p_mask * rate2
    values = np.array(sorted(outcomes))
    probs = np.array([outcomes[v] for v in values])
    return values, probs


def distribution_moments(values: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of a discrete distribution."""
    mean = float(np.sum(values * probs))
    var = float(np.sum(probs * (values - mean) ** 2))
    return mean, float(np.sqrt(var))


def on_lattice(samples: np.ndarray, values: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """For each sample, whether it equals one of ``values`` (within ``rtol`` of the largest value)."""
    samples = np.asarray(samples, np.float64).ravel()
    tol = rtol * max(1.0, float(np.max(np.abs(values))))
    idx = np.searchsorted(values, samples)
    below = values[np.clip(idx - 1, 0, len(values) - 1)]
    above = values[np.clip(idx, 0, len(values) - 1)]
    nearest = np.minimum(np.abs(samples - below), np.abs(samples - above))
    return nearest <= tol


# -- Weight initialisation --------------------------------------------------------------

#: stddev of a standard normal truncated to [-2, 2]; VarianceScaling divides by it so the
#: truncated draw has the intended variance (Keras docs: "truncated_normal" distribution).
TRUNCATED_NORMAL_STDDEV = 0.87962566103423978


def fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """(fan_in, fan_out) of a kernel shape.

    1-D: both are the length; 2-D ``(in, out)``; n-D convolution kernels
    ``(*spatial, in, out)``: ``in·receptive_field`` and ``out·receptive_field``
    with ``receptive_field = prod(spatial)``.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = float(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def variance_scaling_scale(shape, scale: float, mode: str, fan: tuple[float, float] | None = None) -> float:
    """The variance VarianceScaling aims for: ``scale / max(1, n)``, n the fan the mode names (of
    ``fans(shape)``, or the ``fan`` given: a layer's declared fan rule)."""
    fan_in, fan_out = fan or fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    return scale / max(1.0, n)


def variance_scaling_distribution(shape, scale: float, mode: str, distribution: str,
                                  fan: tuple[float, float] | None = None):
    """The exact distribution (a frozen ``scipy.stats`` one) of each VarianceScaling draw.

    truncated_normal: N(0, σ) truncated to ±2σ with ``σ = sqrt(v)/0.8796…``;
    untruncated_normal: N(0, sqrt(v)); uniform: U(−sqrt(3v), sqrt(3v)).
    """
    from scipy import stats

    v = variance_scaling_scale(shape, scale, mode, fan)
    if distribution == "truncated_normal":
        sigma = np.sqrt(v) / TRUNCATED_NORMAL_STDDEV
        return stats.truncnorm(-2.0, 2.0, loc=0.0, scale=sigma)
    if distribution in ("untruncated_normal", "normal"):
        return stats.norm(0.0, np.sqrt(v))
    if distribution == "uniform":
        limit = np.sqrt(3.0 * v)
        return stats.uniform(-limit, 2 * limit)
    raise ValueError(f"unknown distribution {distribution!r}")


# -- BatchNormalization -----------------------------------------------------------------


def batch_moments(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and *biased* variance over every axis but ``axis`` (shape: the normalised axis)."""
    x = np.asarray(x, np.float64)
    axis = axis % x.ndim
    reduce = tuple(i for i in range(x.ndim) if i != axis)
    return x.mean(axis=reduce), x.var(axis=reduce)


def broadcast_along(v: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """Reshape a per-channel vector so it broadcasts along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return np.asarray(v, np.float64).reshape(shape)


def batchnorm_training(x, gamma, beta, epsilon: float, axis: int = -1) -> np.ndarray:
    """BatchNormalization in training: normalise with the batch mean and biased batch variance."""
    x = np.asarray(x, np.float64)
    mean, var = batch_moments(x, axis)
    b = lambda v: broadcast_along(v, x.ndim, axis)  # noqa: E731
    return b(gamma) * (x - b(mean)) / np.sqrt(b(var) + epsilon) + b(beta)


def batchnorm_error_scale(x, gamma, beta, mean, variance, epsilon: float, axis: int = -1) -> float:
    """The size of the terms BatchNormalization's arithmetic adds up, ``max |γ|·(|x| + |μ|)/sqrt(σ² + ε) + |β|``:
    the scale its rounding errors are relative to.  The output can be far smaller (where x ≈ μ, or in a
    channel whose variance is below ε); an implementation that folds the normalisation into
    ``x·(γ/σ) + (β − μ·γ/σ)`` rounds terms of this size and loses their digits when they cancel.
    ``mean`` and ``variance`` are those it normalises with (the batch's in training).
    """
    x = np.asarray(x, np.float64)
    b = lambda v: broadcast_along(np.asarray(v, np.float64), x.ndim, axis)  # noqa: E731
    terms = np.abs(b(gamma)) * (np.abs(x) + np.abs(b(mean))) / np.sqrt(b(variance) + epsilon) + np.abs(b(beta))
    return float(np.max(terms))


def moving_average(moving: np.ndarray, batch: np.ndarray, momentum: float) -> np.ndarray:
    """One update of a moving statistic: ``moving·momentum + batch·(1 − momentum)``."""
    return np.asarray(moving, np.float64) * momentum + np.asarray(batch, np.float64) * (1.0 - momentum)


def batchnorm_training_gradients(x, gamma, epsilon: float, upstream, axis: int = -1):
    """Gradients of ``Σ upstream·BN_train(x)`` with respect to x, gamma and beta (analytic).

    With x̂ = (x − μ)/sqrt(σ² + ε) over the m elements per channel:
    dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/sqrt(σ² + ε) · (dy − mean(dy) − x̂·mean(dy·x̂)).
    """
    x = np.asarray(x, np.float64)
    dy = np.asarray(upstream, np.float64)
    axis = axis % x.ndim
    reduce = tuple(i for i in range(x.ndim) if i != axis)
    mean, var = batch_moments(x, axis)
    b = lambda v: broadcast_along(v, x.ndim, axis)  # noqa: E731
    inv_std = 1.0 / np.sqrt(b(var) + epsilon)
    xhat = (x - b(mean)) * inv_std
    dbeta = dy.sum(axis=reduce)
    dgamma = (dy * xhat).sum(axis=reduce)
    dx = b(gamma) * inv_std * (dy - dy.mean(axis=reduce, keepdims=True)
                               - xhat * (dy * xhat).mean(axis=reduce, keepdims=True))
    return dx, dgamma, dbeta


# -- Dropout family ---------------------------------------------------------------------

#: SELU's negative saturation value, −λ·α, the value AlphaDropout sets dropped units to.
ALPHA_PRIME = -1.7580993408473766


def alpha_dropout_affine(rate: float) -> tuple[float, float]:
    """AlphaDropout's (a, b): kept x → a·x + b, dropped → a·α′ + b (Klambauer et al. 2017)."""
    a = ((1.0 - rate) * (1.0 + rate * ALPHA_PRIME**2)) ** -0.5
    b = -a * ALPHA_PRIME * rate
    return a, b


def gaussian_dropout_stddev(rate: float) -> float:
    """GaussianDropout multiplies by N(1, sqrt(rate/(1 − rate)))."""
    return float(np.sqrt(rate / (1.0 - rate)))


# -- Regularisers -------------------------------------------------------------------------


def orthogonal_penalty(w: np.ndarray, factor: float, mode: str = "rows") -> float:
    """OrthogonalRegularizer: ``factor`` × the mean |dot product| of distinct L2-normalised rows (columns)."""
    w = np.asarray(w, np.float64)
    if mode == "columns":
        w = w.T
    unit = w / np.linalg.norm(w, axis=1, keepdims=True)
    product = unit @ unit.T
    n = w.shape[0]
    pairs = np.abs(product[np.triu_indices(n, k=1)])
    return float(factor * pairs.mean())


def squared_dropout_sum_moments(n: int, rate: float) -> tuple[float, float]:
    """Mean and stddev of y² for ``y = Σ_i w_i·m_i/(1 − rate)`` with w_i = ±1 summing to 0.

    ``m_i`` are independent keep masks (keep probability 1 − rate), so y is a sum
    of n independent centred terms z_i with E z² = rate/(1 − rate) and
    E z⁴ = ((1 − rate)·rate⁴ + rate·(1 − rate)⁴)/(1 − rate)⁴; then
    E y² = n·E z² and E y⁴ = n·E z⁴ + 3n(n − 1)·(E z²)².
    """
    keep = 1.0 - rate
    var_z = rate / keep
    m4_z = (keep * rate**4 + rate * keep**4) / keep**4
    mean_y2 = n * var_z
    e_y4 = n * m4_z + 3 * n * (n - 1) * var_z**2
    return mean_y2, float(np.sqrt(e_y4 - mean_y2**2))


def alpha_dropout_moments(rate: float) -> tuple[float, float]:
    """E[y²] and E[y⁴] of AlphaDropout's output for a standard normal input (E[y] = 0).

    y = a·x + b with probability 1 − rate, and c = a·α′ + b otherwise, so
    E[y²] = (1 − r)(a² + b²) + r·c² (= 1 by the choice of a and b) and
    E[y⁴] = (1 − r)(3a⁴ + 6a²b² + b⁴) + r·c⁴.
    """
    a, b = alpha_dropout_affine(rate)
    c = a * ALPHA_PRIME + b
    m2 = (1 - rate) * (a**2 + b**2) + rate * c**2
    m4 = (1 - rate) * (3 * a**4 + 6 * a**2 * b**2 + b**4) + rate * c**4
    return m2, m4


def masked_batch_moments(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance per channel (last axis) over the positions where ``mask`` is true.

    ``mask`` has the input's shape without the channel axis (a sequence mask).
    """
    x = np.asarray(x, np.float64)
    w = np.broadcast_to(np.asarray(mask, np.float64)[..., None], x.shape)
    axes = tuple(range(x.ndim - 1))
    count = w.sum(axis=axes)
    mean = (w * x).sum(axis=axes) / count
    var = (w * (x - mean) ** 2).sum(axis=axes) / count
    return mean, var
