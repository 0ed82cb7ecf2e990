"""Recording the history: each stack's suite run, fingerprinted, and what a recorded history holds.

``run`` builds each stack's environment with uv, runs the suite there (the
suite is put on ``PYTHONPATH``, not installed, so one checkout serves every
stack) and writes its fingerprint to ``<history>/<backend>/<stack>.json``,
recording the recipe's digest: a stack already fingerprinted with the same
recipe is skipped.  ``load`` reads them back, so that the timeline, diffs and
pages answer without installing anything.
"""

from __future__ import annotations

import concurrent.futures
import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from conformance import execution
from conformance.data import fingerprint
from conformance.data.files import write_atomic
from conformance.data.schema import Fingerprint
from conformance.data.target import Target
from conformance.execution import children
from conformance.history.environments import PACKAGE_ROOT, StackFailed, build, snapshot
from conformance.history.recipes import HistoryError, Stack

DEFAULT_TIMEOUT = 900.0



def fingerprint_path(history: Path, stack: Stack) -> Path:
    return history / stack.backend / f"{stack.name}.json"


def draft_path(history: Path, stack: Stack) -> Path:
    """Where a stack's unexpected results are kept as skeleton records (see ``merged_drafts``)."""
    return history / stack.backend / "drafts" / f"{stack.name}.toml"


def recorded(history: Path, stack: Stack) -> Fingerprint | None:
    """The stack's recorded fingerprint, or None; a corrupt one is an error."""
    path = fingerprint_path(history, stack)
    if not path.exists():
        return None
    try:
        return fingerprint.load(path)
    except fingerprint.FingerprintError as exc:
        raise HistoryError(str(exc)) from None


def is_current(history: Path, stack: Stack, repeat: int = 1) -> bool:
    """Whether the stack is recorded with this recipe, at least ``repeat`` times."""
    fp = recorded(history, stack)
    return fp is not None and fp["environment"].get("recipe") == stack.digest \
        and fp["environment"].get("runs", 1) >= repeat


def fingerprint_stack(stack: Stack, python: Path, timeout: float, root: Path = PACKAGE_ROOT,
                      draft: Path | None = None) -> Fingerprint:
    """Run the suite (the package under ``root``) on the stack's environment; its fingerprint, with the
    recipe's digest.  With ``draft``, also the skeleton expectation records of its unexpected results."""
    with tempfile.TemporaryDirectory(prefix=f"history-{stack.name}-") as tmp:
        run = execution.run(stack.impl, Path(tmp), place=execution.Place(str(python), root=root), draft=draft,
                            timeout=timeout, capture=True)
    if run.returncode is None:
        raise StackFailed(f"the suite ran past the stack's time limit of {timeout:g} s")
    if run.results is None:
        raise StackFailed(f"the suite gave no complete results (exit status {run.returncode}): "
                          f"{children.tail(run.output)}")
    fp = fingerprint.from_run(run.results)
    fp["environment"] |= {"stack": stack.name, "recipe": stack.digest}
    return fp


@dataclass
class Outcome:
    stack: Stack
    status: str  # recorded | skipped | failed
    detail: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def record(stack: Stack, history: Path, envs: Path, timeout: float, force: bool = False,
           root: Path = PACKAGE_ROOT, repeat: int = 1) -> Outcome:
    """Build, fingerprint and record one stack (``repeat`` times, its flapping checks marked:
    ``fingerprint.repeated``); a failure is an Outcome, never an exception."""
    if not force and is_current(history, stack, repeat):
        return Outcome(stack, "skipped", "already recorded with this recipe")
    times = {}
    try:
        start = time.monotonic()
        python = build(stack, envs)
        times["build"] = time.monotonic() - start
        start = time.monotonic()
        draft = draft_path(history, stack)
        draft.parent.mkdir(parents=True, exist_ok=True)
        runs = [fingerprint_stack(stack, python, timeout, root, draft if n == 0 else None) for n in range(repeat)]
        fp = fingerprint.repeated(runs) if repeat > 1 else runs[0]
        times["suite"] = time.monotonic() - start
        if "[[divergence]]" not in draft.read_text():
            draft.unlink()
    except StackFailed as exc:
        return Outcome(stack, "failed", str(exc), times)
    path = fingerprint_path(history, stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, fingerprint.dumps(fp))
    flapping = sum(len(entry.get("flapping", {})) for entry in fp["cases"].values())
    return Outcome(stack, "recorded", verdict_summary(fp) + (f"; {flapping} check(s) flapping over {repeat} runs"
                                                             if repeat > 1 else ""), times)


