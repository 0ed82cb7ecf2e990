"""Checks: what a case expected, what it observed, and whether they agree.

A case records each comparison on a :class:`Checks` object instead of
asserting, so that one run yields every comparison (for the report and for
matching recorded divergences), not just the first failure.  Observed values
are kept JSON-serialisable: numbers, strings, lists, dicts, booleans.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from conformance.data.schema import CheckResult
    from conformance.engine.expectations import Record

#: The false-alarm probability of every statistical check in the suite: the chance that
#: one such check fails on a correct implementation.  The suite's total per run is at most
#: this times the number of statistical checks (a union bound), listed by ``--collect-only``
#: and in the docs.
FALSE_ALARM = 1e-8


def plain(value: Any) -> Any:
    """``value`` as plain Python values at full precision (arrays and tuples as lists), for exact comparison."""
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def summarise(value: Any, digits: int = 7) -> Any:
    """A JSON-serialisable, readable form of ``value`` (arrays rounded to ``digits`` significant digits)."""
    if isinstance(value, np.ndarray) or np.isscalar(value) and isinstance(value, np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind in "fc":
            arr = np.array([float(f"{v:.{digits}g}") for v in arr.ravel()]).reshape(arr.shape)
        return arr.tolist()
    if isinstance(value, (list, tuple)):
        return [summarise(v, digits) for v in value]
    if isinstance(value, dict):
        return {str(k): summarise(v, digits) for k, v in value.items()}
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    return value


def error_text(exc: BaseException) -> str:
    """'TypeName: first line of the message', with memory addresses masked so it compares across runs."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return re.sub(r" at 0x[0-9a-fA-F]+", " at 0x…", f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def key_of(name: str) -> str:
    """The stable key a check gets from its display text when the case names none: lower case, words
    joined by '-' (``"model(x, training=False) applies dropout"`` → ``model-x-training-false-applies-dropout``).

    Records in ``fixtures/expectations`` and fingerprints name checks by key; a case that rewords a
    check's text passes the old key as ``key=`` so that nothing recorded for it is orphaned.
    """
    words = re.findall(r"[0-9a-z]+(?:\.[0-9]+)?", re.sub(r"['’]", "", name.lower()).replace("·", " "))
    if not words:
        raise ValueError(f"check name {name!r} has no letters or digits to make a key of")
    return "-".join(words)


#: What a check key looks like (``key_of``'s output, or a ``key=`` given by the case).
KEY_PATTERN = re.compile(r"[0-9a-z]+(?:\.[0-9]+)?(?:-[0-9a-z]+(?:\.[0-9]+)?)*")


