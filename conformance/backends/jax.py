"""Keras 3 on JAX."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
from packaging.version import InvalidVersion, Version

from conformance.backends.base import Adapter, Unsupported

#: The first JAX release whose CPU executables read back from the persistent compilation cache
#: were seen to compute what freshly compiled ones do (see ``JaxAdapter.before_import``).
SAFE_PERSISTENT_CACHE = Version("0.6.0")


def persistent_cache_is_safe(jax_version: str | None) -> bool:
    """Whether the suite may turn on JAX's persistent compilation cache for this JAX release."""
    if jax_version is None:
        return False
    try:
        return Version(jax_version) >= SAFE_PERSISTENT_CACHE
    except InvalidVersion:
        return False


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


class JaxAdapter(Adapter):
    backend = "jax"
    framework_name = "JAX"

    def before_import(self) -> None:
        """Keep JAX's compiled programs between runs (JAX's persistent compilation cache), where it is safe.

        The suite's many small eager ops each compile once per shape; caching them
        on disk makes a second run several times faster and changes no result on
        JAX 0.6.0 and later.  On JAX 0.4.26 to 0.5.3 on the CPU, a training step read
        back from that cache can write its results into the wrong buffers: after
        ``fit`` the moving variance holds the moving mean, and NumPy arrays given to
        ``set_weights`` are overwritten (seen in 1 to 5 runs of 6 with Keras 3.3 to
        3.9; never with the cache off).  So the suite turns the cache on only from
        JAX 0.6.0.  Settings the user made in the environment win; the directory
        defaults to ``~/.cache/keras-conformance/jax``.
        """
        if not persistent_cache_is_safe(_installed_version("jax")):
            return
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "keras-conformance" / "jax"
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

    def pin_precision(self) -> str:
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
        if not jax.config.read("jax_enable_x64"):
            # A float64 policy is accepted, but every array is float32 (JAX's default): no float64 to test.
            self.capabilities = self.capabilities - {"float64"}
            self.lacking_reasons = {"float64": "JAX computes in float32 unless JAX_ENABLE_X64 is set"}
        return "float32, TF32 off"

    def backend_gradients(self, layer, x: np.ndarray, upstream: np.ndarray) -> list[Any]:
        import jax
        import jax.numpy as jnp

        trainable = [v.value for v in layer.trainable_variables]
        frozen = [v.value for v in layer.non_trainable_variables]

        def loss(x_, trainable_):
            y, _ = layer.stateless_call(trainable_, frozen, x_, training=True)
            return jnp.sum(y * upstream)

        dx, dws = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), trainable)
        return [dx, *dws]

    def compiled(self, model, x: np.ndarray, xla: bool, training: bool) -> Callable[[], Any]:
        if not xla:
            raise Unsupported("JAX always compiles with XLA: see compiled-xla")
        import jax

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]
        fn = jax.jit(lambda t, f, x_: model.stateless_call(t, f, x_, training=training)[0])
        xj = jax.numpy.asarray(x)
        return lambda: fn(trainable, frozen, xj).block_until_ready()

    def raw_forward(self, folded: list[tuple[np.ndarray, ...]], x: np.ndarray) -> Callable[[], Any]:
        import jax
        import jax.numpy as jnp

        params = [tuple(jnp.asarray(a) for a in layer) for layer in folded]

        @jax.jit
        def fn(x_, params_):
            for kernel, bias, scale, shift in params_:
                x_ = (x_ @ kernel + bias) * scale + shift
            return x_

        xj = jnp.asarray(x)
        return lambda: fn(xj, params).block_until_ready()

    def matmul(self, a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
        import jax

        fn = jax.jit(lambda p, q: p @ q)
        pa, pb = jax.numpy.asarray(a), jax.numpy.asarray(b)
        return lambda: fn(pa, pb).block_until_ready()

    def find_device(self) -> str:
        import jax

        dev = jax.devices()[0]
        return "cpu" if dev.platform == "cpu" else f"{dev.platform} ({dev.device_kind})"

    def find_accelerator(self) -> dict[str, str]:
        import jax

        dev = jax.devices()[0]
        if dev.platform == "cpu":
            return {}
        return {"accelerator": dev.device_kind, "platform_version": dev.client.platform_version}
