"""Keras 3 on NumPy: inference only (no training, no gradients)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from conformance.backends.base import DTYPE_CAPABILITIES, Adapter


class NumpyAdapter(Adapter):
    backend = "numpy"
    framework_name = "NumPy"
    capabilities: frozenset[str] = DTYPE_CAPABILITIES  # inference only: no training, no gradients

    def raw_forward(self, folded: list[tuple[np.ndarray, ...]], x: np.ndarray) -> Callable[[], Any]:
        def run():
            x_ = x
            for kernel, bias, scale, shift in folded:
                x_ = (x_ @ kernel + bias) * scale + shift
            return x_

        return run
