"""Implementations under test: one ID each, the adapter class that runs it, what it needs installed.

An implementation is a Keras API plus the framework that executes it.  It is
named by one ID everywhere (``pytest --impl ID``, ``CONFORMANCE_IMPL=ID``,
``keras-conformance run --impl ID``):

* ``keras3:tensorflow`` (the default), ``keras3:jax``, ``keras3:torch``,
  ``keras3:numpy`` -- Keras 3 with ``KERAS_BACKEND`` set before import;
* ``keras2`` -- Keras 2: the ``tf_keras`` package where it is installed,
  otherwise the Keras bundled with TensorFlow <= 2.15 (``tensorflow.keras``).

Adding an implementation is one entry in ``IMPLS`` naming its adapter class
(``conformance/backends/``), which owns everything that differs between
backends.  The backend of Keras 3 is fixed when ``keras`` is first imported,
so one process tests one implementation.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass, field

from conformance.backends.base import (  # noqa: F401  (re-exported: the names the rest of the suite uses)
    CAPABILITIES,
    Adapter,
    ImplError,
    Unsupported,
    distribution_note,
    module_version,
    native_notices_filtered,
)
from conformance.backends.jax import JaxAdapter
from conformance.backends.keras2 import Keras2Adapter
from conformance.backends.numpy import NumpyAdapter
from conformance.backends.openvino import OpenVinoAdapter
from conformance.backends.tensorflow import TensorFlowAdapter
from conformance.backends.torch import TorchAdapter

DEFAULT_IMPL = "keras3:tensorflow"
ENV_VAR = "CONFORMANCE_IMPL"
#: The PyTorch CPU build this project installs (a bare `torch` pulls a multi-GB CUDA build), written once here;
#: tox.ini, .ci/run, pyproject.toml and the history's recipes are checked against it (tests/test_backends.py).
TORCH_CPU = "torch==2.13.0"


@dataclass(frozen=True)
class ImplSpec:
    """What an implementation ID means and what it needs installed."""

    id: str
    family: str  # "keras3" or "keras2": selects fixtures/expectations/<family>.toml
    adapter: type[Adapter]  # the class that loads and runs it (conformance/backends/)
    needs: tuple[str, ...]  # importable modules it cannot run without
    install: str  # the pip command that provides them
    env: dict[str, str] = field(default_factory=dict)
    short: str = ""  # a column heading for narrow terminals
    extra: str = ""  # the pyproject extra that installs it (``pip install 'keras-conformance[EXTRA]'``)
    #: What a history recipe of this backend adds to Keras before it is resolved (``history add``); "" for none.
    recipe_requirement: str = ""

    @property
    def backend(self) -> str:
        """The framework that executes the layers."""
        return self.adapter.backend

    @property
    def framework_name(self) -> str:
        """The framework as people write it, for 'loading ...' lines."""
        return self.adapter.framework_name


IMPLS: dict[str, ImplSpec] = {
    spec.id: spec
    for spec in (
        ImplSpec("keras3:tensorflow", "keras3", TensorFlowAdapter, ("keras", "tensorflow"),
                 "pip install 'keras-conformance[tensorflow]'", env={"KERAS_BACKEND": "tensorflow"}, short="tf",
                 extra="tensorflow", recipe_requirement="tensorflow-cpu"),
        ImplSpec("keras3:jax", "keras3", JaxAdapter, ("keras", "jax"),
                 "pip install 'keras-conformance[jax]'", env={"KERAS_BACKEND": "jax"}, short="jax",
                 extra="jax", recipe_requirement="jax[cpu]"),
        ImplSpec("keras3:torch", "keras3", TorchAdapter, ("keras", "torch"),
                 f"pip install {TORCH_CPU} && pip install 'keras-conformance[torch]'",
                 env={"KERAS_BACKEND": "torch"}, short="torch", extra="torch", recipe_requirement=f"{TORCH_CPU}+cpu"),
        # Keras's NumPy backend imports JAX for its fft and nn ops.
        ImplSpec("keras3:numpy", "keras3", NumpyAdapter, ("keras", "jax"),
                 "pip install 'keras-conformance[jax]'", env={"KERAS_BACKEND": "numpy"}, short="numpy", extra="jax"),
        ImplSpec("keras3:openvino", "keras3", OpenVinoAdapter, ("keras", "openvino"),
                 "pip install 'keras-conformance[openvino]'", env={"KERAS_BACKEND": "openvino"}, short="ov",
                 extra="openvino"),
        ImplSpec("keras2", "keras2", Keras2Adapter, ("tensorflow",),
                 "pip install 'keras-conformance[tf-keras]' (or tensorflow==2.15.1, whose Keras is Keras 2)",
                 short="k2", extra="tf-keras"),
    )
}


def resolve_id(option: str | None, fallback: str | None = None) -> str:
    """The implementation ID chosen by the option, else the environment, else ``fallback``, else the default."""
    impl_id = option or os.environ.get(ENV_VAR) or fallback or DEFAULT_IMPL
    if impl_id not in IMPLS:
        raise ImplError(
            f"unknown implementation {impl_id!r}; choose one of: {', '.join(IMPLS)}"
        )
    return impl_id


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tf_keras_is_keras2() -> bool:
    """True where ``tensorflow.keras`` is Keras 2 without the tf_keras package (TF <= 2.15)."""
    tf_version = _version("tensorflow") or _version("tensorflow-cpu")
    if tf_version is None:
        return False
    major, minor = (int(p) for p in tf_version.split(".")[:2])
    return (major, minor) <= (2, 15)


def missing(spec: ImplSpec) -> list[str]:
    """Modules the implementation needs that are not installed (checked without importing)."""
    absent = [name for name in spec.needs if importlib.util.find_spec(name) is None]
    if spec.family == "keras2" and not absent:
        if importlib.util.find_spec("tf_keras") is None and not _tf_keras_is_keras2():
            absent.append("tf_keras")
    return absent


def check_available(impl_id: str) -> ImplSpec:
    """The spec of ``impl_id``, or an ImplError saying what is missing and how to install it."""
    spec = IMPLS[resolve_id(impl_id)]
    absent = missing(spec)
    if absent:
        raise ImplError(
            f"{spec.id} needs {', '.join(absent)}, which is not installed: {spec.install}"
        )
    keras_version = _version("keras")
    if spec.family == "keras3" and keras_version and int(keras_version.split(".")[0]) < 3:
        raise ImplError(
            f"{spec.id} needs Keras 3, but keras {keras_version} is installed here: {spec.install}"
        )
    return spec


_loaded: Adapter | None = None


def load(impl_id: str) -> Adapter:
    """Load ``impl_id`` once per process (Keras 3 fixes its backend at import)."""
    global _loaded
    if _loaded is not None:
        if _loaded.id != impl_id:
            raise ImplError(
                f"this process already runs {_loaded.id}; run {impl_id} in its own process"
            )
        return _loaded
    spec = check_available(impl_id)
    try:
        _loaded = spec.adapter(spec)
    except ImportError as exc:  # a dependency of the framework itself is missing or broken
        what = f"module {exc.name!r} is missing" if isinstance(exc, ModuleNotFoundError) and exc.name else str(exc)
        raise ImplError(f"{spec.id} cannot be imported: {what}; {spec.install}") from None
    return _loaded
