"""A verdict is complete or it is not a pass: `keras-conformance run` and the pytest plugin.

Each test here breaks a run in one way -- its pytest child interrupted, killed,
the whole process group interrupted while the parent ignores SIGINT, nothing
selected, unreadable fixtures -- and checks that the exit status is not 0,
that one line says what is missing, and that the previous report is left as
it was.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance import cli, suite
from conformance.backends import impls
from conformance.cases import Case
from conformance.data.target import Target
from conformance.engine import runner

IMPL = impls.DEFAULT_IMPL  # the implementation the README's test command installs
OLD_REPORT = "# the previous, complete report\n"


@pytest.fixture
def out(tmp_path):
    """A report directory holding a previous report, which no incomplete run may touch."""
    directory = tmp_path / "report"
    directory.mkdir()
    (directory / "report.md").write_text(OLD_REPORT)
    return directory


def untouched(directory: Path) -> bool:
    return (directory / "report.md").read_text() == OLD_REPORT and not (directory / "report.json").exists()


def start_run(out: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--impl", IMPL, "--out", str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), **popen)


def wait_for_progress(proc: subprocess.Popen) -> None:
    """Read the run's output until its pytest child has reported progress (cases are running)."""
    for line in proc.stdout:
        if "%]" in line or line.startswith("."):
            return
    raise AssertionError("the run ended before it reported progress")


def pytest_child(parent_pid: int) -> int:
    """The PID of the pytest process that ``parent_pid`` started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(parent_pid)], capture_output=True, text=True).stdout.split()
        if found:
            return int(found[0])
        time.sleep(0.1)
    raise AssertionError("no child process")


SLOW_KEYWORD = "not notebook-as-written"  # enough cases that a signal sent once progress shows lands mid-run


@pytest.mark.parametrize("sig, status, says", [
    (signal.SIGINT, cli.EXIT_INTERRUPTED, "interrupted"),
    (signal.SIGKILL, cli.EXIT_UNEXPECTED, "INCOMPLETE keras3:tensorflow: its pytest process was killed by SIGKILL"),
], ids=["interrupted", "killed"])
def test_a_child_stopped_alone_is_not_a_pass(out, sig, status, says):
    """SIGINT or SIGKILL to the pytest child only, mid-run: never exit 0, never a report."""
    proc = start_run(out, "-k", SLOW_KEYWORD)
    child = pytest_child(proc.pid)
    wait_for_progress(proc)
    os.kill(child, sig)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == status, stdout + stderr
    assert says in stdout + stderr and "no report written" in stdout + stderr
    assert "every result is as expected" not in stdout
    assert "Traceback" not in stderr
    assert untouched(out)


def test_group_interrupted_while_the_parent_ignores_sigint(out):
    """As in a non-interactive script: SIGINT to the whole process group, the parent ignoring it."""
    proc = start_run(out, "-k", SLOW_KEYWORD, start_new_session=True,
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    wait_for_progress(proc)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == cli.EXIT_INTERRUPTED, stdout + stderr
    assert "every result is as expected" not in stdout
    assert untouched(out)


def test_nothing_selected_is_bad_usage(out):
    proc = start_run(out, "-k", "no-such-case")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == cli.EXIT_USAGE
    assert stderr.strip().splitlines()[-1] == ("keras-conformance: error: keras3:tensorflow: no case selected "
                                               "by -k 'no-such-case'; no report written")
    assert "every result is as expected" not in stdout
    assert untouched(out)


@pytest.mark.parametrize("toml, message", [
    ("[[divergence]\n", "is not valid TOML"),
    ('[[divergence]]\ncase = "no-such-case"\ncheck = "c"\nobserved = 1\nreason = "r"\nevidence = "e"\n',
     "no case is called 'no-such-case'"),
], ids=["corrupt", "unknown-case"])
def test_unreadable_fixtures_are_bad_usage_and_write_nothing(tmp_path, out, toml, message):
    fixtures = tmp_path / "fixtures"
    shutil.copytree(suite.CHECKOUT / "fixtures", fixtures)
    (fixtures / "expectations" / "keras3.toml").write_text(toml)
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--out", str(out)], capture_output=True,
                          text=True, env=dict(os.environ, CONFORMANCE_FIXTURES=str(fixtures)), timeout=120)
    assert proc.returncode == cli.EXIT_USAGE
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert untouched(out)


def test_pytest_writes_the_json_only_for_a_complete_run(tmp_path):
    """-x stops at the first failure: the run is incomplete, so FILE stays as it was and exit is not 0."""
    target = tmp_path / "r.json"
    target.write_text("previous")
    baseline = corrupted_baseline(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "-x", "--impl", IMPL,
                           "--baseline", str(baseline), "--conformance-json", str(target),
                           "tests/test_conformance.py", "-k", "notebook-dropout-121-params or notebook-regularizers-zero-factors"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert target.read_text() == "previous"
    partial = json.loads(Path(f"{target}.partial").read_text())
    assert partial["complete"] is False and "1 of 2 selected cases have no verdict" in partial["incomplete_reason"]
    assert "INCOMPLETE" in proc.stdout


@pytest.mark.parametrize("tests", [["tests/test_conformance.py", "-k", "no-such-case"], ["tests/test_checks.py"]],
                         ids=["no-case-matches", "other-tests-only"])
def test_pytest_with_no_case_selected_writes_no_json_and_does_not_exit_0(tmp_path, tests):
    """Asked for the suite's JSON, a run that selected no case has no verdict to give: FILE stays as it was,
    FILE.partial says why, the exit status is 5 (no tests collected), also when other tests passed; and the
    framework's native load notices (now imported outside pytest's capture) stay off the terminal."""
    target = tmp_path / "r.json"
    target.write_text("previous")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "--impl", IMPL,
                           "--conformance-json", str(target), *tests], capture_output=True, text=True, timeout=300)
    assert proc.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, proc.stdout + proc.stderr
    assert target.read_text() == "previous"
    partial = json.loads(Path(f"{target}.partial").read_text())
    assert partial["complete"] is False and partial["incomplete_reason"] == "no case selected"
    assert "keras-conformance: INCOMPLETE: no case selected" in proc.stdout
    assert "absl::InitializeLog" not in proc.stderr


def corrupted_baseline(tmp_path: Path) -> Path:
    """The shipped baseline of the default stack, with one case's recorded behaviour changed."""
    data = json.loads((suite.CHECKOUT / "fixtures" / "baselines" / "keras3-tensorflow.json").read_text())
    behaviour = data["cases"]["notebook-dropout-121-params"]["behaviour"]
    behaviour["parameter-counts"]["value"] = {"non_trainable": 0, "total": 122, "trainable": 122}
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(data))
    return path


