"""CPU profiles: a run as a CPU of another kind would run it, and what a record scoped to a device kind means."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conformance.backends import cpu
from conformance.data.target import Target, device_kind_of


def test_an_unknown_profile_is_one_line_naming_the_profiles(monkeypatch):
    monkeypatch.delenv(cpu.ENV_VAR, raising=False)
    with pytest.raises(cpu.CpuProfileError) as info:
        cpu.resolve("avx9")
    assert "\n" not in str(info.value) and "native, avx2" in str(info.value)
    monkeypatch.setenv(cpu.ENV_VAR, "avx2")
    assert cpu.resolve(None).name == "avx2"  # the variable, when no option names one
    assert cpu.resolve("native").name == "native"  # the option wins


def test_pytest_with_an_unknown_profile_is_one_line_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--impl", "keras3:tensorflow", "--cpu-like", "avx9",
                           "tests/test_checks.py"], capture_output=True, text=True,
                          env=dict(os.environ, CONFORMANCE_IMPL=""))
    assert proc.returncode == 4
    assert "ERROR: unknown CPU profile 'avx9'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_profile_sets_the_frameworks_switches_and_keeps_the_users_own():
    """In a child process: the frameworks read these variables lazily (oneDNN at its first kernel), so setting
    them in the test process would change how the cases that run after it compute."""
    code = """
import json, os
from conformance.backends import cpu
cpu.apply(cpu.PROFILES["avx2"])
cpu.apply(cpu.PROFILES["avx2"])
print(json.dumps({k: os.environ.get(k) for k in ("XLA_FLAGS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                                                 cpu.ENV_VAR)}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", cpu.ENV_VAR)}
    env |= {"XLA_FLAGS": "--xla_dump_to=/tmp/x", "ATEN_CPU_CAPABILITY": "default"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "XLA_FLAGS": "--xla_dump_to=/tmp/x --xla_cpu_max_isa=AVX2",  # added once, to the user's flags
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "default",  # the user's setting wins
        cpu.ENV_VAR: "avx2",  # children run as the same kind
    }


@pytest.mark.parametrize("device, kind", [
    ("cpu", "cpu"), ("cpu (OpenVINO default inference precision bf16)", "cpu-bf16"),
    ("cpu (OpenVINO default inference precision f32)", "cpu"), ("cuda (NVIDIA H200)", "gpu"), ("gpu (H100)", "gpu"),
])
def test_the_device_kind_of_a_recorded_device(device, kind):
    assert device_kind_of(device) == kind
    assert Target.of_environment({"impl": "keras3:openvino", "device": device}).device_kind == kind


def test_a_target_reads_a_recorded_environment():
    t = Target.of_environment({"impl": "keras2", "keras": "2.15.0 (tensorflow.keras)", "tensorflow": "2.15.1",
                               "device": "cpu", "device_kind": "cpu"})
    assert (t.family, t.variant, t.keras_version, t.device_kind, t.frameworks["tensorflow"]) == \
        ("keras2", "tensorflow.keras", "2.15.0", "cpu", "2.15.1")
    nightly = Target.of_environment({"impl": "keras3:jax", "keras": "3.16.0.dev2026102704 (keras, from keras-nightly)"})
    assert (nightly.variant, nightly.keras_version, nightly.device_kind) == ("keras", "3.16.0.dev2026102704", None)


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="OpenVINO is not installed")
def test_openvino_compiles_without_a_hint_in_the_profiles_precision():
    """What a CPU without bfloat16 instructions does: f32 where no hint is given (on any CPU: bf16 is the only
    other default)."""
    code = """
import openvino as ov, openvino.opset13 as ops
from conformance.backends.openvino import default_precision
def model():
    p = ops.parameter([2], ov.Type.f32)
    return ov.Model([ops.result(ops.multiply(p, p))], [p])
default_precision("f32")
default_precision("f32")  # once only
print(ov.compile_model(model(), "CPU").get_property("INFERENCE_PRECISION_HINT").get_type_name())
print(ov.Core().compile_model(model(), "CPU").get_property("INFERENCE_PRECISION_HINT").get_type_name())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["f32", "f32"]


def test_run_passes_the_profile_to_each_implementation_and_the_report_says_so(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--cpu-like", "avx2", "-k",
                           "notebook-dropout-121-params", "--out", str(out)], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != cpu.ENV_VAR} | {"CONFORMANCE_IMPL": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [env] = json.loads((out / "report.json").read_text())["environments"].values()
    assert env["cpu_like"] == "avx2" and env["device_kind"] == "cpu"
    bad = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--cpu-like", "avx9"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "invalid choice: 'avx9'" in bad.stderr
