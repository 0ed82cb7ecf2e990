"""What the suite expects of each implementation beyond the oracles: data in ``fixtures/expectations``.

One TOML file per implementation family (``keras3.toml``, ``keras2.toml``),
each a list of records of four kinds::

    [[divergence]]                                  # the implementation gives something else
    case = "notebook-dropout-build-time-training"   # a registered case ID (or a pattern: "layer-*-seed")
    check = "predict-applies-dropout"               # the key of the check that differs (Check.key)
    observed = false                                # what the implementation gives instead
    rtol = 1e-4                                     # optional: how close a number must be (default 1e-6)
    reason = "why it differs"
    evidence = "docs, changelog, source file or upstream issue"

    [[skip]]                                        # the case cannot run here at all (hangs, op missing)
    case = "..."
    reason = "..."
    evidence = "..."

    [[tolerance]]                                   # correct to a looser tolerance on this check
    case = "..."
    check = "..."                                   # a check compared with Checks.close
    rtol = 1e-3                                     # replaces the case's own rtol
    atol = 0.0                                      # optional: replaces its atol (default 0)
    reason = "..."
    evidence = "..."

    [[change]]                                      # a value that differs between releases, the verdict the same
    case = "..."
    check = "..."
    observed = "≤ 1 eps of float32"                 # the check's value where the record applies, and not elsewhere
    framework = "jax>=0.10.2"                       # required: versions or framework, where it is seen
    reason = "..."
    evidence = "..."

Every kind may be scoped::

    only = ["keras3:numpy"]                         # IDs or variants it applies to
    versions = ">=3.1,<3.15"                        # the Keras versions it applies to (PEP 440)
    devices = ["gpu"]                               # the kinds of device it applies to (DEVICE_KINDS)
    framework = "jax>=0.4.21,<0.4.24"               # the versions of the backend framework it applies to

A string ``observed`` may contain ``*`` wildcards (error messages).  The ``observed`` of a
statistical check (the moments of its draws) holds within ``SAMPLING_ERRORS`` standard errors of
what the draws give, so another random stream of the same distribution is the same divergence.  The
Keras version ``versions`` is matched against is that of the variant under
test: ``keras`` for Keras 3, ``tf_keras``, or TensorFlow's for ``tensorflow.keras``.
``devices`` scopes an entry to the kind of device the backend runs on, and
``framework`` to versions of the framework it runs on (one of FRAMEWORKS,
as the run's header reports it), for what a framework release does whatever
the Keras on top of it.

Records are strict: a divergence whose check now passes or gives something
else than ``observed``, or a tolerance whose check now passes at the case's
own tolerance, fails the case and says so; an entry naming an unknown case,
check key or implementation is an error.  A change never alters a verdict (a
run does not use it): it explains what a fingerprint diff or a release page of
the history shows, as the recorded history bears out (the check gives
``observed`` on every recorded stack the record applies to and on no other:
``history.changes_that_do_not_hold``).  ``draft`` writes skeleton records
for a run's unexpected results, whose empty reason and evidence are rejected
until a person fills them in.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from conformance import FIXTURES
from conformance.backends import impls
from conformance.data.files import FixtureError, read_toml
from conformance.data.schema import CaseResult, RecordJSON
from conformance.data.target import DEVICE_KINDS, Target, family_of
from conformance.engine.checks import KEY_PATTERN, Check, brief, key_of
from conformance.engine.verdict import Verdict

EXPECTATIONS_DIR = FIXTURES / "expectations"
#: The keys each kind of record must have, and those it may have.
REQUIRED = {
    "divergence": ("case", "check", "observed", "reason", "evidence"),
    "skip": ("case", "reason", "evidence"),
    "tolerance": ("case", "check", "rtol", "reason", "evidence"),
    "change": ("case", "check", "observed", "reason", "evidence"),
}
OPTIONAL = {"divergence": ("rtol",), "skip": (), "tolerance": ("atol",), "change": ()}
#: How close a number observed must be to a divergence's ``observed`` where the record gives no ``rtol``.
OBSERVED_RTOL = 1e-6
SCOPE = ("only", "versions", "devices", "framework")
KINDS = tuple(REQUIRED)
#: The kinds a run applies to its cases; a change only explains (diffs, the history's release pages).
JUDGED = ("divergence", "skip", "tolerance")
#: The frameworks a ``framework`` scope may name: the backends, by the name a run's header gives their version.
FRAMEWORKS = tuple(dict.fromkeys(spec.backend for spec in impls.IMPLS.values()))


class ExpectationsError(FixtureError):
    """A fixtures file is unreadable or malformed; the message is one line."""


@dataclass(frozen=True)
class Record:
    """One record of ``fixtures/expectations``: a divergence, a skip, a tolerance or a change."""

    kind: str  # divergence | skip | tolerance | change
    case: str
    reason: str
    evidence: str
    family: str
    file: str
    check: str = ""  # the check key (divergence, tolerance)
    observed: Any = None  # what the implementation gives instead (divergence)
    rtol: float = 0.0  # the tolerance that applies instead (tolerance); how close to observed (divergence)
    atol: float = 0.0
    only: tuple[str, ...] = ()
    versions: str = ""  # a PEP 440 specifier on the Keras version; empty: every version
    devices: tuple[str, ...] = ()  # kinds of device (cpu, gpu, tpu); empty: every device
    framework: str = ""  # a requirement on the framework's version ("jax>=0.4.21,<0.4.24"); empty: any
    line: int = 0  # where the record starts in its file

    def applies_to(self, target: Target) -> bool:
        """Whether the record applies to ``target``: its family, implementation or Keras variant (``only``),
        Keras version, kind of device and framework versions; what the target does not know (None) does not
        narrow it.  The one answer to this question, for runs, diffs and the history alike."""
        if self.family != target.family:
            return False
        if self.only and target.impl not in self.only and target.variant not in self.only:
            return False
        if self.devices and target.device_kind is not None and target.device_kind not in self.devices:
            return False
        if self.framework and target.frameworks:
            required = Requirement(self.framework)
            installed = target.frameworks.get(required.name)
            if installed and not required.specifier.contains(str(installed), prereleases=True):
                return False
        if self.versions and target.keras_version is not None:
            return SpecifierSet(self.versions).contains(target.keras_version, prereleases=True)
        return True

    def covers(self, case_id: str) -> bool:
        """Whether the record is about ``case_id``: its ``case``, or a pattern with ``*`` for a family of
        generated cases (``layer-*-regularizers``: one record for every declared layer it holds for)."""
        return fnmatch.fnmatchcase(case_id, self.case) if "*" in self.case else case_id == self.case

    def where(self) -> str:
        what = f", check {self.check!r}" if self.check else ""
        return f"{self.file}:{self.line} ({self.kind} of case {self.case}{what})"

    def to_json(self) -> RecordJSON:
        out: RecordJSON = {"kind": self.kind, "case": self.case, "reason": self.reason, "evidence": self.evidence,
                           "file": self.file, "line": self.line}
        if self.kind != "skip":
            out["check"] = self.check
        if self.kind in ("divergence", "change"):
            out["observed"] = self.observed
        if self.kind == "tolerance":
            out |= {"rtol": self.rtol, "atol": self.atol}
        elif self.kind == "divergence" and self.rtol:
            out["rtol"] = self.rtol
        if self.only:
            out["only"] = list(self.only)
        if self.versions:
            out["versions"] = self.versions
        if self.devices:
            out["devices"] = list(self.devices)
        if self.framework:
            out["framework"] = self.framework
        return out


def _record_lines(path: Path) -> dict[str, list[int]]:
    """The line numbers at which each kind's tables start, in order (tomllib keeps no positions)."""
    lines: dict[str, list[int]] = {kind: [] for kind in KINDS}
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = re.fullmatch(r"\s*\[\[\s*([a-z]+)\s*\]\]\s*(#.*)?", text)
        if m and m.group(1) in lines:
            lines[m.group(1)].append(n)
    return lines