def test_one_verdict_for_pytest_and_the_json(tmp_path):
    """A case that fails against --baseline is a failure in the JSON too, not a pass."""
    target = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "--impl", IMPL,
                           "--baseline", str(corrupted_baseline(tmp_path)), "--conformance-json", str(target),
                           "tests/test_conformance.py", "-k", "notebook-dropout-121-params"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "behaviour differs from the baseline" in proc.stdout
    (result,) = json.loads(target.read_text())["results"]
    assert result["status"] == "fail"
    assert any("behaviour differs from the baseline" in p for p in result["problems"])


class FakeAdapter:
    id = "fake"
    capabilities = frozenset({"train", "gradients"})

    def clear_session(self):
        pass

    def set_seed(self, seed):
        pass


def test_a_case_past_its_time_limit_fails_alone():
    finished = []

    def hangs(k, checks):
        checks.true("started", True, "the case started")
        end = time.monotonic() + 30
        while time.monotonic() < end:  # a case that never ends in Python code (see conformance.engine.limits)
            pass
        finished.append(True)

    result = runner.run_case(Case("hangs", "dropout", "never ends", hangs, "test"), FakeAdapter(), [], timeout=0.5)
    assert not finished  # stopped at its limit, not left to run to its end
    assert result.status == "fail"
    assert any(c.name == "time limit" and not c.passed for c in result.checks)


