"""keras-conformance: pins how Keras initialises weights, normalises batches,
applies L1/L2 regularisers and applies Dropout, on every implementation."""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"


def _fixtures() -> Path:
    """A checkout keeps fixtures/ beside the package; an installed wheel inside it (conformance/fixtures)."""
    if "CONFORMANCE_FIXTURES" in os.environ:
        return Path(os.environ["CONFORMANCE_FIXTURES"])
    here = Path(__file__).resolve().parent
    checkout = here.parent / "fixtures"
    return checkout if (checkout / "expectations").is_dir() else here / "fixtures"


#: Golden data, expectations, baselines and mutation catalogues.
FIXTURES = _fixtures()
