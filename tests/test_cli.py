"""Bad input gets one line and exit 2, from the CLI and from the pytest option."""

import os
import subprocess
import sys
import time

import pytest

from conformance import cli
from conformance.backends import impls


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["run", "--impl", "keras4:tensorflow"], "invalid choice"),
    (["run", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
    (["run", "--all", "--impl", "keras2"], "not allowed with"),
])
def test_bad_arguments(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["run", "--out", str(blocker / "sub")]) == cli.EXIT_USAGE


def test_help_lists_implementations(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--help"])
    assert info.value.code == 0
    assert "keras3:jax" in capsys.readouterr().out


def test_missing_framework_says_how_to_install(monkeypatch):
    real = impls.importlib.util.find_spec
    monkeypatch.setattr(impls.importlib.util, "find_spec", lambda name: None if name == "jax" else real(name))
    with pytest.raises(impls.ImplError, match=r"keras3:jax needs jax, which is not installed: pip install"):
        impls.check_available("keras3:jax")


def test_broken_framework_install_is_one_line(tmp_path):
    """A framework that is installed but fails to import stops pytest with one line, not one failure per test."""
    broken = tmp_path / "site" / "jax"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ModuleNotFoundError('No module named jaxlib', name='jaxlib')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"), CONFORMANCE_IMPL="")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--impl", "keras3:jax", "tests/test_checks.py"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "ERROR: keras3:jax cannot be imported: module 'jaxlib' is missing;" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_unknown_impl_from_environment(monkeypatch):
    monkeypatch.setenv(impls.ENV_VAR, "keras9")
    with pytest.raises(impls.ImplError, match="unknown implementation 'keras9'"):
        impls.resolve_id(None)
    assert impls.resolve_id("keras2") == "keras2"  # the option wins


def test_pytest_with_unknown_impl_is_one_line_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--impl", "nope", "tests/test_checks.py"],
                          capture_output=True, text=True, env=dict(os.environ, CONFORMANCE_IMPL=""))
    assert proc.returncode != 0
    assert "ERROR: unknown implementation 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_flakes_compares_verdicts(tmp_path):
    from conformance.quality import flakes

    junit = tmp_path / "j.xml"
    junit.write_text('<testsuites><testsuite><testcase classname="t" name="a"/>'
                     '<testcase classname="t" name="b"><failure message="x"/></testcase>'
                     '<testcase classname="t" name="c"><skipped type="pytest.xfail" message="y"/></testcase>'
                     '</testsuite></testsuites>')
    assert flakes.verdicts(junit) == {"t::a": "passed", "t::b": "failure", "t::c": "xfailed"}
    runs = [{"a": "passed", "b": "failure"}, {"a": "passed", "b": "passed"}, {"a": "passed"}]
    assert flakes.changed_verdicts(runs) == {"b": ["failure", "passed", "absent"]}


@pytest.mark.parametrize("args, message", [
    (["flakes", "--runs", "1", "-k", "no-such-test"], "no test selected by -k 'no-such-test'; nothing to hunt"),
    (["selfcheck", "--impl", impls.DEFAULT_IMPL, "-k", "no-such-case"],
     f"no case selected on {impls.DEFAULT_IMPL} by -k 'no-such-case'"),
], ids=["flakes", "selfcheck"])
def test_hunting_or_mutating_with_nothing_selected_is_bad_usage(args, message):
    """Zero selected tests is no verdict: flakes used to say "no verdict changed" and exit 0; selfcheck called
    the baseline failing and spread pytest's last lines over two."""
    proc = run_cli(*args)
    assert proc.returncode == 2 and proc.stderr == f"keras-conformance: error: {message}\n", proc.stderr


def test_a_flakes_run_that_does_not_complete_is_exit_1_not_a_comparison(monkeypatch, capsys):
    """A run that pytest ended with an internal error compares nothing: exit 1 and one line, never 'no verdict
    changed'."""
    from types import SimpleNamespace

    from conformance import cli
    from conformance.execution import children

    monkeypatch.setattr(children, "run", lambda cmd, **kw: SimpleNamespace(returncode=3, stdout="INTERNALERROR> x\n",
                                                                          stderr=""))
    assert cli.main(["flakes", "--runs", "2", "--impl", impls.DEFAULT_IMPL]) == cli.EXIT_UNEXPECTED
    out, err = capsys.readouterr()
    assert "no verdict changed" not in out
    assert err == ("keras-conformance: run 1 did not complete (pytest exit status 3): INTERNALERROR> x; "
                   "no verdicts compared\n")


@pytest.mark.parametrize("args", [["flakes", "--runs", "0"], ["selfcheck", "-j", "x"], ["selfcheck", "--only"]])
def test_bad_numbers_and_missing_values(args):
    proc = run_cli(*args)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_selfcheck_unknown_mutation_is_one_line():
    proc = run_cli("selfcheck", "--impl", impls.DEFAULT_IMPL, "--only", "no-such-mutation")
    assert proc.returncode == 2
    assert "no mutation called no-such-mutation" in proc.stderr and proc.stderr.count("\n") == 1


