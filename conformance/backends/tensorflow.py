"""Keras 3 on TensorFlow."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from conformance.backends import cpu
from conformance.backends.base import Adapter, native_notices_filtered

#: Why a TensorFlow run under a CPU profile cannot show what bfloat16 gives on a CPU without bfloat16 instructions.
CAPPED_BFLOAT16 = ("TensorFlow picks oneDNN's bfloat16 MatMul by this CPU's own bfloat16 instructions and crashes "
                   "where --cpu-like caps oneDNN below them; a CPU without them computes it with Eigen")


class TensorFlowAdapter(Adapter):
    backend = "tensorflow"
    framework_name = "TensorFlow"

    def before_import(self) -> None:
        if self.cpu.name != cpu.NATIVE and cpu.has_bfloat16_instructions():
            self.capabilities = self.capabilities - {"bfloat16"}
            self.lacking_reasons = {**self.lacking_reasons, "bfloat16": CAPPED_BFLOAT16}

    def pin_precision(self) -> str:
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
        return "float32, TF32 off"

    def trainable_tensors(self, layer) -> list[Any]:
        """What GradientTape differentiates with respect to: Keras 3 wraps tf.Variables."""
        return [w.value for w in layer.trainable_weights]

    def backend_gradients(self, layer, x: np.ndarray, upstream: np.ndarray) -> list[Any]:
        import tensorflow as tf

        xt = tf.constant(x)
        weights = self.trainable_tensors(layer)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(layer(xt, training=True) * upstream)
        return tape.gradient(loss, [xt, *weights])

    def compiled(self, model, x: np.ndarray, xla: bool, training: bool) -> Callable[[], Any]:
        import tensorflow as tf

        fn = tf.function(lambda x_: model(x_, training=training), jit_compile=xla)
        xt = tf.constant(x)
        return lambda: fn(xt).numpy()

    def raw_forward(self, folded: list[tuple[np.ndarray, ...]], x: np.ndarray) -> Callable[[], Any]:
        import tensorflow as tf

        params = [tuple(tf.constant(a) for a in layer) for layer in folded]

        @tf.function(jit_compile=True)
        def fn(x_):
            for kernel, bias, scale, shift in params:
                x_ = (tf.matmul(x_, kernel) + bias) * scale + shift
            return x_

        xt = tf.constant(x)
        return lambda: fn(xt).numpy()

    def matmul(self, a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
        import tensorflow as tf

        ta, tb = tf.constant(a), tf.constant(b)
        return lambda: tf.matmul(ta, tb).numpy()

    def find_device(self) -> str:
        import tensorflow as tf

        with native_notices_filtered():  # looking for a GPU prints a notice where there is none
            gpus = tf.config.list_logical_devices("GPU")
        return f"gpu ({gpus[0].name})" if gpus else "cpu"

    def find_accelerator(self) -> dict[str, str]:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return {}
        details = tf.config.experimental.get_device_details(gpus[0])
        build = tf.sysconfig.get_build_info()
        return {"accelerator": details.get("device_name", gpus[0].name),
                "cuda": str(build.get("cuda_version")), "cudnn": str(build.get("cudnn_version"))}
