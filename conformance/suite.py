"""The conformance suite: one generic template that runs every registered case.

The plugin (conformance.plugin) parametrizes ``case`` from the registry
(conformance/cases), so a test ID is the case ID, e.g.
``test_case[notebook-dropout-121-params]``.  Run it wherever
keras-conformance is installed, against the Keras installed there::

    pytest --pyargs conformance.suite --impl keras3:jax

A checkout runs the same template through ``tests/test_conformance.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Where ``command`` runs: the checkout (its pytest settings apply) or, when installed, site-packages.
RUN_FROM = Path(__file__).resolve().parents[1]


def test_case(case, conformance):
    conformance(case)


def command(impl_id: str, json_path: Path, *options: str) -> list[str]:
    """The pytest command that runs this suite on ``impl_id`` in a new process, its results to ``json_path``."""
    return [sys.executable, "-m", "pytest", __file__, "--impl", impl_id, "--conformance-json", str(json_path),
            "-q", "--no-header", "-p", "no:cacheprovider", "-p", "no:randomly", *options]
