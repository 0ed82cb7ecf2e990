"""Mutation testing of the installed Keras: would the suite notice if Keras changed?

For each mutation in ``fixtures/mutations/<catalogue>.toml`` (an exact text
replacement in one source file), a shadow copy of the installed package is
made in a temporary directory (real directories, every file a symlink to the
original except the mutated one), put first on ``PYTHONPATH``, and the
conformance suite runs against it in its own process.  The mutation is

* **killed** when the run fails (the first case that failed is reported), or
  when it changes an outcome the unmutated run recorded (``conformance.edges``:
  what a call at the edge of an argument gives, recorded and not judged),
* **survived** when the run passes (unless the catalogue documents it as
  ``equivalent``: no observable behaviour changes),
* **stale** when its text is not in the installed version (not counted),
* **timeout** when the run exceeds the per-mutant limit (counted as killed).

The unmutated run must pass first, or nothing is scored.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from pytest import ExitCode

from conformance import FIXTURES, execution, suite
from conformance.backends import impls
from conformance.data.files import read_toml
from conformance.execution import children

MUTATIONS_DIR = FIXTURES / "mutations"
#: catalogue file per implementation family / variant: the package it mutates.
CATALOGUES = {"keras": "keras3", "tf_keras": "tf_keras"}


class SelfcheckError(Exception):
    """The selfcheck cannot run; the message is one line."""


@dataclass(frozen=True)
class Mutation:
    id: str
    topic: str
    description: str
    file: str
    find: str
    replace: str
    occurrence: int | None = None  # replace only the n-th occurrence (1-based)
    backends: tuple[str, ...] = ()  # empty: every backend
    equivalent: str = ""  # why a survivor changes no observable behaviour


@dataclass
class Outcome:
    id: str
    description: str
    status: str  # killed | survived | equivalent | stale | timeout
    killed_by: list[str] = field(default_factory=list)
    seconds: float = 0.0
    detail: str = ""


def load_catalogue(path: Path) -> tuple[str, list[Mutation]]:
    """The package name and mutations of a catalogue file; errors are one line."""
    data = read_toml(path, SelfcheckError)
    package = data.get("package")
    if not isinstance(package, str):
        raise SelfcheckError(f"{path}: missing top-level package = \"...\"")
    mutations, seen = [], set()
    for n, entry in enumerate(data.get("mutation", []), start=1):
        try:
            m = Mutation(**{**entry, "backends": tuple(entry.get("backends", ()))})
        except TypeError as exc:
            raise SelfcheckError(f"{path.name} mutation #{n}: {exc}") from None
        if m.id in seen:
            raise SelfcheckError(f"{path.name}: mutation {m.id} is declared twice")
        if m.find == m.replace:
            raise SelfcheckError(f"{path.name}: mutation {m.id} replaces its text by itself")
        seen.add(m.id)
        mutations.append(m)
    return package, mutations


def apply(text: str, m: Mutation) -> str | None:
    """``text`` with the mutation applied, or None when its ``find`` text is absent (stale)."""
    count = text.count(m.find)
    if count == 0 or (m.occurrence is not None and m.occurrence > count):
        return None
    if m.occurrence is None:
        return text.replace(m.find, m.replace)
    start = -1
    for _ in range(m.occurrence):
        start = text.index(m.find, start + 1)
    return text[:start] + m.replace + text[start + len(m.find):]


def package_dir(package: str) -> Path:
    """Where ``package`` is installed, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SelfcheckError(f"package {package!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def shadow_copy(source: Path, root: Path, package: str, mutation: Mutation) -> Path | None:
    """A copy of ``source`` under ``root/package`` with ``mutation`` applied; None if stale.

    Directories are real; files are symlinks to the originals except the mutated one.
    """
    target_file = source / mutation.file
    try:
        original = target_file.read_text(encoding="utf-8")
    except OSError:
        return None
    mutated = apply(original, mutation)
    if mutated is None:
        return None
    dest = root / package
    shutil.copytree(source, dest, symlinks=True, copy_function=os.symlink,
                    ignore=shutil.ignore_patterns("__pycache__"))
    patched = dest / mutation.file
    patched.unlink()
    patched.write_text(mutated, encoding="utf-8")
    return dest


@dataclass
class SuiteOutcome:
    """What one run of the suite gave: its exit code (None on timeout), the cases that failed, the tail of its
    output, and the outcomes it recorded (``SuiteRun.outcomes``)."""

    code: int | None
    failed: list[str]
    tail: str
    outcomes: dict[tuple[str, str], object] = field(default_factory=dict)


def run_suite(impl_id: str, pythonpath: Path | None, timeout: float, keyword: str | None = None,
              first_failure: bool = True) -> SuiteOutcome:
    """Run the conformance suite in a new process."""
    with tempfile.TemporaryDirectory(prefix="selfcheck-run-") as tmp:
        # -x stops at the first failure, so the results are those of an incomplete run (FILE.partial)
        run = execution.run(impl_id, Path(tmp), *(["-x"] if first_failure else []), keyword=keyword, timeout=timeout,
                            place=execution.Place(first_on_path=pythonpath), capture=True)
    if run.returncode is None:
        return SuiteOutcome(None, [], "timed out")
    return SuiteOutcome(run.returncode, run.failed_cases(), "\n".join(run.output.strip().splitlines()[-3:]),
                        run.outcomes())


def changed_outcomes(baseline: dict[tuple[str, str], object], mutant: dict[tuple[str, str], object]) -> list[str]:
    """'<case>: <call> gave <before>, now <after>' for each outcome the mutant changed, in the baseline's order."""
    return [f"{case}: {label} gave {before}, now {mutant[case, label]}"
            for (case, label), before in baseline.items() if (case, label) in mutant and mutant[case, label] != before]


def check_mutation(m: Mutation, impl_id: str, source: Path, package: str, timeout: float,
                   keyword: str | None, baseline: dict[tuple[str, str], object] | None = None) -> Outcome:
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"selfcheck-{m.id}-") as tmp:
        if shadow_copy(source, Path(tmp), package, m) is None:
            return Outcome(m.id, m.description, "stale", detail=f"text not found in {m.file}")
        run = run_suite(impl_id, Path(tmp), timeout, keyword)
    code, failed, tail = run.code, run.failed, run.tail
    seconds = round(time.monotonic() - start, 1)
    if code is None:
        return Outcome(m.id, m.description, "timeout", seconds=seconds, detail=f"over {timeout:g} s")
    changed = changed_outcomes(baseline or {}, run.outcomes) if code == 0 else []
    if changed:
        return Outcome(m.id, m.description, "killed", [c.split(":", 1)[0] for c in changed], seconds,
                       f"changed {len(changed)} recorded outcome(s); first, {changed[0]}")
    if code == 0:
        status = "equivalent" if m.equivalent else "survived"
        return Outcome(m.id, m.description, status, seconds=seconds, detail=m.equivalent)
    detail = "" if failed else f"exit {code}: {tail}"
    return Outcome(m.id, m.description, "killed", failed, seconds, detail)


