"""The edges of every argument (``conformance/edges``): one case per function or class swept.

- ``edges-<module>-get``: ``keras.<module>.get`` at every kind of identifier;
- ``edges-<module>-<class>`` (``edges-initializers-glorot-uniform``): the class's constructor arguments
  at their edges, each instance then called;
- ``edges-layer-<slug>``: a declared layer's arguments at their edges, its rates at 0 and 1 in training.

Each call's outcome is recorded (``Checks.outcome``), not judged; where the documentation states it,
it is a check.  A class this Keras lacks skips the case.
"""

from __future__ import annotations

import inspect
import re
import sys
from fnmatch import fnmatchcase
from functools import partial

from conformance.cases import Absent, Case, add
from conformance.edges import Entry, outcome
from conformance.edges.grid import MODULES, SHARED, class_entries, get_entries, layer_entries, unique_keys
from conformance.layers import all_layers

TOPIC = "layer"


def slug(cls: str) -> str:
    """'GlorotUniform' → 'glorot-uniform', 'L1L2' → 'l1l2'."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "-", cls).lower()


def run_entries(k, checks, entries: list[Entry], where: str) -> None:
    for entry, key in zip(entries, unique_keys(entries, where), strict=True):
        text = outcome(entry, k)
        if entry.documented:
            checks.record(entry.label, entry.documented, text, fnmatchcase(text, entry.documented),
                          f"as documented ({entry.source})", key=key)
        else:
            checks.outcome(entry.label, text, key=key)


def sweep_get(k, checks, module: str) -> None:
    run_entries(k, checks, get_entries(module), f"edges-{module}-get")


def sweep_class(k, checks, module: str, cls: str) -> None:
    found = getattr(getattr(k.keras, module), cls, None)
    if found is None:
        raise Absent(f"this Keras has no {module}.{cls}")
    entries = class_entries(module, cls, inspect.signature(found.__init__))
    run_entries(k, checks, entries, f"edges-{module}-{slug(cls)}")


def sweep_layer(k, checks, decl, entries: list[Entry]) -> None:
    from conformance.cases.layers import keras_class

    keras_class(k, decl)  # Absent where the declaration says this Keras lacks it
    SHARED.clear()
    try:
        run_entries(k, checks, entries, f"edges-layer-{decl.slug}")
    finally:
        SHARED.clear()


def here() -> str:
    """'conformance/cases/edges.py:<line>' of the caller: where a search for the case's ID prefix finds it."""
    return f"conformance/cases/edges.py:{sys._getframe(1).f_lineno}"


def register_all() -> None:
    for module, (topic, classes) in MODULES.items():
        add(Case(f"edges-{module}-get", topic, defined_at=here(), template="edges-{module}-get", source="edges",
                 description=f"keras.{module}.get at every kind of identifier: what it accepts, gives and raises "
                             "(recorded)", run=partial(sweep_get, module=module)))
        for cls in classes:
            add(Case(f"edges-{module}-{slug(cls)}", topic, defined_at=here(), template="edges-{module}-{class}",
                     source="edges", description=f"{cls} with each constructor argument at its edges, then called: "
                                                 "what it accepts, gives and raises (recorded)",
                     run=partial(sweep_class, module=module, cls=cls)))
    for decl in all_layers():
        entries = layer_entries(decl)  # an entry that cannot be built fails here, at collection
        unique_keys(entries, f"edges-layer-{decl.slug}")
        add(Case(f"edges-layer-{decl.slug}", "layer", defined_at=here(), template="edges-layer-{slug}", source="edges",
                 description=f"{decl.cls} with each documented argument at its edges, and its rates at 0 and 1 in "
                             "training: what it accepts, keeps in its config and raises (recorded)",
                 run=partial(sweep_layer, decl=decl, entries=entries)))


register_all()
