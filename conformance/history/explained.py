"""Changes of the recorded history explained from the two releases' sources, where no expectation record does.

An expectation record explains a change when its version range starts or ends at that release, and says
what the check gives there (``[[change]]``, ``[[divergence]]``). Most changes of the argument edges
(:mod:`conformance.edges`) are not worth a record each: a reworded error message, a new entry in a config, an
identifier ``get`` now takes. They are recorded outcomes, judged by nobody, and what a reader needs is which
commit changed them. Each is explained by an entry of ``fixtures/history/explained.toml``::

    [[explained]]
    release = "3.4.0"                    # the release whose page lists the change
    case = "edges-initializers-*"        # a case ID, or a pattern with *
    check = "*-seed-1-5-*"               # a check key or a pattern (default: every check of the case)
    backends = ["jax", "torch"]          # the histories it is about (default: every one)
    reason = "..."                       # what changed, in words
    evidence = "..."                     # where, in the two releases' sources: the commit and the lines

An entry that explains no change at its release of a recorded history it names (every history that records
that release, where it names none) is an error (``history pages`` and the
tests say which), as a record that matches nothing is: an explanation cannot outlive what it explains.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from conformance.data.files import FixtureError, read_toml
from conformance.history.recipes import HISTORY

FILE = HISTORY / "explained.toml"
FIELDS = {"release", "case", "check", "backends", "reason", "evidence"}


class ExplainedError(FixtureError):
    """``explained.toml`` is malformed; the message is one line."""


@dataclass(frozen=True)
class Explanation:
    release: str
    case: str
    reason: str
    evidence: str
    check: str = "*"
    backends: tuple[str, ...] = ()
    line: int = 0

    def covers(self, backend: str, release: str, case_id: str, key: str) -> bool:
        return (release == self.release and (not self.backends or backend in self.backends)
                and fnmatch.fnmatchcase(case_id, self.case) and fnmatch.fnmatchcase(key, self.check))

    def where(self) -> str:
        return f"explained.toml:{self.line} (release {self.release}, case {self.case}, check {self.check})"


def load(path: Path = FILE) -> list[Explanation]:
    """The entries of ``path`` (none where it does not exist)."""
    if not path.exists():
        return []
    data = read_toml(path, ExplainedError)
    lines = [n + 1 for n, text in enumerate(path.read_text(encoding="utf-8").splitlines())
             if text.strip() == "[[explained]]"]
    out = []
    for n, entry in enumerate(data.get("explained", [])):
        line = lines[n] if n < len(lines) else 0
        unknown = set(entry) - FIELDS
        missing = {"release", "case", "reason", "evidence"} - set(entry)
        if unknown or missing:
            what = f"unknown field {sorted(unknown)[0]!r}" if unknown else f"no {sorted(missing)[0]!r}"
            raise ExplainedError(f"{path}:{line}: [[explained]] has {what}")
        out.append(Explanation(str(entry["release"]), entry["case"], " ".join(entry["reason"].split()),
                               " ".join(entry["evidence"].split()), entry.get("check", "*"),
                               tuple(entry.get("backends", ())), line))
    return out


def explaining(entries: Iterable[Explanation], backend: str, release: str, change: Any) -> list[Explanation]:
    """The entries that explain ``change`` (a ReleaseChange) at ``release`` of the ``backend`` history."""
    return [e for e in entries if e.covers(backend, release, change["case"], change["key"])]


def unused(entries: Iterable[Explanation], backend: str, changes: dict[str, list[Any]]) -> list[str]:
    """One line for each entry about ``backend`` that explains none of its ``changes`` at its release (by
    release; a release this history does not record is not checked here). An entry that names no backends
    claims every history that records its release."""
    out = []
    for e in entries:
        if e.backends and backend not in e.backends or e.release not in changes:
            continue
        if not any(e.covers(backend, e.release, c["case"], c["key"]) for c in changes[e.release]):
            out.append(f"{e.where()} explains no change of the {backend} history")
    return out
