"""The float64 oracle of a saved model's inference output, from its manifest entry alone."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from conformance.models.describe import TOPIC_KEYS


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
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"linear": lambda h: h, "relu": lambda h: np.maximum(h, 0.0), "sigmoid": lambda h: 1 / (1 + np.exp(-h)),
               "tanh": np.tanh}


def _weight_keys(weights: dict[str, list], layer: str) -> list[str]:
    return [k for k in weights if k.rsplit("/", 1)[0] == layer]
