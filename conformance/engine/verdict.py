"""The verdict of one case on one implementation, and what each verdict is in every report.

A verdict is decided once (:func:`conformance.engine.expectations.judge`) and mapped
here, once, to what pytest reports (and with it JUnit XML), to the JSON
results and fingerprints, and to the words the terminal and HTML reports use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.data.schema import Status

#: Every verdict, with what it means.  A run passes when none is "fail".
STATUSES = {
    "pass": "every check agrees with its oracle (tolerance records applied)",
    "divergence": "differs from the oracle exactly as a [[divergence]] record says",
    "fail": "differs from the oracle or from a record, or crashed, or ran past its time limit",
    "skip": "not run: the implementation lacks a capability the case needs, or a [[skip]] record says so",
}
#: The pytest outcome of each verdict (the call phase; JUnit XML follows pytest's outcome:
#: pass → testcase, fail → <failure>, divergence → <skipped type="pytest.xfail">, skip → <skipped>).
PYTEST_OUTCOME = {"pass": "passed", "fail": "failed", "divergence": "skipped", "skip": "skipped"}


@dataclass
class Verdict:
    """The outcome of one case: its status, why it failed, and the records that held."""

    status: Status  # one of STATUSES
    problems: list[str] = field(default_factory=list)  # why it failed, one line each
    divergences: list[Any] = field(default_factory=list)  # the [[divergence]] records that held
    tolerances: list[Any] = field(default_factory=list)  # the [[tolerance]] records that loosened a passing check

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict {self.status!r}")
