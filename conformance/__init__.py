"""keras-conformance: pins how Keras initialises weights, normalises batches,
applies L1/L2 regularisers and applies Dropout, on every implementation."""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"

#: Golden data and expectations; a checkout keeps them beside the package.
FIXTURES = Path(os.environ.get("CONFORMANCE_FIXTURES", Path(__file__).resolve().parents[1] / "fixtures"))
