"""Saved models across upgrades: save the suite's model families on one stack, check them on another.

``save`` (on the old stack) builds each family, trains it a few seeded steps, saves it in every format the
stack writes (``.keras``; legacy ``.h5``; weights only, ``.weights.h5``; a TensorFlow SavedModel on
TensorFlow) and writes ``manifest.json``: the stack, and per model the configuration of the four topics
layer by layer, the weights, reference outputs in inference on fixed inputs, and the loss and penalties
that training computes on fixed data (``evaluate``: inference mode, so no dropout draw enters them).

``check`` (on the new stack) loads every model in every format and compares it with the manifest:
whether it loads; each layer's configuration of the four topics (what was lost, added or changed);
the weights (exactly); the inference outputs against the reference and against a float64 oracle
computed from the manifest's weights and configuration (``oracle_outputs``); the loss and penalties.

Works on Keras 2 (``tf.keras`` of TensorFlow 2.15, ``tf_keras``) and Keras 3, through the adapters.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from conformance.files import FixtureError

FORMAT = "keras-conformance-models"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FORMATS = ("keras", "h5", "weights", "savedmodel")
#: Inference outputs: the loaded model against the reference the old stack computed.
OUTPUT_RTOL, OUTPUT_ATOL = 1e-5, 1e-6
#: Against the float64 oracle: float32 arithmetic of a few small layers.
ORACLE_RTOL, ORACLE_ATOL = 1e-4, 1e-5
#: Loss and penalties (float32 sums).
LOSS_RTOL = 1e-5

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


class ModelsError(FixtureError):
    """Bad input to ``models save`` or ``models check``: one line, exit status 2."""


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


# -- What a model is, as plain data ------------------------------------------------------------------


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


def topic_config(model) -> dict[str, dict[str, Any]]:
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


# -- The float64 oracle ------------------------------------------------------------------------------


def oracle_outputs(config: dict[str, dict[str, Any]], weights: dict[str, list], layer_order: list[str],
                   x: np.ndarray) -> np.ndarray | None:
    """The model's inference output in float64 from the manifest alone: Dense is ``activation(x·W + b)``
    (linear, relu, sigmoid, tanh);
    BatchNormalization is ``γ·(x − μ)/√(σ² + ε) + β`` with its moving statistics (γ, β absent when
    scale/center are off); the Dropout family and Masking pass values through in inference.  None when
    the model has a layer this does not know (a user's model)."""
    h = x.astype(np.float64)
    for name in layer_order:
        spec = config.get(name)
        if spec is None:
            return None
        cls = spec["class"]
        w = [np.asarray(weights[f"{name}/{i}"], np.float64) for i in range(len(_weight_keys(weights, name)))]
        if cls == "Dense":
            activation = ACTIVATIONS.get(spec.get("activation") or "linear")
            if activation is None:
                return None
            h = activation(h @ w[0] + (w[1] if spec.get("use_bias", True) and len(w) > 1 else 0.0))
        elif cls == "BatchNormalization":
            k = 0  # renorm changes training only: inference uses the moving statistics either way
            gamma = w[k] if spec.get("scale", True) else 1.0
            k += bool(spec.get("scale", True))
            beta = w[k] if spec.get("center", True) else 0.0
            k += bool(spec.get("center", True))
            mean, var = w[k], w[k + 1]
            h = gamma * (h - mean) / np.sqrt(var + float(spec["epsilon"])) + beta
        elif cls in TOPIC_KEYS:
            continue  # the Dropout family and Masking: identity in inference
        else:
            return None
    return h


#: The activations the oracle knows.
ACTIVATIONS = {"linear": lambda h: h, "relu": lambda h: np.maximum(h, 0.0), "sigmoid": lambda h: 1 / (1 + np.exp(-h)),
               "tanh": np.tanh}


def _weight_keys(weights: dict[str, list], layer: str) -> list[str]:
    return [k for k in weights if k.rsplit("/", 1)[0] == layer]


def layer_order(model) -> list[str]:
    """The layers that compute (not the Input), in order."""
    return [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]


# -- Saving ------------------------------------------------------------------------------------------

#: Training before saving: four seeded SGD steps (8 samples, batches of 2), so that weights and moving
#: statistics have moved from their initial values.
TRAIN_STEPS, LEARNING_RATE = 4, 0.01


def stack_of(adapter) -> dict[str, Any]:
    return {"impl": adapter.id, **{k: str(v) for k, v in adapter.versions().items()}}


def _compile(keras, model) -> None:
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss="mse")