def test_pytest_with_missing_baseline_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "--baseline", str(tmp_path / "none.json"),
                           "tests/test_checks.py"], capture_output=True, text=True)
    assert proc.returncode != 0 and "ERROR: cannot read" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_pytest_with_corrupt_expectations_is_one_line(tmp_path):
    fixtures = tmp_path / "fixtures"
    (fixtures / "expectations").mkdir(parents=True)
    (fixtures / "expectations" / "keras3.toml").write_text("[[divergence]\n")
    env = dict(os.environ, CONFORMANCE_FIXTURES=str(fixtures))
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_checks.py"], capture_output=True, text=True,
                          env=env)
    assert proc.returncode != 0 and "is not valid TOML" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("args, help_of", [(["run", "--bogus"], "keras-conformance run"),
                                           (["models", "check", "--dir", "x"], "keras-conformance models check"),
                                           (["history", "diff", "3.15.0", "3.15.1", "--bogus"],
                                            "keras-conformance history diff")])
def test_an_unknown_option_points_to_the_help_of_its_command(args, help_of):
    proc = run_cli(*args)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.endswith(f"(see {help_of} --help)\n"), proc.stderr


@pytest.mark.parametrize("command", [["fingerprint", "--impl", impls.DEFAULT_IMPL, "--out"],
                                     ["diff", "fixtures/baselines/keras3-jax.json",
                                      "fixtures/baselines/keras3-jax.json", "--out"],
                                     ["bench-report", "missing.json", "--out"]])
def test_unwritable_outputs_are_one_line(tmp_path, command):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_cli(*command, str(blocker / "sub" / "out"))
    assert proc.returncode == 2 and "cannot write" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("command", [["fingerprint", "--impl", impls.DEFAULT_IMPL, "--out"],
                                     ["selfcheck", "--impl", impls.DEFAULT_IMPL, "--out"],
                                     ["run", "--impl", impls.DEFAULT_IMPL, "--draft-expectations"],
                                     ["diff", "fixtures/baselines/keras3-jax.json",
                                      "fixtures/baselines/keras3-jax.json", "--out"],
                                     ["history", "timeline", "--out"],
                                     ["models", "check", "fixtures", "--out"]])
def test_an_output_file_that_is_a_directory_is_one_line_before_any_work(tmp_path, command):
    """A FILE option given an existing directory is refused up front (it used to end a whole fingerprint run in
    a traceback from the final rename)."""
    proc = run_cli(*command, str(tmp_path))
    assert proc.returncode == 2 and proc.stderr == f"keras-conformance: error: cannot write to {tmp_path}: it is a directory, not a file\n"


def sigint_as_by_default() -> None:
    """For a child that these tests interrupt: SIGINT acted on, as in a terminal.

    pytest itself may run with SIGINT ignored (a background job of a non-interactive
    shell, ``nohup``), and an ignored signal stays ignored across exec: the child
    would ignore the interrupt under test and run on.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("moment, signame", [("=== [1/1]", "SIGINT"), ("%]", "SIGINT"), ("=== [1/1]", "SIGTERM")],
                         ids=["as-the-run-starts", "mid-run", "sigterm"])
def test_interrupted_run_writes_no_report(tmp_path, moment, signame):
    """SIGINT to the CLI alone, as its pytest child starts or once it has reported progress; SIGTERM (kill, a
    cancelled CI job) is taken as an interrupt, so that it too stops the child."""
    import signal

    out = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--impl", impls.DEFAULT_IMPL, "--out",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), preexec_fn=sigint_as_by_default)
    for line in proc.stdout:  # interrupt on what the run prints, not on a timer
        if moment in line:
            break
    proc.send_signal(getattr(signal, signame))
    _, stderr = proc.communicate(timeout=120)  # returns only once the pytest child has closed the pipes too
    assert proc.returncode == 130 and "interrupted; no report written" in stderr
    assert "Traceback" not in stderr
    assert not any(p.name in ("report.md", "report.json", "junit.xml") for p in out.glob("*"))


def test_interrupted_parent_stops_its_child(tmp_path):
    """SIGINT sent to the parent alone still ends the child it runs (conformance.execution.children)."""
    import signal

    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    parent = f"import sys; from conformance.execution import children; children.run([sys.executable, '-c', {child!r}])"
    proc = subprocess.Popen([sys.executable, "-c", parent], stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_by_default)
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert "KeyboardInterrupt" in stderr
    child_pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # reaped: no such process any more
        os.kill(child_pid, 0)


def test_an_interrupt_the_moment_the_child_has_started_still_stops_it(monkeypatch):
    """SIGINT landing just after the child's handle is returned, before the parent waits on it."""
    from conformance.execution import children

    real_start, started = children._start, []

    def start_then_interrupted(*args):
        started.append(real_start(*args))
        raise KeyboardInterrupt

    monkeypatch.setattr(children, "_start", start_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        children.run([sys.executable, "-c", "import time; time.sleep(120)"])
    assert started and started[0].poll() is not None  # stopped and reaped, not left running
    assert started[0] not in children._live


def test_list_prints_every_case_without_importing_a_framework():
    code = ("import sys; from conformance import cli; status = cli.main(['list']); "
            "print('IMPORTED', sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules)); "
            "sys.exit(status)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="80"))
    from conformance import cases

    assert proc.returncode == 0
    lines = proc.stdout.splitlines()[:-2]
    ids = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert ids == [c.id for c in cases.all_cases()]
    assert sum(line.startswith("    declared at ") for line in lines) == len(ids)
    assert max(len(line) for line in lines) <= 80  # a terminal of 80 columns, or a pipe
    assert "IMPORTED []" in proc.stdout
