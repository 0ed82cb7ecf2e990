"""The nightly canary: today's nightlies fingerprinted and diffed against the newest release."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from conformance.data import diffreport, fingerprint
from conformance.data.schema import Diff
from conformance.history.environments import StackFailed, build, snapshot
from conformance.history.recipes import BACKEND_REQUIREMENT, HistoryError, Stack, resolve_recipe
from conformance.history.recording import fingerprint_stack, recorded


def nightly_stacks(stacks: list[Stack]) -> list[Stack]:
    """The stacks of nightly builds: keras-nightly on a released backend, and tf-nightly."""
    return [s for s in stacks if s.keras.endswith("nightly")]


def newest_release(stacks: list[Stack], impl: str) -> Stack:
    """The newest released (not nightly) stack of ``impl``: what the next release is compared with."""
    released = [s for s in stacks if s.impl == impl and not s.keras.endswith("nightly")]
    if not released:
        raise HistoryError(f"no released stack of {impl} to compare the nightly with")
    return released[-1]


def todays_nightly(stack: Stack, today: str) -> Stack:
    """``stack``'s recipe re-resolved as of ``today``: the newest keras-nightly (and tf-nightly) that exist."""
    if stack.keras == "tf-nightly":
        wanted = ["tf-nightly", "keras-nightly"]
    else:
        wanted = ["keras-nightly", BACKEND_REQUIREMENT[stack.backend]]
    return resolve_recipe(stack.keras, today, stack.backend, wanted, stack.implementation, stack.name)


@dataclass
class CanaryResult:
    nightly: Stack
    release: Stack
    diff: Diff | None  # None: the nightly did not build or run
    error: str = ""


def canary(stacks: list[Stack], history: Path, envs: Path, today: str, timeout: float,
           report: Callable[[str], None]) -> list[CanaryResult]:
    """Fingerprint today's nightlies and diff each against the newest release's recorded fingerprint."""
    results = []
    with tempfile.TemporaryDirectory(prefix="keras-conformance-suite-") as tmp:
        root = snapshot(Path(tmp))
        for stack in nightly_stacks(stacks):
            release = newest_release(stacks, stack.impl)
            old = recorded(history, release)
            if old is None:
                raise HistoryError(f"{release.name} is not recorded in {history / release.backend}; "
                                   f"run: keras-conformance history run --backend {release.backend} "
                                   f"--stacks {release.keras}")
            try:
                fresh = todays_nightly(stack, today)
                report(f"{fresh.name}: {fresh.label} on {fresh.framework}, against {release.label}")
                new = fingerprint_stack(fresh, build(fresh, envs / "canary"), timeout, root)
            except (StackFailed, HistoryError) as exc:
                results.append(CanaryResult(stack, release, None, str(exc)))
                continue
            results.append(CanaryResult(fresh, release, fingerprint.diff(old, new)))
    return results


def canary_report(results: list[CanaryResult], fmt: str, today: str = "") -> str:
    """The canary's findings: per nightly, what changes from the newest release (md or json)."""
    if fmt == "json":
        return json.dumps([{"date": today, "nightly": r.nightly.name, "label": r.nightly.label, "framework": r.nightly.framework,
                            "release": r.release.label, "error": r.error, "diff": r.diff} for r in results],
                          indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    out = ["# Nightly canary: what the next release will change", ""]
    if today:
        out += [f"The newest nightlies as of {today} (`keras-conformance history canary`), each against the newest "
                "release's recorded fingerprint.", ""]
    for r in results:
        head = f"## {r.nightly.label} on {r.nightly.framework}, against {r.release.label}"
        if r.diff is None:
            out += [head, "", f"**Did not run**: {r.error}", ""]
            continue
        body = diffreport.render(r.diff, "md").split("\n", 1)[1].lstrip("\n")  # its own title dropped
        out += [head, "", "\n".join("#" + line if line.startswith("#") else line for line in body.split("\n"))]
    return "\n".join(out)


def canary_failed(results: list[CanaryResult]) -> bool:
    """The nightly changes a behaviour, or a nightly could not be checked."""
    return any(r.diff is None or fingerprint.has_changes(r.diff) for r in results)
