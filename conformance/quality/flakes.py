"""Flake hunting: run the whole test suite several times in random orders and compare verdicts.

Run *i* uses ``--randomly-seed=i`` (pytest-randomly shuffles the order) and
every second run is spread over two processes (``-n 2``).  A test whose
verdict (passed, failed, skipped, xfailed, error) is not the same in every
run is a flake.
"""

from __future__ import annotations

import importlib.util
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

from pytest import ExitCode

from conformance import execution, suite

#: What is hunted: a checkout's whole test suite, else (installed) the conformance suite alone.
TARGET = suite.CHECKOUT / "tests" if suite.IN_CHECKOUT else Path(suite.__file__)


class FlakesError(Exception):
    """Flake hunting cannot run (bad usage); the message is one line."""


class IncompleteRun(Exception):
    """A run of the hunt did not complete, so no verdicts can be compared; the message is one line."""


def verdicts(junit_file: Path) -> dict[str, str]:
    """Test ID → verdict, from a pytest JUnit XML file."""
    root = ET.parse(junit_file).getroot()
    out = {}
    for tc in root.iter("testcase"):
        test = f"{tc.get('classname')}::{tc.get('name')}"
        verdict = "passed"
        for child in tc:
            if child.tag in ("failure", "error"):
                verdict = child.tag
            elif child.tag == "skipped":
                verdict = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        out[test] = verdict
    return out


def changed_verdicts(runs: list[dict[str, str]]) -> dict[str, list[str]]:
    """Tests whose verdict differs between runs (a test missing from a run counts as 'absent')."""
    tests = set().union(*runs) if runs else set()
    changed = {}
    for test in tests:
        seen = [run.get(test, "absent") for run in runs]
        if len(set(seen)) > 1:
            changed[test] = seen
    return changed


def hunt(impl_id: str, runs: int, keyword: str | None = None,
         report: Callable[[str], None] = print) -> dict[str, list[str]]:
    if importlib.util.find_spec("pytest_randomly") is None:
        raise FlakesError("flake hunting needs pytest-randomly: pip install 'keras-conformance[dev]'")
    results = []
    with tempfile.TemporaryDirectory(prefix="keras-conformance-flakes-") as tmp:
        for i in range(1, runs + 1):
            junit = Path(tmp) / f"run-{i}.xml"
            args = [str(TARGET), "--impl", impl_id, "-q", "-p", "no:cacheprovider", f"--randomly-seed={i}",
                    f"--junitxml={junit}"]
            if i % 2 == 0:
                args += ["-n", "2"]
            if keyword:
                args += ["-k", keyword]
            proc = execution.pytest_child(args, Path(tmp), capture=True)
            tail = ((proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"])[0]
            if proc.returncode == ExitCode.NO_TESTS_COLLECTED:
                raise FlakesError(f"{suite.nothing_selected(keyword, 'test')}; nothing to hunt")
            if proc.returncode not in (0, 1) or not junit.exists():  # 1: some tests failed, in a complete run
                raise IncompleteRun(f"run {i} did not complete (pytest exit status {proc.returncode}): {tail}")
            results.append(verdicts(junit))
            summary = (proc.stdout.strip().splitlines() or [""])[-1]
            report(f"run {i}/{runs} (seed {i}{', -n 2' if i % 2 == 0 else ''}): {summary}")
    return changed_verdicts(results)
