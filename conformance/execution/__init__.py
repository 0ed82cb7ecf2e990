"""Running the suite in another process: the one place where a child pytest is started.

Keras 3 fixes its backend when it is imported, so every command that wants the
suite's verdicts runs it in a child: ``run`` and ``fingerprint`` (one per
implementation), ``selfcheck`` (on a mutated copy of Keras) and the history (in
each release's environment).  Each says *where* with a :class:`Place` and gets
back a :class:`SuiteRun`: the complete results the plugin wrote
(``--conformance-json``), or why there are none.  ``flakes``, which runs the
project's own tests in random orders, starts them through :func:`pytest_child`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest import ExitCode

from conformance import FIXTURES, suite
from conformance.data.files import read_json
from conformance.data.schema import Run
from conformance.execution import children


class ResultsError(Exception):
    """A child's results file cannot be read; the message is one line."""


@dataclass(frozen=True)
class Place:
    """Where the suite runs: which Python, which copy of keras-conformance, and what goes first on its path."""

    python: str = sys.executable
    #: A copy of keras-conformance (the directory holding ``conformance/``), put on PYTHONPATH instead of the
    #: installed one: a history stack's environment has no keras-conformance of its own.
    root: Path | None = None
    #: Put first on PYTHONPATH: a mutated copy of Keras (selfcheck).
    first_on_path: Path | None = None

    def suite_arguments(self, impl_id: str, json_path: Path, options: tuple[str, ...]) -> list[str]:
        """pytest's arguments for the suite on ``impl_id``, its results to ``json_path``."""
        return suite.arguments(impl_id, json_path, *options, copy=self.root)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.root is not None:
            fixtures = self.root / "conformance" / "fixtures"  # a copy's (history.snapshot), else this one's
            env |= {"PYTHONPATH": str(self.root), "CONFORMANCE_FIXTURES": str(fixtures if fixtures.is_dir() else FIXTURES),
                    "PYTHONDONTWRITEBYTECODE": "1"}
            env.pop("CONFORMANCE_IMPL", None)
        if self.first_on_path is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.first_on_path), env.get("PYTHONPATH")]))
        return env

    def cwd(self, workdir: Path) -> Path:
        return workdir if self.root is not None else suite.run_from(workdir)


HERE = Place()


@dataclass
class SuiteRun:
    """One child run of the suite on one implementation: its complete results, or why there are none."""

    impl: str
    results: Run | None = None  # what the plugin wrote with --conformance-json; only a complete run has it
    partial: dict[str, Any] = field(default_factory=dict)  # what an incomplete run wrote (FILE.partial), if anything
    problem: str = ""  # why there are no complete results
    returncode: int | None = None  # None: stopped at its time limit
    interrupted: bool = False
    nothing_selected: bool = False
    usage_error: bool = False
    seconds: float = 0.0
    output: str = ""  # its stdout and stderr, where captured

    @property
    def complete(self) -> bool:
        return self.results is not None

    def failed_cases(self) -> list[str]:
        """The IDs of the cases that failed, in the complete or the partial results."""
        return [r["id"] for r in (self.results or self.partial).get("results", []) if r["status"] == "fail"]

    def outcomes(self) -> dict[tuple[str, str], Any]:
        """``{(case, check label): observed}`` of the recorded outcomes (checks of kind ``outcome``, which no
        verdict depends on: ``conformance.edges``) in the complete results; empty without them."""
        results: list[Any] = list(self.results["results"]) if self.results is not None else []
        return {(r["id"], c["name"]): c["observed"] for r in results for c in r.get("checks", [])
                if c.get("kind") == "outcome"}


def pytest_child(args: list[str], workdir: Path, *, place: Place = HERE, timeout: float | None = None,
                 capture: bool = False) -> subprocess.CompletedProcess:
    """``python -m pytest ARGS`` in a new process where ``place`` says (its Python, its path), run from the checkout
    or ``workdir``; its output kept (as text) where ``capture``.  ``subprocess.TimeoutExpired`` past ``timeout``."""
    return children.run([place.python, "-m", "pytest", *args], cwd=place.cwd(workdir), env=place.environment(),
                        timeout=timeout, capture_output=capture,
                        **({"text": True, "errors": "replace"} if capture else {}))


def run(impl_id: str, workdir: Path, *options: str, place: Place = HERE, keyword: str | None = None,
        draft: Path | None = None, timeout: float | None = None, capture: bool = False) -> SuiteRun:
    """Run the suite on ``impl_id`` in a new process (scratch files in ``workdir``); what it gave.

    ``options`` are passed to pytest; ``keyword`` is its ``-k``; ``draft`` asks for skeleton expectation records;
    ``capture`` keeps the child's output in ``SuiteRun.output`` instead of passing it through.
    """
    import time

    json_path = workdir / f"{impl_id.replace(':', '-')}.json"
    args = place.suite_arguments(impl_id, json_path, options)
    if keyword:
        args += ["-k", keyword]
    if draft is not None:
        args += ["--draft-expectations", str(draft.resolve())]
    start = time.monotonic()
    try:
        proc = pytest_child(args, workdir, place=place, timeout=timeout, capture=capture)
    except subprocess.TimeoutExpired:
        return SuiteRun(impl_id, problem=f"the suite ran past its time limit of {timeout:g} s",
                        seconds=round(time.monotonic() - start, 1))
    out = SuiteRun(impl_id, returncode=proc.returncode, seconds=round(time.monotonic() - start, 1),
                   output=(proc.stdout or "") + (proc.stderr or "") if capture else "")
    if json_path.exists():
        results = read_json(json_path, ResultsError)
        if results.get("complete") and proc.returncode in (0, 1):
            out.results = results | {"seconds": out.seconds}
            return out
    partial_path = Path(f"{json_path}.partial")
    out.partial = read_json(partial_path, ResultsError) if partial_path.exists() else {}
    returncode = proc.returncode
    if returncode < 0:
        out.interrupted = -returncode == signal.SIGINT
        out.problem = f"its pytest process was killed by {signal.Signals(-returncode).name}"
    elif returncode == ExitCode.NO_TESTS_COLLECTED:
        out.nothing_selected = True
        out.problem = suite.nothing_selected(keyword)
    elif returncode == ExitCode.USAGE_ERROR:
        out.usage_error = True
        out.problem = "its pytest process stopped before running any case" + \
            (f": {children.tail(out.output, 1)}" if capture else " (see the error above)")
    else:
        out.interrupted = bool(out.partial.get("interrupted")) or (
            not out.partial and returncode == ExitCode.INTERRUPTED)
        out.problem = out.partial.get("incomplete_reason") or \
            f"its pytest process ended with exit status {returncode} without writing results" + \
            (f": {children.tail(out.output)}" if capture else "")
    return out
