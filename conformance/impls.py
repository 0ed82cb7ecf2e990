"""Implementations under test and the adapter that loads one of them.

An implementation is a Keras API plus the framework that executes it.  It is
named by one ID everywhere (``pytest --impl ID``, ``CONFORMANCE_IMPL=ID``,
``keras-conformance run --impl ID``):

* ``keras3:tensorflow`` (the default), ``keras3:jax``, ``keras3:torch``,
  ``keras3:numpy`` -- Keras 3 with ``KERAS_BACKEND`` set before import;
* ``keras2`` -- Keras 2: the ``tf_keras`` package where it is installed,
  otherwise the Keras bundled with TensorFlow <= 2.15 (``tensorflow.keras``).

The backend of Keras 3 is fixed when ``keras`` is first imported, so one
process tests one implementation.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import platform
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

DEFAULT_IMPL = "keras3:tensorflow"
ENV_VAR = "CONFORMANCE_IMPL"


class ImplError(Exception):
    """An implementation cannot be selected or loaded; the message is one line."""


@dataclass(frozen=True)
class ImplSpec:
    """What an implementation ID means and what it needs installed."""

    id: str
    family: str  # "keras3" or "keras2": selects fixtures/expectations/<family>.toml
    backend: str  # the framework that executes the layers
    needs: tuple[str, ...]  # importable modules it cannot run without
    install: str  # the pip command that provides them
    supports_training: bool = True
    env: dict[str, str] = field(default_factory=dict)
    short: str = ""  # a column heading for narrow terminals

    @property
    def framework_name(self) -> str:
        """The framework as people write it, for 'loading ...' lines."""
        return {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch", "numpy": "NumPy"}[self.backend]


IMPLS: dict[str, ImplSpec] = {
    spec.id: spec
    for spec in (
        ImplSpec(
            "keras3:tensorflow", "keras3", "tensorflow", ("keras", "tensorflow"),
            "pip install 'keras-conformance[tensorflow]'",
            env={"KERAS_BACKEND": "tensorflow"}, short="tf",
        ),
        ImplSpec(
            "keras3:jax", "keras3", "jax", ("keras", "jax"),
            "pip install 'keras-conformance[jax]'",
            env={"KERAS_BACKEND": "jax"}, short="jax",
        ),
        ImplSpec(
            "keras3:torch", "keras3", "torch", ("keras", "torch"),
            "pip install torch==2.13.0 && pip install 'keras-conformance[torch]'",
            env={"KERAS_BACKEND": "torch"}, short="torch",
        ),
        ImplSpec(
            # Keras's NumPy backend imports JAX for its fft and nn ops.
            "keras3:numpy", "keras3", "numpy", ("keras", "jax"),
            "pip install 'keras-conformance[jax]'",
            supports_training=False,
            env={"KERAS_BACKEND": "numpy"}, short="numpy",
        ),
        ImplSpec(
            "keras2", "keras2", "tensorflow", ("tensorflow",),
            "pip install 'keras-conformance[tf-keras]' (or tensorflow==2.15.1, whose Keras is Keras 2)",
            short="k2",
        ),
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


def module_version(module: str) -> str | None:
    """``module.__version__`` of an imported (or importable) module; None where it has none."""
    try:
        return str(importlib.import_module(module).__version__)
    except (ImportError, AttributeError):
        return None


@functools.lru_cache(maxsize=None)
def distribution_note(module: str, variant: str) -> str:
    """``", from keras-nightly"`` where the module comes from a distribution not named like the variant."""
    try:
        dists = importlib.metadata.packages_distributions().get(module.split(".")[0], [])
    except Exception:  # informational only
        return ""
    others = [d for d in dists if d.lower().replace("_", "-") != variant.replace("_", "-")]
    return f", from {', '.join(sorted(set(others)))}" if others and variant != "tensorflow.keras" else ""


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


def enable_jax_compilation_cache() -> None:
    """Keep JAX's compiled programs between runs (JAX's persistent compilation cache).

    The suite's many small eager ops each compile once per shape; caching them
    on disk makes a second run several times faster and changes no result.
    Settings the user made in the environment win; the directory defaults to
    ``~/.cache/keras-conformance/jax``.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "keras-conformance" / "jax"
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


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