def _save_formats(keras, model, directory: Path, stem: str, backend: str) -> tuple[dict[str, str], dict[str, str]]:
    """Save ``model`` in every format this stack writes: the files written, and the formats that failed."""
    files, errors = {}, {}
    attempts = {
        "keras": (f"{stem}.keras", lambda p: model.save(p)),
        "h5": (f"{stem}.h5", lambda p: model.save(p)),
        "weights": (f"{stem}.weights.h5", lambda p: model.save_weights(p)),
    }
    if backend == "tensorflow":
        export = getattr(model, "export", None)
        attempts["savedmodel"] = (f"{stem}.savedmodel", (lambda p: export(p)) if export
                                  else (lambda p: model.save(p, save_format="tf")))
    for fmt, (name, save) in attempts.items():
        try:
            with _quiet():
                save(str(directory / name))
            files[fmt] = name
        except Exception as exc:  # a format this stack cannot write is a finding, not a crash
            errors[fmt] = one_line(exc)
    return files, errors


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class _quiet:
    """Silence what saving and loading print and warn (``export`` lists its endpoints; legacy formats
    warn that they are legacy): the report says what matters."""

    def __enter__(self):
        import contextlib
        import io
        import warnings

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)


def describe(model, adapter, family: str, description: str, x: np.ndarray, y: np.ndarray | None,
             compiled: bool) -> dict[str, Any]:
    """A model's manifest entry (without its files): configuration, weights, outputs, loss and penalties."""
    outputs = adapter.to_numpy(model.predict(x, verbose=0))
    entry = {"family": family, "description": description, "config": topic_config(model),
             "layers": layer_order(model), "weights": weights_of(model, adapter),
             "x": x.tolist(), "outputs": outputs.tolist(), "predict_is_random": predict_is_random(model, x, outputs),
             "penalties": penalties(model, adapter, x)}
    if y is not None and compiled:
        entry |= {"y": y.tolist(), "loss": evaluate_loss(model, x, y)}
    return entry


def save_all(adapter, directory: Path, user_models: list[Path] = (), report: Callable[[str], None] = print) -> Path:
    """Build, train, save and describe every family (and the user's models) in ``directory``; the manifest."""
    keras = adapter.keras
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / MANIFEST).exists() or any(directory.iterdir()):
        raise ModelsError(f"{directory} is not empty: save into a new directory")
    custom_objects(keras)
    models: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=f".{directory.name}-") as tmp:
        stage = Path(tmp)
        for n, family in enumerate(FAMILIES):
            if not available(family, keras):
                models[family.name] = {"family": family.name, "description": family.description,
                                       "not_saved": "this stack's BatchNormalization has no renorm"}
                continue
            _seed_everything(keras, 100 + n)
            model = family.build(keras)
            out_shape = tuple(int(d) for d in model.output_shape[1:])
            x, y = data(family.input_shape, out_shape, seed=200 + n)
            _compile(keras, model)
            xt, yt = data(family.input_shape, out_shape, seed=300 + n)
            model.fit(xt, yt, batch_size=len(xt) // TRAIN_STEPS, epochs=1, verbose=0, shuffle=False)
            entry = describe(model, adapter, family.name, family.description, x, y, compiled=True)
            entry["files"], entry["save_errors"] = _save_formats(keras, model, stage, family.name, adapter.backend)
            models[family.name] = entry
            report(f"{family.name}: saved as {', '.join(entry['files']) or 'nothing'}"
                   + (f" (could not save {', '.join(entry['save_errors'])})" if entry["save_errors"] else ""))
        for path in user_models:
            name = f"user-{path.name}"
            while name in models:  # the same file name in two directories
                name = f"{name}-{len(models)}"
            models[name] = save_user_model(adapter, path, stage, name)
            report(f"{name}: saved as {', '.join(models[name]['files'])}")
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "stack": stack_of(adapter),
                    "models": models}
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        for item in stage.iterdir():  # everything or nothing: the manifest last
            if item.name != MANIFEST:
                shutil.move(str(item), directory / item.name)
        shutil.move(str(stage / MANIFEST), directory / MANIFEST)
    return directory / MANIFEST


