"""The saved-model matrix: models saved on old stacks, checked on the newest Keras 3 on each backend and the nightly.

Each stack is one of the history's recipes (``fixtures/history/<backend>.toml``), built with uv in its own
environment as ``history run`` builds it; ``models save`` runs in each old stack, ``models check`` in
each new one, and the reports go to one directory with a summary (``README.md``): the pairs the
project documents (``docs/saved-models/``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from conformance import history, models
from conformance.data.files import staged
from conformance.execution import children

#: Models saved by Keras 2.15 (TensorFlow 2.15), by tf_keras, by an early Keras 3, and by the newest
#: Keras 3 (which must load on itself) ...
OLD = ("keras-2.15-tf", "tf-keras-2.21-tf", "keras-3.0.5-tf", "keras-3.15.1-tf", "keras-3.15.1-jax",
       "keras-3.15.1-torch")
#: ... each checked on the newest Keras 3 on every backend that can load them, and on the nightly (on JAX):
#: what the next release will do with them.
NEW = ("keras-3.15.1-tf", "keras-3.15.1-jax", "keras-3.15.1-torch", "keras-nightly-jax")


def stacks_named(names: tuple[str, ...]) -> list[history.Stack]:
    every = {s.name: s for backend in history.BACKENDS for s in history.load_stacks(backend)}
    missing = [n for n in names if n not in every]
    if missing:
        raise history.HistoryError(f"no stack is called {', '.join(missing)}")
    return [every[n] for n in names]


def _run(python: Path, root: Path, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    env.pop("CONFORMANCE_IMPL", None)
    return children.run([str(python), "-m", "conformance.cli", "models", *args], capture_output=True,
                        timeout=timeout, env=env)


def run(out: Path, envs: Path, report: Callable[[str], None], timeout: float = 900.0,
        old: tuple[str, ...] = OLD, new: tuple[str, ...] = NEW) -> dict[str, dict[str, dict]]:
    """Save on every old stack, check on every new one; the reports in ``out``; the summary's data."""
    olds, news = stacks_named(old), stacks_named(new)
    summary: dict[str, dict[str, dict]] = {}
    pages: dict[str, str] = {}  # written together at the end: a failed matrix replaces no report
    with tempfile.TemporaryDirectory(prefix="keras-conformance-models-") as tmp:
        root = history.snapshot(Path(tmp) / "suite")
        pythons = {s.name: history.build(s, envs) for s in {*olds, *news}}
        for o in olds:
            saved = Path(tmp) / f"saved-{o.name}"
            proc = _run(pythons[o.name], root, ["save", str(saved), "--impl", o.impl], timeout)
            if proc.returncode != 0:
                raise history.StackFailed(f"models save on {o.name} failed: "
                                          f"{children.tail(proc.stderr.decode(errors='replace'))}")
            report(f"saved on {o.name}")
            for n in news:
                stem = f"{o.name}--on--{n.name}"
                proc = _run(pythons[n.name], root, ["check", str(saved), "--impl", n.impl, "--format", "json",
                                                    "--out", str(Path(tmp) / f"{stem}.json")], timeout)
                if proc.returncode not in (0, 1):
                    raise history.StackFailed(f"models check of {o.name} on {n.name} failed: "
                                              f"{children.tail(proc.stderr.decode(errors='replace'))}")
                text = (Path(tmp) / f"{stem}.json").read_text()
                data = json.loads(text)
                pages[f"{stem}.json"], pages[f"{stem}.md"] = text, models.markdown(data)
                judged = [r for r in data["results"] if not r["not_applicable"]]
                summary.setdefault(o.name, {})[n.name] = {
                    "same": sum(r["same"] for r in judged), "judged": len(judged),
                    "loads": sum(r["loaded"] for r in judged), "file": f"{stem}.md"}
                report(f"  checked on {n.name}: {summary[o.name][n.name]['same']} of {len(judged)} the same")
    pages["README.md"] = summary_markdown(summary, olds, news)
    with staged(out) as stage:
        for name, text in pages.items():
            stage(name, text)
    return summary


def summary_markdown(summary: dict[str, dict[str, dict]], olds: list[history.Stack],
                     news: list[history.Stack]) -> str:
    out = ["# Saved models across upgrades: the matrix", "",
           "Each cell: of the model files saved on the row's stack (the suite's model families in `.keras`, `.h5`, "
           "weights-only and, on TensorFlow, SavedModel), how many load on the column's stack and behave the same "
           "(configuration of the four topics, weights, inference outputs, loss and penalties); how many load at "
           "all in brackets. Generated by `keras-conformance models matrix --out docs/saved-models`.", "",
           "| saved on ↓ / loaded on → | " + " | ".join(f"{n.label} ({n.framework})" for n in news) + " |",
           "|---|" + "---|" * len(news)]
    for o in olds:
        cells = []
        for n in news:
            c = summary[o.name][n.name]
            cells.append(f"[{c['same']} of {c['judged']}]({c['file']}) ({c['loads']} load)")
        out.append(f"| {o.label} ({o.impl}, {o.framework}) | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
