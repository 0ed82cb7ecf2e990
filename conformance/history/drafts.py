"""Draft expectation records from a recorded history: one per unexpected check and run of releases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conformance.data.files import read_toml
from conformance.history.recipes import HistoryError, Stack
from conformance.history.recording import draft_path


def merged_drafts(history: Path, stacks: list[Stack]) -> str:
    """One skeleton record per unexpected check and run of consecutive releases that observed the same
    value, scoped with a ``versions`` range, from every recorded stack's draft (TOML for a person to
    complete with reason and evidence; the loader rejects it until then)."""
    out = [f"# Draft expectation records from the recorded history of {len(stacks)} stacks: one per check and\n"
           "# run of releases that gave the same unexpected value.  Write each reason and evidence (the two\n"
           "# releases' sources, the changelog), then move it to fixtures/expectations/<family>.toml.\n"]
    for impl in dict.fromkeys(s.impl for s in stacks):  # Keras 2 and Keras 3 stacks are separate runs
        out += _drafts_of(history, [s for s in stacks if s.impl == impl])
    return "\n".join(out)


def _drafts_of(history: Path, stacks: list[Stack]) -> list[str]:
    """``merged_drafts`` for stacks of one implementation, oldest first."""
    import tomli_w

    from conformance.engine.expectations import same

    observed: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    for i, stack in enumerate(stacks):
        path = draft_path(history, stack)
        if not path.exists():
            continue
        for record in read_toml(path, HistoryError).get("divergence", []):
            observed.setdefault((record["case"], record["check"]), []).append((i, record["observed"]))
    out = []
    if observed:
        out.append(f"# -- {stacks[0].impl}: fixtures/expectations/{stacks[0].impl.split(':')[0]}.toml\n")
    for (case, check), items in sorted(observed.items()):
        runs: list[list[Any]] = []  # [first index, last index, value]
        for i, value in items:
            if runs and runs[-1][1] == i - 1 and same(runs[-1][2], value):
                runs[-1][1] = i
            else:
                runs.append([i, i, value])
        for first, last, value in runs:
            lower = f">={stacks[first].version}"
            versions = lower if last + 1 == len(stacks) else f"{lower},<{stacks[last + 1].version}"
            record = {"case": case, "check": check, "observed": value, "only": [stacks[first].impl],
                      "versions": versions, "reason": "", "evidence": ""}
            span = stacks[first].label if first == last else f"{stacks[first].label} to {stacks[last].label}"
            out.append(f"# {span}\n" + tomli_w.dumps({"divergence": [record]}))
    return out