def brief(value: Any, limit: int = 240) -> str:
    """``repr(value)``, cut to ``limit`` characters for failure messages."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


@dataclass
class Check:
    """One comparison: ``passed`` is whether ``observed`` agrees with ``expected``."""

    name: str
    expected: Any
    observed: Any
    passed: bool
    how: str = "equal"  # how they were compared, e.g. "rtol=1e-6" or "z-test alpha=1e-6"
    #: exact | numeric (compared with a tolerance) | statistical (a test on random draws) | outcome (recorded only)
    kind: str = "exact"
    key: str = ""  # stable, what records and fingerprints name it by; key_of(name) unless the case gives one
    #: A looser tolerance a [[tolerance]] record granted: {"rtol", "atol", "passes_default", "file"}; None if none.
    override: dict[str, Any] | None = None
    #: For a statistical check: the standard error of each observed summary (a number, or a dict keyed as
    #: ``observed``), estimated from the draws; how far another draw of the same distribution may land.
    spread: Any = None

    def __post_init__(self) -> None:
        self.key = self.key or key_of(self.name)
        if not KEY_PATTERN.fullmatch(self.key):
            raise ValueError(f"check key {self.key!r} is not lower-case words joined by '-'")

    def describe(self) -> str:
        mark = "ok  " if self.passed else "FAIL"
        return f"{mark} {self.name}: expected {brief(self.expected)}, observed {brief(self.observed)} ({self.how})"

    def to_json(self) -> CheckResult:
        return cast("CheckResult", asdict(self))


def _moments(x) -> dict[str, float]:
    """The mean and standard deviation of draws (an array) or of a frozen ``scipy.stats`` distribution, to
    three significant digits: what a statistical check shows."""
    return {"mean": float(f"{x.mean():.3g}"), "std": float(f"{x.std():.3g}")}


def _moment_errors(samples: np.ndarray) -> dict[str, float]:
    """The standard errors of ``_moments``: s/√n for the mean and s·√((m₄/s⁴ − 1)/(4n)) for the standard
    deviation (the delta method, with the sample's own fourth central moment m₄)."""
    n, s = samples.size, float(samples.std())
    if n < 2 or s == 0.0:
        return {"mean": 0.0, "std": 0.0}
    m4 = float(np.mean((samples - samples.mean()) ** 4))
    return {"mean": s / np.sqrt(n), "std": s * float(np.sqrt(max(m4 / s**4 - 1.0, 0.0) / (4 * n)))}


class Checks:
    """The comparisons of one case run, in the order they were made."""

    def __init__(self, tolerances: dict[str, Record] | None = None) -> None:
        self.items: list[Check] = []
        self.notes: dict[str, Any] = {}
        self.measurements: dict[str, float] = {}
        #: check key -> a [[tolerance]] record (conformance.engine.expectations.Record) that loosens ``close``
        self.tolerances = tolerances or {}

    def _add(self, check: Check) -> bool:
        check.passed = bool(check.passed)
        if any(c.key == check.key for c in self.items):
            raise ValueError(f"duplicate check key {check.key!r} ({check.name!r})")
        self.items.append(check)
        return check.passed

    def equal(self, name: str, expected: Any, observed: Any, *, key: str = "") -> bool:
        """Exact equality (ints, strings, booleans, and floats to the last bit; tuples and arrays as lists).

        The values are compared as they are; only what the report shows is rounded.
        """
        passed = plain(expected) == plain(observed)
        shown = summarise(expected), summarise(observed)
        if not passed and shown[0] == shown[1]:  # they differ beyond the digits shown: show every digit
            shown = plain(expected), plain(observed)
        return self._add(Check(name, *shown, passed, key=key))

    def close(self, name: str, expected: Any, observed: Any, *, rtol: float, atol: float = 0.0,
              kind: str = "numeric", key: str = "") -> bool:
        """``|observed - expected| <= atol + rtol·|expected|`` elementwise, shapes equal.

        ``kind="statistical"`` marks a comparison of statistics of random draws.  Where a
        ``[[tolerance]]`` record covers this check on the implementation under test, its
        ``rtol``/``atol`` apply instead, and the check says so.
        """
        exp = np.asarray(expected, dtype=np.float64)
        obs = np.asarray(observed, dtype=np.float64)
        same_shape = exp.shape == obs.shape
        ok = same_shape and bool(np.allclose(obs, exp, rtol=rtol, atol=atol))
        how = f"rtol={rtol:g}, atol={atol:g}"
        record = self.tolerances.get(key or key_of(name))
        override = None
        if record is not None:
            override = {"rtol": record.rtol, "atol": record.atol, "passes_default": ok, "file": record.file}
            how = f"rtol={record.rtol:g}, atol={record.atol:g} by a tolerance record in {record.file} (default {how})"
            ok = same_shape and bool(np.allclose(obs, exp, rtol=record.rtol, atol=record.atol))
        if not same_shape:
            how += f"; shape {obs.shape} != {exp.shape}"
        elif not ok or override:
            how += f"; max abs error {np.max(np.abs(obs - exp), initial=0.0):.3g}"
        return self._add(Check(name, summarise(exp), summarise(obs), ok, how, kind, key, override))

    def which(self, name: str, expected: str, candidates: dict[str, float], observed: float, *, rtol: float,
              key: str = "") -> bool:
        """Which of ``candidates`` (a description -> its value) the number ``observed`` is, within ``rtol``
        (the first that holds, ``expected`` among them); the number itself where none does.  Passes where it
        is ``expected``.  A ``[[tolerance]]`` record covering the check applies its ``rtol`` instead."""
        def found(r: float) -> str | None:
            return next((label for label, value in candidates.items() if np.isclose(observed, value, rtol=r, atol=0.0)),
                        None)

        label = found(rtol)
        how = f"rtol={rtol:g}"
        record = self.tolerances.get(key or key_of(name))
        override = None
        if record is not None:
            override = {"rtol": record.rtol, "atol": record.atol, "passes_default": label == expected, "file": record.file}
            how = f"rtol={record.rtol:g} by a tolerance record in {record.file} (default {how})"
            label = found(record.rtol)
        how += "; " + ", ".join(f"{summarise(float(v))} is {k}" for k, v in candidates.items())
        return self._add(Check(name, expected, label if label is not None else summarise(float(observed)),
                               label == expected, how, "exact", key, override))

    def record(self, name: str, expected: Any, observed: Any, passed: bool, how: str, *, key: str = "",
               kind: str = "exact") -> bool:
        """A comparison whose rule ``how`` the caller applied itself (``passed``); ``kind="numeric"`` for a
        measured number compared within a budget, which fingerprints then compare with a tolerance too."""
        return self._add(Check(name, summarise(expected), summarise(observed), bool(passed), how, kind, key=key))

    def outcome(self, name: str, observed: str, *, key: str = "") -> bool:
        """What a call at the edge of an argument gave (``conformance.edges``), recorded and not judged: no
        verdict depends on it; a fingerprint keeps it, so that a release that changes it shows in the history."""
        return self._add(Check(name, "(recorded)", observed, True, "recorded, not judged", "outcome", key))

    def true(self, name: str, observed: bool, what: str, *, key: str = "") -> bool:
        """A property that must hold; ``what`` says which, for the report."""
        return self._add(Check(name, True, bool(observed), bool(observed), what, key=key))

    def z_test(self, name: str, sample_mean: float, n: int, mean: float, std: float, *, alpha: float, key: str = "") -> bool:
        """Two-sided z-test of the mean of ``n`` draws against the exact ``mean`` and ``std`` of one draw.

        Fails with probability ``alpha`` when the implementation is right.
        """
        z = (float(sample_mean) - mean) / (std / np.sqrt(n))
        p = float(2 * stats.norm.sf(abs(z)))
        how = f"z-test n={n}, z={z:.2f}, p={p:.3g}, false-alarm probability alpha={alpha:g}"
        return self._add(Check(name, summarise(mean), summarise(float(sample_mean)), p >= alpha, how, "statistical", key,
                               spread=float(std / np.sqrt(n))))

    def ks_test(self, name: str, samples: np.ndarray, dist, *, alpha: float, target: str, key: str = "") -> bool:
        """Kolmogorov–Smirnov goodness of fit of ``samples`` to the frozen ``scipy.stats`` ``dist``.

        Fails with probability ``alpha`` when the samples do follow ``dist``.
        """
        samples = np.asarray(samples, dtype=np.float64).ravel()
        result = stats.kstest(samples, dist.cdf)
        how = (f"KS test against {target}, n={samples.size}, D={result.statistic:.4f}, "
               f"p={result.pvalue:.3g}, false-alarm probability alpha={alpha:g}")
        expected = _moments(dist)
        return self._add(Check(name, expected, _moments(samples), result.pvalue >= alpha, how, "statistical", key,
                               spread=_moment_errors(samples)))

    def fit_in_dtype(self, name: str, samples: np.ndarray, dist, dtype: str, *, alpha: float, target: str,
                     key: str = "", bins: int = 64) -> bool:
        """Goodness of fit of draws made in ``dtype`` to the frozen ``dist`` *rounded to that dtype*.

        In float32 and float64 the rounding is invisible at any sample size: a Kolmogorov–Smirnov test
        against ``dist``.  In float16 and bfloat16 the draws can only take the dtype's values: a
        chi-square test of their counts in ``bins`` groups of consecutive representable values, against
        the probabilities of ``round(X)`` (``conformance.engine.precision.rounded_cdf``); a draw that is not a
        value of the dtype fails it, and says so in what is observed (``"not float16 values": true``
        beside the moments).  Fails with probability ``alpha`` when the draws follow ``dist``.
        """
        from conformance.engine.precision import is_half, rounded_cdf

        if not is_half(dtype):
            return self.ks_test(name, samples, dist, alpha=alpha, target=target, key=key)
        samples = np.asarray(samples, dtype=np.float64).ravel()
        grid, cdf = rounded_cdf(dist.cdf, dtype)
        index = np.searchsorted(grid, samples)
        on_grid = bool(np.all((index < grid.size) & (grid[np.minimum(index, grid.size - 1)] == samples)))
        # Bin edges at the grid values where the rounded CDF crosses j/bins; expected count per bin from it.
        ends = np.unique(np.searchsorted(cdf, np.linspace(0, 1, bins + 1)[1:-1]))
        ends = np.append(ends[ends < grid.size - 1], grid.size - 1)
        probs = np.diff(np.concatenate([[0.0], cdf[ends]]))
        probs[-1] += 1.0 - cdf[ends[-1]]
        counts = np.bincount(np.searchsorted(ends, np.minimum(index, grid.size - 1)), minlength=ends.size)
        keep = probs > 0
        result = stats.chisquare(counts[keep], probs[keep] / probs[keep].sum() * samples.size)
        passed = on_grid and result.pvalue >= alpha
        how = (f"chi-square test against {target} rounded to {dtype}, n={samples.size}, {int(keep.sum())} bins, "
               f"p={result.pvalue:.3g}, false-alarm probability alpha={alpha:g}"
               + ("" if on_grid else f"; some draws are not {dtype} values"))
        expected = _moments(dist)
        observed = _moments(samples) | ({} if on_grid else {f"not {dtype} values": True})
        return self._add(Check(name, expected, observed, passed, how, "statistical", key,
                               spread=_moment_errors(samples)))

    def binomial_test(self, name: str, successes: int, trials: int, p: float, *, alpha: float, what: str, key: str = "") -> bool:
        """Exact two-sided binomial test that ``successes`` of ``trials`` happen with probability ``p``."""
        result = stats.binomtest(int(successes), int(trials), p)
        how = f"binomial test of {what}, n={trials}, p-value={result.pvalue:.3g}, false-alarm probability alpha={alpha:g}"
        share = min(max(successes / trials, 1 / trials), 1 - 1 / trials) if trials > 1 else 0.5
        return self._add(Check(name, summarise(p), summarise(successes / trials), result.pvalue >= alpha, how,
                               "statistical", key, spread=float(np.sqrt(share * (1 - share) / trials))))

    def note(self, name: str, value: Any) -> None:
        """An observation of what Keras does that is not compared with anything (a value it computed, a
        dtype it passed): behaviour, which fingerprints compare."""
        self.notes[name] = summarise(value)

    def measure(self, name: str, value: float) -> None:
        """What the machine measured rather than what Keras does: an error in eps, which moves with the CPU's
        instructions and the order of summation.  Reports show it; a fingerprint keeps it apart from the
        behaviour, and a diff never counts it as a change (a check compares it with its budget)."""
        self.measurements[name] = summarise(float(value))

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.items if not c.passed]
