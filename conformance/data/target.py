"""What a run tested: the implementation, the Keras variant and version, the kind of device, the frameworks.

One ``Target`` describes a live run (``Target.of_adapter``) and a recorded one
(``Target.of_environment``, from the environment a fingerprint or a report
keeps), so that "does this expectation record apply here?" is answered by one
function, ``conformance.engine.expectations.Record.applies_to(target)``, for a run, a
fingerprint diff, the history and its release pages alike.

A recorded environment says the Keras version for people:
``"3.4.1 (keras, from keras-nightly)"``; :func:`parse_keras` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: The kinds of device a record may be scoped to.  cpu-bf16: a CPU on which the backend computes in
#: bfloat16 unless told otherwise (OpenVINO on AMX or AVX512-BF16).
DEVICE_KINDS = ("cpu", "cpu-bf16", "gpu", "tpu")


def family_of(impl: str) -> str:
    """'keras3' for 'keras3:jax', 'keras2' for 'keras2': the expectations file an implementation reads."""
    return impl.split(":")[0]


def parse_keras(text: str) -> tuple[str | None, str]:
    """The version and variant of ``"3.4.1 (keras, from keras-nightly)"``: ('3.4.1', 'keras')."""
    version, _, rest = (text or "").partition(" (")
    return version.strip() or None, rest.split(",")[0].rstrip(")").strip() or "keras"


def device_kind_of(device: str) -> str:
    """The kind of a device as adapters describe it: 'cuda (NVIDIA H200)' and 'gpu (...)' are 'gpu';
    OpenVINO's 'cpu (OpenVINO default inference precision bf16)' is 'cpu-bf16'; otherwise the first word."""
    if device.startswith(("gpu", "cuda")):
        return "gpu"
    if device.startswith("cpu") and "inference precision bf16" in device:
        return "cpu-bf16"
    return device.split(" ")[0]


@dataclass(frozen=True)
class Target:
    """One implementation as it ran: what expectation records are scoped by (``only``, ``versions``,
    ``devices``, ``framework``).  None means not known, which narrows nothing."""

    impl: str
    variant: str = "keras"  # keras | tf_keras | tensorflow.keras
    keras_version: str | None = None
    device_kind: str | None = None
    frameworks: Mapping[str, Any] = field(default_factory=dict)  # name -> version, as a run's header has them

    @property
    def family(self) -> str:
        return family_of(self.impl)

    @classmethod
    def of_adapter(cls, adapter: Any) -> Target:
        """The implementation loaded in this process."""
        return cls(adapter.id, adapter.variant, adapter.keras_version, adapter.device_kind(), adapter.versions())

    @classmethod
    def of_environment(cls, env: Mapping[str, Any], impl: str | None = None) -> Target:
        """A recorded run, from its environment (a fingerprint's, a report's): the device kind it recorded,
        else the one its device's description gives."""
        version, variant = parse_keras(str(env.get("keras", "")))
        device = env.get("device_kind") or (device_kind_of(str(env["device"])) if env.get("device") else None)
        return cls(impl or str(env.get("impl", "")), variant, version, device, dict(env))
