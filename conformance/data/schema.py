"""The data model: the shape of everything one subsystem hands another, and of every file the suite records.

Each is a ``TypedDict``: the JSON a run, a fingerprint, a report or a timeline
is written as *is* the object the code passes around, so one shape serves the
writer, the reader and the renderers, and ``mypy`` checks them (CI runs it on
the modules that produce and consume them).  Files carry a format name and
version; readers of earlier versions migrate them (``fingerprint.MIGRATIONS``).

==============================  ================================================================
shape                           who writes it; who reads it
==============================  ================================================================
:class:`CheckResult`            ``checks.Check.to_json``; the plugin's results, drafts, reports
:class:`CaseResult`             ``runner.CaseResult.to_json``; ``Run``
:class:`Run`                    the plugin (``--conformance-json``); ``execution``, reports, fingerprints
:class:`Fingerprint`            ``fingerprint.from_run`` and ``load``; diffs, the history
:class:`Diff`                   ``fingerprint.diff``; ``diffreport``, the canary, ``history diff``
:class:`Timeline`               ``history.model.timeline``; ``history.view``, attribution
:class:`ReleaseChange`          ``history.model.changes_by_release``; release pages, attribution
:class:`Report`                 ``reports.combine``; ``report.md``, ``report.json``, ``junit.xml``
:class:`Manifest`               ``models save``: the saved models of a stack; ``models check``
:class:`BenchmarkRow`           ``bench.report.load`` (pytest-benchmark's JSON); the benchmark report
==============================  ================================================================

What a run tested is ``conformance.data.target.Target``; what an expectation record says,
``conformance.engine.expectations.Record`` (``RecordJSON`` as it is written).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

#: A verdict (conformance.engine.verdict.STATUSES).
Status = Literal["pass", "divergence", "fail", "skip"]
#: How a check's value is compared: exactly, within a tolerance, or by a statistical test.
Kind = Literal["exact", "numeric", "statistical", "outcome"]
#: Versions and device of a run, by name as its header has them: ``keras`` ("3.15.1 (keras)"), the framework's
#: name (``jax``, ``tensorflow``, ...), ``numpy``, ``python``, ``device``, ``device_kind``, and where they apply
#: ``cpu_like``, ``impl``, ``stack``, ``recipe``, ``runs``.
Environment = dict[str, Any]
#: A JSON value as a check observed it.
Value = Any


#: One class's public surface (``conformance.engine.surface``): its constructor's arguments with their defaults, and
#: the ``get_config`` keys of a default instance; ``"(absent)"`` for both where the release lacks the class.
SurfaceEntry = TypedDict("SurfaceEntry", {"arguments": "dict[str, Any] | str", "config-keys": "list[str] | str"})


class RecordJSON(TypedDict, total=False):
    """An expectation record as a run's results and reports show it (``expectations.Record.to_json``)."""

    kind: str
    case: str
    check: str
    observed: Value
    reason: str
    evidence: str
    file: str
    line: int
    rtol: float
    atol: float
    only: list[str]
    versions: str
    devices: list[str]
    framework: str


class CheckResult(TypedDict):
    """One comparison of a case: what was expected and observed, whether they agree and how it was decided."""

    name: str
    expected: Value
    observed: Value
    passed: bool
    how: str
    kind: Kind
    key: str
    override: dict[str, Any] | None
    spread: Any


class CaseResult(TypedDict):
    """One case on one implementation: its checks, notes and measurements, and the one verdict."""

    id: str
    topic: str
    source: str
    description: str
    impl: str
    status: Status
    checks: list[CheckResult]
    notes: dict[str, Value]
    measurements: NotRequired[dict[str, float]]
    problems: list[str]
    divergences: list[RecordJSON]
    tolerances: list[RecordJSON]
    skip_reason: str


class Run(TypedDict):
    """One implementation's run of the suite (``pytest --conformance-json FILE``)."""

    impl: str
    environment: Environment
    complete: bool
    incomplete_reason: str
    interrupted: bool
    selected: int
    unmatched_records: list[RecordJSON]
    surface: dict[str, SurfaceEntry]
    results: list[CaseResult]
    seconds: NotRequired[float]  # added by the process that ran it


class Observation(TypedDict):
    """What one check gave, as a fingerprint keeps it (``fingerprint.case_entry``)."""

    kind: Kind
    value: Value
    label: str


