"""``models save``: build, train, save and describe every family (and the user's models) on the old stack."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from conformance.data.schema import Environment, Manifest, SavedModel
from conformance.models.describe import compile_sgd, describe, one_line, quiet
from conformance.models.families import FAMILIES, available, custom_objects, data
from conformance.models.manifest import FORMAT, FORMAT_VERSION, MANIFEST, ModelsError

#: Training before saving: four seeded SGD steps (8 samples, batches of 2), so that weights and moving
#: statistics have moved from their initial values.
TRAIN_STEPS = 4


def stack_of(adapter) -> Environment:
    return {"impl": adapter.id, **{k: str(v) for k, v in adapter.versions().items()}}


def _save_formats(keras, model, directory: Path, stem: str, backend: str) -> tuple[dict[str, str], dict[str, str]]:
    """Save ``model`` in every format this stack writes: the files written, and the formats that failed.
    (``save_all`` runs it under ``quiet``.)"""
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
            save(str(directory / name))
            files[fmt] = name
        except Exception as exc:  # a format this stack cannot write is a finding, not a crash
            errors[fmt] = one_line(exc)
    return files, errors


def save_all(adapter, directory: Path, user_models: Sequence[Path] = (), report: Callable[[str], None] = print) -> Path:
    """Build, train, save and describe every family (and the user's models) in ``directory``; the manifest."""
    keras = adapter.keras
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / MANIFEST).exists() or any(directory.iterdir()):
        raise ModelsError(f"{directory} is not empty: save into a new directory")
    custom_objects(keras)
    models: dict[str, SavedModel] = {}
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=f".{directory.name}-") as tmp:
        stage = Path(tmp)
        for n, family in enumerate(FAMILIES):
            if not available(family, keras):
                models[family.name] = {"family": family.name, "description": family.description,
                                       "not_saved": "this stack's BatchNormalization has no renorm"}
                continue
            with quiet():
                _seed_everything(keras, 100 + n)
                model = family.build(keras)
                out_shape = tuple(int(d) for d in model.output_shape[1:])
                x, y = data(family.input_shape, out_shape, seed=200 + n)
                compile_sgd(keras, model)
                xt, yt = data(family.input_shape, out_shape, seed=300 + n)
                model.fit(xt, yt, batch_size=len(xt) // TRAIN_STEPS, epochs=1, verbose=0, shuffle=False)
                entry = describe(model, adapter, family.name, family.description, x, y, compiled=True)
                entry["files"], entry["save_errors"] = _save_formats(keras, model, stage, family.name,
                                                                     adapter.backend)
            models[family.name] = entry
            report(f"{family.name}: saved as {', '.join(entry['files']) or 'nothing'}"
                   + (f" (could not save {', '.join(entry['save_errors'])})" if entry["save_errors"] else ""))
        for path in user_models:
            name = f"user-{path.name}"
            while name in models:  # the same file name in two directories
                name = f"{name}-{len(models)}"
            with quiet():
                models[name] = save_user_model(adapter, path, stage, name)
            report(f"{name}: saved as {', '.join(models[name]['files'])}")
        manifest: Manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "stack": stack_of(adapter),
                    "models": models}
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        for item in stage.iterdir():  # everything or nothing: the manifest last
            if item.name != MANIFEST:
                shutil.move(str(item), directory / item.name)
        shutil.move(str(stage / MANIFEST), directory / MANIFEST)
    return directory / MANIFEST


def save_user_model(adapter, path: Path, stage: Path, name: str) -> SavedModel:
    """A user's saved model, loaded on this (old) stack and described: its layers of the four topics, its
    weights, outputs on seeded inputs of its input shape, and the loss where it was saved compiled."""
    keras = adapter.keras
    if not path.exists():
        raise ModelsError(f"no model at {path}")
    try:
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