def _check_framework(value: Any, where: str) -> None:
    """A ``framework`` scope names one of FRAMEWORKS with a version specifier, else ExpectationsError."""
    try:
        required = Requirement(str(value))
    except InvalidRequirement:
        required = None
    if required is None or required.name not in FRAMEWORKS or not str(required.specifier) \
            or required.extras or required.marker or required.url:
        raise ExpectationsError(f"{where}: framework {value!r} is not a framework and its versions such as "
                                f"'jax>=0.4.21,<0.4.24' (frameworks: {', '.join(FRAMEWORKS)})")


def load_file(path: Path, family: str) -> list[Record]:
    data = read_toml(path, ExpectationsError)
    unknown_keys = set(data) - set(KINDS)
    if unknown_keys:
        raise ExpectationsError(f"{path}: unknown top-level key(s) {sorted(unknown_keys)}; "
                                f"expected {', '.join(f'[[{k}]]' for k in KINDS)}")
    positions = _record_lines(path)
    entries = []
    for kind in KINDS:
        for n, entry in enumerate(data.get(kind, []), start=1):
            line = positions[kind][n - 1] if n <= len(positions[kind]) else 0
            where = f"{path.name}:{line} ({kind} #{n})"
            absent = [key for key in REQUIRED[kind] if key not in entry]
            if absent:
                raise ExpectationsError(f"{where}: missing {', '.join(absent)}")
            extra = set(entry) - set(REQUIRED[kind]) - set(OPTIONAL[kind]) - set(SCOPE)
            if extra:
                raise ExpectationsError(f"{where}: unknown key(s) {sorted(extra)} for a {kind}")
            for key in ("reason", "evidence"):
                if not str(entry[key]).strip():
                    raise ExpectationsError(f"{where}: {key} is empty; say why and where it is seen")
            if "check" in entry and not KEY_PATTERN.fullmatch(str(entry["check"])):
                raise ExpectationsError(f"{where}: check {entry['check']!r} is not a check key such as "
                                        f"{key_of(str(entry['check']))!r}")
            for key in ("rtol", "atol"):
                if key in entry and (isinstance(entry[key], bool) or not isinstance(entry[key], (int, float))
                                     or not 0 <= entry[key] < 1):
                    raise ExpectationsError(f"{where}: {key} {entry[key]!r} is not a number in [0, 1)")
            unknown_devices = set(entry.get("devices", ())) - set(DEVICE_KINDS)
            if unknown_devices:
                raise ExpectationsError(f"{where}: devices {sorted(unknown_devices)} unknown; "
                                        f"use {', '.join(DEVICE_KINDS)}")
            if "framework" in entry:
                _check_framework(entry["framework"], where)
            if kind == "change" and not (entry.get("versions") or entry.get("framework")):
                raise ExpectationsError(f"{where}: a change needs versions or framework: the releases that give "
                                        "observed")
            try:
                SpecifierSet(entry.get("versions", ""))
            except (InvalidSpecifier, TypeError):
                raise ExpectationsError(f"{where}: versions {entry['versions']!r} is not a version specifier "
                                        "such as '>=3.1,<3.15'") from None
            entries.append(Record(
                kind=kind, case=entry["case"], check=entry.get("check", ""), observed=entry.get("observed"),
                rtol=float(entry.get("rtol", 0.0)), atol=float(entry.get("atol", 0.0)),
                reason=" ".join(str(entry["reason"]).split()), evidence=" ".join(str(entry["evidence"]).split()),
                family=family, file=path.name, only=tuple(entry.get("only", ())),
                versions=entry.get("versions", ""), devices=tuple(entry.get("devices", ())),
                framework=entry.get("framework", ""), line=line,
            ))
    return sorted(entries, key=lambda r: r.line)


