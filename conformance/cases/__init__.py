"""The registry of conformance cases.

A case is declared once (in the spirit of PyTorch's OpInfo): its ID, topic,
a one-line description and a function ``run(k, checks)`` that builds its
model through the adapter ``k``, feeds its inputs and records every
comparison with its expected value on ``checks``.  Expected values come from
:mod:`conformance.oracles` or from the notebook's printed output.

Known differences of an implementation are not written here but in
``fixtures/expectations/<family>.toml``.

Modules of this package register their cases with :func:`case`; one module a
topic or source (``notebook.py``, ``notebook_cells.py``, ...).
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from conformance.checks import Checks
    from conformance.impls import Adapter

TOPICS = ("init", "batchnorm", "dropout", "regularizer")
CASE_MODULES = ("notebook", "notebook_cells", "initializers", "batchnorm", "dropout", "regularizers")


@dataclass(frozen=True)
class Case:
    """One behaviour to pin, runnable on any implementation."""

    id: str
    topic: str
    description: str
    run: Callable[["Adapter", "Checks"], None]
    source: str  # "notebook" (the seed notebook) or the topic module's name
    needs: tuple[str, ...] = ()  # capabilities it needs (conformance.backends.base.CAPABILITIES)

    @property
    def seed(self) -> int:
        """A seed derived from the ID alone, so a case repeats in any order or worker."""
        return zlib.crc32(self.id.encode()) % (2**31)

    @property
    def markers(self) -> tuple[str, ...]:
        return (self.topic, "notebook") if self.source == "notebook" else (self.topic,)


_REGISTRY: dict[str, Case] = {}


def case(id: str, topic: str, description: str, *, source: str, needs: tuple[str, ...] = ()):
    """Decorator: register ``run(k, checks)`` as the case ``id``; ``needs`` lists the capabilities it uses
    beyond inference ("train", "gradients"), so that implementations without them skip it, saying why."""
    if topic not in TOPICS:
        raise ValueError(f"case {id}: unknown topic {topic!r}")

    def register(run: Callable[["Adapter", "Checks"], None]) -> Callable:
        add(Case(id, topic, description, run, source, tuple(needs)))
        return run

    return register


def add(new: Case) -> None:
    if new.id in _REGISTRY:
        raise ValueError(f"case {new.id} is declared twice")
    _REGISTRY[new.id] = new


def all_cases() -> list[Case]:
    """Every registered case, in declaration order."""
    for module in CASE_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return list(_REGISTRY.values())


def get(case_id: str) -> Case:
    all_cases()
    return _REGISTRY[case_id]