class Adapter:
    """One loaded implementation: its ``keras`` module and the few helpers cases need.

    Cases use only the Keras API that Keras 2 and 3 share (``keras.Input``,
    ``keras.Model``, ``keras.layers``, ``keras.initializers``,
    ``keras.regularizers``) plus the helpers here for what differs.
    """

    def __init__(self, spec: ImplSpec):
        self.spec = spec
        self.id = spec.id
        self.family = spec.family
        self.supports_training = spec.supports_training
        for name, value in spec.env.items():
            os.environ[name] = value
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if spec.backend == "jax":
            enable_jax_compilation_cache()
        with native_notices_filtered():
            self._import(spec)
        self.precision = self.pin_precision()  # for every case and benchmark alike

    def _import(self, spec: ImplSpec) -> None:
        if spec.family == "keras3":
            self.keras = importlib.import_module("keras")
            self.variant = "keras"
            actual = self.keras.backend.backend()
            if actual != spec.backend:
                raise ImplError(
                    f"{spec.id}: keras was already imported with backend {actual!r}; "
                    f"run {spec.id} in its own process"
                )
        elif importlib.util.find_spec("tf_keras") is not None:
            os.environ["TF_USE_LEGACY_KERAS"] = "1"
            self.keras = importlib.import_module("tf_keras")
            self.variant = "tf_keras"
        else:
            self.keras = importlib.import_module("tensorflow").keras
            self.variant = "tensorflow.keras"

    # -- helpers for what differs between Keras 2 and Keras 3 --------------------

    def to_numpy(self, x: Any) -> np.ndarray:
        """A framework tensor (or variable) as a NumPy array."""
        if self.family == "keras3":
            return np.asarray(self.keras.ops.convert_to_numpy(x))
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x)

    def tensor(self, x: Any) -> Any:
        """A NumPy array as the framework's tensor (what layers hand their regularisers)."""
        if self.family == "keras3":
            return self.keras.ops.convert_to_tensor(x)
        import tensorflow as tf

        return tf.constant(x)

    def sum_abs(self, w: Any) -> Any:
        """``Σ|w|`` in the implementation's ops (for custom regularisers)."""
        if self.family == "keras3":
            return self.keras.ops.sum(self.keras.ops.abs(w))
        return self.keras.backend.sum(self.keras.backend.abs(w))

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
        names = [w.name.split("/")[-1].split(":")[0] for w in layer.trainable_weights]
        backend = self.spec.backend
        if backend == "tensorflow":
            import tensorflow as tf

            xt = tf.constant(x)
            weights = [getattr(w, "value", w) if self.family == "keras3" else w for w in layer.trainable_weights]
            with tf.GradientTape() as tape:
                tape.watch(xt)
                loss = tf.reduce_sum(layer(xt, training=True) * upstream)
            grads = tape.gradient(loss, [xt, *weights])
        elif backend == "jax":
            import jax
            import jax.numpy as jnp

            trainable = [v.value for v in layer.trainable_variables]
            frozen = [v.value for v in layer.non_trainable_variables]

            def loss(x_, trainable_):
                y, _ = layer.stateless_call(trainable_, frozen, x_, training=True)
                return jnp.sum(y * upstream)

            dx, dws = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), trainable)
            grads = [dx, *dws]
        elif backend == "torch":
            import torch

            device = layer.trainable_weights[0].value.device  # where Keras put the layer: a GPU if there is one
            xt = torch.tensor(x, requires_grad=True, device=device)
            for w in layer.trainable_weights:
                w.value.grad = None
            loss = (layer(xt, training=True) * torch.tensor(upstream, device=device)).sum()
            loss.backward()
            grads = [xt.grad, *(w.value.grad for w in layer.trainable_weights)]
        else:
            raise NotImplementedError(f"{self.id} computes no gradients")
        return {name: self.to_numpy(g) for name, g in zip(["inputs", *names], grads)}

    def pin_precision(self) -> str:
        """Full float32 matmuls on every backend: TF32 off on GPUs, where JAX and TensorFlow would
        otherwise multiply float32 matrices in TF32 (10-bit mantissa). Returns what was pinned."""
        backend = self.spec.backend
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_tensor_float_32_execution(False)
        elif backend == "jax":
            import jax

            jax.config.update("jax_default_matmul_precision", "highest")
        elif backend == "torch":
            import torch

            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        return "float32, TF32 off"

    def clear_session(self) -> None:
        """Reset Keras's global state (layer names, graphs), so that no case sees another's.

        Without the garbage collection Keras 3 does by default: it costs far more
        than a case and changes no result.
        """
        clear = self.keras.backend.clear_session
        if "free_memory" in inspect.signature(clear).parameters:
            clear(free_memory=False)
        else:
            clear()

    def set_seed(self, seed: int) -> None:
        """Seed Python, NumPy and the framework, so a case repeats exactly."""
        self.keras.utils.set_random_seed(seed)

    def keras_module_map(self) -> dict[str, Any]:
        """Modules to stand in for ``keras`` and its submodules when running notebook code."""
        k = self.keras
        names = ["models", "layers", "regularizers", "backend", "initializers"]
        mapping = {"keras": k}
        for name in names:
            mapping[f"keras.{name}"] = getattr(k, name)
        return mapping

    # -- what the report header says -------------------------------------------

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
        framework = self.spec.backend
        keras_module = "tensorflow" if self.variant == "tensorflow.keras" else self.keras.__name__
        return {
            "keras": f"{self.keras_version} ({self.variant}{distribution_note(keras_module, self.variant)})",
            framework: module_version(framework),
            "numpy": np.__version__,
            "python": platform.python_version(),
        }

    def device(self) -> str:
        """Where the layers run: 'cpu', or the accelerator the backend picked."""
        backend = self.spec.backend
        try:
            if backend == "tensorflow":
                import tensorflow as tf

                with native_notices_filtered():  # looking for a GPU prints a notice where there is none
                    gpus = tf.config.list_logical_devices("GPU")
                return f"gpu ({gpus[0].name})" if gpus else "cpu"
            if backend == "jax":
                import jax

                dev = jax.devices()[0]
                return "cpu" if dev.platform == "cpu" else f"{dev.platform} ({dev.device_kind})"
            if backend == "torch":
                import torch

                if torch.cuda.is_available():
                    return f"cuda ({torch.cuda.get_device_name(0)})"
                return "cpu"
        except Exception as exc:  # the device is informational: never fail on it
            return f"unknown ({type(exc).__name__})"
        return "cpu"

    def accelerator_info(self) -> dict[str, str]:
        """Name, driver and runtime versions of the accelerator the backend uses; empty on CPU."""
        info: dict[str, str] = {}
        try:
            if self.spec.backend == "torch":
                import torch

                if torch.cuda.is_available():
                    info = {"accelerator": torch.cuda.get_device_name(0), "cuda": str(torch.version.cuda)}
            elif self.spec.backend == "jax":
                import jax

                dev = jax.devices()[0]
                if dev.platform != "cpu":
                    info = {"accelerator": dev.device_kind, "platform_version": dev.client.platform_version}
            elif self.spec.backend == "tensorflow":
                import tensorflow as tf

                gpus = tf.config.list_physical_devices("GPU")
                if gpus:
                    details = tf.config.experimental.get_device_details(gpus[0])
                    build = tf.sysconfig.get_build_info()
                    info = {"accelerator": details.get("device_name", gpus[0].name),
                            "cuda": str(build.get("cuda_version")), "cudnn": str(build.get("cudnn_version"))}
            if info:
                import subprocess

                driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                        capture_output=True, text=True, timeout=10)
                if driver.returncode == 0:
                    info["driver"] = driver.stdout.strip().splitlines()[0]
        except Exception as exc:  # informational only
            info["accelerator_error"] = type(exc).__name__
        return info

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.versions().items())
        return f"{self.id} — {parts}; device {self.device()}, {self.precision}"

    def device_kind(self) -> str:
        """'cpu', 'gpu' or 'tpu': what a divergence's ``devices`` names."""
        device = self.device()
        return "gpu" if device.startswith(("gpu", "cuda")) else device.split(" ")[0]


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
        _loaded = Adapter(spec)
    except ImportError as exc:  # a dependency of the framework itself is missing or broken
        what = f"module {exc.name!r} is missing" if isinstance(exc, ModuleNotFoundError) and exc.name else str(exc)
        raise ImplError(f"{spec.id} cannot be imported: {what}; {spec.install}") from None
    return _loaded
