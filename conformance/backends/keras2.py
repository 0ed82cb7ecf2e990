"""Keras 2 on TensorFlow: the ``tf_keras`` package, or the Keras bundled with TensorFlow <= 2.15."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import numpy as np

from conformance.backends.tensorflow import TensorFlowAdapter


class Keras2Adapter(TensorFlowAdapter):
    def import_keras(self) -> tuple[Any, str]:
        if importlib.util.find_spec("tf_keras") is not None:
            os.environ["TF_USE_LEGACY_KERAS"] = "1"
            return importlib.import_module("tf_keras"), "tf_keras"
        return importlib.import_module("tensorflow").keras, "tensorflow.keras"

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x)

    def dtype_name(self, x: Any) -> str:
        import tensorflow as tf

        return tf.as_dtype(x.dtype).name

    def values(self, x: Any) -> np.ndarray:
        import tensorflow as tf

        return np.asarray(tf.cast(x, tf.float64) if hasattr(x, "dtype") else x, np.float64)

    def tensor(self, x: Any) -> Any:
        import tensorflow as tf

        return tf.constant(x)

    def sum_abs(self, w: Any) -> Any:
        return self.keras.backend.sum(self.keras.backend.abs(w))

    def trainable_tensors(self, layer) -> list[Any]:
        return list(layer.trainable_weights)  # Keras 2's weights are tf.Variables
