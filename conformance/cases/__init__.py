"""The registry of conformance cases.

A case is declared once (in the spirit of PyTorch's OpInfo): its ID, topic,
a one-line description and a function ``run(k, checks)`` that builds its
model through the adapter ``k``, feeds its inputs and records every
comparison with its expected value on ``checks``.  Expected values come from
:mod:`conformance.engine.oracles` or from the notebook's printed output.

Each module of this package is one topic or source and says which once, at
its top (``TOPIC = "dropout"``); its cases are declared with

- :func:`case` for one case: ``@case("dropout-seeding", "two fresh ... drop the same units")``;
- :func:`family` for a parametrized one, whose ID is a template, so that
  searching the source for the prefix of any ID pytest shows finds it::

      @family("dropout-rate-{rate}", "Dropout({rate}) in training drops ...", [{"rate": 0.1}, {"rate": 0.3}])
      def rate(k, checks, rate): ...

Every module here is a case module and must declare at least one case,
except the helper modules (``HELPER_MODULES``), which declare none.  Known
differences of an implementation are not written here but in
``fixtures/expectations/<family>.toml``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from conformance.backends.impls import Adapter
    from conformance.engine.checks import Checks

#: The topics, each a pytest marker; every case has one.
TOPICS = {
    "init": "weight initialisation cases",
    "batchnorm": "BatchNormalization cases",
    "dropout": "Dropout-family cases",
    "regularizer": "L1/L2 regulariser cases",
    "layer": "the declared layers' defaults, configs, forward computations and dtype policies",
}
#: Every marker the suite registers (pytest --strict-markers): the topics and two more.
MARKERS = {
    **TOPICS,
    "notebook": "behaviours shown by the seed notebook",
    "benchmark": "timings (pytest-benchmark group); not part of the conformance verdict",
}
#: Modules of this package that declare no case (shared helpers).
HELPER_MODULES = ("helpers",)


@dataclass(frozen=True)
class Case:
    """One behaviour to pin, runnable on any implementation."""

    id: str
    topic: str
    description: str
    run: Callable[["Adapter", "Checks"], None]
    source: str  # "notebook" (the seed notebook) or the topic module's name
    needs: tuple[str, ...] = ()  # capabilities it needs (conformance.backends.base.CAPABILITIES)
    template: str = ""  # the ID template of its family ("dropout-rate-{rate}"), '' for a single case
    defined_at: str = ""  # "conformance/cases/dropout.py:47": where it is declared

    @property
    def seed(self) -> int:
        """A seed derived from the ID alone, so a case repeats in any order or worker."""
        return zlib.crc32(self.id.encode()) % (2**31)

    @property
    def markers(self) -> tuple[str, ...]:
        return (self.topic, "notebook") if self.source == "notebook" else (self.topic,)

    @property
    def searched_as(self) -> str:
        """What to search the source for to find this case's declaration: its ID, or its family's template."""
        return self.template or self.id


class Absent(Exception):
    """Raised by a case whose subject this Keras does not have (a class added in a later release, or
    one Keras 2 never had), as its declaration says: the case is skipped with this reason."""


_REGISTRY: dict[str, Case] = {}
_DISCOVERED = False  # every case module imported and checked


def _declared_in(fn: Callable) -> tuple[Any, str]:
    """The module ``fn`` is declared in, and 'conformance/cases/<module>.py:<line>'."""
    module = sys.modules[fn.__module__]
    path = Path(getattr(module, "__file__", "?"))
    return module, f"conformance/cases/{path.name}:{fn.__code__.co_firstlineno}"


def _topic_and_source(module: Any, topic: str | None, id: str) -> tuple[str, str]:
    topic = topic or getattr(module, "TOPIC", None)
    if topic not in TOPICS:
        raise ValueError(f"case {id}: topic {topic!r} is not one of {', '.join(TOPICS)} "
                         f"(set TOPIC in its module or pass topic=)")
    return topic, getattr(module, "SOURCE", module.__name__.rsplit(".", 1)[-1])


def case(id: str, description: str, *, topic: str | None = None, needs: tuple[str, ...] = ()):
    """Decorator: register ``run(k, checks)`` as the case ``id``.

    ``topic`` defaults to the module's ``TOPIC``; ``needs`` lists the capabilities it uses beyond
    inference ("train", "gradients"), so that implementations without them skip it, saying why.
    """

    def register(run: Callable[["Adapter", "Checks"], None]) -> Callable:
        module, where = _declared_in(run)
        case_topic, source = _topic_and_source(module, topic, id)
        add(Case(id, case_topic, description, run, source, tuple(needs), defined_at=where))
        return run

    return register


def family(template: str, description: str | Callable[..., str], params: Iterable[dict[str, Any]], *,
           topic: str | None = None, needs: tuple[str, ...] | Callable[..., tuple[str, ...]] = ()):
    """Decorator: register ``run(k, checks, **p)`` once for each ``p`` in ``params``.

    Each case's ID is ``template.format(**p)`` and its description ``description.format(**p)``
    (or ``description(**p)``), and what it needs ``needs`` (or ``needs(**p)``: a dtype policy's
    dtypes, :func:`conformance.engine.precision.policy_needs`).  Parameters whose names the template does
    not use still reach ``run``; two entries that give the same ID are an error.
    """

    def register(run: Callable[..., None]) -> Callable:
        module, where = _declared_in(run)
        for p in params:
            id = template.format(**p)
            text = description(**p) if callable(description) else description.format(**p)
            case_topic, source = _topic_and_source(module, topic, id)
            case_needs = needs(**p) if callable(needs) else needs
            add(Case(id, case_topic, text, functools.partial(run, **p), source, tuple(case_needs), template, where))
        return run

    return register


def policy_family(template: str, description: str | Callable[..., str], *policies: str, topic: str | None = None):
    """Decorator: a family with one case per dtype policy (``{policy}`` in the template; all of
    ``conformance.engine.precision.POLICIES``, or those named), each needing its policy's dtypes."""
    from conformance.engine.precision import policy_needs, policy_params

    return family(template, description, policy_params(*policies), topic=topic, needs=policy_needs)


def add(new: Case) -> None:
    if new.id in _REGISTRY:
        raise ValueError(f"case {new.id} is declared twice")
    _REGISTRY[new.id] = new


def case_modules() -> list[str]:
    """The names of this package's case modules (every module but the helpers)."""
    return [m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPER_MODULES]


def all_cases() -> list[Case]:
    """Every registered case, in declaration order; a case module that declares none is an error."""
    global _DISCOVERED
    if not _DISCOVERED:
        modules = case_modules()
        for name in modules:
            importlib.import_module(f"{__name__}.{name}")
        declaring = {getattr(c.run, "func", c.run).__module__.rsplit(".", 1)[-1] for c in _REGISTRY.values()}
        empty = [name for name in modules if name not in declaring]
        if empty:
            raise RuntimeError(f"conformance/cases/{empty[0]}.py declares no case; shared helpers belong "
                               f"in {', '.join(HELPER_MODULES)}.py")
        _DISCOVERED = True
    return list(_REGISTRY.values())


def get(case_id: str) -> Case:
    all_cases()
    return _REGISTRY[case_id]
