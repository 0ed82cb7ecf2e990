"""Reading the project's TOML and JSON files and writing reports, with one-line errors.

Every reader turns a missing, unreadable or malformed file into ``error(message)``
(one line, for the CLI and pytest to print); every writer replaces its target
atomically, so a reader never sees half a file. Commands check that their outputs
can be written (``writable_file``, ``writable_directory``) before they do any work.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def unknown_version(path: Path, found: object, understood: list[int]) -> str:
    """The one line for a recorded file of a format version this keras-conformance cannot read: the file, the
    version found and the versions understood (and, for a newer one, what to do)."""
    newer = isinstance(found, int) and not isinstance(found, bool) and found > max(understood)
    return (f"{path} has format version {found!r}; this keras-conformance reads version"
            f"{'s' if len(understood) > 1 else ''} {', '.join(str(v) for v in understood)}"
            + (" (a newer keras-conformance wrote it: upgrade this one)" if newer else ""))


class FixtureError(Exception):
    """A fixtures file (expectations, notebook cells, mutations) is missing or malformed; the message is one line."""


def read_toml(path: Path, error: type[Exception]) -> dict[str, Any]:
    """The parsed TOML file at ``path``; ``error`` with one line if it cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path} is not valid TOML: {exc}") from None


def read_json(path: Path, error: type[Exception]) -> Any:
    """The parsed JSON file at ``path``; ``error`` with one line if it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not a text file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); truncated?") from None


class UnwritableError(Exception):
    """An output cannot be written where it was asked for; the message is one line."""


def writable_directory(directory: Path) -> None:
    """``directory`` exists (created if need be) and takes new files, else ``UnwritableError``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UnwritableError(f"cannot write to {directory}: it is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UnwritableError(f"cannot write to {directory}: {exc.strerror or exc}") from None


def writable_file(path: Path | None) -> None:
    """A file can be written at ``path`` (None: the terminal, always), else ``UnwritableError``."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UnwritableError(f"cannot write to {path}: it is a directory, not a file")
    writable_directory(path.parent)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that ``path`` is either untouched or complete."""
    path = Path(path)
    with staged(path.parent) as stage:
        stage(path.name, text)


@contextmanager
def staged(directory: Path) -> Iterator[Callable[[str, str], None]]:
    """``stage(name, text)`` writes files beside their targets in ``directory``; they replace the targets
    together when the block ends, and none of them does if it raises."""
    pending: list[tuple[str, Path]] = []

    def stage(name: str, text: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        pending.append((name, Path(tmp)))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)

    try:
        yield stage
        for name, tmp in pending:
            os.replace(tmp, Path(directory) / name)
    finally:
        for _, tmp in pending:
            tmp.unlink(missing_ok=True)