def load_all(directory: Path = EXPECTATIONS_DIR) -> list[Record]:
    if not directory.is_dir():
        raise ExpectationsError(f"expectations directory {directory} does not exist")
    entries = []
    for path in sorted(directory.glob("*.toml")):
        entries.extend(load_file(path, family=path.stem))
    return entries


#: What ``only`` may name besides implementation IDs: the Keras variants.
VARIANTS = ("keras", "tf_keras", "tensorflow.keras")


def load_checked() -> list[Record]:
    """The shipped expectations, validated against the registered cases and the implementations."""
    from conformance import cases
    from conformance.backends import impls

    entries = load_all()
    validate(entries, {c.id for c in cases.all_cases()}, set(impls.IMPLS), set(VARIANTS))
    return entries


def validate(entries: Iterable[Record], case_ids: set[str], impl_ids: set[str], variants: set[str]) -> None:
    """Every entry names a registered case and known implementations, once."""
    seen = set()
    for d in entries:
        if "*" in d.case and d.kind == "change":
            raise ExpectationsError(f"{d.where()}: a change names one case, not a pattern")
        if not any(d.covers(c) for c in case_ids):
            raise ExpectationsError(f"{d.where()}: no case is called {d.case!r}")
        if d.family not in {family_of(i) for i in impl_ids}:
            raise ExpectationsError(f"{d.file}: no implementation family is called {d.family!r}")
        for name in d.only:
            if name not in impl_ids | variants:
                raise ExpectationsError(f"{d.where()}: unknown implementation {name!r} in only")
        key = (d.kind, d.family, d.case, d.check, d.only, d.versions, d.devices, d.framework)
        if key in seen:
            raise ExpectationsError(f"{d.where()}: recorded twice")
        seen.add(key)


