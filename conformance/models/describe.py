"""What a model is, as plain data: the manifest entry ``save`` writes and ``check`` compares with."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any, Iterator

import numpy as np

from conformance.data.schema import SavedModel

#: The configuration keys of the four topics (and Dense) that a loaded model must keep, per layer class.
TOPIC_KEYS = {
    "Dense": ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
              "bias_regularizer", "activity_regularizer"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
                           "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer",
                           "gamma_regularizer", "renorm", "renorm_clipping", "renorm_momentum"),
    "Dropout": ("rate", "noise_shape", "seed"),
    "SpatialDropout1D": ("rate", "seed"),
    "GaussianNoise": ("stddev", "seed"),
    "GaussianDropout": ("rate", "seed"),
    "AlphaDropout": ("rate", "noise_shape", "seed"),
    "Masking": ("mask_value",),
}

def normalise(value: Any) -> Any:
    """A configuration value comparable across Keras 2 and 3: serialised objects as
    ``{"class_name", "config"}`` (a registered class under its registered name), tuples as lists."""
    if isinstance(value, dict) and "class_name" in value:
        name = value.get("registered_name") or value["class_name"]
        if isinstance(name, str) and ">" not in name and value.get("module", "").startswith(("keras", "tf_keras")):
            name = value["class_name"]
        return {"class_name": str(name), "config": normalise(value.get("config") or {})}
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in sorted(value.items())
                if k not in ("name", "dtype", "trainable", "module", "registered_name")}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def topic_config(model) -> dict[str, dict[str, Any]]:  # layer name -> its configuration (Keras's, JSON)
    """Per layer (by name) of a class of the four topics: its class and what the layer object holds for
    each topic attribute (``layer.activity_regularizer``, ``layer.momentum``, ...), read from the layer
    itself rather than from ``get_config``, so that what a release forgets to save shows as lost."""
    out = {}
    for layer in model.layers:
        cls = type(layer).__name__
        if cls not in TOPIC_KEYS:
            continue
        out[layer.name] = {"class": cls, **{key: describe_value(getattr(layer, key, ABSENT))
                                            for key in TOPIC_KEYS[cls]}}
        if "axis" in out[layer.name]:
            out[layer.name]["axis"] = normalised_axis(layer)
    return out


def normalised_axis(layer) -> list[int]:
    """BatchNormalization's axis as non-negative positions: Keras 2 keeps ``[1]`` once built, Keras 3 ``-1``."""
    axis = layer.axis
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    try:
        rank = len(layer.input.shape)
    except (AttributeError, ValueError):
        return [int(a) for a in axes]
    return sorted(int(a) % rank for a in axes)


def describe_value(value: Any) -> Any:
    """A layer attribute as plain data: initializers, regularisers and constraints as their class (a
    registered one under its registered name) and config; activations by name; arrays as lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [describe_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe_value(v) for k, v in sorted(value.items())}
    if callable(value) and not hasattr(value, "get_config"):
        return getattr(value, "__name__", type(value).__name__)  # an activation function
    if hasattr(value, "get_config"):
        try:
            config = value.get_config()
        except Exception as exc:  # noqa: BLE001 - a config that cannot be read is itself the finding
            config = {"get_config() raised": one_line(exc)}
        return {"class_name": _registered_name(value), "config": normalise(config)}
    if hasattr(value, "numpy") or hasattr(value, "shape"):
        return np.asarray(value).tolist()
    return str(value)


def _registered_name(obj: Any) -> str:
    """The name a custom object is registered under (``conformance>ScaledL1``), else its class's name."""
    cls = type(obj)
    for module_name in ("keras.saving", "keras.utils", "tf_keras.utils"):
        try:
            import importlib

            get_name = getattr(importlib.import_module(module_name), "get_registered_name", None)
        except ImportError:
            continue
        if get_name is not None:
            name = get_name(cls)
            if ">" in name:
                return name
    return cls.__name__


ABSENT = "<absent>"


def weights_of(model, adapter) -> dict[str, list]:
    """Every weight by layer and position in the layer (``bn/2``): names differ across Keras versions."""
    return {f"{layer.name}/{i}": adapter.to_numpy(w).tolist()
            for layer in model.layers for i, w in enumerate(layer.weights)}


def predict_is_random(model, x, first) -> bool:
    """Whether ``predict`` draws (a Dropout fixed to training=True when the graph was built): a second call
    differs from the first.  Its outputs are then a draw, not a reference."""
    return not np.array_equal(np.asarray(model.predict(x, verbose=0)), np.asarray(first))


def penalties(model, adapter, x) -> list[float]:
    """The model's penalties after calling it on ``x`` (weight and activity regularisers), sorted."""
    model(x)
    return sorted(float(adapter.to_numpy(loss)) for loss in model.losses)


def evaluate_loss(model, x, y) -> float:
    """The training loss on (x, y) as ``evaluate`` computes it: MSE plus the penalties, inference mode."""
    return float(np.asarray(model.evaluate(x, y, batch_size=len(x), verbose=0)).ravel()[0])


def layer_order(model) -> list[str]:
    """The layers that compute (not the Input), in order."""
    return [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]


#: The optimiser of training before saving, and of ``evaluate`` after loading.
LEARNING_RATE = 0.01


def compile_sgd(keras, model) -> None:
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss="mse")


#: How much of a long error message a report keeps: its start (what failed) and its end (why: Keras puts
#: "Exception encountered: ..." after the whole configuration it failed on).
ERROR_HEAD = ERROR_TAIL = 200


def one_line(exc: BaseException) -> str:
    """The exception on one line; a long message keeps its first and last ``ERROR_HEAD`` characters."""
    text = " ".join(str(exc).split())
    if len(text) > ERROR_HEAD + ERROR_TAIL + 3:
        text = f"{text[:ERROR_HEAD]} … {text[-ERROR_TAIL:]}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence what training, saving and loading print and warn: ``export`` lists its endpoints, legacy
    formats warn through absl that they are legacy, TensorFlow warns that training one model after another
    retraces, and TensorFlow's native libraries announce themselves when another backend loads them to
    read a file.  The report says what matters.  Errors are still logged, and native output other than
    those notices is passed on (``native_notices_filtered``)."""
    from conformance.backends.base import native_notices_filtered

    loggers = [logging.getLogger(name) for name in ("absl", "tensorflow")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), native_notices_filtered():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def describe(model, adapter, family: str, description: str, x: np.ndarray, y: np.ndarray | None,
             compiled: bool) -> SavedModel:
    """A model's manifest entry (without its files): configuration, weights, outputs, loss and penalties."""
    outputs = adapter.to_numpy(model.predict(x, verbose=0))
    entry: SavedModel = {"family": family, "description": description, "config": topic_config(model),
             "layers": layer_order(model), "weights": weights_of(model, adapter),
             "x": x.tolist(), "outputs": outputs.tolist(), "predict_is_random": predict_is_random(model, x, outputs),
             "penalties": penalties(model, adapter, x)}
    if y is not None and compiled:
        entry |= {"y": y.tolist(), "loss": evaluate_loss(model, x, y)}
    return entry
