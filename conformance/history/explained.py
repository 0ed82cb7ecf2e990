"""Changes of the recorded history explained from the two releases' sources, where no expectation record does.

An expectation record explains a change when its version range starts or ends at that release, and says
what the check gives there (``[[change]]``, ``[[divergence]]``). Most changes of the argument edges
(:mod:`conformance.edges`) are not worth a record each: a reworded error message, a new entry in a config, an
identifier ``get`` now takes. They are recorded outcomes, judged by nobody, and what a reader needs is which
commit changed them. Each is explained by an entry of ``fixtures/history/explained.toml``::

    [[explained]]
    release = "3.4.0"                    # the first Keras release with the change (its commit's first tag)
    case = "edges-initializers-*"        # a case ID, or a pattern with *
    check = "*-seed-1-5-*"               # a check key or a pattern (default: every check of the case)
    backends = ["jax", "torch"]          # the histories it is about (default: every one)
    reason = "..."                       # what changed, in words
    evidence = "..."                     # where, in the two releases' sources: the commit and the lines

A history lists the change on the page of its first recorded release from ``release`` on (3.4.1 in a history
that records 3.3.3 and then 3.4.1): the entry explains it there, in each history it names. An entry that
explains no change on that page of a history it names (every history, where it names none) is an error (``history pages`` and the
tests say which), as a record that matches nothing is: an explanation cannot outlive what it explains.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from packaging.version import InvalidVersion, Version

from conformance.data.files import FixtureError, read_toml
from conformance.history.recipes import HISTORY

FILE = HISTORY / "explained.toml"
FIELDS = {"release", "case", "check", "backends", "reason", "evidence"}
BACKENDS = {"jax", "tensorflow", "torch"}  # the histories (fixtures/history/<backend>.toml)


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

    def lands(self, backend: str, before: Version, after: Version) -> bool:
        """Whether this entry's change is listed on the page of the release ``after`` (which follows
        ``before``) of the ``backend`` history."""
        return (not self.backends or backend in self.backends) and before < Version(self.release) <= after

    def matches(self, case_id: str, key: str) -> bool:
        return fnmatch.fnmatchcase(case_id, self.case) and fnmatch.fnmatchcase(key, self.check)

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
        backends = entry.get("backends", [])
        if not isinstance(backends, list) or not set(backends) <= BACKENDS:
            raise ExplainedError(f"{path}:{line}: backends must be a list of {', '.join(sorted(BACKENDS))}; "
                                 f"got {backends!r}")
        try:
            Version(str(entry["release"]))
        except InvalidVersion:
            raise ExplainedError(f"{path}:{line}: release {entry['release']!r} is not a version") from None
        out.append(Explanation(str(entry["release"]), entry["case"], " ".join(entry["reason"].split()),
                               " ".join(entry["evidence"].split()), entry.get("check", "*"),
                               tuple(entry.get("backends", ())), line))
    return out


def explaining(entries: Iterable[Explanation], tl: Any, index: int, change: Any) -> list[Explanation]:
    """The entries that explain ``change`` (a ReleaseChange) on the page of the ``index``-th release of the
    timeline ``tl``."""
    from conformance.history.view import previous_of, version_of

    before, after = version_of(tl["stacks"][previous_of(tl, index)]), version_of(tl["stacks"][index])
    return [e for e in entries if e.lands(tl["backend"], before, after) and e.matches(change["case"], change["key"])]


def unused(entries: Iterable[Explanation], tl: Any, changes: dict[str, list[Any]]) -> list[str]:
    """One line for each entry about the history ``tl`` that explains none of the ``changes`` (by release)
    on the page where its release lands; an entry whose release no page of this history spans is not
    checked here."""
    from conformance.history.view import previous_of, version_of

    pages = [(i, version_of(tl["stacks"][previous_of(tl, i)]), version_of(tl["stacks"][i]))
             for i, before in enumerate(tl["previous"]) if before is not None]
    out = []
    for e in entries:
        landing = [i for i, before, after in pages if e.lands(tl["backend"], before, after)]
        if landing and not any(e.matches(c["case"], c["key"]) for i in landing for c in changes[tl["releases"][i]]):
            out.append(f"{e.where()} explains no change of the {tl['backend']} history")
    return out
