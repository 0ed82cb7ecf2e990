"""Keras 3 on OpenVINO: inference only (no training, no gradients).

OpenVINO's CPU plugin computes in bfloat16 unless told otherwise on CPUs that
support it (AMX, AVX512-BF16). Keras compiles its eager ops with
``INFERENCE_PRECISION_HINT=f32`` but ``predict`` and ``evaluate`` without it,
so those run in bfloat16 there; the suite tests Keras as it is and reports
such a CPU as the device kind ``cpu-bf16``, to which records can be scoped.
The raw baseline and the matmul ceiling ask for float32, like the eager ops.
Run as a CPU without bfloat16 (``--cpu-like avx2``), a model compiled without a
hint gets f32, as it would there (``conformance.backends.cpu``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from conformance.backends.base import DTYPE_CAPABILITIES, Adapter

FLOAT32 = {"INFERENCE_PRECISION_HINT": "f32"}


def default_precision(precision: str) -> None:
    """Make ``precision`` the CPU plugin's inference precision wherever a model is compiled without a hint,
    as on a CPU whose default it is (OpenVINO has no process-wide setting: each ``compile_model`` makes a
    Core of its own)."""
    from openvino import Core

    compile_model = Core.compile_model
    if getattr(compile_model, "default_precision", None) == precision:
        return

    @functools.wraps(compile_model)
    def with_default(self, model, device_name=None, config=None, **kwargs):
        if device_name is not None and str(device_name).upper().startswith("CPU"):
            config = {"INFERENCE_PRECISION_HINT": precision} | dict(config or {})
        args = (model,) if device_name is None else (model, device_name)
        return compile_model(self, *args, **({"config": config} if config is not None else {}), **kwargs)

    setattr(with_default, "default_precision", precision)  # noqa: B010  (what tells a second call it is done)
    Core.compile_model = with_default


class OpenVinoAdapter(Adapter):
    backend = "openvino"
    framework_name = "OpenVINO"
    capabilities: frozenset[str] = DTYPE_CAPABILITIES  # inference only: no training, no gradients

    def before_import(self) -> None:
        if self.cpu.openvino_precision:
            default_precision(self.cpu.openvino_precision)

    @functools.cached_property
    def default_cpu_precision(self) -> str:
        """What OpenVINO's CPU plugin computes in when a model is compiled without a precision hint."""
        import openvino as ov

        if self.cpu.openvino_precision:
            return self.cpu.openvino_precision
        return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()  # "bf16", "f32", ...

    def find_device(self) -> str:
        return f"cpu (OpenVINO default inference precision {self.default_cpu_precision})"

    def pin_precision(self) -> str:
        return f"float32 in eager ops; predict and evaluate in the CPU plugin's default, {self.default_cpu_precision}"

    def raw_forward(self, folded: list[tuple[np.ndarray, ...]], x: np.ndarray) -> Callable[[], Any]:
        import openvino as ov
        import openvino.opset13 as ops

        param = ops.parameter(list(x.shape), ov.Type.f32)
        y = param
        for kernel, bias, scale, shift in folded:
            y = ops.add(ops.multiply(ops.add(ops.matmul(y, ops.constant(kernel), False, False), ops.constant(bias)),
                                     ops.constant(scale)), ops.constant(shift))
        compiled = ov.compile_model(ov.Model([ops.result(y)], [param]), "CPU", FLOAT32)
        return lambda: compiled([x])[0]

    def matmul(self, a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
        import openvino as ov
        import openvino.opset13 as ops

        pa, pb = ops.parameter(list(a.shape), ov.Type.f32), ops.parameter(list(b.shape), ov.Type.f32)
        compiled = ov.compile_model(ov.Model([ops.result(ops.matmul(pa, pb, False, False))], [pa, pb]), "CPU",
                                    FLOAT32)
        return lambda: compiled([a, b])[0]
