"""The pytest plugin: chooses the implementation, parametrizes the cases, reports.

Installed with the package (entry point ``pytest11``), so ``pytest --impl ID``
works wherever keras-conformance is installed.  Any test that takes the
``case`` argument is run once per registered case; the ``conformance``
fixture runs a case on the chosen implementation and turns its verdict into
pass, xfail (a recorded divergence, with its reason), skip (with its reason)
or a failure that says expected vs observed and how to reproduce.
"""

from __future__ import annotations

import functools
import json
import os
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from conformance import cases as case_registry
from conformance import suite as suite_module
from conformance.backends import cpu, impls
from conformance.data import fingerprint, reports, schema
from conformance.data.files import FixtureError, write_atomic
from conformance.data.schema import Fingerprint
from conformance.data.target import Target
from conformance.engine import expectations, surface
from conformance.engine.runner import CaseResult, run_case
from conformance.engine.verdict import PYTEST_OUTCOME

RESULT_KEY = "conformance-result"
SELECTED_KEY = "conformance_selected"  # xdist workeroutput: the case tests a worker selected
DEFAULT_CASE_TIMEOUT = 300.0
#: Why a run asked for the JSON report gives none: it selected no case (pytest's exit status 5).
NOTHING_SELECTED = "no case selected"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("keras-conformance")
    group.addoption(
        "--impl", dest="conformance_impl", default=None, metavar="ID",
        help=f"implementation under test: {', '.join(impls.IMPLS)} "
        f"(default: ${impls.ENV_VAR}, else {impls.DEFAULT_IMPL})",
    )
    group.addoption(
        "--cpu-like", dest="conformance_cpu_like", default=None, metavar="PROFILE",
        help=f"run as a CPU of another kind would, by the frameworks' own switches: "
        f"{', '.join(cpu.PROFILES)} (default: ${cpu.ENV_VAR}, else native; conformance/backends/cpu.py)",
    )
    group.addoption(
        "--baseline", dest="conformance_baseline", default=None, metavar="FILE",
        help="fail every case whose behaviour differs from this fingerprint (keras-conformance fingerprint)",
    )
    group.addoption(
        "--benchmarks", dest="conformance_benchmarks", action="store_true",
        help="also run the benchmark group (marker 'benchmark'; skipped otherwise). Run it without -n: "
        "pytest-benchmark does not time under xdist",
    )
    group.addoption(
        "--conformance-json", dest="conformance_json", default=None, metavar="FILE",
        help="write every case's checks and verdict to FILE (JSON), as keras-conformance run does; only a "
        "complete run writes FILE (an incomplete one leaves it as it was and writes FILE.partial)",
    )
    group.addoption(
        "--case-timeout", dest="conformance_case_timeout", default=DEFAULT_CASE_TIMEOUT, type=float, metavar="S",
        help=f"fail a case that runs longer than S seconds, and go on (default {DEFAULT_CASE_TIMEOUT:g}; 0: no limit)",
    )
    group.addoption(
        "--draft-expectations", dest="conformance_draft", default=None, metavar="FILE",
        help="write skeleton [[divergence]] records (TOML) for this run's unexpected results to FILE; their "
        "reason and evidence are left empty for a person to fill in (empty ones are rejected)",
    )
    parser.addini(
        "conformance_impl", default=None,
        help=f"the implementation a project's pytest runs test when neither --impl nor ${impls.ENV_VAR} names one",
    )


class ConformanceState:
    """Per-process state: the chosen implementation, its divergences, the results seen."""

    def __init__(self, impl_id: str, records: list[expectations.Record], baseline: Fingerprint | None = None):
        self.impl_id = impl_id
        self.baseline = baseline
        self.spec = impls.IMPLS[impl_id]
        self.records = records
        self.results: dict[str, schema.CaseResult] = {}  # test node ID -> case result; the controlling process only
        self.selected: set[str] = set()  # node IDs of the case tests this run selected
        self.interrupted = False
        self.crashed_workers: list[str] = []

    @property
    def adapter(self) -> impls.Adapter:
        return impls.load(self.impl_id)

    @functools.cached_property
    def target(self) -> Target:
        """What this run tests, as expectation records are scoped (device kind, framework versions included)."""
        return Target.of_adapter(self.adapter)

    def records_for(self, case_id: str) -> list[expectations.Record]:
        """The expectation records (divergence, skip, tolerance) that apply to ``case_id`` here."""
        return [d for d in self.records if d.covers(case_id) and d.applies_to(self.target)]

    def unmatched_records(self) -> list[expectations.Record]:
        """Records for the cases and family this run ran that applied to none of them (stale?)."""
        return expectations.unmatched(self.records, [(r["id"], self.target) for r in self.results.values()])