def save_user_model(adapter, path: Path, stage: Path, name: str) -> dict[str, Any]:
    """A user's saved model, loaded on this (old) stack and described: its layers of the four topics, its
    weights, outputs on seeded inputs of its input shape, and the loss where it was saved compiled."""
    keras = adapter.keras
    if not path.exists():
        raise ModelsError(f"no model at {path}")
    try:
        with _quiet():
            model = keras.models.load_model(str(path), compile=True)
    except Exception as exc:
        raise ModelsError(f"cannot load {path} on this stack: {one_line(exc)}") from None
    shape = tuple(int(d) for d in model.input_shape[1:])
    out_shape = tuple(int(d) for d in model.output_shape[1:])
    x, y = data(shape, out_shape, seed=12345)
    compiled = getattr(model, "optimizer", None) is not None and getattr(model, "loss", None) is not None
    entry = describe(model, adapter, "user", f"the user's model {path.name}", x, y, compiled)
    if compiled:
        entry["user_loss"] = getattr(model.loss, "__name__", str(model.loss))
    target = stage / name
    if path.is_dir():
        shutil.copytree(path, target)
        fmt = "savedmodel"
    else:
        shutil.copy2(path, target)
        fmt = "h5" if path.suffix == ".h5" else "keras"
    entry["files"], entry["save_errors"] = {fmt: target.name}, {}
    return entry


def _seed_everything(keras, seed: int) -> None:
    utils = getattr(keras, "utils", None)
    setter = getattr(utils, "set_random_seed", None)
    if setter is not None:
        setter(seed)
    np.random.seed(seed)


# -- Checking ------------------------------------------------------------------------------------------


@dataclass
class Finding:
    """One comparison of a loaded model with its manifest."""

    what: str
    ok: bool
    detail: str = ""


@dataclass
class Loaded:
    model: str
    fmt: str
    loaded: bool
    error: str = ""
    findings: list[Finding] = field(default_factory=list)
    not_applicable: str = ""  # why this file is not loaded here at all (a SavedModel without TensorFlow)

    @property
    def same(self) -> bool:
        return self.loaded and all(f.ok for f in self.findings)

    @property
    def judged(self) -> bool:
        return not self.not_applicable


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ModelsError(f"{directory} is not a directory of saved models")
    if not path.exists():
        raise ModelsError(f"{directory} has no {MANIFEST}: not written by keras-conformance models save")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelsError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelsError(f"{path} is not a keras-conformance models manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelsError(f"{path} has format version {manifest.get('format_version')!r}; "
                          f"this keras-conformance reads {FORMAT_VERSION}")
    for name, entry in manifest.get("models", {}).items():
        for fmt, file in entry.get("files", {}).items():
            if not (directory / file).exists():
                raise ModelsError(f"{directory}: {name}'s {fmt} file {file} is missing")
    return manifest


