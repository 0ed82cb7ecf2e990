"""The notebook's cells in fixtures are the notebook's own code, and the cell runner reports errors by line."""

import re

from conformance import FIXTURES
from conformance.cases.notebook_cells import Cell, load_cells, run_cell

NOTEBOOK = (FIXTURES / "notebook" / "notebook.txt").read_text()


def test_every_cell_is_verbatim_notebook_code():
    for cell in load_cells():
        assert cell.code in NOTEBOOK, f"cell {cell.id} is not verbatim notebook code"
        assert f"{cell.prompt}:\n{cell.code}" in NOTEBOOK, f"cell {cell.id} is not under {cell.prompt}"


def test_every_notebook_cell_with_code_is_present():
    """Cells whose lines are all comments hold nothing to run; every other cell is in cells.toml."""
    blocks = re.split(r"\nIn \[[^\]]*\]:\n", NOTEBOOK)[1:]
    with_code = [b for b in blocks if any(line.strip() and not line.lstrip().startswith("#")
                                          for line in b.split("\n\n")[0].splitlines())]
    assert len(load_cells()) == len(with_code) == 11


def test_run_cell_keeps_last_value_and_stdout():
    ns = {}
    run = run_cell(Cell("t", "In [1]", "init", "print('hi')\n1 + 1"), ns)
    assert (run.stdout, run.value, run.error) == ("hi\n", 2, None)


def test_run_cell_names_the_failing_line():
    run = run_cell(Cell("t", "In [2]", "init", "a = 1\nb = undefined_name\nc = 2"), {})
    assert run.error == "NameError at `b = undefined_name`: name 'undefined_name' is not defined"