def test_each_case_starts_from_a_clear_session():
    calls = []

    class Recording(FakeAdapter):
        def clear_session(self):
            calls.append("clear")

        def set_seed(self, seed):
            calls.append("seed")

    runner.run_case(Case("c", "dropout", "d", lambda k, checks: checks.true("x", True, "x"), "test"), Recording(), [])
    assert calls == ["clear", "seed"]


@pytest.mark.parametrize("in_checkout, command", [
    (True, "pytest tests/test_conformance.py --impl keras3:jax -k 'dropout-seeding'"),
    (False, "pytest --pyargs conformance.suite --impl keras3:jax -k 'dropout-seeding'"),
])
def test_reproduce_line_names_the_suite_as_it_is_installed(monkeypatch, in_checkout, command):
    monkeypatch.setattr(suite, "IN_CHECKOUT", in_checkout)
    assert suite.reproduce("keras3:jax", "dropout-seeding") == command


def test_bench_report_help_prints_percent_once(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench-report", "--help"])
    text = capsys.readouterr().out
    assert "% of the measured" in text and "%%" not in text


def test_native_load_notices_are_dropped_and_everything_else_kept(capfd):
    notice = ("I0000 00:00:1795779253.142671    2603 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
              "GPU will not be used.\n")
    with impls.native_notices_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, notice.encode())
        os.write(2, b"E0000 00:00:1.0 1 some_op.cc:12] a real error\n")
    assert capfd.readouterr().err == "E0000 00:00:1.0 1 some_op.cc:12] a real error\n"
    with pytest.raises(ImportError):
        with impls.native_notices_filtered():
            os.write(2, notice.encode())
            raise ImportError("broken")
    assert capfd.readouterr().err == notice  # when the import fails, nothing is held back


def test_keras_version_is_read_from_the_imported_module(monkeypatch):
    """keras-nightly installs as another distribution: the version is keras.__version__, and ranges apply to it."""
    from conformance.engine import expectations

    adapter = impls.load(IMPL)
    monkeypatch.setattr(adapter.keras, "__version__", "3.16.0.dev2026102704")
    adapter.__dict__.pop("keras_version", None)
    monkeypatch.setattr(impls.importlib.metadata, "packages_distributions", lambda: {"keras": ["keras-nightly"]})
    impls.distribution_note.cache_clear()
    try:
        assert adapter.keras_version == "3.16.0.dev2026102704"
        assert adapter.versions()["keras"] == "3.16.0.dev2026102704 (keras, from keras-nightly)"
        monkeypatch.setattr(impls.importlib.metadata, "packages_distributions",
                            lambda: {"keras": ["keras", "keras-nightly"]})
        impls.distribution_note.cache_clear()
        assert adapter.versions()["keras"].startswith(
            "3.16.0.dev2026102704 (keras, installed by both keras and keras-nightly: its files are whichever")
        older = expectations.Record("divergence", "c", "r", "e", "keras3", "f", check="k", observed=1,
                                    versions="<3.14")
        assert not older.applies_to(Target(IMPL, "keras", adapter.keras_version))
    finally:
        impls.distribution_note.cache_clear()
        adapter.__dict__.pop("keras_version", None)  # not monkeypatch: its undo would put the nightly's back


def test_cases_starved_of_time_fail_alone_and_the_run_completes(tmp_path):
    """With --case-timeout far too short, each case fails with that reason; the run still gives every verdict.

    Two cases that take far longer than the limit (tens of thousands of draws; a 32×28×28×64 batch and
    its float64 oracle): a case quick enough to finish within it would pass, as a 20-parameter model
    sometimes did."""
    target = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "--impl", IMPL, "--case-timeout",
                           "0.001", "--conformance-json", str(target), "tests/test_conformance.py",
                           "-k", "notebook-dropout-output-mean or batchnorm-accuracy-float32-4d"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    report = json.loads(target.read_text())
    assert report["complete"] and len(report["results"]) == 2
    for result in report["results"]:
        assert result["status"] == "fail"
        assert [c["name"] for c in result["checks"] if not c["passed"]] == ["time limit"]


