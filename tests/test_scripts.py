"""The measurement scripts in scripts/: each answers --help, and the accuracy table reads reports."""

from __future__ import annotations

import json
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
