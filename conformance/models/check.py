"""``models check``: load every saved model in every format on the new stack and compare it with the manifest."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from conformance.data.schema import SavedModel
from conformance.models.describe import (
    ABSENT,
    compile_sgd,
    evaluate_loss,
    one_line,
    penalties,
    predict_is_random,
    quiet,
    topic_config,
    weights_of,
)
from conformance.models.families import FAMILIES, custom_objects
from conformance.models.manifest import ModelsError, read_manifest
from conformance.models.oracle import oracle_outputs

#: Inference outputs: the loaded model against the reference the old stack computed.
OUTPUT_RTOL, OUTPUT_ATOL = 1e-5, 1e-6
#: Against the float64 oracle: float32 arithmetic of a few small layers.
ORACLE_RTOL, ORACLE_ATOL = 1e-4, 1e-5
#: Loss and penalties (float32 sums).
LOSS_RTOL = 1e-5


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
            with quiet():
                result = check_one(adapter, directory / file, name, fmt, entry)
            results.append(result)
            report(f"{name} ({fmt}): " + ("not checked here" if not result.judged else "same" if result.same
                                           else "loads, differs" if result.loaded else f"does not load: {result.error}"))
    return results


def _load(adapter, path: Path, fmt: str, entry: SavedModel):
    keras = adapter.keras
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


def check_one(adapter, path: Path, name: str, fmt: str, entry: SavedModel) -> Loaded:
    """Load one file and compare it with its manifest entry (``check_all`` runs it under ``quiet``)."""
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
        compile_sgd(keras, model)
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
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
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
