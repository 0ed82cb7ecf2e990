"""The model families that ``models save`` builds, the custom objects they use, and their fixed data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

# -- Custom objects, registered under the package "conformance" on every stack -------------------------


def custom_objects(keras) -> dict[str, Any]:
    """A custom regulariser and a custom initializer, registered for (de)serialisation as
    ``conformance>ScaledL1`` and ``conformance>ConstantRamp`` (Keras 3: ``keras.saving``; Keras 2:
    ``keras.utils``).  Defined once per Keras module, so saving and loading see the same classes."""
    cached = getattr(keras, "_conformance_custom_objects", None)
    if cached is not None:
        return cached
    saving = getattr(keras, "saving", None)
    register = getattr(saving, "register_keras_serializable", None) or keras.utils.register_keras_serializable

    @register(package="conformance")
    class ScaledL1(keras.regularizers.Regularizer):
        """factor · Σ|w|."""

        def __init__(self, factor=0.01):
            self.factor = float(factor)

        def __call__(self, w):
            return self.factor * keras.ops.sum(keras.ops.abs(w)) if hasattr(keras, "ops") else \
                self.factor * _tf().reduce_sum(_tf().abs(w))

        def get_config(self):
            return {"factor": self.factor}

    @register(package="conformance")
    class ConstantRamp(keras.initializers.Initializer):
        """w[i] = start + step · i over the flattened weight."""

        def __init__(self, start=0.0, step=0.01):
            self.start, self.step = float(start), float(step)

        def __call__(self, shape, dtype=None, **kwargs):
            n = int(np.prod(shape))
            return (self.start + self.step * np.arange(n, dtype="float32")).reshape(tuple(shape))

        def get_config(self):
            return {"start": self.start, "step": self.step}

    objects = {"ScaledL1": ScaledL1, "ConstantRamp": ConstantRamp}
    keras._conformance_custom_objects = objects
    return objects


def _tf():
    import tensorflow as tf

    return tf


# -- The model families ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """One saved model: how to build it, its input shape, and which layers the oracle covers."""

    name: str
    description: str
    build: Callable[[Any], Any]
    input_shape: tuple[int, ...]
    needs: str = ""  # "renorm": only where BatchNormalization has renorm


def _dense_regularised(keras):
    r, i = keras.regularizers, keras.initializers
    inputs = keras.Input(shape=(4,), name="x")
    y = keras.layers.Dense(3, name="dense", kernel_initializer=i.GlorotUniform(seed=1),
                           bias_initializer=i.Constant(0.1), kernel_regularizer=r.l2(0.01),
                           bias_regularizer=r.l1(0.02), activity_regularizer=r.l1_l2(l1=0.001, l2=0.002))(inputs)
    return keras.Model(inputs, y, name="dense_regularised")


def _dense_strings_and_custom(keras):
    custom = custom_objects(keras)
    inputs = keras.Input(shape=(4,), name="x")
    h = keras.layers.Dense(5, name="strings", kernel_initializer="he_normal", bias_initializer="zeros",
                           kernel_regularizer="l2")(inputs)
    y = keras.layers.Dense(2, name="custom", kernel_initializer=custom["ConstantRamp"](start=-0.1, step=0.02),
                           kernel_regularizer=custom["ScaledL1"](0.05))(h)
    return keras.Model(inputs, y, name="dense_strings_and_custom")


def _initializers(keras):
    i = keras.initializers
    inputs = keras.Input(shape=(4,), name="x")
    h = keras.layers.Dense(4, name="orthogonal", kernel_initializer=i.Orthogonal(gain=2.0, seed=5))(inputs)
    h = keras.layers.Dense(4, name="identity", kernel_initializer=i.Identity(gain=0.5))(h)
    y = keras.layers.Dense(2, name="variance_scaling", kernel_initializer=i.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="uniform", seed=9))(h)
    return keras.Model(inputs, y, name="initializers")


def _batchnorm(keras):
    inputs = keras.Input(shape=(3,), name="x")
    h = keras.layers.Dense(3, name="dense", kernel_initializer=keras.initializers.GlorotUniform(seed=2))(inputs)
    y = keras.layers.BatchNormalization(name="bn", momentum=0.8, epsilon=0.01,
                                        gamma_regularizer=keras.regularizers.l2(0.1))(h)
    return keras.Model(inputs, y, name="batchnorm")


def _batchnorm_plain(keras):
    inputs = keras.Input(shape=(3,), name="x")
    y = keras.layers.BatchNormalization(name="bn", center=False, scale=False, momentum=0.5)(inputs)
    return keras.Model(inputs, y, name="batchnorm_plain")


def _batchnorm_masked(keras):
    inputs = keras.Input(shape=(5, 3), name="x")
    h = keras.layers.Masking(mask_value=0.0, name="masking")(inputs)
    y = keras.layers.BatchNormalization(name="bn", momentum=0.5)(h)
    return keras.Model(inputs, y, name="batchnorm_masked")


def _batchnorm_renorm(keras):
    inputs = keras.Input(shape=(3,), name="x")
    y = keras.layers.BatchNormalization(name="bn", renorm=True, renorm_momentum=0.9,
                                        renorm_clipping={"rmax": 2.0, "rmin": 0.5, "dmax": 1.0})(inputs)
    return keras.Model(inputs, y, name="batchnorm_renorm")


def _dropout(keras):
    inputs = keras.Input(shape=(6, 4), name="x")
    h = keras.layers.Dropout(0.3, noise_shape=(None, 1, 4), seed=3, name="dropout")(inputs)
    h = keras.layers.SpatialDropout1D(0.2, name="spatial_dropout", **_seed(keras, "SpatialDropout1D", 4))(h)
    h = keras.layers.GaussianNoise(0.1, name="gaussian_noise", **_seed(keras, "GaussianNoise", 5))(h)
    h = keras.layers.GaussianDropout(0.2, name="gaussian_dropout", **_seed(keras, "GaussianDropout", 6))(h)
    h = keras.layers.AlphaDropout(0.1, name="alpha_dropout", **_seed(keras, "AlphaDropout", 7))(h)
    y = keras.layers.Dense(2, name="dense", kernel_initializer=keras.initializers.GlorotUniform(seed=8))(h)
    return keras.Model(inputs, y, name="dropout")


def _seed(keras, layer: str, seed: int) -> dict[str, int]:
    """``seed=`` where the layer takes one (Keras 2's SpatialDropout1D does not)."""
    import inspect

    cls = getattr(keras.layers, layer)
    return {"seed": seed} if "seed" in inspect.signature(cls.__init__).parameters else {}


def _notebook_init(keras):
    """The notebook's initializer model, Dense(10) on one input, with its zeros kernel and ones bias named as
    the built-in initializers (the notebook's own initializer functions are closures, which no format saves)."""
    inputs = keras.Input(shape=(1,), name="x")
    y = keras.layers.Dense(10, name="dense", kernel_initializer="zeros", bias_initializer="ones")(inputs)
    return keras.Model(inputs, y, name="notebook_init")


def _notebook_batchnorm(keras):
    """The notebook's BatchNormalization model: Dense(1) with kernel 2.0 on three inputs, then a default
    BatchNormalization."""
    inputs = keras.Input(shape=(3,), name="x")
    h = keras.layers.Dense(1, name="dense", kernel_initializer=keras.initializers.Constant(2.0))(inputs)
    y = keras.layers.BatchNormalization(name="bn")(h)
    return keras.Model(inputs, y, name="notebook_batchnorm")


def _notebook_dropout(keras):
    """The notebook's Dropout model: Dense(10) → Dropout(0.5) → Dense(1) → Dropout(0.5), both Dropouts called
    with ``training=True`` when the graph is built (so the notebook's ``predict`` printed a dropped value)."""
    inputs = keras.Input(shape=(10,), name="x")
    h = keras.layers.Dense(10, name="dense", kernel_initializer=keras.initializers.Constant(0.1))(inputs)
    h = keras.layers.Dropout(0.5, name="dropout")(h, training=True)
    h = keras.layers.Dense(1, name="dense_1", kernel_initializer=keras.initializers.Constant(0.1))(h)
    y = keras.layers.Dropout(0.5, name="dropout_1")(h, training=True)
    return keras.Model(inputs, y, name="notebook_dropout")


FAMILIES = (
    Family("notebook-init", "the notebook's Dense(10) with a zeros kernel and a ones bias", _notebook_init, (1,)),
    Family("notebook-batchnorm", "the notebook's Dense(1, kernel 2.0) → BatchNormalization()", _notebook_batchnorm,
           (3,)),
    Family("notebook-dropout", "the notebook's Dense → Dropout(0.5) → Dense → Dropout(0.5), the Dropouts fixed to "
           "training=True when the graph is built", _notebook_dropout, (10,)),
    Family("dense-regularised", "Dense with kernel l2, bias l1 and activity l1_l2 regularisers, a seeded "
           "GlorotUniform kernel and a Constant bias", _dense_regularised, (4,)),
    Family("dense-strings-and-custom", "regularisers and initializers named by string, and a custom (registered) "
           "regulariser and initializer", _dense_strings_and_custom, (4,)),
    Family("initializers", "Orthogonal(gain=2), Identity(gain=0.5) and a seeded VarianceScaling",
           _initializers, (4,)),
    Family("batchnorm", "Dense → BatchNormalization(momentum=0.8, epsilon=0.01, gamma l2)", _batchnorm, (3,)),
    Family("batchnorm-plain", "BatchNormalization(center=False, scale=False)", _batchnorm_plain, (3,)),
    Family("batchnorm-masked", "Masking → BatchNormalization on sequences", _batchnorm_masked, (5, 3)),
    Family("batchnorm-renorm", "BatchNormalization(renorm=True) with clipping", _batchnorm_renorm, (3,),
           needs="renorm"),
    Family("dropout", "Dropout (noise_shape, seed), SpatialDropout1D, GaussianNoise, GaussianDropout, "
           "AlphaDropout → Dense", _dropout, (6, 4)),
)


def available(family: Family, keras) -> bool:
    if family.needs == "renorm":  # Keras 2 takes it through **kwargs, Keras 3 from 3.14 by name
        try:
            keras.layers.BatchNormalization(renorm=True)
        except (TypeError, ValueError):
            return False
    return True


# -- Fixed data --------------------------------------------------------------------------------------


def data(input_shape: tuple[int, ...], output_shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded inputs (8 samples, a few exact zeros so that masks show) and targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 1.0, size=(8, *input_shape)).astype(np.float32)
    if len(input_shape) == 2:
        x[:, -1, :] = 0.0  # the last step of every sequence is masked by Masking(0.0)
    y = rng.normal(0.0, 1.0, size=(8, *output_shape)).astype(np.float32)
    return x, y
