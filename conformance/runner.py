"""Run one case on the loaded implementation and judge it against the expectations."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from conformance.cases import Case
from conformance.checks import Check, Checks, error_text
from conformance.expectations import Divergence, Verdict, judge


@dataclass
class CaseResult:
    """Everything one run of a case produced: for pytest, the reports and fingerprints."""

    case: Case
    impl: str
    status: str  # pass | divergence | fail | skip
    checks: list[Check] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    skip_reason: str = ""

    def message(self) -> str:
        """A failure message: what differs, expected vs observed, and how to reproduce."""
        lines = [f"{self.case.id} on {self.impl}: {self.case.description}"]
        lines += [f"  {p}" for p in self.problems]
        lines.append("  checks:")
        lines += [f"    {c.describe()}" for c in self.checks]
        lines.append(f"  reproduce: pytest tests/test_conformance.py --impl {self.impl} -k '{self.case.id}'")
        return "\n".join(lines)

    def divergence_reason(self) -> str:
        return "; ".join(f"{d.check}: {d.reason}" for d in self.divergences)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.case.id,
            "topic": self.case.topic,
            "source": self.case.source,
            "description": self.case.description,
            "impl": self.impl,
            "status": self.status,
            "checks": [c.to_json() for c in self.checks],
            "notes": self.notes,
            "problems": self.problems,
            "divergences": [
                {"check": d.check, "observed": d.observed, "reason": d.reason, "evidence": d.evidence, "file": d.file}
                for d in self.divergences
            ],
            "skip_reason": self.skip_reason,
        }


def skip_reason(case: Case, adapter) -> str:
    if case.needs_training and not adapter.supports_training:
        return f"{adapter.id} is inference-only (no fit/train_on_batch); this case trains"
    return ""


def run_case(case: Case, adapter, divergences: list[Divergence]) -> CaseResult:
    """Seed, run ``case`` on ``adapter``, and judge its checks against ``divergences``."""
    reason = skip_reason(case, adapter)
    if reason:
        return CaseResult(case, adapter.id, "skip", skip_reason=reason)
    checks = Checks()
    adapter.set_seed(case.seed)
    try:
        case.run(adapter, checks)
    except Exception as exc:  # an implementation that raises is a result, not a crash
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        checks.items.append(
            Check("error", "no exception", error_text(exc), False,
                  f"raised at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}")
        )
    if not checks.items:
        checks.items.append(Check("made checks", True, False, False, "the case recorded no check"))
    verdict: Verdict = judge(checks.items, divergences)
    return CaseResult(case, adapter.id, verdict.status, checks.items, checks.notes, verdict.problems, verdict.divergences)