def check_all(adapter, directory: Path, report: Callable[[str], None] = print) -> list[Loaded]:
    """Load every saved model in every format and compare it with the manifest."""
    manifest = read_manifest(directory)
    keras = adapter.keras
    custom_objects(keras)
    results = []
    for name, entry in manifest["models"].items():
        if "not_saved" in entry:
            continue
        for fmt, file in entry["files"].items():
            result = check_one(adapter, directory / file, name, fmt, entry)
            results.append(result)
            report(f"{name} ({fmt}): " + ("not checked here" if not result.judged else "same" if result.same
                                           else "loads, differs" if result.loaded else f"does not load: {result.error}"))
    return results


def _load(adapter, path: Path, fmt: str, entry: dict[str, Any]):
    keras = adapter.keras
    with _quiet():
        if fmt in ("keras", "h5"):
            return keras.models.load_model(str(path), compile=False)
        if fmt == "weights":
            family = next((f for f in FAMILIES if f.name == entry["family"]), None)
            if family is None:
                raise ModelsError(f"weights of {entry['family']}: no architecture to load them into")
            model = family.build(keras)
            model.load_weights(str(path))
            return model
        if fmt == "savedmodel":
            tfsm = getattr(keras.layers, "TFSMLayer", None)
            if tfsm is not None:
                return tfsm(str(path), call_endpoint="serve")
            return keras.models.load_model(str(path), compile=False)
    raise ModelsError(f"unknown format {fmt!r}")


def check_one(adapter, path: Path, name: str, fmt: str, entry: dict[str, Any]) -> Loaded:
    keras = adapter.keras
    if fmt == "savedmodel" and adapter.backend != "tensorflow":
        return Loaded(name, fmt, False, not_applicable="a TensorFlow SavedModel loads only where TensorFlow is "
                      "the backend (keras.layers.TFSMLayer)")
    try:
        model = _load(adapter, path, fmt, entry)
    except ModelsError:
        raise
    except Exception as exc:
        return Loaded(name, fmt, False, one_line(exc))
    result = Loaded(name, fmt, True)
    x = np.asarray(entry["x"], np.float32)
    expected = np.asarray(entry["outputs"], np.float64)
    is_layer_only = not hasattr(model, "layers")  # a SavedModel reloaded as a layer: outputs only
    if not is_layer_only:
        if fmt != "weights":  # weights only: the architecture comes from code on this stack, not from the file
            result.findings += compare_config(entry["config"], topic_config(model))
        weights = weights_of(model, adapter)
        result.findings.append(compare_weights(entry["weights"], weights))
    try:
        with _quiet():
            observed = model.predict(x, verbose=0) if hasattr(model, "predict") else model(x)
        observed = np.asarray(adapter.to_numpy(observed), np.float64)
    except Exception as exc:
        result.findings.append(Finding("inference outputs", False, f"predict failed: {one_line(exc)}"))
        return result
    was_random = entry.get("predict_is_random", False)
    now_random = predict_is_random(model, x, observed) if hasattr(model, "predict") else \
        not np.array_equal(np.asarray(adapter.to_numpy(model(x)), np.float64), observed)
    result.findings.append(Finding("inference draws dropout (training=True fixed at build time)",
                                   now_random == was_random, "" if now_random == was_random else
                                   f"{'yes' if was_random else 'no'} → {'yes' if now_random else 'no'}"))
    if was_random:  # the old stack's outputs were one draw: nothing to compare them with
        return result
    result.findings.append(compare_numbers("inference outputs (against the old stack)", expected, observed,
                                           OUTPUT_RTOL, OUTPUT_ATOL))
    oracle = oracle_outputs(entry["config"], entry["weights"], entry["layers"], x)
    if oracle is not None:
        result.findings.append(compare_numbers("inference outputs (against the float64 oracle)", oracle, observed,
                                               ORACLE_RTOL, ORACLE_ATOL))
    if is_layer_only:
        result.findings.append(Finding("configuration and weights", True,
                                       "not readable from a SavedModel reloaded as a layer (outputs only)"))
        return result
    result.findings.append(compare_numbers("penalties (sorted)", np.asarray(entry["penalties"]),
                                           np.asarray(penalties(model, adapter, x)), LOSS_RTOL, 1e-7))
    if "loss" in entry:
        _compile(keras, model)
        y = np.asarray(entry["y"], np.float32)
        result.findings.append(compare_numbers("training loss (evaluate: MSE + penalties)", np.asarray(entry["loss"]),
                                               np.asarray(evaluate_loss(model, x, y)), LOSS_RTOL, 1e-7))
    return result