def applicable(mutations: list[Mutation], backend: str, only: list[str] | None) -> list[Mutation]:
    chosen = [m for m in mutations if not m.backends or backend in m.backends]
    if only:
        unknown = set(only) - {m.id for m in mutations}
        if unknown:
            raise SelfcheckError(f"no mutation called {', '.join(sorted(unknown))}")
        chosen = [m for m in chosen if m.id in only]
    return chosen


def score(outcomes: list[Outcome]) -> tuple[int, int, float]:
    """(killed, counted, score): timeouts count as killed; stale and equivalent are not counted."""
    killed = sum(o.status in ("killed", "timeout") for o in outcomes)
    counted = killed + sum(o.status == "survived" for o in outcomes)
    return killed, counted, (killed / counted if counted else 1.0)


def selfcheck(impl_id: str, jobs: int = 2, timeout: float = 300.0, only: list[str] | None = None,
              keyword: str | None = None, report: Callable[[str], None] = print) -> list[Outcome]:
    """Run the baseline, then every applicable mutation; returns their outcomes."""
    spec = impls.check_available(impl_id)
    variant_package = "keras" if spec.family == "keras3" else "tf_keras"
    if spec.family == "keras2" and importlib.util.find_spec("tf_keras") is None:
        raise SelfcheckError("selfcheck for keras2 needs the tf_keras package (no catalogue for Keras 2.15)")
    package, mutations = load_catalogue(MUTATIONS_DIR / f"{CATALOGUES[variant_package]}.toml")
    chosen = applicable(mutations, spec.backend, only)
    source = package_dir(package)
    report(f"selfcheck {impl_id}: {len(chosen)} mutations of {source}, {jobs} at a time")
    base = run_suite(impl_id, None, timeout, keyword, first_failure=False)
    code, failed, tail = base.code, base.failed, base.tail
    if code == ExitCode.NO_TESTS_COLLECTED:
        raise SelfcheckError(suite.nothing_selected(keyword, where=impl_id))
    if code != 0:
        last = (tail.splitlines() or ["no output"])[-1]
        raise SelfcheckError(f"the unmutated suite does not pass on {impl_id} (exit {code}, failed: "
                             f"{', '.join(failed) or last}); fix that first")
    report("baseline: the unmutated suite passes")
    outcomes: list[Outcome] = []

    def one(m: Mutation) -> Outcome:
        outcome = check_mutation(m, impl_id, source, package, timeout, keyword, base.outcomes)
        outcomes.append(outcome)
        by = f" by {outcome.killed_by[0]}" if outcome.killed_by else ""
        report(f"[{len(outcomes)}/{len(chosen)}] {outcome.status:<10} {m.id}{by} ({outcome.seconds:g} s)"
               + (f" — {outcome.detail}" if outcome.detail and outcome.status != "killed" else ""))
        return outcome

    return children.map_in_threads(one, chosen, jobs)


def to_json(impl_id: str, outcomes: list[Outcome]) -> str:
    killed, counted, value = score(outcomes)
    return json.dumps({"impl": impl_id, "killed": killed, "counted": counted, "score": value,
                       "mutations": [asdict(o) for o in outcomes]}, indent=2) + "\n"