STATE = pytest.StashKey["ConformanceState"]()


SUITE = Path(suite_module.__file__)


def requested_impl(config: pytest.Config) -> str | None:
    """The implementation this run asks for, or None when it is not a conformance run.

    A run is one when it names an implementation (``--impl``, ``$CONFORMANCE_IMPL``,
    the ini setting ``conformance_impl``), uses another of this plugin's options,
    or runs the suite module (``pytest --pyargs conformance.suite``); the default
    implementation applies when none is named.  Any other pytest run in the same
    environment is left alone: Keras is not imported, nothing is added.
    """
    named = config.getoption("conformance_impl") or config.getini("conformance_impl")
    if named or impls.ENV_VAR in os.environ:
        return impls.resolve_id(config.getoption("conformance_impl"), fallback=config.getini("conformance_impl"))
    other_options = ("conformance_baseline", "conformance_json", "conformance_benchmarks", "conformance_cpu_like")
    runs_suite = any(arg.split("::")[0] == "conformance.suite" or _is_suite(arg) for arg in config.args)
    if runs_suite or any(config.getoption(name) for name in other_options):
        return impls.resolve_id(None)
    return None


def _is_suite(arg: str) -> bool:
    try:
        return Path(arg.split("::")[0]).resolve() == SUITE.resolve()
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    from conformance.layers import DeclarationError

    for name, text in case_registry.MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    try:
        impl_id = requested_impl(config)
        if impl_id is None:
            return
        like = config.getoption("conformance_cpu_like")
        if like:
            cpu.apply(cpu.resolve(like))
        if not (config.option.help or config.option.version):
            impls.load(impl_id)  # fail here, in one line, rather than in every test
        records = [r for r in expectations.load_checked() if r.kind in expectations.JUDGED]
        baseline_file = config.getoption("conformance_baseline")
        baseline = fingerprint.load(Path(baseline_file)) if baseline_file else None
    except (impls.ImplError, cpu.CpuProfileError, FixtureError, fingerprint.FingerprintError,
            DeclarationError) as exc:
        raise pytest.UsageError(str(exc)) from None
    state = ConformanceState(impl_id, records, baseline)
    config.stash[STATE] = state
    config.pluginmanager.register(ResultCollector(state, config), "conformance-results")