def compare_config(expected: dict[str, dict[str, Any]], observed: dict[str, dict[str, Any]]) -> list[Finding]:
    """Layer by layer: each topic key lost, added or changed."""
    findings = []
    for layer in sorted(set(expected) | set(observed)):
        old, new = expected.get(layer), observed.get(layer)
        if old is None or new is None:
            findings.append(Finding(f"layer {layer}", False, "added" if old is None else "lost"))
            continue
        diffs = changes(old, new)
        added = sorted(new_keys(old, new))
        findings.append(Finding(f"layer {layer} ({old['class']}) configuration", not diffs, "; ".join(
            diffs + ([f"(new arguments at their defaults: {', '.join(added)})"] if added else []))))
    return findings


def changes(a: Any, b: Any, path: str = "") -> list[str]:
    """What the loaded configuration ``b`` lost or changed of the saved one ``a``.  A key that only the new
    side has is an argument the old release did not have, at its default: not a change of the model."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(a):
            where = f"{path}.{key}" if path else key
            if a[key] == ABSENT:
                continue  # the old release had no such argument
            out += [f"{where}: lost ({show(a[key])})"] if key not in b else changes(a[key], b[key], where)
        return out
    return [] if same_value(a, b) else [f"{path}: {show(a)} → {show(b)}"]


def new_keys(a: Any, b: Any, path: str = "") -> list[str]:
    """The keys only the loaded configuration has (new arguments, at their defaults)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return []
    out = []
    for key in sorted(b):
        where = f"{path}.{key}" if path else key
        if key not in a or a[key] == ABSENT:
            out.append(where) if b[key] != ABSENT else None
        else:
            out += new_keys(a[key], b[key], where)
    return out


def same_value(a: Any, b: Any) -> bool:
    """Configuration values agree: numbers to float32 precision (Keras 2 keeps some factors as float32)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b


def show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


def compare_weights(expected: dict[str, list], observed: dict[str, list]) -> Finding:
    missing = sorted(set(expected) - set(observed))
    extra = sorted(set(observed) - set(expected))
    differ = sorted(k for k in set(expected) & set(observed)
                    if not np.array_equal(np.asarray(expected[k], np.float32), np.asarray(observed[k], np.float32)))
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"new {', '.join(extra)}"] if extra else []) \
        + ([f"different values in {', '.join(differ)}"] if differ else [])
    return Finding("weights identical", not parts, "; ".join(parts))


def compare_numbers(what: str, expected: np.ndarray, observed: np.ndarray, rtol: float, atol: float) -> Finding:
    if expected.shape != observed.shape:
        return Finding(what, False, f"shape {expected.shape} → {observed.shape}")
    if np.allclose(observed, expected, rtol=rtol, atol=atol):
        return Finding(what, True)
    err = float(np.max(np.abs(observed - expected)))
    return Finding(what, False, f"max abs error {err:.4g} (rtol={rtol:g}, atol={atol:g})")


# -- Reports -------------------------------------------------------------------------------------------


def report_data(manifest: dict[str, Any], stack: dict[str, Any], results: list[Loaded]) -> dict[str, Any]:
    """The check's results as plain data (the JSON report; the Markdown and HTML are made from it)."""
    not_saved = {n: e["not_saved"] for n, e in manifest["models"].items() if "not_saved" in e}
    save_errors = {f"{n} ({f})": err for n, e in manifest["models"].items() for f, err in e.get("save_errors", {}).items()}
    return {"saved_on": manifest["stack"], "loaded_on": stack, "not_saved": not_saved, "save_errors": save_errors,
            "results": [{"model": r.model, "format": r.fmt, "loaded": r.loaded, "error": r.error, "same": r.same,
                         "not_applicable": r.not_applicable, "findings": [f.__dict__ for f in r.findings]}
                        for r in results]}


