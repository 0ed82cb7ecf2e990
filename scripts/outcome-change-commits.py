"""The argument-edge changes of a recorded history that nothing explains yet, grouped, with the Keras commits
that changed the text behind each group.

    python scripts/outcome-change-commits.py --backend jax --keras-git KERAS_CLONE [--release 3.4.0]

For each release, the outcome changes (conformance.edges) that no expectation record and no entry of
fixtures/history/explained.toml explains are grouped by what changed (the exception and the start of the
message on each side; the keys of a config), and for each group ``git log -S`` in a clone of keras-team/keras
(with its tags) names the commits between the two releases that added the new text or removed the old. Read
the commits, then write an [[explained]] entry: this script finds where to look, it explains nothing itself.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict

from conformance import history
from conformance.engine import expectations
from conformance.history import explained
from conformance.history.model import ABSENT
from conformance.history.view import applies


def gist(value: object) -> str:
    """What a change is about: 'raises ValueError: <the message up to its first value>', or the class and
    the keys of a returned config, or the outcome's words without numbers."""
    text = value if isinstance(value, str) else json.dumps(value)
    m = re.match(r"returns a (\w+) (\{.*\})$", text)
    if m:
        try:
            return f"returns a {m.group(1)} with keys {sorted(json.loads(m.group(2)))}"
        except json.JSONDecodeError:
            pass
    text = re.split(r"Received|received|: \[|[=:] ?-?\d", text)[0] if text.startswith("raises") else text
    return re.sub(r"\d+(\.\d+)?", "N", text)[:90]


def needle(text: str) -> str:
    """A stretch of a message likely to sit on one line of the source: its longest run without a value."""
    message = text.split(": ", 1)[1] if ": " in text else text
    parts = [p.strip(" .`'") for p in re.split(r"[{}()\[\]=]|Received|\d", message)]
    best = max(parts, key=len, default="")
    return best[:40]


def commits(clone: str, old: str, new: str, text: str) -> list[str]:
    """The commits between the tags of ``old`` and ``new`` (the clone's HEAD for the nightly) whose diff adds
    or removes ``text``."""
    if len(text) < 12:
        return []
    upto = "HEAD" if new.startswith("nightly") else f"v{new}"
    out = subprocess.run(["git", "-C", clone, "log", "--format=%h %ad %s", "--date=short", f"-S{text}",
                          f"v{old}..{upto}"], capture_output=True, text=True)
    return out.stdout.splitlines()[:4]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="jax", choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--keras-git", required=True, help="a clone of keras-team/keras with its release tags")
    parser.add_argument("--release", help="only this release")
    args = parser.parse_args()
    probe = subprocess.run(["git", "-C", args.keras_git, "rev-parse", "--verify", "-q", "v3.0.0"], capture_output=True)
    if probe.returncode != 0:
        print(f"outcome-change-commits: {args.keras_git} is not a clone of keras-team/keras with its release tags",
              file=sys.stderr)
        return 2
    tl = history.timeline(history.load(history.HISTORY, args.backend, history.load_stacks(args.backend)))
    records, entries = expectations.load_all(), explained.load()
    by_release = history.changes_by_release(tl)
    for i, release in enumerate(tl["releases"]):
        if tl["previous"][i] is None or args.release and release != args.release:
            continue
        previous = tl["releases"][tl["previous"][i]]
        stack, before = tl["stacks"][i], tl["stacks"][tl["previous"][i]]
        groups: dict[tuple[str, str], list] = defaultdict(list)
        for c in by_release[release]:
            if tl["cases"][c["case"]]["checks"][c["key"]]["kind"] != "outcome":
                continue
            if explained.explaining(entries, tl, i, c):
                continue
            if any(r.covers(c["case"]) and applies(r, stack) != applies(r, before)
                   for r in records):
                continue
            old = "(not recorded)" if c["old"] == ABSENT else gist(c["old"])
            groups[(old, gist(c["new"]))].append(c)
        if not groups:
            continue
        print(f"\n## {previous} → {release} ({stack['framework']}; before {before['framework']})")
        for (old, new), items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            cases = sorted({c["case"] for c in items})
            print(f"\n- {len(items)} change(s) in {', '.join(cases[:4])}{' …' if len(cases) > 4 else ''}")
            print(f"    {old}\n  → {new}")
            print(f"    e.g. {items[0]['check']} [{items[0]['key']}]")
            found = commits(args.keras_git, previous, release, needle(str(items[0]["new"]))) \
                or commits(args.keras_git, previous, release, needle(str(items[0]["old"])))
            for line in found:
                print(f"    commit {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
