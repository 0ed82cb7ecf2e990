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
