"""Known divergences of implementations, kept as data in ``fixtures/expectations``.

One TOML file per implementation family (``keras3.toml``, ``keras2.toml``),
each a list of ``[[divergence]]`` tables::

    [[divergence]]
    case = "notebook-dropout-build-time-training"   # a registered case ID
    check = "predict applies dropout"               # the check that differs
    observed = false                                # what the implementation gives instead
    only = ["keras3:numpy"]                         # optional: IDs or variants it applies to
    versions = ">=3.1,<3.15"                        # optional: the Keras versions it applies to (PEP 440)
    devices = ["gpu"]                               # optional: the kinds of device it applies to (DEVICE_KINDS)
    reason = "why it differs"
    evidence = "docs, changelog, source file or upstream issue"

A string ``observed`` may contain ``*`` wildcards (error messages).  The
Keras version ``versions`` is matched against is that of the variant under
test: ``keras`` for Keras 3, ``tf_keras``, or TensorFlow's for ``tensorflow.keras``.
``devices`` scopes an entry to the kind of device the backend runs on.

Divergences are strict: a recorded divergence whose check now passes, or
that now gives something else than ``observed``, fails the case and says so;
an entry naming an unknown case or implementation is an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from conformance import FIXTURES
from conformance.checks import Check, brief
from conformance.files import FixtureError, read_toml

EXPECTATIONS_DIR = FIXTURES / "expectations"
REQUIRED = ("case", "check", "observed", "reason", "evidence")
OPTIONAL = ("only", "versions", "devices")
#: cpu-bf16: a CPU on which the backend computes in bfloat16 unless told otherwise (OpenVINO on AMX/AVX512-BF16).
DEVICE_KINDS = ("cpu", "cpu-bf16", "gpu", "tpu")


class ExpectationsError(FixtureError):
    """A fixtures file is unreadable or malformed; the message is one line."""


@dataclass(frozen=True)
class Divergence:
    case: str
    check: str
    observed: Any
    reason: str
    evidence: str
    family: str
    file: str
    only: tuple[str, ...] = ()
    versions: str = ""  # a PEP 440 specifier on the Keras version; empty: every version
    devices: tuple[str, ...] = ()  # kinds of device (cpu, gpu, tpu); empty: every device

    def applies_to(self, impl_id: str, variant: str, keras_version: str | None = None,
                   device_kind: str | None = None) -> bool:
        if self.only and impl_id not in self.only and variant not in self.only:
            return False
        if self.devices and device_kind is not None and device_kind not in self.devices:
            return False
        if self.versions and keras_version is not None:
            return SpecifierSet(self.versions).contains(keras_version, prereleases=True)
        return True

    def where(self) -> str:
        return f"{self.file} (case {self.case}, check {self.check!r})"


def load_file(path: Path, family: str) -> list[Divergence]:
    data = read_toml(path, ExpectationsError)
    unknown_keys = set(data) - {"divergence"}
    if unknown_keys:
        raise ExpectationsError(f"{path}: unknown top-level key(s) {sorted(unknown_keys)}; expected [[divergence]]")
    entries = []
    for n, entry in enumerate(data.get("divergence", []), start=1):
        where = f"{path.name} divergence #{n}"
        absent = [key for key in REQUIRED if key not in entry]
        if absent:
            raise ExpectationsError(f"{where}: missing {', '.join(absent)}")
        extra = set(entry) - set(REQUIRED) - set(OPTIONAL)
        if extra:
            raise ExpectationsError(f"{where}: unknown key(s) {sorted(extra)}")
        for key in ("reason", "evidence"):
            if not str(entry[key]).strip():
                raise ExpectationsError(f"{where}: {key} is empty")
        unknown_devices = set(entry.get("devices", ())) - set(DEVICE_KINDS)
        if unknown_devices:
            raise ExpectationsError(f"{where}: devices {sorted(unknown_devices)} unknown; use {', '.join(DEVICE_KINDS)}")
        try:
            SpecifierSet(entry.get("versions", ""))
        except (InvalidSpecifier, TypeError):
            raise ExpectationsError(f"{where}: versions {entry['versions']!r} is not a version specifier "
                                    "such as '>=3.1,<3.15'") from None
        entries.append(
            Divergence(
                case=entry["case"], check=entry["check"], observed=entry["observed"],
                reason=" ".join(str(entry["reason"]).split()), evidence=" ".join(str(entry["evidence"]).split()),
                family=family, file=path.name, only=tuple(entry.get("only", ())),
                versions=entry.get("versions", ""), devices=tuple(entry.get("devices", ())),
            )
        )
    return entries


def load_all(directory: Path = EXPECTATIONS_DIR) -> list[Divergence]:
    if not directory.is_dir():
        raise ExpectationsError(f"expectations directory {directory} does not exist")
    entries = []
    for path in sorted(directory.glob("*.toml")):
        entries.extend(load_file(path, family=path.stem))
    return entries


#: What ``only`` may name besides implementation IDs: the Keras variants.
VARIANTS = ("keras", "tf_keras", "tensorflow.keras")


def load_checked() -> list[Divergence]:
    """The shipped expectations, validated against the registered cases and the implementations."""
    from conformance import cases, impls

    entries = load_all()
    validate(entries, {c.id for c in cases.all_cases()}, set(impls.IMPLS), set(VARIANTS))
    return entries


def validate(entries: Iterable[Divergence], case_ids: set[str], impl_ids: set[str], variants: set[str]) -> None:
    """Every entry names a registered case and known implementations, once."""
    seen = set()
    for d in entries:
        if d.case not in case_ids:
            raise ExpectationsError(f"{d.file}: divergence for unknown case {d.case!r}")
        if d.family not in {i.split(":")[0] for i in impl_ids}:
            raise ExpectationsError(f"{d.file}: no implementation family is called {d.family!r}")
        for name in d.only:
            if name not in impl_ids | variants:
                raise ExpectationsError(f"{d.file}: case {d.case}: unknown implementation {name!r} in only")
        key = (d.family, d.case, d.check, d.only, d.versions, d.devices)
        if key in seen:
            raise ExpectationsError(f"{d.where()}: recorded twice")
        seen.add(key)


def same(recorded: Any, observed: Any, rtol: float = 1e-6) -> bool:
    """Whether an observation is what a divergence recorded (numbers within ``rtol``, ``*`` in strings)."""
    if isinstance(recorded, bool) or isinstance(observed, bool):
        return recorded is observed or recorded == observed and type(recorded) is type(observed)
    if isinstance(recorded, (int, float)) and isinstance(observed, (int, float)):
        return math.isclose(recorded, observed, rel_tol=rtol, abs_tol=1e-12)
    if isinstance(recorded, str) and isinstance(observed, str):
        pattern = ".*".join(re.escape(part) for part in recorded.split("*"))
        return re.fullmatch(pattern, observed, flags=re.DOTALL) is not None
    if isinstance(recorded, list) and isinstance(observed, list):
        return len(recorded) == len(observed) and all(same(r, o, rtol) for r, o in zip(recorded, observed))
    if isinstance(recorded, dict) and isinstance(observed, dict):
        return recorded.keys() == observed.keys() and all(same(recorded[key], observed[key], rtol) for key in recorded)
    return recorded == observed


@dataclass
class Verdict:
    """The outcome of one case on one implementation."""

    status: str  # "pass", "divergence" or "fail"
    problems: list[str]  # why it failed, one line each
    divergences: list[Divergence]  # the recorded divergences that held


def judge(checks: list[Check], divergences: list[Divergence]) -> Verdict:
    """Compare a case's checks with its recorded divergences, strictly."""
    by_name = {c.name: c for c in checks}
    problems: list[str] = []
    held: list[Divergence] = []
    covered = set()
    for d in divergences:
        check = by_name.get(d.check)
        covered.add(d.check)
        if check is None:
            problems.append(f"recorded divergence {d.where()} names a check this case did not make")
        elif check.passed:
            problems.append(
                f"recorded divergence no longer happens: {d.check!r} now gives the expected "
                f"{brief(check.observed)}; remove it from {d.file}"
            )
        elif not same(d.observed, check.observed):
            problems.append(
                f"diverges differently than recorded: {d.check!r} gives {brief(check.observed)}, "
                f"{d.file} recorded {brief(d.observed)} (expected {brief(check.expected)})"
            )
        else:
            held.append(d)
    for check in checks:
        if not check.passed and check.name not in covered:
            problems.append(
                f"{check.name}: expected {brief(check.expected)}, observed {brief(check.observed)} ({check.how})"
            )
    if problems:
        return Verdict("fail", problems, held)
    return Verdict("divergence" if held else "pass", [], held)
