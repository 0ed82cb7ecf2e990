"""The seed notebook as written: each code cell run verbatim on the implementation.

The cells and what the notebook printed for them live in
``fixtures/notebook/cells.toml``.  The case for cell *n* runs cells 1..n-1
first in one namespace, as a notebook does, then cell *n*, capturing what it
prints and the value of its last expression; where a cell raises, the check
``outcome`` says which line failed and with what error.

The notebook imports ``keras``; here ``keras`` is the implementation's Keras
(``tf_keras`` for Keras 2 where that is the package in use).
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance import FIXTURES
from conformance.cases import Case, add
from conformance.cases.helpers import dropout_distribution, parse_summary_totals
from conformance.data.files import FixtureError, read_toml
from conformance.engine import oracles
from conformance.engine.checks import error_text

CELLS_FILE = FIXTURES / "notebook" / "cells.toml"


@dataclass
class Cell:
    id: str
    prompt: str
    topic: str
    code: str
    outcome: str = "runs"
    prints: list[str] = field(default_factory=list)
    summary: dict[str, int] | None = None
    result: str | None = None

    @property
    def filename(self) -> str:
        return f"<notebook {self.prompt} {self.id}>"


@dataclass
class CellRun:
    """What running one cell did."""

    stdout: str
    value: Any = None
    error: str | None = None  # "TypeError at `line`: message"


def load_cells(path=CELLS_FILE) -> list[Cell]:
    data = read_toml(path, FixtureError)
    return [Cell(**{**entry, "code": entry["code"].rstrip("\n")}) for entry in data["cell"]]


def cell_line(cell_id: str, path=CELLS_FILE) -> int:
    """The line of ``id = "<cell_id>"`` in the cells file, where a reader finds the cell."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip() == f'id = "{cell_id}"':
            return n
    return 0


@contextlib.contextmanager
def keras_is(k):
    """Make ``import keras`` (and its submodules) give the implementation's Keras."""
    mapping = k.keras_module_map()
    saved = {name: sys.modules.get(name) for name in mapping}
    sys.modules.update(mapping)
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def run_cell(cell: Cell, namespace: dict) -> CellRun:
    """Execute ``cell`` in ``namespace``; the value of a trailing expression is kept."""
    tree = ast.parse(cell.code, cell.filename)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    assert last is None or isinstance(last, ast.Expr)
    out = io.StringIO()
    value = None
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(tree, cell.filename, "exec"), namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), cell.filename, "eval"), namespace)
    except Exception as exc:  # the notebook's own errors are results here
        return CellRun(out.getvalue(), error=describe_error(cell, exc))
    return CellRun(out.getvalue(), value)


def describe_error(cell: Cell, exc: BaseException) -> str:
    """'TypeError at `failing line`: message', the line being the cell's own."""
    lines = cell.code.splitlines()
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == cell.filename and frame.lineno is not None and 1 <= frame.lineno <= len(lines):
            where = f" at `{lines[frame.lineno - 1].strip()}`"
            break
    kind, _, message = error_text(exc).partition(": ")
    return f"{kind}{where}: {message}"


def check_result(kind: str, value: Any, checks) -> None:
    arr = np.asarray(value)
    if kind == "ones(1, 10) float32":
        checks.equal("result dtype", "float32", str(arr.dtype))
        checks.equal("result", np.ones((1, 10)), arr)
    elif kind == "dropout lattice":
        values, _ = dropout_distribution()
        checks.true("result on the dropout lattice", bool(np.all(oracles.on_lattice(arr, values))),
                    f"result {arr.ravel().tolist()} is 0 or 4·Σ_(j∈S) j·(450+10j), like the notebook's 39280")
    else:
        raise FixtureError(f"unknown result kind {kind!r} in {CELLS_FILE.name}")


def make_case(cells: list[Cell], index: int) -> Case:
    cell = cells[index]

    def run(k, checks) -> None:
        namespace: dict = {"__name__": "__notebook__"}
        with keras_is(k):
            for earlier in cells[:index]:
                run_cell(earlier, namespace)
            result = run_cell(cell, namespace)
        observed = result.error or "runs"
        if cell.outcome == "runs":
            checks.equal("outcome", "runs", observed)
        else:
            checks.record("outcome", f"{cell.outcome} …", observed, observed.startswith(cell.outcome + " "),
                          f"the cell raises {cell.outcome}")
        if result.error:
            checks.note("printed before the error", result.stdout.splitlines()[:5])
            return
        printed = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        if cell.prints:
            checks.equal("printed shapes", cell.prints, printed[: len(cell.prints)])
        if cell.summary:
            checks.equal("summary totals", cell.summary, parse_summary_totals(result.stdout))
        if cell.result:
            check_result(cell.result, result.value, checks)

    expectation = ", ".join(
        part for part in (
            "runs" if cell.outcome == "runs" else f"raises {cell.outcome}",
            f"prints {', '.join(cell.prints)}" if cell.prints else "",
            "summary totals {total}/{trainable}/{non_trainable}".format(**cell.summary) if cell.summary else "",
            f"gives {cell.result}" if cell.result else "",
        ) if part
    )
    return Case(
        id=f"notebook-as-written-{cell.id}",
        topic=cell.topic,
        description=f"notebook cell {cell.prompt} as written {expectation}",
        run=run,
        source="notebook",
        template="notebook-as-written-{cell}",
        defined_at=f"fixtures/notebook/{CELLS_FILE.name}:{cell_line(cell.id)}",
    )


def register() -> None:
    cells = load_cells()
    for index in range(len(cells)):
        add(make_case(cells, index))


register()
