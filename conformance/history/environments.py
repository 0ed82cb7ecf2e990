"""A stack's environment: built with uv from its recipe, and the copy of the suite every stack of a run runs."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from conformance import FIXTURES
from conformance.execution import children
from conformance.history.recipes import SUITE_REQUIREMENTS, Stack, uv_binary, uv_file_option

PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent  # the directory that holds conformance/


class StackFailed(Exception):
    """A stack did not build or did not give complete results; the message says why, in one line."""


def build(stack: Stack, envs: Path) -> Path:
    """The stack's environment, made anew with uv (seconds from its cache) unless it was made from this very
    recipe, so that nothing an older recipe installed stays behind; its Python."""
    env = envs / stack.name
    python = env / "bin" / "python"
    marker = env / ".keras-conformance-recipe"
    if python.exists() and marker.exists() and marker.read_text() == stack.digest:
        return python
    uv = uv_binary()
    envs.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(env, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="keras-conformance-build-") as tmp:
        steps = [[uv, "venv", "-q", "--allow-existing", "--python", sys.executable, str(env)],
                 [uv, "pip", "install", "-q", "--python", str(python), *uv_file_option(Path(tmp), "--excludes", stack.excludes),
                  *uv_file_option(Path(tmp), "--override", stack.overrides), *stack.requirements,
                  *SUITE_REQUIREMENTS]]
        for cmd in steps:
            proc = children.run(cmd, capture_output=True, timeout=1800)
            if proc.returncode != 0:
                raise StackFailed(f"{' '.join(cmd[1:3])} failed: {children.tail(proc.stderr.decode(errors='replace'))}")
    marker.write_text(stack.digest)
    return python


def snapshot(directory: Path) -> Path:
    """A copy of the suite (the package and its fixtures) in ``directory``, so that every stack of a run
    runs the same suite, whatever happens to the source meanwhile; the root to put on PYTHONPATH."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        """Compiled files, and the recorded history (fixtures/history: megabytes no stack's suite reads)."""
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
        return skipped | ({"history"} if Path(folder).name == "fixtures" else set())

    shutil.copytree(PACKAGE_ROOT / "conformance", directory / "conformance", ignore=ignore)
    shutil.copytree(FIXTURES, directory / "conformance" / "fixtures", ignore=ignore, dirs_exist_ok=True)
    return directory