def verdict_summary(fp: Fingerprint) -> str:
    """'101 pass, 10 divergence, 1 fail': how many of a fingerprint's cases ended in each verdict."""
    from conformance.engine.verdict import STATUSES

    statuses = [entry["status"] for entry in fp["cases"].values()]
    return ", ".join(f"{statuses.count(s)} {s}" for s in STATUSES if s in statuses)


def run(stacks: list[Stack], history: Path, envs: Path, jobs: int, timeout: float, force: bool,
        report: Callable[[str], None], repeat: int = 1) -> list[Outcome]:
    """Record every stack (each ``repeat`` times), ``jobs`` at a time; failures are recorded in
    ``<backend>/failed.json``."""
    outcomes: list[Outcome] = []
    history, envs = history.resolve(), envs.resolve()
    with tempfile.TemporaryDirectory(prefix="keras-conformance-suite-") as tmp, \
            concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        root = snapshot(Path(tmp))
        futures = {pool.submit(record, s, history, envs, timeout, force, root, repeat): s for s in stacks}
        try:
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                outcomes.append(outcome)
                took = ", ".join(f"{k} {v:.0f} s" for k, v in outcome.seconds.items())
                report(f"[{len(outcomes)}/{len(stacks)}] {outcome.stack.name}: {outcome.status}"
                       + (f" ({took})" if took else "") + (f": {outcome.detail}" if outcome.detail else ""))
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            children.stop_all()
            raise
    for backend in {s.backend for s in stacks}:
        path = history / backend / "failed.json"
        failed = json.loads(path.read_text()) if path.exists() else {}
        for o in outcomes:
            if o.stack.backend != backend:
                continue
            if o.status == "failed":
                failed[o.stack.name] = {"recipe": o.stack.digest, "error": o.detail}
            else:
                failed.pop(o.stack.name, None)
        if failed:
            write_atomic(path, json.dumps(failed, indent=1, sort_keys=True) + "\n")
        else:
            path.unlink(missing_ok=True)
    order = {s.name: i for i, s in enumerate(stacks)}
    return sorted(outcomes, key=lambda o: order[o.stack.name])


def records_matching_no_stack(history: Path, stacks: list[Stack]) -> list[Any]:
    """The expectation records for the stacks' implementations that apply to none of the recorded stacks
    on the CPU (records for another implementation or device are not judged)."""
    from conformance.engine import expectations

    ran = []  # the target of each recorded stack, on the CPU its history was recorded on
    for stack in stacks:
        fp = recorded(history, stack)
        if fp is not None:
            target = Target.of_environment(fp["environment"], stack.impl)
            ran.append(replace(target, keras_version=target.keras_version or str(stack.version)))
    out = []
    for r in expectations.load_all():
        mine = [t for t in ran if t.family == r.family]
        if not mine or (r.only and not any(t.impl in r.only or t.variant in r.only for t in mine)):
            continue
        if r.devices and not any(t.device_kind in r.devices for t in mine):
            continue
        if not any(r.applies_to(t) for t in mine):
            out.append(r)
    return out


def failures(history: Path, backend: str) -> dict[str, dict[str, str]]:
    path = history / backend / "failed.json"
    return json.loads(path.read_text()) if path.exists() else {}


# -- Reading ------------------------------------------------------------------------------------


def load(history: Path, backend: str, stacks: list[Stack]) -> list[tuple[Stack, Fingerprint]]:
    """Every recorded stack of ``backend`` with its fingerprint, oldest first."""
    out = []
    for stack in stacks:
        fp = recorded(history, stack)
        if fp is not None:
            out.append((stack, fp))
    if not out:
        raise HistoryError(f"nothing is recorded for {backend} in {history / backend}; "
                           f"run: keras-conformance history run --backend {backend}")
    return out
