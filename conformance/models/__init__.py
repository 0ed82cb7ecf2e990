"""Saved models across upgrades: save the suite's model families on one stack, check them on another.

``save`` (on the old stack) builds each family, trains it a few seeded steps, saves it in every format the
stack writes (``.keras``; legacy ``.h5``; weights only, ``.weights.h5``; a TensorFlow SavedModel on
TensorFlow) and writes ``manifest.json``: the stack, and per model the configuration of the four topics
layer by layer, the weights, reference outputs in inference on fixed inputs, and the loss and penalties
that training computes on fixed data (``evaluate``: inference mode, so no dropout draw enters them).

``check`` (on the new stack) loads every model in every format and compares it with the manifest:
whether it loads; each layer's configuration of the four topics (what was lost, added or changed);
the weights (exactly); the inference outputs against the reference and against a float64 oracle
computed from the manifest's weights and configuration (``oracle_outputs``); the loss and penalties.

Works on Keras 2 (``tf.keras`` of TensorFlow 2.15, ``tf_keras``) and Keras 3, through the adapters.

Modules: ``families`` (the models and their fixed data), ``describe`` (a model as plain data: the manifest
entry), ``manifest`` (its format, read back), ``save``, ``check`` and its float64 ``oracle``, ``report``.
"""

from __future__ import annotations

from conformance.models.check import Finding, Loaded, changes, check_all, compare_weights, new_keys
from conformance.models.describe import ABSENT, TOPIC_KEYS
from conformance.models.families import FAMILIES, Family
from conformance.models.manifest import FORMAT, FORMAT_VERSION, MANIFEST, ModelsError, read_manifest
from conformance.models.oracle import oracle_outputs
from conformance.models.report import markdown, report
from conformance.models.save import save_all, stack_of

__all__ = ["ABSENT", "FAMILIES", "FORMAT", "FORMAT_VERSION", "MANIFEST", "TOPIC_KEYS", "Family", "Finding", "Loaded",
           "ModelsError", "changes", "check_all", "compare_weights", "markdown", "new_keys", "oracle_outputs",
           "read_manifest", "report", "save_all", "stack_of"]
