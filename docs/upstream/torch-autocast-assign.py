#!/usr/bin/env python3
"""Keras 3 on PyTorch under a mixed policy: a float variable assigned in call() keeps nothing.

    python docs/upstream/torch-autocast-assign.py torch   # or jax, tensorflow

See docs/upstream/torch-autocast-assign.md.
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1]
import keras


class Counter(keras.layers.Layer):
    def build(self, shape):
        self.total = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, x):
        self.total.assign(self.total + 1.0)
        return x

for policy in ("float32", "mixed_float16"):
    layer = Counter(dtype=policy)
    layer(keras.ops.ones((2,)))
    layer(keras.ops.ones((2,)))
    print(sys.argv[1], keras.__version__, policy, "total after two calls:", float(keras.ops.convert_to_numpy(layer.total)))