def test_skip_reasons_come_from_what_a_case_needs_and_what_the_backend_can_do():
    class InferenceOnly(FakeAdapter):
        capabilities = frozenset()

    grads = Case("g", "batchnorm", "d", lambda k, checks: None, "test", needs=("gradients",))
    both = Case("b", "batchnorm", "d", lambda k, checks: None, "test", needs=("train", "gradients"))
    assert runner.skip_reason(grads, FakeAdapter()) == ""
    assert runner.skip_reason(grads, InferenceOnly()) == "fake cannot take gradients, which this case needs"
    assert runner.run_case(both, InferenceOnly(), []).skip_reason == (
        "fake cannot train (fit, train_on_batch) or take gradients, which this case needs")


def test_every_implementation_is_one_entry_naming_its_adapter():
    from conformance.backends.base import CAPABILITIES, Adapter
    from conformance.cases import all_cases

    for spec in impls.IMPLS.values():
        assert issubclass(spec.adapter, Adapter) and spec.adapter.framework_name and spec.short
        assert spec.adapter.capabilities <= set(CAPABILITIES)
        if spec.family == "keras3":
            assert spec.env["KERAS_BACKEND"] == spec.backend
    assert {need for case in all_cases() for need in case.needs} <= set(CAPABILITIES)


def test_draft_expectations_round_trip(tmp_path):
    """Without its record a known divergence fails; the draft records it, rejected until reason and evidence
    are written, and once they are the case is a recorded divergence again."""
    fixtures = tmp_path / "fixtures"
    shutil.copytree(suite.CHECKOUT / "fixtures", fixtures)
    toml = fixtures / "expectations" / "keras3.toml"
    text = toml.read_text()
    start = text.index('[[divergence]]\ncase = "init-documented-defaults"\ncheck = "identity-defaults"')
    end = text.index("[[divergence]]", start + 1)
    toml.write_text(text[:start] + text[end:])
    draft = tmp_path / "draft.toml"
    env = dict(os.environ, CONFORMANCE_FIXTURES=str(fixtures))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-q", "--impl", IMPL, "tests/test_conformance.py",
           "-k", "init-documented-defaults"]
    failed = subprocess.run([*cmd, "--draft-expectations", str(draft)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert failed.returncode == 1
    drafted = draft.read_text()
    assert 'check = "identity-defaults"' in drafted and 'reason = ""' in drafted
    toml.write_text(toml.read_text() + "\n" + drafted)
    rejected = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rejected.returncode == 4 and "reason is empty" in rejected.stderr  # pytest's usage error
    toml.write_text(toml.read_text().replace('reason = ""\n', 'reason = "Identity has no get_config"\n')
                    .replace('evidence = ""\n', 'evidence = "constant_initializers.py"\n'))
    held = subprocess.run(cmd + ["-rx"], capture_output=True, text=True, env=env, timeout=300)
    assert held.returncode == 0 and "Identity has no get_config" in held.stdout


@pytest.mark.parametrize("version, safe", [("0.4.25", False), ("0.4.26", False), ("0.4.31", False), ("0.5.3", False),
                                           ("0.6.0", True), ("0.10.2", True), ("0.6.0.dev20250401", False),
                                           (None, False), ("not a version", False)])
def test_jax_compilation_cache_is_on_only_where_cached_programs_compute_right(version, safe):
    """JAX 0.4.26 to 0.5.3 on the CPU ran cached training steps wrongly; the suite keeps the cache off there."""
    from conformance.backends.jax import persistent_cache_is_safe

    assert persistent_cache_is_safe(version) is safe


def test_the_summary_wraps_to_the_terminal_width():
    """Each divergence's reason, and every other summary line, fits a terminal of 60 columns."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:xdist", "--impl", IMPL,
                           "tests/test_conformance.py", "-k", "init-string-aliases"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, COLUMNS="60"))
    assert proc.returncode == 0
    out = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(out) if "keras-conformance keras3" in line and ": 1 case" in line)
    summary = out[start + 1:-1]  # below the plugin's separator, above pytest's last line
    assert summary[0].startswith("divergence init-string-aliases [")
    assert summary[1].startswith("  ")  # the reason's continuation
    assert max(len(line) for line in summary) <= 60
