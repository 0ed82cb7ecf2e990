"""Dtype policies, and the arithmetic of their dtypes that the oracles and budgets use.

A Keras dtype policy names two dtypes: the *variable dtype* a layer stores its weights in and the
*compute dtype* its inputs are cast to and its outputs come out in.  ``mixed_float16`` stores float32
and computes in float16; a plain dtype name is both.  Keras 3 (``keras.DTypePolicy``) and Keras 2
(``keras.mixed_precision.Policy``) both take the policy's name as a layer's ``dtype=``, which is how
the cases set it: per layer, so no case changes global state another case sees.

Errors are measured against float64 oracles in units of the compute dtype's machine epsilon, ``eps``
(the distance from 1 to the next representable number: 2⁻¹⁰ for float16, 2⁻⁷ for bfloat16, 2⁻²³ for
float32), normwise: ``max|observed − expected| / max|expected| / eps``.  Rounding a result to its
dtype alone costs up to half an eps.  A result computed in float32 and rounded once to a 16-bit dtype
is measured against each output instead (:func:`rounded_error_in_eps`), so that computing it in the
16-bit dtype itself shows even where the output is small beside the terms it comes from.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

#: The dtypes a policy can name, as NumPy dtypes (bfloat16 from ml_dtypes, which Keras itself uses).
DTYPES = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16),
          "float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def is_half(dtype: str) -> bool:
    """Whether ``dtype`` is one of the 16-bit floating-point dtypes (float16, bfloat16)."""
    return DTYPES[dtype].itemsize == 2


@dataclass(frozen=True)
class Policy:
    """A dtype policy: its name, the dtype of its variables, the dtype of its computations."""

    name: str
    variable: str
    compute: str

    @property
    def needs(self) -> tuple[str, ...]:
        """The capabilities it needs beyond float32 (conformance.backends.base.CAPABILITIES)."""
        return tuple(sorted({d for d in (self.variable, self.compute) if d != "float32"}))

    @property
    def half(self) -> bool:
        """Whether it computes in 16 bits."""
        return is_half(self.compute)


#: The policies of the dtype axis, in the order cases list them.
POLICIES = {p.name: p for p in (
    Policy("float32", "float32", "float32"),
    Policy("float64", "float64", "float64"),
    Policy("float16", "float16", "float16"),
    Policy("bfloat16", "bfloat16", "bfloat16"),
    Policy("mixed_float16", "float32", "float16"),
    Policy("mixed_bfloat16", "float32", "bfloat16"),
)}


def policy_params(*names: str, **extra) -> list[dict]:
    """Family parameters ``{"policy": name, **extra}`` for the named policies (all of them when none is named)."""
    return [{"policy": name, **extra} for name in (names or POLICIES)]


def policy_needs(policy: str, **_) -> tuple[str, ...]:
    """What a family entry with this policy needs (the ``needs`` of :func:`conformance.cases.family`)."""
    return POLICIES[policy].needs


def eps(dtype: str) -> float:
    """The machine epsilon of ``dtype``."""
    return float(ml_dtypes.finfo(DTYPES[dtype]).eps)


def max_finite(dtype: str) -> float:
    return float(ml_dtypes.finfo(DTYPES[dtype]).max)


def round_to(x, dtype: str) -> np.ndarray:
    """``x`` rounded to ``dtype`` (to nearest, ties to even; beyond its range, ±inf), as float64."""
    with np.errstate(over="ignore"):
        return np.asarray(x, np.float64).astype(DTYPES[dtype]).astype(np.float64)


def error_in_eps(observed, expected, dtype: str, scale: float | None = None) -> float:
    """Normwise error ``max|observed − expected| / scale`` in units of ``eps(dtype)``; inf where anything
    observed is not finite or the shapes differ.  ``scale`` defaults to ``max|expected|``; a computation
    whose terms are larger than its result passes their size (``oracles.batchnorm_error_scale``)."""
    o, e = np.asarray(observed, np.float64), np.asarray(expected, np.float64)
    if o.shape != e.shape or not np.isfinite(o).all():
        return math.inf
    scale = scale or float(np.max(np.abs(e), initial=0.0)) or 1.0
    return float(np.max(np.abs(o - e), initial=0.0)) / scale / eps(dtype)


#: The float32 arithmetic a 16-bit result may carry before its final rounding: 16 eps of float32,
#: relative to the size of the terms (what a float32 computation is allowed).
ARITHMETIC_EPS = 16.0


def rounded_error_in_eps(observed, expected, dtype: str, scale: float | None = None) -> float:
    """The error of a result computed in float32 and rounded once to the 16-bit ``dtype``, in eps of ``dtype``
    relative to each output: ``max |observed − expected| / max(|expected|, floor) / eps(dtype)``.

    ``floor = ARITHMETIC_EPS · eps(float32) · scale / eps(dtype)`` is the output size below which float32
    arithmetic within ``ARITHMETIC_EPS`` eps of the terms (``scale``, default ``max|expected|``) may exceed
    one eps of ``dtype``.  A correct result is within half an eps (its rounding) plus one (the arithmetic):
    1.5.  Arithmetic in ``dtype`` itself errs by about ``eps(dtype)·scale``: ``scale/|expected|`` eps here.
    inf where anything observed is not finite or the shapes differ.
    """
    o, e = np.asarray(observed, np.float64), np.asarray(expected, np.float64)
    if o.shape != e.shape or not np.isfinite(o).all():
        return math.inf
    scale = scale or float(np.max(np.abs(e), initial=0.0)) or 1.0
    floor = ARITHMETIC_EPS * eps("float32") * scale / eps(dtype)
    return float(np.max(np.abs(o - e) / np.maximum(np.abs(e), floor), initial=0.0)) / eps(dtype)


def bucket(error: float) -> str:
    """A measured error as the power of two above it (``"≤ 4 eps"``), stable across runs and releases that
    keep the same arithmetic, so that a fingerprint changes only where accuracy does."""
    if not math.isfinite(error):
        return "not finite"
    if error <= 0.5:
        return "≤ 0.5 eps"
    return f"≤ {2 ** math.ceil(math.log2(error))} eps"


@functools.cache
def grid(dtype: str) -> np.ndarray:
    """Every finite value of a 16-bit ``dtype``, ascending, as float64 (one of each zero)."""
    if not is_half(dtype):
        raise ValueError(f"{dtype} is not a 16-bit dtype")
    with np.errstate(invalid="ignore"):  # the NaN patterns
        values = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(DTYPES[dtype]).astype(np.float64)
    return np.unique(values[np.isfinite(values)])


def rounded_cdf(cdf, dtype: str):
    """The CDF of ``round_to(X, dtype)`` for a continuous ``X`` with CDF ``cdf``, at the values of ``grid(dtype)``:
    ``P(round(X) ≤ g) = cdf(midpoint of g and the next value)``.  Returns (grid, probabilities)."""
    g = grid(dtype)
    upper = np.append((g[:-1] + g[1:]) / 2, np.inf)
    return g, cdf(upper)
