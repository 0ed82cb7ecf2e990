"""What every adapter shares: the generic Keras 3 adapter and the helpers adapters use.

An adapter is one loaded implementation: its ``keras`` module and the few
helpers cases and benchmarks need where implementations differ.  Each backend
has one subclass (``conformance/backends/<backend>.py``) that owns what
differs: the framework's version, the device and accelerator, gradients,
precision pinning, the compiled call path, the raw baseline and the matmul
ceiling.  A backend declares what it can do in ``capabilities``; a case
declares what it needs, and the skip reason comes from the two.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import inspect
import os
import platform
import re
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from conformance.backends import cpu
from conformance.data.schema import Environment
from conformance.data.target import device_kind_of

if TYPE_CHECKING:
    from conformance.backends.impls import ImplSpec

#: What a backend can do, in words for skip reasons. A case lists those it needs.
CAPABILITIES = {
    "train": "train (fit, train_on_batch)",
    "gradients": "take gradients",
    "float16": "compute in float16",
    "bfloat16": "compute in bfloat16",
    "float64": "compute in float64",
}
#: The dtypes besides float32 a backend computes in (conformance.engine.precision.POLICIES need them).
DTYPE_CAPABILITIES = frozenset({"float16", "bfloat16", "float64"})


class ImplError(Exception):
    """An implementation cannot be selected or loaded; the message is one line."""


class Unsupported(Exception):
    """A call path or helper this implementation does not have; the message says why."""


def module_version(module: str) -> str | None:
    """``module.__version__`` of an imported (or importable) module; None where it has none."""
    try:
        return str(importlib.import_module(module).__version__)
    except (ImportError, AttributeError):
        return None


@functools.lru_cache(maxsize=None)
def distribution_note(module: str, variant: str) -> str:
    """``", from keras-nightly"`` where the module comes from a distribution not named like the variant;
    where two distributions install it (keras and keras-nightly), a warning that its files are whichever
    was installed last, or a mix."""
    try:
        dists = sorted({d.lower().replace("_", "-") for d in
                        importlib.metadata.packages_distributions().get(module.split(".")[0], [])})
    except Exception:  # informational only
        return ""
    if variant == "tensorflow.keras":
        return ""
    if len(dists) > 1:
        return (f", installed by both {' and '.join(dists)}: its files are whichever was installed last, "
                "or a mix; uninstall one")
    others = [d for d in dists if d != variant.replace("_", "-")]
    return f", from {', '.join(others)}" if others else ""


#: Lines TensorFlow's native libraries print while they load, whatever TF_CPP_MIN_LOG_LEVEL says:
#: notices, not errors. Everything else they print is passed on.
NATIVE_LOAD_NOTICES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\d+ (port|cpu_feature_guard|cudart_stub|cuda_executor|cuda_platform)\.cc:\d+\] .*"
    r"|E\d{4} [\d:. ]+\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*"
    r"|To enable the following instructions: .*, in other operations, rebuild TensorFlow .*"
)


@contextlib.contextmanager
def native_notices_filtered() -> Iterator[None]:
    """Hold back what native code writes to stderr (file descriptor 2) meanwhile, then pass on every line
    that is not a known load-time notice; on an exception, pass on everything."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if failed or not NATIVE_LOAD_NOTICES.fullmatch(line.rstrip("\n"))]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def weight_name(variable) -> str:
    """A weight's short name: Keras 3's 'kernel', or 'kernel' for Keras 2's 'dense/kernel:0'."""
    return variable.name.split("/")[-1].split(":")[0]


def weight_names(layer) -> list[str]:
    """The short names of a layer's trainable weights ("gamma", "beta", ...)."""
    return [weight_name(w) for w in layer.trainable_weights]


