"""The public surface of the four topics, as behaviour: constructor signatures and config keys.

An argument that appears, disappears or changes its default changes what a
model built from the same code does, as surely as a changed formula.  For
every class of the four topics (and Dense) that the Keras under test has,
this records the arguments of its constructor with their defaults and the
keys of ``get_config()`` of an instance built with those defaults.  The
fingerprint keeps it under ``"surface"``, so the diff and the history show
such changes like any other.
"""

from __future__ import annotations

import inspect
from typing import Any

from conformance.data.schema import SurfaceEntry

#: (module attribute path, class names) of what is recorded; a class a release lacks is recorded as absent.
CLASSES = {
    "init": ("initializers", ("Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
                              "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
                              "TruncatedNormal", "VarianceScaling", "Zeros")),
    "batchnorm": ("layers", ("BatchNormalization",)),
    "dropout": ("layers", ("AlphaDropout", "Dropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
                           "SpatialDropout2D", "SpatialDropout3D")),
    "regularizer": ("regularizers", ("L1", "L1L2", "L2", "OrthogonalRegularizer")),
    "dense": ("layers", ("Dense",)),
}
#: Arguments a default instance needs (the rest take their defaults).
REQUIRED_ARGUMENTS: dict[str, dict[str, Any]] = {"Dense": {"units": 4}, "Dropout": {"rate": 0.5}, "AlphaDropout": {"rate": 0.5},
                      "GaussianDropout": {"rate": 0.5}, "GaussianNoise": {"stddev": 0.5},
                      "SpatialDropout1D": {"rate": 0.5}, "SpatialDropout2D": {"rate": 0.5},
                      "SpatialDropout3D": {"rate": 0.5}}
ABSENT = "(absent)"


def shown(value: Any) -> Any:
    """A default as the fingerprint keeps it: plain values as they are, anything else as its repr."""
    if value is inspect.Parameter.empty:
        return "(required)"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return type(value).__name__ if not isinstance(value, type) else value.__name__


def describe(cls: type) -> SurfaceEntry:
    """The constructor's named arguments with their defaults, and the config keys of a default instance."""
    parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]  # the class's own constructor
    arguments = {name: shown(p.default) for name, p in parameters.items()
                 if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    try:
        config = cls(**REQUIRED_ARGUMENTS.get(cls.__name__, {})).get_config()
        keys: Any = sorted(config)
    except Exception as exc:  # a class that cannot be built with its defaults: that is the surface too
        keys = f"{type(exc).__name__} building it with its defaults"
    return {"arguments": arguments, "config-keys": keys}


def surface(keras: Any) -> dict[str, SurfaceEntry]:
    """``{"<topic>/<Class>": {"arguments": {...}, "config-keys": [...]}}`` for the Keras module given."""
    out: dict[str, SurfaceEntry] = {}
    for topic, (module_name, names) in CLASSES.items():
        module = getattr(keras, module_name)
        for name in names:
            cls = getattr(module, name, None)
            out[f"{topic}/{name}"] = {"arguments": ABSENT, "config-keys": ABSENT} if cls is None else describe(cls)
    return out


def checks_of(entry: SurfaceEntry) -> dict[str, tuple[str, Any]]:
    """One class's recorded surface as checks: ``{key: (label, value)}``, its ``get_config`` keys and each
    argument's default; a class the release lacks is the check ``class`` = '(absent)'."""
    checks = {"config-keys": ("get_config keys", entry["config-keys"])}
    if isinstance(entry["arguments"], dict):
        checks |= {f"argument-{a}": (f"argument {a}", v) for a, v in entry["arguments"].items()}
    else:
        checks["class"] = ("class", entry["arguments"])
    return checks
