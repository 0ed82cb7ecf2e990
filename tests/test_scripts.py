"""The measurement scripts in scripts/: each answers --help, and the accuracy table reads reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
RUNNABLE = sorted(p.name for p in SCRIPTS.glob("*.py") if "__main__" in p.read_text())


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("script", RUNNABLE)
def test_every_script_answers_help(script):
    proc = run(script, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: {script}"), proc.stdout + proc.stderr


def test_the_accuracy_table_takes_the_largest_error_of_each_case(tmp_path):
    report = {"impl": "keras3:jax", "results": [
        {"id": "batchnorm-accuracy-float32-4d", "status": "pass",
         "notes": {"training output: error in eps of float32": 3.61, "inference output: error in eps of float32": 1.2}},
        {"id": "regularizer-policy-float64", "status": "skip", "notes": {}},
        {"id": "init-policy-bfloat16", "status": "divergence", "notes": {"output: error in eps": 0.5}},
        {"id": "regularizer-policy-float16", "status": "fail", "notes": {"penalties: error in eps": 40}},
        {"id": "dropout-rate-0.1", "status": "pass", "notes": {"error in eps": 9}},  # not a row of the table
    ]}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    proc = run("accuracy-table.py", str(path))
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert rows[0] == "| case | `keras3:jax` |"
    assert rows[2:] == ["| `batchnorm-accuracy-float32-4d` | 3.61 |", "| `init-policy-bfloat16` | 0.5 (recorded) |",
                        "| `regularizer-policy-float16` | 40 (FAIL) |", "| `regularizer-policy-float64` | skip |"]


def test_the_accuracy_table_rejects_a_file_that_is_not_a_report_in_one_line(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("{")
    proc = run("accuracy-table.py", str(path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a readable conformance JSON report" in proc.stderr


def test_the_compile_log_counts_what_jax_lowered_and_compiled_and_which_were_draws(tmp_path):
    """speed-vs-keras-tests's floor rests on reading JAX's own log messages: a change in their wording
    must fail here, not turn into a floor of zero programs."""
    pytest.importorskip("jax")
    (tmp_path / "test_two_programs.py").write_text(
        "import jax, jax.numpy as jnp\n"
        "def test_an_op_and_a_draw():\n"
        "    jnp.add(jnp.ones((3, 5)), 1.0).block_until_ready()\n"
        "    jax.random.uniform(jax.random.key(0), (7, 11)).block_until_ready()\n")
    logs = tmp_path / "log"
    logs.mkdir()
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS), "JAX_COMPILE_LOG": str(logs),
           "JAX_ENABLE_COMPILATION_CACHE": "false"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "jax_compile_log", "-p", "no:keras_conformance",
                           "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly", "--rootdir", str(tmp_path),
                           str(tmp_path / "test_two_programs.py")],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sys.path.insert(0, str(SCRIPTS))
    try:
        import jax_compile_log
    finally:
        sys.path.remove(str(SCRIPTS))
    summary = jax_compile_log.summary(jax_compile_log.read(str(logs)))
    assert summary["random_draw_programs"] == 1, summary
    assert summary["programs"] > summary["random_draw_programs"], summary
    assert summary["lower_seconds"] > 0 and summary["random_draw_compile_seconds"] > 0, summary
    assert not list(logs.iterdir()), "read() empties the directory for the next run"


def test_compare_cpu_verdicts_exits_1_on_a_verdict_that_differs_and_2_on_bad_input(tmp_path):
    def results(status):
        return {"impl": "keras3:jax", "complete": True, "environment": {"device": "cpu"},
                "results": [{"id": "c", "status": status, "divergences": [], "tolerances": [], "skip_reason": ""}]}

    a, b, bad = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "bad.json"
    a.write_text(json.dumps(results("pass")))
    b.write_text(json.dumps(results("fail")))
    bad.write_text(json.dumps({"complete": False}))
    assert run("compare-cpu-verdicts.py", str(a), str(a)).returncode == 0
    differs = run("compare-cpu-verdicts.py", str(a), str(b))
    assert differs.returncode == 1 and "DIFFERS c: pass on cpu, fail on cpu" in differs.stdout
    refused = run("compare-cpu-verdicts.py", str(a), str(bad))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