def same(recorded: Any, observed: Any, rtol: float = 1e-6) -> bool:
    """Whether an observation is what a divergence recorded (numbers within ``rtol``, ``*`` in strings)."""
    if isinstance(recorded, bool) or isinstance(observed, bool):
        return recorded is observed or recorded == observed and type(recorded) is type(observed)
    if isinstance(recorded, (int, float)) and isinstance(observed, (int, float)):
        if math.isnan(recorded) or math.isnan(observed):  # a recorded NaN is what a NaN gives
            return math.isnan(recorded) and math.isnan(observed)
        return math.isclose(recorded, observed, rel_tol=rtol, abs_tol=1e-12)
    if isinstance(recorded, str) and isinstance(observed, str):
        pattern = ".*".join(re.escape(part) for part in recorded.split("*"))
        return re.fullmatch(pattern, observed, flags=re.DOTALL) is not None
    if isinstance(recorded, list) and isinstance(observed, list):
        return len(recorded) == len(observed) and all(same(r, o, rtol) for r, o in zip(recorded, observed, strict=True))
    if isinstance(recorded, dict) and isinstance(observed, dict):
        return recorded.keys() == observed.keys() and all(same(recorded[key], observed[key], rtol) for key in recorded)
    return recorded == observed


#: How many of its standard errors a statistical check's summary may lie from the value a divergence
#: recorded and still be that divergence: another random stream (a new seed derivation, JAX's partitionable
#: threefry from 0.5.0) draws other samples of the same distribution, whose moments differ from the recorded
#: ones by more than this with probability below 1e-4 (the difference of two draws has √2 standard errors).
SAMPLING_ERRORS = 6.0


def _shown_digits_error(value: float) -> float:
    """Half a unit of the third significant digit of ``value``: what rounding for display may have moved it."""
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(value))) - 2) if value else 0.0


def same_draw(recorded: Any, observed: Any, spread: Any) -> bool:
    """Whether a statistical check's observed summaries (a sample mean, moments) are the divergence that
    recorded ``recorded``: each within ``SAMPLING_ERRORS`` of its standard error (``spread``, as estimated
    from the draws) plus display rounding.  A distribution that changed moves them further; a new random
    stream of the same distribution does not."""
    if isinstance(recorded, dict) and isinstance(observed, dict) and isinstance(spread, dict):
        return recorded.keys() == observed.keys() and all(
            same_draw(recorded[key], observed[key], spread.get(key)) for key in recorded)
    numbers = (int, float)
    if (isinstance(recorded, numbers) and isinstance(observed, numbers) and isinstance(spread, numbers)
            and not isinstance(recorded, bool) and not isinstance(observed, bool)):
        allowed = SAMPLING_ERRORS * spread + _shown_digits_error(recorded) + _shown_digits_error(observed)
        return abs(recorded - observed) <= allowed
    return same(recorded, observed)


def matches(record: Record, check: Check) -> bool:
    """Whether a failed check gives what a divergence recorded: the same value, or for a statistical check
    with standard errors, the same summaries within sampling error (``same_draw``)."""
    if check.kind == "statistical" and check.spread is not None:
        return same_draw(record.observed, check.observed, check.spread)
    return same(record.observed, check.observed, record.rtol or OBSERVED_RTOL)


