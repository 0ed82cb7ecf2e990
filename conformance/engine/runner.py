"""Run one case on the loaded implementation and judge it against the expectations."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from conformance.cases import Absent, Case
from conformance.data import schema
from conformance.engine import limits
from conformance.engine.checks import Check, Checks, error_text
from conformance.engine.expectations import Record, judge
from conformance.engine.verdict import Verdict


@dataclass
class CaseResult:
    """Everything one run of a case produced: for pytest, the reports and fingerprints."""

    case: Case
    impl: str
    status: schema.Status  # conformance.engine.verdict.STATUSES
    checks: list[Check] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    measurements: dict[str, float] = field(default_factory=dict)  # what the machine measured (Checks.measure)
    problems: list[str] = field(default_factory=list)
    divergences: list[Record] = field(default_factory=list)
    skip_reason: str = ""
    tolerances: list[Record] = field(default_factory=list)  # [[tolerance]] records that loosened a check

    def message(self) -> str:
        """A failure message: what differs, expected vs observed, and how to reproduce."""
        from conformance import suite

        lines = [f"{self.case.id} on {self.impl}: {self.case.description}"]
        lines += [f"  {p}" for p in self.problems]
        lines.append("  checks:")
        lines += [f"    {c.describe()}" for c in self.checks]
        lines.append(f"  declared at: {self.case.defined_at}" + (f" as {self.case.template}" if self.case.template else ""))
        lines.append(f"  reproduce: {suite.reproduce(self.impl, self.case.id)}")
        return "\n".join(lines)

    def fail(self, problems: list[str]) -> None:
        """Turn this result into a failure for ``problems`` (e.g. a difference from a baseline)."""
        self.status = "fail"
        self.problems += problems

    def divergence_reason(self) -> str:
        return "; ".join(f"{d.check}: {d.reason}" for d in self.divergences)

    def tolerance_note(self) -> str:
        """What the tolerance records changed, for the report ('' when none applied)."""
        return "; ".join(f"{d.check} at rtol={d.rtol:g}, atol={d.atol:g}: {d.reason}" for d in self.tolerances)

    def to_json(self) -> schema.CaseResult:
        return {
            "id": self.case.id,
            "topic": self.case.topic,
            "source": self.case.source,
            "description": self.case.description,
            "impl": self.impl,
            "status": self.status,
            "checks": [c.to_json() for c in self.checks],
            "notes": self.notes,
            "measurements": self.measurements,
            "problems": self.problems,
            "divergences": [d.to_json() for d in self.divergences],
            "tolerances": [d.to_json() for d in self.tolerances],
            "skip_reason": self.skip_reason,
        }


def skip_reason(case: Case, adapter) -> str:
    """Why ``case`` cannot run on ``adapter`` (from what it needs and what the backend can do), or ''."""
    from conformance.backends.base import CAPABILITIES

    lacking = [need for need in case.needs if need not in adapter.capabilities]
    if not lacking:
        return ""
    why = getattr(adapter, "lacking_reasons", {})
    reasons = [CAPABILITIES[n] + (f" ({why[n]})" if n in why else "")
               for n in lacking]
    return f"{adapter.id} cannot {' or '.join(reasons)}, which this case needs"


class CaseTimeout(BaseException):
    """A case ran past its time limit (a BaseException, so that no case's own ``except Exception`` swallows it)."""


def time_limit(seconds: float | None, stop: type[BaseException] = CaseTimeout, cpu: bool = False) -> limits.time_limit:
    """Raise ``stop`` (:class:`CaseTimeout`) in this thread once ``seconds`` have passed: of wall time, or with
    ``cpu`` of this thread's CPU time (:mod:`conformance.engine.limits`: a watchdog thread, no signal)."""
    return limits.time_limit(seconds, stop, cpu)


def run_case(case: Case, adapter, records: list[Record], timeout: float | None = None) -> CaseResult:
    """Seed, run ``case`` on ``adapter`` in a fresh Keras session, and judge its checks against ``records``
    (the expectation records that apply to this case here).

    A case that runs past ``timeout`` seconds fails with that reason; the run goes on.
    """
    reason = skip_reason(case, adapter)
    skips = [r for r in records if r.kind == "skip"]
    if skips:
        reason = f"recorded skip ({skips[0].file}:{skips[0].line}): {skips[0].reason}"
    if reason:
        return CaseResult(case, adapter.id, "skip", skip_reason=reason)
    checks = Checks(tolerances={r.check: r for r in records if r.kind == "tolerance"})
    try:
        with time_limit(timeout):
            adapter.clear_session()
            adapter.set_seed(case.seed)
            case.run(adapter, checks)
    except Absent as exc:
        return CaseResult(case, adapter.id, "skip", skip_reason=str(exc))
    except CaseTimeout:
        checks.items.append(Check("time limit", f"finishes within {timeout:g} s", "still running", False,
                                  "stopped at the time limit (pytest --case-timeout)"))
    except Exception as exc:  # an implementation that raises is a result, not a crash
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        checks.items.append(
            Check("error", "no exception", error_text(exc), False,
                  f"raised at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}")
        )
    if not checks.items:
        checks.items.append(Check("made checks", True, False, False, "the case recorded no check"))
    verdict: Verdict = judge(checks.items, [r for r in records if r.kind != "skip"])
    return CaseResult(case, adapter.id, verdict.status, checks.items, checks.notes, checks.measurements,
                      verdict.problems, verdict.divergences, tolerances=verdict.tolerances)
