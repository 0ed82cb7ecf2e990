"""The conformance suite: one generic template that runs every registered case.

The plugin (conformance.engine.plugin) parametrizes ``case`` from the registry
(conformance/cases), so a test ID is the case ID, e.g.
``test_case[notebook-dropout-121-params]``.  Run it wherever
keras-conformance is installed, against the Keras installed there::

    pytest --pyargs conformance.suite --impl keras3:jax

A checkout runs the same template through ``tests/test_conformance.py``.
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
#: Whether this is a checkout (its pytest settings apply) rather than an installed package.
IN_CHECKOUT = (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "tests").is_dir()


def test_case(case, conformance):
    conformance(case)


def arguments(impl_id: str, json_path: Path, *options: str, copy: Path | None = None) -> list[str]:
    """pytest's arguments that run this suite on ``impl_id`` in a new process, its results to ``json_path``.

    Run it in ``run_from(...)``.  Installed, pytest's default import mode would
    put site-packages first on ``sys.path`` to import this file, ahead of
    ``PYTHONPATH``, where selfcheck puts a mutated Keras; importlib mode does not.
    ``copy``: a copy of keras-conformance (the directory holding ``conformance/``) to run instead, as a history
    stack does, whose environment has none installed: its plugin named, its rootdir beside the results.
    """
    target = [__file__] if copy is None else [str(copy / "conformance" / "suite.py"), "-p", "conformance.engine.plugin",
                                             "--rootdir", str(json_path.parent)]
    args = [*target, "--impl", impl_id, "--conformance-json", str(json_path), "-q", "--no-header",
            "-p", "no:cacheprovider", "-p", "no:randomly", *options]
    return args if IN_CHECKOUT and copy is None else [*args, "--import-mode=importlib"]


def reproduce(impl_id: str, case_id: str) -> str:
    """The command that reruns one case, as the suite is found here (checkout or installed package)."""
    where = "tests/test_conformance.py" if IN_CHECKOUT else "--pyargs conformance.suite"
    return f"pytest {where} --impl {impl_id} -k '{case_id}'"


def nothing_selected(keyword: str | None, what: str = "case", where: str = "") -> str:
    """What a run that selected nothing says ('no case selected on keras3:jax by -k 'x''), one wording for all."""
    return f"no {what} selected" + (f" on {where}" if where else "") + (f" by -k {keyword!r}" if keyword else "")


def run_from(scratch: Path) -> Path:
    """The directory to run ``command`` in: the checkout's root, else ``scratch`` (never site-packages)."""
    return CHECKOUT if IN_CHECKOUT else scratch
