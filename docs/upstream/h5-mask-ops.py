"""Keras 3: a functional model whose mask is computed by Masking or Embedding(mask_zero=True) saves to
legacy .h5 but does not load again, not even in the Keras that saved it.

    python h5-mask-ops.py BACKEND     (jax, tensorflow, torch or numpy)

See docs/upstream/h5-mask-ops.md.
"""
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = sys.argv[1]
import keras  # noqa: E402


def masked(kind):
    if kind == "Masking":
        inputs = keras.Input((5, 3))
        return keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Masking(0.0)(inputs)))
    inputs = keras.Input((5,), dtype="int32")
    return keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4, mask_zero=True)(inputs)))


print(f"Keras {keras.__version__} on {keras.backend.backend()}")
for kind in ("Masking", "Embedding(mask_zero=True)"):
    model = masked(kind)
    nodes = [layer["class_name"] for layer in model.get_config()["layers"]]
    for name in ("model.keras", "model.h5"):
        path = os.path.join(tempfile.mkdtemp(), name)
        model.save(path)
        try:
            keras.models.load_model(path)
            outcome = "loads"
        except Exception as exc:  # the report is the outcome, whatever it is
            outcome = f"{type(exc).__name__}: {str(exc).split('.')[0]}"
        print(f"{kind:26} {name:12} {outcome}   (config: {', '.join(nodes)})")
