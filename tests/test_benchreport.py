"""bench-report: tables, ratios, comparisons, and one-line errors on bad input."""

import json
import subprocess
import sys

import pytest

from conformance.bench import report as benchreport


def bench(workload, path, median, batch=512, flops=1e9, training=False):
    return {"name": f"{workload}-{path}", "stats": {"median": median, "iqr": median / 10, "rounds": 5},
            "extra_info": {"impl": "keras3:jax", "workload": workload, "call_path": path, "batch": batch,
                           "flops": flops, "bytes": 1e6, "first_call_s": 0.1, "device": "cpu",
                           "dtype": "float32", "precision": "float32", "training": training}}


RESULTS = {"benchmarks": [bench("stack-medium", "raw", 0.005), bench("stack-medium", "eager", 0.010),
                          bench("matmul-peak", "raw", 0.1, batch=2048, flops=2e10)]}


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_ratios_and_ceiling():
    rows = {r["call_path"]: r for r in benchreport.table_rows(benchreport.load_rows(RESULTS))}
    assert rows["eager"]["vs_raw"] == pytest.approx(2.0)
    assert rows["raw"]["gflops"] == pytest.approx(200.0)
    assert rows["raw"]["of_ceiling"] == pytest.approx(1.0)  # 200 GFLOP/s against a 200 GFLOP/s peak


def test_compare_flags_slowdowns(tmp_path):
    new = json.loads(json.dumps(RESULTS))
    new["benchmarks"][1]["stats"]["median"] = 0.02
    old_path, new_path = write(tmp_path, "old.json", RESULTS), write(tmp_path, "new.json", new)
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "bench-report", str(new_path), "--compare",
                           str(old_path), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 1
    md = (tmp_path / "out" / "benchmarks.md").read_text()
    assert "+100.0 % **slower**" in md
    assert (tmp_path / "out" / "overhead-vs-raw.png").stat().st_size > 1000


@pytest.mark.parametrize("content, message", [
    ('{"benchmarks": [', "not valid JSON"),
    ('{"something": 1}', "not a pytest-benchmark results file"),
    ('{"benchmarks": [{"name": "x", "stats": {"median": 1}, "extra_info": {}}]}', "lacks keras-conformance"),
])
def test_bad_results_are_one_line_exit_2(tmp_path, content, message):
    path = write(tmp_path, "r.json", content)
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "bench-report", str(path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "out" / "benchmarks.md").exists()


def test_impossible_timings_are_flagged_as_noise(tmp_path):
    """A Keras path faster than the raw framework, or a workload above the measured ceiling, is not a fact."""
    results = {"benchmarks": [bench("stack-medium", "raw", 0.010), bench("stack-medium", "eager", 0.008),
                              bench("matmul-peak", "raw", 0.1, batch=2048, flops=1e10)]}
    rows = {r["call_path"]: r for r in benchreport.table_rows(benchreport.load_rows(results))
            if r["workload"] == "stack-medium"}
    assert rows["eager"]["noise"] == ["125 % of the measured ceiling", "faster than the raw baseline (0.80×)"]
    assert rows["raw"]["noise"] == []  # exactly at the ceiling is possible
    md = benchreport.markdown(benchreport.load_rows(results))
    assert "stack-medium (noise†)" in md and "faster than the raw baseline (0.80×)" in md
