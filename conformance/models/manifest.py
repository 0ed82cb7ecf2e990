"""The manifest of a directory of saved models: its format, and reading it back (one-line errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from conformance.data.files import FixtureError, unknown_version
from conformance.data.schema import Manifest

FORMAT = "keras-conformance-models"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class ModelsError(FixtureError):
    """Bad input to ``models save`` or ``models check``: one line, exit status 2."""


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ModelsError(f"{directory} is not a directory of saved models")
    if not path.exists():
        raise ModelsError(f"{directory} has no {MANIFEST}: not written by keras-conformance models save")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelsError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelsError(f"{path} is not a keras-conformance models manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelsError(unknown_version(path, manifest.get("format_version"), [FORMAT_VERSION]))
    for name, entry in manifest.get("models", {}).items():
        for fmt, file in entry.get("files", {}).items():
            if not (directory / file).exists():
                raise ModelsError(f"{directory}: {name}'s {fmt} file {file} is missing")
    return cast(Manifest, manifest)  # JSON in, checked above
