"""The pytest plugin acts only in runs that ask for it, and the suite runs from outside a checkout."""

import os
import subprocess
import sys

from conformance.backends import impls

UNRELATED = '''
import sys

def test_unrelated():
    assert not [m for m in sys.modules if m == "keras" or m.startswith(("tensorflow", "jax", "torch", "tf_keras"))]
'''


def pytest_in(directory, *args, **env):
    environ = {k: v for k, v in os.environ.items() if k != impls.ENV_VAR} | env
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
                          cwd=directory, capture_output=True, text=True, env=environ)


def test_an_unrelated_pytest_run_imports_no_framework(tmp_path):
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    proc = pytest_in(tmp_path, "test_unrelated.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "keras-conformance:" not in proc.stdout  # no header line


def test_naming_an_implementation_activates_the_plugin(tmp_path):
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    proc = pytest_in(tmp_path, "test_unrelated.py", CONFORMANCE_IMPL=impls.DEFAULT_IMPL)
    assert proc.returncode == 1 and "keras-conformance: keras3:tensorflow" in proc.stdout


def test_the_suite_runs_from_another_directory_on_the_default_implementation(tmp_path):
    proc = pytest_in(tmp_path, "--pyargs", "conformance.suite", "-k", "notebook-init-20-params or notebook-dropout-121-params")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"keras-conformance: {impls.DEFAULT_IMPL}" in proc.stdout and "2 passed" in proc.stdout


def test_a_template_without_an_implementation_says_so(tmp_path):
    (tmp_path / "test_mine.py").write_text("from conformance.suite import test_case  # noqa: F401\n")
    proc = pytest_in(tmp_path, "test_mine.py")
    assert proc.returncode != 0 and "this run chose no implementation; pass --impl ID" in proc.stdout
