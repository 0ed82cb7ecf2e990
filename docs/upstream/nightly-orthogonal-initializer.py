"""keras-nightly: an Orthogonal initializer as Keras 3.0 to 3.5 serialize it no longer deserializes, so
their .keras and .h5 files with one do not load.

    python nightly-orthogonal-initializer.py

See docs/upstream/nightly-orthogonal-initializer.md.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

# keras.initializers.serialize(keras.initializers.Orthogonal(gain=2.0, seed=5)) in Keras 3.0.5 and 3.5.0
WRITTEN = {"module": "keras.initializers", "class_name": "OrthogonalInitializer",
           "config": {"gain": 2.0, "seed": 5}, "registered_name": None}

print(f"Keras {keras.__version__}")
for what, config in (("as written (with its module)", WRITTEN),
                     ("without the module", {k: v for k, v in WRITTEN.items() if k != "module"})):
    try:
        outcome = type(keras.initializers.deserialize(config)).__name__
    except Exception as exc:  # the report is the outcome, whatever it is
        outcome = f"{type(exc).__name__}: {exc}"
    print(f"{what:30} {outcome}")