def state_of(config: pytest.Config) -> ConformanceState:
    """The run's state; a clear error where a test needs the suite in a run that chose no implementation."""
    state = config.stash.get(STATE, None)
    if state is None:
        raise pytest.UsageError(
            f"keras-conformance: this run chose no implementation; pass --impl ID ({', '.join(impls.IMPLS)})"
        )
    return state


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(STATE, None)
    return f"keras-conformance: {state.adapter.describe()}" if state else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    state_of(metafunc.config)
    params = [
        pytest.param(c, id=c.id, marks=[getattr(pytest.mark, m) for m in c.markers])
        for c in case_registry.all_cases()
    ]
    metafunc.parametrize("case", params)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """pytest-benchmark's machine_info: add the implementation, its versions and the device it runs on."""
    state = config.stash.get(STATE, None)
    if state is not None:
        adapter = state.adapter
        machine_info["keras_conformance"] = {"impl": adapter.id, **adapter.versions(), "device": adapter.device(),
                                             **adapter.accelerator_info()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("conformance_benchmarks"):
        return
    skip = pytest.mark.skip(reason="benchmarks run only with --benchmarks (and without -n)")
    for item in items:
        if "benchmark" in item.keywords:
            item.add_marker(skip)


class Verifier:
    """Runs one case and applies its one verdict: to the JSON results, then to pytest."""

    def __init__(self, state: ConformanceState, node: pytest.Item):
        self.state = state
        self.node = node

    def __call__(self, case: case_registry.Case) -> CaseResult:
        timeout = self.node.config.getoption("conformance_case_timeout")
        result = run_case(case, self.state.adapter, self.state.records_for(case.id), timeout)
        if self.state.baseline is not None and result.status != "skip":
            problems = self.baseline_problems(case, result)
            if problems:
                result.fail(problems)
        self.node.user_properties.append((RESULT_KEY, json.dumps(result.to_json())))
        if result.status == "skip":
            pytest.skip(result.skip_reason)
        if result.status == "fail":
            pytest.fail(result.message(), pytrace=False)
        if result.status == "divergence":
            pytest.xfail(f"recorded divergence: {result.divergence_reason()}")
        if result.tolerances:
            self.node.add_report_section("call", "tolerance", result.tolerance_note())
        return result

    def baseline_problems(self, case: case_registry.Case, result: CaseResult) -> list[str]:
        """How this case's behaviour differs from the baseline fingerprint, one line each."""
        baseline = self.state.baseline
        assert baseline is not None
        old = baseline["cases"].get(case.id)
        if old is None:
            return [f"{case.id}: not in the baseline fingerprint (a new case? regenerate the baseline)"]
        changes = fingerprint.compare_case(old, fingerprint.case_entry(result.to_json()))
        if not changes:
            return []
        env = baseline["environment"]
        return [f"behaviour differs from the baseline ({env.get('impl')}, keras {env.get('keras')}):"] + [
            f"  {c['what']}: baseline {c['old']!r}, now {c['new']!r}" for c in changes]


@pytest.fixture
def conformance(request: pytest.FixtureRequest) -> Verifier:
    """``conformance(case)`` runs ``case`` on the chosen implementation and applies its verdict."""
    return Verifier(state_of(request.config), request.node)


def is_case_test(item: pytest.Item) -> bool:
    return "case" in getattr(item, "fixturenames", ())


class ResultCollector:
    """Gathers case results in the controlling process (user_properties cross xdist), and judges completeness.

    A run is complete when every selected case test produced a verdict and
    pytest was neither interrupted nor stopped early; only a complete run
    writes ``--conformance-json FILE``.
    """

    def __init__(self, state: ConformanceState, config: pytest.Config):
        self.state = state
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        selected = [item.nodeid for item in session.items if is_case_test(item)]
        self.state.selected.update(selected)
        if hasattr(self.config, "workeroutput"):  # an xdist worker: tell the controller
            self.config.workeroutput[SELECTED_KEY] = selected

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        self.state.selected.update(getattr(node, "workeroutput", {}).get(SELECTED_KEY, []))
        if error:
            self.state.crashed_workers.append(str(node.gateway.id))

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo) -> None:
        """Record the interrupt (before pytest's own reporting, which may itself fail on it).

        An interrupt that lands in native code can leave a traceback entry
        without a line number, on which pytest's terminal reporter raises
        TypeError; such entries are dropped from what it shows.
        """
        self.state.interrupted = True
        try:
            excinfo.traceback = excinfo.traceback.filter(lambda entry: entry._rawentry.tb_lineno is not None)
        except Exception:  # only what is shown is at stake
            pass

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == RESULT_KEY and report.when == "call":
                result: schema.CaseResult = json.loads(str(value))
                if report.outcome != PYTEST_OUTCOME[result["status"]]:  # one verdict: pytest's and the JSON's agree
                    result["status"] = "fail"
                    result["problems"].append(f"pytest reported this test as {report.outcome}")
                self.state.results[report.nodeid] = result

    def missing(self) -> list[str]:
        """Selected case tests without a verdict."""
        return sorted(self.state.selected - set(self.state.results))

    def incomplete_reason(self, exitstatus: int) -> str:
        """Why this run's results are not complete, or '' when they are."""
        done, selected = len(self.state.results), len(self.state.selected | set(self.state.results))
        if self.state.interrupted:
            return f"interrupted after {done} of {selected} cases"
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return f"pytest stopped early (errors during collection?) after {done} of {selected} cases"
        if self.state.crashed_workers:
            return f"worker(s) {', '.join(self.state.crashed_workers)} crashed; {done} of {selected} cases have a verdict"
        if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
            return f"pytest ended with exit status {int(exitstatus)} after {done} of {selected} cases"
        missing = self.missing()
        if missing:
            return f"{len(missing)} of {selected} selected cases have no verdict (first: {missing[0]})"
        if not selected and self.config.getoption("conformance_json"):
            return NOTHING_SELECTED  # asked for the suite's verdict and got none: not a complete report
        return ""

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int) -> None:
        results = list(self.state.results.values())
        reason = self.incomplete_reason(exitstatus)
        if results:
            counts = Counter(r["status"] for r in results)
            summary = ", ".join(f"{counts[s]} {s}" for s in ("pass", "divergence", "fail", "skip") if counts[s])
            terminalreporter.write_sep("-", f"keras-conformance {self.state.impl_id}: {reports.plural(len(results), 'case')}: "
                                            f"{summary}")
            for r in sorted(results, key=lambda r: r["id"]) if self.config.get_verbosity() >= 0 else ():
                for d in r["divergences"]:
                    self.write_wrapped(terminalreporter, f"divergence {r['id']} [{d['check']}]: {d['reason']}")
                for d in r.get("tolerances", []):
                    self.write_wrapped(terminalreporter, f"tolerance {r['id']} [{d['check']}] rtol={d['rtol']:g}, "
                                                         f"atol={d['atol']:g}: {d['reason']}")
            stale = self.state.unmatched_records() if not reason else []
            if stale:
                verbose = self.config.get_verbosity() >= 1
                self.write_wrapped(
                    terminalreporter,
                    f"keras-conformance: {reports.plural(len(stale), 'expectation record')} for these cases matched "
                    "nothing here (another Keras, framework or device" + ("):" if verbose else "; -v lists them)"))
                for record in stale if verbose else ():
                    terminalreporter.write_line(f"  {record.where()}")
        if reason:
            self.write_wrapped(terminalreporter, f"keras-conformance: INCOMPLETE: {reason}", red=True, bold=True)

    def write_wrapped(self, terminalreporter, text: str, **markup) -> None:
        """``text`` wrapped to the terminal's width, its continuation lines indented."""
        width = max(40, self.config.get_terminal_writer().fullwidth - 1)
        for line in textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) or [""]:
            terminalreporter.write_line(line, **markup)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):
            return
        reason = self.incomplete_reason(exitstatus)
        if reason and exitstatus == pytest.ExitCode.OK:  # exit 0 means every selected case was checked
            session.exitstatus = (pytest.ExitCode.NO_TESTS_COLLECTED if reason == NOTHING_SELECTED
                                  else pytest.ExitCode.TESTS_FAILED)
        adapter = self.state.adapter
        draft_path = self.config.getoption("conformance_draft")
        if draft_path:
            write_atomic(Path(draft_path), expectations.draft(
                sorted(self.state.results.values(), key=lambda r: r["id"]), self.state.impl_id,
                adapter.keras_version, self.state.target.device_kind))
        path = self.config.getoption("conformance_json")
        if not path:
            return
        with impls.native_notices_filtered():  # pytest no longer captures; the surface may import TensorFlow now
            payload: schema.Run = {
                "impl": self.state.impl_id,
                "environment": adapter.environment(),
                "complete": not reason,
                "incomplete_reason": reason,
                "interrupted": self.state.interrupted,
                "selected": len(self.state.selected | set(self.state.results)),
                "unmatched_records": [] if reason else [d.to_json() for d in self.state.unmatched_records()],
                "surface": surface.surface(adapter.keras),
                "results": sorted(self.state.results.values(), key=lambda r: r["id"]),
            }
        text = json.dumps(payload, indent=2, sort_keys=True)
        target = Path(path) if not reason else Path(f"{path}.partial")
        write_atomic(target, text)
        if not reason:
            Path(f"{path}.partial").unlink(missing_ok=True)

