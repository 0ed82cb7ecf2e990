"""Saved models across upgrades: the manifest, the comparison, bad input, and a save/check round trip."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import models
from conformance.models import ABSENT, ModelsError


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "conformance.cli", "models", *args], capture_output=True, text=True,
                          cwd=cwd)


# -- The comparison, without a framework -------------------------------------------------------------


def test_a_lost_or_changed_argument_differs_and_a_new_one_at_its_default_does_not():
    old = {"class": "Dense", "activity_regularizer": {"class_name": "L1L2", "config": {"l1": 0.001, "l2": 0.002}},
           "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": 1}}, "renorm": ABSENT,
           "momentum": 0.99}
    new = {"class": "Dense", "activity_regularizer": None, "renorm": False, "momentum": 0.9,
           "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": 1, "input_axes": None}}}
    assert models.changes(old, new) == [
        'activity_regularizer: {"class_name": "L1L2", "config": {"l1": 0.001, "l2": 0.002}} → null',
        "momentum: 0.99 → 0.9"]
    assert models.new_keys(old, new) == ["kernel_initializer.config.input_axes", "renorm"]
    assert models.changes({"class": "Dense", "seed": 3}, {"class": "Dense"}) == ["seed: lost (3)"]
    assert models.changes({"l2": 0.01}, {"l2": np.float32(0.01).item()}) == [], "float32 factors are the same"


def test_a_long_error_keeps_what_failed_and_why():
    """Keras puts the whole configuration between what failed and why ("Exception encountered: ..."): a
    report keeps both ends of a long message, on one line."""
    from conformance.models.describe import one_line

    config = ", ".join(f"'key{i}': {i}" for i in range(200))
    exc = TypeError(f"Error when deserializing class 'Dense' using config={{{config}}}.\n\nException encountered: "
                    "Could not deserialize 'keras.initializers.OrthogonalInitializer'")
    text = one_line(exc)
    assert text.startswith("TypeError: Error when deserializing class 'Dense'")
    assert text.endswith("Exception encountered: Could not deserialize 'keras.initializers.OrthogonalInitializer'")
    assert "\n" not in text and len(text) < 450
    assert one_line(ValueError("short")) == "ValueError: short"


def test_weights_must_be_identical():
    w = {"dense/0": [[1.0, 2.0]], "dense/1": [0.5]}
    assert models.compare_weights(w, w).ok
    moved = {"dense/0": [[1.0, 2.0000002]], "dense/1": [0.5]}
    assert models.compare_weights(w, moved).detail == "different values in dense/0"
    assert "missing dense/1" in models.compare_weights(w, {"dense/0": w["dense/0"]}).detail


def test_the_oracle_is_dense_then_batchnorm_in_float64():
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(3, 2)), rng.normal(size=2)
    gamma, beta, mean, var = rng.normal(size=2), rng.normal(size=2), rng.normal(size=2), rng.uniform(0.5, 2, 2)
    weights = {"d/0": kernel.tolist(), "d/1": bias.tolist(), "bn/0": gamma.tolist(), "bn/1": beta.tolist(),
               "bn/2": mean.tolist(), "bn/3": var.tolist()}
    config = {"d": {"class": "Dense", "activation": "linear", "use_bias": True},
              "drop": {"class": "Dropout", "rate": 0.5},
              "bn": {"class": "BatchNormalization", "epsilon": 0.01, "center": True, "scale": True}}
    x = rng.normal(size=(4, 3))
    h = x @ kernel + bias
    expected = gamma * (h - mean) / np.sqrt(var + 0.01) + beta
    np.testing.assert_allclose(models.oracle_outputs(config, weights, ["d", "drop", "bn"], x), expected, rtol=1e-12)
    plain = {"bn": {"class": "BatchNormalization", "epsilon": 0.001, "center": False, "scale": False}}
    np.testing.assert_allclose(models.oracle_outputs(plain, {"bn/0": mean.tolist(), "bn/1": var.tolist()}, ["bn"], x[:, :2]),
                               (x[:, :2] - mean) / np.sqrt(var + 0.001), rtol=1e-12)
    assert models.oracle_outputs({"c": {"class": "Conv2D"}}, {}, ["c"], x) is None, "unknown layers: no oracle"


# -- Bad input -----------------------------------------------------------------------------------------


def write_manifest(directory: Path, manifest) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / models.MANIFEST).write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return directory


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "missing", "is not a directory of saved models"),
    (lambda d: d, "has no manifest.json"),
    (lambda d: write_manifest(d, "{not json"), "is not readable JSON"),
    (lambda d: write_manifest(d, {"format": "something-else"}), "is not a keras-conformance models manifest"),
    (lambda d: write_manifest(d, {"format": models.FORMAT, "format_version": 99}), "has format version 99"),
    (lambda d: write_manifest(d, {"format": models.FORMAT, "format_version": models.FORMAT_VERSION,
                                  "models": {"m": {"files": {"keras": "m.keras"}}}}), "m's keras file m.keras is missing"),
])
def test_a_missing_corrupt_or_foreign_directory_is_one_line_before_any_framework(tmp_path, setup, message):
    directory = setup(tmp_path)
    with pytest.raises(ModelsError, match=message):
        models.read_manifest(directory)
    proc = cli("check", str(directory), "--out", str(tmp_path / "report.md"))
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr and not (tmp_path / "report.md").exists()


def test_saving_into_a_directory_that_is_not_empty_is_one_line(tmp_path):
    (tmp_path / "something").write_text("x")
    proc = cli("save", str(tmp_path))
    assert proc.returncode == 2 and "is not an empty directory" in proc.stderr and proc.stderr.count("\n") == 1
    proc = cli("save", str(tmp_path / "new"), "--model", str(tmp_path / "nope.keras"))
    assert proc.returncode == 2 and "no model at" in proc.stderr


# -- A round trip on the default stack -----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The suite's models and a user's model, saved once on the default implementation."""
    root = tmp_path_factory.mktemp("models")
    user = root / "mine.keras"
    script = ("import os, numpy as np; os.environ.setdefault('KERAS_BACKEND', 'tensorflow'); import keras;"
              "i = keras.Input(shape=(3,)); h = keras.layers.Dense(4, kernel_regularizer='l2')(i);"
              "h = keras.layers.BatchNormalization(momentum=0.7)(h); o = keras.layers.Dropout(0.2, seed=1)(h);"
              "m = keras.Model(i, o); m.compile(optimizer='sgd', loss='mse');"
              f"m.fit(np.ones((4, 3)), np.zeros((4, 4)), verbose=0); m.save({str(user)!r})")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    proc = cli("save", str(root / "saved"), "--model", str(user))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert quiet(proc.stderr), proc.stderr[-2000:]
    return root / "saved"