class Adapter:
    """Keras 3 on some backend: what every backend shares.

    Cases use only the Keras API that Keras 2 and 3 share (``keras.Input``,
    ``keras.Model``, ``keras.layers``, ``keras.initializers``,
    ``keras.regularizers``) plus the helpers here for what differs.
    """

    #: The value of KERAS_BACKEND, and the module whose version is the framework's.
    backend = ""
    #: The framework as people write it, for 'loading ...' lines.
    framework_name = ""
    #: What this backend can do (keys of CAPABILITIES).
    capabilities: frozenset[str] = frozenset(CAPABILITIES)
    #: Why it cannot do some of them, where that is more than "cannot": capability -> reason.
    lacking_reasons: dict[str, str] = {}

    def __init__(self, spec: ImplSpec):
        self.spec = spec
        self.id = spec.id
        self.family = spec.family
        for name, value in spec.env.items():
            os.environ[name] = value
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:  # run as this CPU, or as another kind would (conformance.backends.cpu)
            self.cpu = cpu.resolve(None)
        except cpu.CpuProfileError as exc:
            raise ImplError(str(exc)) from None
        cpu.apply(self.cpu)
        self.before_import()
        with native_notices_filtered():
            self.keras, self.variant = self.import_keras()
        self.precision = self.pin_precision()  # for every case and benchmark alike

    # -- loading ---------------------------------------------------------------------

    def before_import(self) -> None:
        """Environment settings the framework reads when it is imported."""

    def import_keras(self) -> tuple[Any, str]:
        """The ``keras`` module under test and its variant name; Keras 3 with this backend."""
        keras = importlib.import_module("keras")
        actual = keras.backend.backend()
        if actual != self.backend:
            raise ImplError(f"{self.id}: keras was already imported with backend {actual!r}; "
                            f"run {self.id} in its own process")
        return keras, "keras"

    def pin_precision(self) -> str:
        """Pin full float32 arithmetic where the backend would otherwise use less (TF32 on GPUs).
        Returns what was pinned, for the report header."""
        return "float32"

    # -- helpers for what differs between implementations ----------------------------

    weight_name = staticmethod(weight_name)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A framework tensor (or variable) as a NumPy array of its own: a copy, never a view of the
        framework's buffer, which a later step may reuse (JAX 0.4.26 to 0.5.3 on the CPU, with a cached
        executable: see ``backends/jax.py``)."""
        return np.array(self.keras.ops.convert_to_numpy(x), copy=True)

    def values(self, x: Any) -> np.ndarray:
        """A tensor's values as float64 whatever its dtype (bfloat16 through float32, exactly)."""
        if self.dtype_name(x) == "bfloat16":
            x = self.keras.ops.cast(x, "float32")
        return self.to_numpy(x).astype(np.float64)

    def dtype_name(self, x: Any) -> str:
        """The dtype of a tensor or variable as Keras names it ('float16', 'bfloat16', ...)."""
        return self.keras.backend.standardize_dtype(x.dtype)

    def tensor(self, x: Any) -> Any:
        """A NumPy array as the framework's tensor (what layers hand their regularisers)."""
        return self.keras.ops.convert_to_tensor(x)

    def sum_abs(self, w: Any) -> Any:
        """``Σ|w|`` in the implementation's ops (for custom regularisers)."""
        return self.keras.ops.sum(self.keras.ops.abs(w))

    def numpy_dtype(self, dtype: Any) -> np.dtype:
        """The NumPy dtype of whatever an initializer receives as ``dtype``."""
        return np.dtype(getattr(dtype, "as_numpy_dtype", dtype))

    def gradients(self, layer, x: np.ndarray, upstream: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``Σ upstream·layer(x, training=True)`` w.r.t. the input and each trainable weight.

        Returns ``{"inputs": dx, "<weight name>": dw, ...}`` (weight names as in
        ``layer.trainable_weights``, e.g. "gamma", "beta").
        """
        x = np.asarray(x, np.float32)
        upstream = np.asarray(upstream, np.float32)
        if not layer.built:
            layer.build(x.shape)
        grads = self.backend_gradients(layer, x, upstream)
        return {name: self.to_numpy(g) for name, g in zip(["inputs", *weight_names(layer)], grads, strict=True)}

    def backend_gradients(self, layer, x: np.ndarray, upstream: np.ndarray) -> list[Any]:
        """[d/dx, d/dw for each trainable weight], in the backend's autodiff."""
        raise Unsupported(f"{self.id} computes no gradients")

    def clear_session(self) -> None:
        """Reset Keras's global state (layer names, graphs), so that no case sees another's.

        Without the garbage collection Keras 3 does by default: it costs far more
        than a case and changes no result.  Keras 3.3 made it optional
        (``free_memory=False``); before, ``clear_session`` always calls
        ``gc.collect()``, half a second a case on JAX and PyTorch, so it is made a
        no-op for the call.
        """
        import gc

        clear = self.keras.backend.clear_session
        if "free_memory" in inspect.signature(clear).parameters:
            clear(free_memory=False)
            return
        collect = gc.collect
        gc.collect = lambda generation=2: 0
        try:
            clear()
        finally:
            gc.collect = collect

    def set_seed(self, seed: int) -> None:
        """Seed Python, NumPy and the framework, so a case repeats exactly."""
        self.keras.utils.set_random_seed(seed)

    def keras_module_map(self) -> dict[str, Any]:
        """Modules to stand in for ``keras`` and its submodules when running notebook code."""
        k = self.keras
        mapping = {"keras": k}
        for name in ["models", "layers", "regularizers", "backend", "initializers"]:
            mapping[f"keras.{name}"] = getattr(k, name)
        return mapping

    # -- benchmarks: call paths the backend has --------------------------------------

    def compiled(self, model, x: np.ndarray, xla: bool, training: bool) -> Callable[[], Any]:
        """One synchronised forward pass through the backend's compiler."""
        raise Unsupported(f"the {self.backend} backend has no compiler")

    def raw_forward(self, folded: list[tuple[np.ndarray, ...]], x: np.ndarray) -> Callable[[], Any]:
        """The stack's inference arithmetic written in the framework: ``(x·W + b)·scale + shift`` per layer."""
        raise Unsupported(f"no raw baseline for {self.backend}")

    def matmul(self, a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
        """A synchronised ``a @ b`` in the framework, on the device Keras uses: the measured ceiling."""
        return lambda: a @ b

    # -- what the report header says --------------------------------------------------

    @functools.cached_property
    def keras_version(self) -> str | None:
        """The version of the Keras under test, read from what was imported.

        ``keras.__version__`` (also for ``keras-nightly``, which installs under
        another distribution name), ``tf_keras.__version__``, or for the Keras
        bundled with TensorFlow, ``tf.keras.__version__`` (else TensorFlow's).
        """
        version = getattr(self.keras, "__version__", None)
        return str(version) if version else module_version("tensorflow")

    def versions(self) -> dict[str, str | None]:
        """The versions under test, each read from the imported module, with its distribution where it differs."""
        keras_module = "tensorflow" if self.variant == "tensorflow.keras" else self.keras.__name__
        return {
            "keras": f"{self.keras_version} ({self.variant}{distribution_note(keras_module, self.variant)})",
            self.backend: module_version(self.backend),
            "numpy": np.__version__,
            "python": platform.python_version(),
        }

    def environment(self) -> Environment:
        """What a run records of where it ran: the versions, the device and its kind, and the CPU profile where
        one applies (``conformance.data.schema.Environment``)."""
        like = {"cpu_like": self.cpu.name} if self.cpu.name != cpu.NATIVE else {}
        return self.versions() | {"device": self.device(), "device_kind": self.device_kind()} | like

    def device(self) -> str:
        """Where the layers run: 'cpu', or the accelerator the backend picked (informational: never fails)."""
        try:
            return self.find_device()
        except Exception as exc:
            return f"unknown ({type(exc).__name__})"

    def find_device(self) -> str:
        return "cpu"

    def accelerator_info(self) -> dict[str, str]:
        """Name, driver and runtime versions of the accelerator the backend uses; empty on CPU."""
        try:
            info = self.find_accelerator()
        except Exception as exc:  # informational only
            return {"accelerator_error": type(exc).__name__}
        return nvidia_driver(info) if info else {}

    def find_accelerator(self) -> dict[str, str]:
        return {}

    def device_kind(self) -> str:
        """'cpu', 'gpu' or 'tpu': what a divergence's ``devices`` names."""
        return device_kind_of(self.device())

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.versions().items())
        like = "" if self.cpu.name == cpu.NATIVE else f" run as --cpu-like {self.cpu.name}"
        return f"{self.id} — {parts}; device {self.device()}{like}, {self.precision}"


def nvidia_driver(info: dict[str, str]) -> dict[str, str]:
    """``info`` with the NVIDIA driver version added, where nvidia-smi answers."""
    import subprocess

    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=10)
        if driver.returncode == 0:
            info["driver"] = driver.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return info
