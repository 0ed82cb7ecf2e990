"""Running as another x86-64 CPU would: the switches the frameworks offer, as named CPU profiles.

The frameworks pick kernels by the instructions the CPU has: AVX-512, bfloat16
(AVX512-BF16, AMX) or only AVX2.  What Keras computes can differ with them in the
last bits (which the suite measures in eps, apart from behaviour), and where a
framework computes in bfloat16 by default on CPUs that have it, by more.  The
verdicts must not depend on it.  A profile makes a run behave as on a CPU of
another kind, as far as each framework documents a switch for it::

    pytest --impl keras3:openvino --cpu-like avx2     # or CONFORMANCE_CPU_LIKE=avx2

=============  ==============================================  =======================================
framework      switch                                          covers
=============  ==============================================  =======================================
JAX            ``XLA_FLAGS=--xla_cpu_max_isa=AVX2``            the code XLA generates for every op
TensorFlow     ``ONEDNN_MAX_CPU_ISA=AVX2``                     oneDNN's kernels (matmul, convolution);
                                                               its Eigen kernels are built for one
                                                               instruction set, the same on every CPU;
                                                               not bfloat16 on a CPU that has it (below)
PyTorch        ``ATEN_CPU_CAPABILITY=avx2``,                   ATen's vectorised kernels, oneDNN's and
               ``ONEDNN_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``  MKL's BLAS
NumPy          ``NPY_DISABLE_CPU_FEATURES``                    NumPy's own SIMD loops (not OpenBLAS,
                                                               whose kernel is chosen when it loads)
OpenVINO       the CPU plugin's ``INFERENCE_PRECISION_HINT``   bf16 by default where the CPU has
               default (f32 on a CPU without bfloat16)         bfloat16 instructions, f32 elsewhere
=============  ==============================================  =======================================

TensorFlow (2.21) decides by the CPU's own flags that oneDNN computes its
bfloat16 MatMul, and crashes where oneDNN is capped below the bfloat16
instructions the CPU has; on a real AVX2 CPU it computes them with Eigen.  So
on a CPU with bfloat16 instructions, a TensorFlow run under a profile skips the
bfloat16 cases with that reason (``TensorFlowAdapter.before_import``).

A profile can only take instructions away: a run on an AVX2 machine cannot be
made to behave as one with AMX.  So records scoped to a device kind (OpenVINO's
``cpu-bf16``) are checked on both kinds on a machine that has bfloat16
instructions, and CI runs the suite under ``avx2`` as well as natively.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

ENV_VAR = "CONFORMANCE_CPU_LIKE"
NATIVE = "native"


@dataclass(frozen=True)
class CpuProfile:
    """A kind of CPU, as the frameworks' switches can make any newer x86-64 CPU behave."""

    name: str
    description: str
    #: Variables the frameworks read when they load (before the first op).
    env: dict[str, str] = field(default_factory=dict)
    #: What XLA may use (appended to ``XLA_FLAGS``, where the user's own flags stay).
    xla_flags: tuple[str, ...] = ()
    #: OpenVINO's CPU plugin default inference precision on such a CPU (None: what this CPU's default is).
    openvino_precision: str | None = None


PROFILES = {
    profile.name: profile
    for profile in (
        CpuProfile(NATIVE, "this CPU, as the frameworks find it"),
        CpuProfile(
            "avx2", "an x86-64 CPU with AVX2 and FMA, without AVX-512 or bfloat16 instructions (AMD EPYC Rome, "
            "Intel Haswell to Comet Lake)",
            env={"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                 "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL "
                                             "AVX512_SPR"},
            xla_flags=("--xla_cpu_max_isa=AVX2",),
            openvino_precision="f32",
        ),
    )
}


def has_bfloat16_instructions() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16), as Linux reports them; True where
    that cannot be read (the cautious answer for ``TensorFlowAdapter``)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return True
    return bool({"avx512_bf16", "amx_bf16"} & set(flags)) or not flags


class CpuProfileError(ValueError):
    """An unknown profile; the message is one line."""


def resolve(name: str | None) -> CpuProfile:
    """The profile ``name`` (else ``$CONFORMANCE_CPU_LIKE``, else native); an unknown one is CpuProfileError."""
    name = name or os.environ.get(ENV_VAR) or NATIVE
    if name not in PROFILES:
        raise CpuProfileError(f"unknown CPU profile {name!r} ({ENV_VAR} or --cpu-like); choose one of: "
                              f"{', '.join(PROFILES)}")
    return PROFILES[name]


def apply(profile: CpuProfile) -> None:
    """Set the profile's variables for this process and its children; call before any framework loads.
    Settings already in the environment win, but for ``XLA_FLAGS``, to which the profile's flags are added."""
    if profile.name == NATIVE:
        return
    os.environ[ENV_VAR] = profile.name
    for name, value in profile.env.items():
        os.environ.setdefault(name, value)
    flags = os.environ.get("XLA_FLAGS", "").split()
    os.environ["XLA_FLAGS"] = " ".join(flags + [f for f in profile.xla_flags if f not in flags])