def judge(checks: list[Check], records: list[Record]) -> Verdict:
    """Compare a case's checks with the divergence and tolerance records that apply to it, strictly.

    (Tolerances were applied when the checks were made: ``Checks(tolerances=...)``.)
    """
    named = {(d.kind, d.check) for d in records if "*" not in d.case}
    # a record naming the case itself takes precedence over a pattern's about the same check
    records = [d for d in records if "*" not in d.case or (d.kind, d.check) not in named]
    by_key = {c.key: c for c in checks}
    problems: list[str] = []
    held: list[Record] = []
    loosened: list[Record] = []
    covered = set()
    for d in records:
        check = by_key.get(d.check)
        covered.add(d.check) if d.kind == "divergence" else None
        if check is None and "*" in d.case:
            continue  # a pattern's record is about the cases of its family that make its check
        if check is None:
            problems.append(f"recorded {d.kind} {d.where()} names a check this case did not make")
        elif d.kind == "tolerance":
            if check.override is None:
                problems.append(f"recorded tolerance {d.where()} is for a check not compared with a tolerance")
            elif check.override["passes_default"]:
                problems.append(f"recorded tolerance no longer needed: {d.check!r} holds at the case's own "
                                f"tolerance; remove it from {d.file}")
            elif check.passed:
                loosened.append(d)
        elif check.passed:
            problems.append(
                f"recorded divergence no longer happens: {d.check!r} now gives the expected "
                f"{brief(check.observed)}; remove it from {d.file}"
            )
        elif not matches(d, check):
            beyond = f", beyond {SAMPLING_ERRORS:g} standard errors" if check.spread is not None else ""
            problems.append(
                f"diverges differently than recorded: {d.check!r} gives {brief(check.observed)}, "
                f"{d.file} recorded {brief(d.observed)}{beyond} (expected {brief(check.expected)})"
            )
        else:
            held.append(d)
    for check in checks:
        if not check.passed and check.key not in covered:
            problems.append(
                f"{check.name}: expected {brief(check.expected)}, observed {brief(check.observed)} ({check.how})"
            )
    if problems:
        return Verdict("fail", problems, held, loosened)
    return Verdict("divergence" if held else "pass", [], held, loosened)


def unmatched(records: Iterable[Record], ran: Iterable[tuple[str, Target]]) -> list[Record]:
    """The records that applied to nothing a run did, among those whose case and family it ran.

    ``ran``: (case ID, the target it ran on) for each case run.  A record for a case the run did not
    select, or for an implementation it did not run (family, ``only``), is not listed: only a run of
    the record's implementation that did not use it, for its version or device, makes it look stale.
    """
    runs = list(ran)
    out = []
    for r in records:
        relevant = [t for case, t in runs if r.covers(case) and t.family == r.family
                    and (not r.only or t.impl in r.only or t.variant in r.only)]
        if relevant and not any(r.applies_to(t) for t in relevant):
            out.append(r)
    return out


def draft(results: Iterable[CaseResult], impl_id: str, keras_version: str | None,
          device_kind: str | None = None) -> str:
    """Skeleton ``[[divergence]]`` records (TOML) for the unexpected results of a run (plugin JSON results).

    Each names the failing check by key and what was observed, scoped to ``impl_id``, this Keras
    version and this device kind; ``reason`` and ``evidence`` are left empty, so that the loader
    rejects the records until a person has written why and where it is seen.
    """
    import tomli_w

    out = [f"# Draft expectations for {impl_id} (Keras {keras_version or 'unknown'}). Move each record,\n"
           "# once its reason and evidence are written, into fixtures/expectations/<family>.toml;\n"
           "# empty ones are rejected.  A numeric check that is right to a looser tolerance becomes\n"
           "# a [[tolerance]] record instead (rtol, atol).\n"]
    for result in results:
        if result.get("status") != "fail":
            continue
        for check in result["checks"]:
            if check["passed"] or any(d.get("check") == check["key"] for d in result.get("divergences", [])):
                continue
            record = {"case": result["id"], "check": check["key"], "observed": _toml_value(check["observed"]),
                      "only": [impl_id]}
            if keras_version:
                record["versions"] = f"=={keras_version}"
            other_kind = ""
            if device_kind == "cpu-bf16":  # never scoped to it untried: the other kind may do the same
                other_kind = (f"# seen on a {device_kind} CPU: before scoping it with devices = [\"{device_kind}\"], run "
                              f"pytest --impl {impl_id} --cpu-like avx2 -k '{result['id']}' (a CPU without bfloat16)\n")
            elif device_kind and device_kind != "cpu":
                record["devices"] = [device_kind]
            record |= {"reason": "", "evidence": ""}
            out.append(f"# {check['name']}: expected {brief(check['expected'], 120)} ({check['how']})\n" + other_kind
                       + tomli_w.dumps({"divergence": [record]}))
    return "\n".join(out)


def _toml_value(value: Any) -> Any:
    """``value`` as TOML can hold it (no None; lists of one type)."""
    if value is None:
        return "None"
    if isinstance(value, list):
        items = [_toml_value(v) for v in value]
        return items if len({type(v) for v in items}) <= 1 else [str(v) for v in items]
    if isinstance(value, dict):
        return {str(k): _toml_value(v) for k, v in value.items()}
    return value
