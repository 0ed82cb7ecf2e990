"""A pytest plugin for ``speed-vs-keras-tests.py``: which JAX programs a run compiled, and how long each took.

    JAX_COMPILE_LOG=DIR python -m pytest -p jax_compile_log ...   (with this directory on PYTHONPATH)

JAX logs "Finished jaxpr to MLIR module conversion jit(NAME) in S sec" and "Finished XLA
compilation of jit(NAME) in S sec" for every program it lowers and compiles, at DEBUG level unless
``jax_log_compiles`` is set; this plugin keeps those two messages (nothing else, and nothing reaches
the terminal) and writes, at the end of the run, one ``[stage, name, seconds]`` triple per message
("lower" or "compile"), in order, to ``DIR/PID.json`` (one file per process:
each pytest-xdist worker compiles its own).  Names are JAX's: an eager op compiles as
its primitive (``add``, ``convert_element_type``), a random draw as its ``jax.random`` function
(``_bernoulli``, ``_uniform``), a jitted function under its own name.  With JAX's persistent
compilation cache warm, a program loaded from it is logged too, with the seconds loading took.
"""

from __future__ import annotations

import json
import logging
import os
import re

FINISHED = re.compile(r"Finished (?P<stage>XLA compilation of|jaxpr to MLIR module conversion) "
                      r"jit\((?P<name>.*)\) in (?P<seconds>[0-9.eE+-]+) sec")
LOGGERS = ("jax._src.dispatch", "jax._src.interpreters.pxla", "jax._src.compiler")


class _Compiles(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.compiled: list[tuple[str, str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = FINISHED.match(record.getMessage())
        if match:
            stage = "compile" if match["stage"].startswith("XLA") else "lower"
            self.compiled.append((stage, match["name"], float(match["seconds"])))


_handler = _Compiles()


def pytest_configure(config) -> None:
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(_handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False


def pytest_unconfigure(config) -> None:
    out = os.environ.get("JAX_COMPILE_LOG")
    if out and _handler.compiled:
        with open(os.path.join(out, f"{os.getpid()}.json"), "w") as f:
            json.dump(_handler.compiled, f)


def read(directory: str) -> list[tuple[str, str, float]]:
    """Every process's compilations from ``directory`` (see the module's docstring), and empty it."""
    compiled = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        with open(path) as f:
            compiled += [tuple(event) for event in json.load(f)]
        os.remove(path)
    return compiled


#: The ``jax.random`` functions JAX names a random draw's program after (threefry bits and their transform).
RANDOM_DRAWS = frozenset({"_bernoulli", "_uniform", "_normal", "_truncated_normal", "_randint", "_gamma",
                          "_poisson", "_categorical", "_random_bits", "random_bits", "threefry_2x32",
                          "_shuffle", "_permutation", "_choice"})


def summary(events: list[tuple[str, str, float]]) -> dict:
    """Programs compiled, and seconds spent lowering and compiling them: in all, and in random draws
    (one program per shape and dtype drawn)."""
    draws = [event for event in events if event[1] in RANDOM_DRAWS]

    def seconds(of: list[tuple[str, str, float]], stage: str) -> float:
        return round(sum(s for st, _, s in of if st == stage), 2)

    def programs(of: list[tuple[str, str, float]]) -> int:
        return sum(1 for stage, _, _ in of if stage == "compile")

    return {"programs": programs(events), "compile_seconds": seconds(events, "compile"),
            "lower_seconds": seconds(events, "lower"), "random_draw_programs": programs(draws),
            "random_draw_compile_seconds": seconds(draws, "compile"), "random_draw_lower_seconds": seconds(draws, "lower")}