def quiet(stderr: str) -> bool:
    """No warning of the frameworks' reaches the terminal (legacy formats, retracing, native notices)."""
    return not [line for line in stderr.splitlines() if "WARNING" in line or line.startswith(("I0", "W0"))]


def check(directory: Path, tmp_path: Path) -> tuple[int, dict]:
    proc = cli("check", str(directory), "--format", "json", "--out", str(tmp_path / "report.json"))
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert quiet(proc.stderr), proc.stderr[-2000:]
    return proc.returncode, json.loads((tmp_path / "report.json").read_text())


def test_every_model_saved_here_loads_here_and_behaves_the_same(saved, tmp_path):
    status, report = check(saved, tmp_path)
    manifest = json.loads((saved / models.MANIFEST).read_text())
    families = {f.name for f in models.FAMILIES}
    assert families <= set(manifest["models"]) and "user-mine.keras" in manifest["models"]
    results = {(r["model"], r["format"]): r for r in report["results"]}
    for name, entry in manifest["models"].items():
        assert "not_saved" not in entry or name == "batchnorm-renorm"
        for fmt in entry.get("files", {}):
            assert (name, fmt) in results, f"{name} ({fmt}) was not checked"
    different = {key for key, r in results.items() if not r["same"] and not r["not_applicable"]}
    # Keras 3 writes a masked model's legacy .h5 that it cannot read back (its Masking becomes a NotEqual op
    # layer), and model.export() serves the notebook's Dropout model with the build-time training=True that
    # predict ignores; everything else saved on this stack comes back the same.
    assert different <= {("batchnorm-masked", "h5"), ("notebook-dropout", "savedmodel")}
    if ("notebook-dropout", "savedmodel") in results:
        served = results[("notebook-dropout", "savedmodel")]["findings"]
        assert any(f["what"].startswith("inference draws dropout") and f["detail"] == "no → yes" for f in served)
    assert status == (1 if different else 0)
    user = results[("user-mine.keras", "keras")]
    assert user["same"] and any(f["what"] == "training loss (evaluate: MSE + penalties)" for f in user["findings"])