class CaseEntry(TypedDict):
    """One case of a fingerprint: the behaviour, apart from what the machine measured."""

    topic: str
    description: str
    status: Status
    behaviour: dict[str, Observation]
    notes: dict[str, Value]
    measurements: NotRequired[dict[str, float]]
    flapping: NotRequired[dict[str, list[Value]]]  # a stack recorded several times: check key -> each run's value
    skip_reason: NotRequired[str]


class Fingerprint(TypedDict):
    """What one implementation did, case by case (``keras-conformance fingerprint``; each stack of the history)."""

    format: str
    format_version: int
    environment: Environment
    cases: dict[str, CaseEntry]
    surface: dict[str, SurfaceEntry]


class Change(TypedDict):
    """One thing that differs between two fingerprints of a case."""

    what: str
    key: NotRequired[str]
    old: Value
    new: Value
    kind: NotRequired[str]  # the check's kind ("outcome": conformance.edges); absent for the verdict and notes


class ChangedCase(TypedDict):
    topic: str
    description: str
    changes: list[Change]


class Measured(TypedDict):
    """A measured error that moved to another power of two: shown apart, never a change."""

    what: str
    old: float | None
    new: float | None


class Diff(TypedDict):
    """What changed from one fingerprint to another (``fingerprint.diff``)."""

    old: Environment
    new: Environment
    environment: dict[str, list[Any]]
    changed: dict[str, ChangedCase]
    measured: dict[str, list[Measured]]
    flapping: NotRequired[dict[str, list[str]]]  # case -> the checks that flapped on either side, not compared
    added: list[str]
    removed: list[str]


class ValueRun(TypedDict):
    """Consecutive releases (indices, inclusive) over which a check gave the same value."""

    first: int
    last: int
    value: Value


class TimelineCheck(TypedDict):
    label: str
    kind: Kind
    runs: list[ValueRun]
    flapping: NotRequired[list[int]]  # releases where it flapped between repeated runs


class TimelineCase(TypedDict):
    topic: str
    description: str
    checks: dict[str, TimelineCheck]
    changed_in: list[str]


class CheckChange(TypedDict):
    """A check whose value at a release differs from the release it follows (``history.model.changes_at``)."""

    key: str
    check: str
    old: Value
    new: Value


class ReleaseChange(CheckChange):
    """A change of a release, with its case (``history.model.changes_by_release``)."""

    case: str
    topic: str


class Attributed(ReleaseChange):
    """A change of a release with its value on the cross stack and what moved it (``history.attribution``)."""

    cross: Value
    moved_by: str


class TimelineStack(TypedDict):
    name: str
    keras: str
    label: str
    released: str
    framework: str
    impl: str
    environment: Environment


class Timeline(TypedDict):
    """Per case and check, the runs of releases over which the value is the same (``history.model.timeline``)."""

    backend: str
    releases: list[str]
    previous: list[int | None]
    stacks: list[TimelineStack]
    cases: dict[str, TimelineCase]


class Report(TypedDict):
    """One ``keras-conformance run``: every implementation's results (``report.json``)."""

    format: str
    format_version: int
    implementations: list[str]
    unavailable: dict[str, str]
    environments: dict[str, Environment]
    seconds: dict[str, float | None]
    results: dict[str, list[CaseResult]]
    unmatched_records: list[RecordJSON]


class BenchmarkRow(TypedDict, total=False):
    """One benchmark of a pytest-benchmark JSON file: the ``extra_info`` the benchmark group records, its timings,
    and what the report derives (``bench.report.table_rows``)."""

    name: str
    impl: str
    workload: str
    call_path: str
    batch: int
    training: bool
    device: str
    dtype: str
    precision: str
    flops: float
    bytes: float
    bandwidth: float
    first_call_s: float
    median: float
    iqr: float
    rounds: int
    samples_per_s: float
    gflops: float
    vs_raw: float | None
    of_ceiling: float | None
    noise: list[str]


class SavedModel(TypedDict, total=False):
    """One model of a saved-model manifest (``models.describe``, ``models.save``): what it is, what it computes
    on seeded inputs, and the files it was saved as; or why it was not saved."""

    family: str
    description: str
    config: dict[str, dict[str, Any]]  # layer name -> the configuration of its four topics
    layers: list[str]
    weights: dict[str, list[Any]]
    x: list[Any]
    outputs: list[Any]
    predict_is_random: bool
    penalties: Any
    y: list[Any]
    loss: float
    user_loss: str
    files: dict[str, str]  # format -> file name
    save_errors: dict[str, str]  # format -> why it could not be saved
    not_saved: str


class Manifest(TypedDict):
    """A directory of saved models (``manifest.json``)."""

    format: str
    format_version: int
    stack: Environment
    models: dict[str, SavedModel]