def report(manifest: dict[str, Any], stack: dict[str, Any], results: list[Loaded], fmt: str) -> str:
    data = report_data(manifest, stack, results)
    if fmt == "json":
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    md = markdown(data)
    return md if fmt == "md" else html_page(md)


def _stack_text(stack: dict[str, Any]) -> str:
    return f"{stack.get('impl', '?')} (Keras {stack.get('keras', '?')})"


def markdown(data: dict[str, Any]) -> str:
    """The report for a person: a table of every model file, then what differs, model by model."""
    results = data["results"]
    judged = [r for r in results if not r["not_applicable"]]
    same = sum(r["same"] for r in judged)
    out = [f"# Saved models: {_stack_text(data['saved_on'])} → {_stack_text(data['loaded_on'])}", "",
           f"{same} of {len(judged)} model files load and behave the same"
           + (f" ({len(results) - len(judged)} not loadable here at all, below)." if len(judged) < len(results)
              else "."), "", "| model | format | loads | same |", "|---|---|---|---|"]
    for r in results:
        loads = "—" if r["not_applicable"] else "yes" if r["loaded"] else "**no**"
        alike = "—" if r["not_applicable"] else "yes" if r["same"] else "**no**"
        out.append(f"| {r['model']} | {r['format']} | {loads} | {alike} |")
    skipped = [r for r in results if r["not_applicable"]]
    if skipped:
        out += ["", "Not loadable here at all:", ""] + [f"- {r['model']} ({r['format']}): {r['not_applicable']}"
                                                        for r in skipped]
    if data["not_saved"] or data["save_errors"]:
        out += ["", "Not saved on the old stack:", ""]
        out += [f"- {n}: {why}" for n, why in data["not_saved"].items()]
        out += [f"- {n}: {err}" for n, err in data["save_errors"].items()]
    for r in results:
        if r["same"] or r["not_applicable"]:
            continue
        out += ["", f"## {r['model']} ({r['format']})", ""]
        if not r["loaded"]:
            out.append("Does not load: `" + r["error"].replace("`", "'") + "`")
            continue
        out += [f"- {'ok' if f['ok'] else '**DIFFERS**'}: {f['what']}" + (f": {f['detail']}" if f["detail"] else "")
                for f in r["findings"]]
    return "\n".join(out) + "\n"


def html_page(md: str) -> str:
    """The Markdown report as one self-contained HTML page (headings, the table, lists; DIFFERS in red)."""
    import html
    import re

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"`([^`]*)`", r"<code>\1</code>", text)
        return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)

    out, in_table, in_list = [], False, False
    for line in md.splitlines():
        if in_table and not line.startswith("|"):
            out.append("</table>")
            in_table = False
        if in_list and not line.startswith("- "):
            out.append("</ul>")
            in_list = False
        if line.startswith("# "):
            out.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.startswith("## "):
            out.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            out.append(("<table>" if not in_table else "") + "<tr>"
                       + "".join(f"<{tag}>{inline(c)}</{tag}>" for c in cells) + "</tr>")
            in_table = True
        elif line.startswith("- "):
            out.append(("<ul>" if not in_list else "") + f"<li>{inline(line[2:])}</li>")
            in_list = True
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    out += ["</table>"] if in_table else []
    out += ["</ul>"] if in_list else []
    style = ("body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
             "strong{color:#b00020}code{font-size:90%;background:#f4f4f4;padding:0 .2em;word-break:break-word}")
    return ("<!doctype html>\n<html lang='en'><meta charset='utf-8'><title>Saved models</title>"
            f"<style>{style}</style>\n" + "\n".join(out) + "\n</html>\n")