TAMPERED = [  # (what the manifest is made to claim, the finding that must differ, what it must say)
    (lambda m: m["models"]["batchnorm"]["config"]["bn"].update(momentum=0.5),
     ("batchnorm", "layer bn (BatchNormalization)"), "momentum: 0.5 → 0.8"),
    (lambda m: m["models"]["dense-regularised"]["config"]["dense"].update(
        activity_regularizer={"class_name": "L2", "config": {"l2": 0.5}}), ("dense-regularised", "layer dense (Dense)"),
     "activity_regularizer"),
    (lambda m: m["models"]["dropout"]["weights"]["dense/1"].__setitem__(0, 123.0),
     ("dropout", "weights identical"), "different values in dense/1"),
    (lambda m: m["models"]["initializers"]["outputs"][0].__setitem__(0, 99.0),
     ("initializers", "inference outputs (against the old stack)"), "max abs error"),
    (lambda m: m["models"]["dense-strings-and-custom"].update(loss=42.0),
     ("dense-strings-and-custom", "training loss"), "max abs error"),
    (lambda m: m["models"]["batchnorm-plain"]["penalties"].append(0.5),
     ("batchnorm-plain", "penalties"), "shape (1,) → (0,)"),
]


def test_a_manifest_that_says_otherwise_is_reported_where_it_differs(saved, tmp_path):
    """The check can fail: the saved files are what they were, the manifest now claims otherwise, and each
    claim is reported on its own model and comparison (one check of all of them)."""
    copy = tmp_path / "saved"
    shutil.copytree(saved, copy)
    manifest = json.loads((copy / models.MANIFEST).read_text())
    for tamper, _, _ in TAMPERED:
        tamper(manifest)
    (copy / models.MANIFEST).write_text(json.dumps(manifest))
    status, report = check(copy, tmp_path)
    assert status == 1
    for _, (model, what), says in TAMPERED:
        found = [f for r in report["results"] if r["model"] == model and r["format"] == "keras"
                 for f in r["findings"] if f["what"].startswith(what) and not f["ok"]]
        assert found and says in found[0]["detail"], (model, what, [r for r in report["results"] if r["model"] == model])
    untouched = [r for r in report["results"] if r["model"] == "user-mine.keras"]
    assert untouched and all(r["same"] for r in untouched)


@pytest.mark.parametrize("args, message", [
    (["matrix", "--out", "/proc/no-such-dir"], "cannot write to /proc/no-such-dir"),
    ([], "models needs a command: save, check, matrix"),
    (["save", "/proc/no-such-dir/saved"], "cannot write to /proc/no-such-dir/saved"),
])
def test_bad_commands_and_unwritable_outputs_are_one_line(args, message):
    proc = cli(*args)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1


def test_the_html_report_renders_the_table_and_findings_and_keeps_errors_as_text():
    data = {"saved_on": {"impl": "keras2", "keras": "2.15.0"}, "loaded_on": {"impl": "keras3:jax", "keras": "3.15.1"},
            "not_saved": {}, "save_errors": {},
            "results": [{"model": "batchnorm", "format": "keras", "loaded": True, "error": "", "same": False,
                         "not_applicable": "", "findings": [{"what": "weights identical", "ok": False,
                                                             "detail": "different values in bn/2"},
                                                            {"what": "layer bn configuration", "ok": False,
                                                             "detail": "momentum: 0.99 → <absent>"}]},
                        {"model": "dropout", "format": "h5", "loaded": False, "same": False, "not_applicable": "",
                         "error": "ValueError: <class 'Foo'> is not a <layer>", "findings": []}]}
    from conformance.models.report import html_page

    page = html_page(models.markdown(data))
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<table>" in page and page.count("<tr>") == 3  # the header and one row per model file
    assert "<strong>DIFFERS</strong>: weights identical: different values in bn/2" in page
    assert "momentum: 0.99 → &lt;absent&gt;" in page  # text, not a tag
    assert "&lt;class 'Foo'&gt; is not a &lt;layer&gt;" in page and "<layer>" not in page
