"""Behaviour history: every Keras release as a stack, fingerprinted, and read back offline.

A *stack* is a recipe: one Keras release (or the nightly) on one backend, with
the pinned requirements that install it on Python 3.11, resolved as of the
day the release was published (``uv pip compile --exclude-newer``), so that
each release runs with the JAX and NumPy of its time.  Recipes are data, in
``fixtures/history/<backend>.toml``::

    [[stack]]
    name = "keras-3.4.1-jax"
    keras = "3.4.1"                      # or "nightly"
    released = "2024-06-26"              # the resolution date of its requirements
    requirements = ["keras==3.4.1", "jax==0.4.30", "jaxlib==0.4.30", "numpy==1.26.4", ...]
    note = "what the release's metadata forgets, if anything"

``run`` builds each stack's environment with uv, runs the suite there (the
suite is put on ``PYTHONPATH``, not installed, so one checkout serves every
stack) and writes its fingerprint to ``<history>/<backend>/<stack>.json``,
recording the recipe's digest: a stack already fingerprinted with the same
recipe is skipped.  ``timeline``, ``diff`` and ``show`` read only those
fingerprints, so they answer without installing anything.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from packaging.version import InvalidVersion, Version

from conformance import FIXTURES, children, fingerprint, surface
from conformance import timeline as timeline_view
from conformance.files import FixtureError, read_toml, write_atomic

HISTORY = FIXTURES / "history"
BACKENDS = ("jax", "tensorflow", "torch")
#: What the suite needs in a stack's environment besides the stack itself (the suite is on PYTHONPATH).
SUITE_REQUIREMENTS = ("pytest>=8", "packaging", "tomli-w", "scipy", "ml-dtypes", "matplotlib")  # matplotlib: the notebook
DEFAULT_TIMEOUT = 900.0
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the directory that holds conformance/


#: A distribution, and another that installs the same module: a stack with the first never gets the second.
SAME_MODULE = {"keras-nightly": "keras"}


def _uv_file_option(directory: Path, option: str, lines: tuple[str, ...] | list[str]) -> list[str]:
    """uv's ``option`` (``--excludes``, ``--override``) for ``lines``, written as a file in ``directory``; or []."""
    if not lines:
        return []
    path = directory / f"{option.strip('-')}.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return [option, str(path)]


def requirement_name(requirement: str) -> str:
    """The distribution a pinned requirement names, as pins compare it: 'jax[cpu]==0.4.30' → 'jax'."""
    return requirement.split("==")[0].split("[")[0].strip().lower()


class HistoryError(FixtureError):
    """Bad input for the history (an unknown release, a corrupt recipe or history file); one line."""


@dataclass(frozen=True)
class Stack:
    """One recipe: a Keras release on a backend, with the requirements that install it."""

    name: str
    backend: str
    keras: str  # a release, or "nightly"
    released: str
    requirements: tuple[str, ...]
    note: str = ""
    implementation: str = ""  # the recipe's ``impl``: "keras2" for Keras 2 stacks; default keras3:<backend>
    follows: str = ""  # the stack its users upgrade from, where that is not the one before it (``predecessors``)
    overrides: tuple[str, ...] = ()  # pins that win over what other packages require (uv's --override); cross stacks

    @property
    def impl(self) -> str:
        """The implementation the suite runs on this stack (``--impl``)."""
        return self.implementation or f"keras3:{self.backend}"

    @property
    def digest(self) -> str:
        """Identifies the recipe (with what the suite adds): a stack is re-run when either changes."""
        parts = [self.backend, sorted(self.requirements), SUITE_REQUIREMENTS]
        if self.implementation:
            parts.append(self.implementation)
        if self.overrides:
            parts.append(sorted(self.overrides))
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    @property
    def framework(self) -> str:
        """The backend framework and its pinned version, as the history shows it: 'JAX 0.4.20',
        'TensorFlow 2.13.1', 'tf-nightly 2.23.0.dev20261026'."""
        for package, name in FRAMEWORKS[self.backend]:
            if self.pinned(package):
                return f"{name} {self.pinned(package)}"
        return ""

    @property
    def version(self) -> Version:
        """The Keras version it installs, for ordering (the nightly's dev version sorts after the releases)."""
        for package in ("tf-keras", "keras-nightly", "keras"):  # tf_keras stacks also install Keras 3
            if self.pinned(package):
                return Version(self.pinned(package))
        return Version(self.keras)

    @property
    def label(self) -> str:
        """How the history shows it: the Keras version ('2.13' for a Keras 2 bundled with TensorFlow,
        'tf-keras-2.16' for tf_keras), 'nightly (3.16.0.dev…)' for a nightly."""
        return f"{self.keras} ({self.version})" if self.keras.endswith("nightly") else self.keras

    @property
    def excludes(self) -> tuple[str, ...]:
        """Distributions never installed in this stack: those that ship the same module as one it pins
        (tensorflow-cpu requires ``keras``, whose files would replace keras-nightly's)."""
        return tuple(other for package, other in SAME_MODULE.items() if self.pinned(package))

    def pinned(self, package: str) -> str:
        """The version the recipe pins ``package`` to, or ''."""
        for req in self.requirements:
            if requirement_name(req) == package:
                return req.partition("==")[2]
        return ""


def load_stacks(backend: str = "jax", directory: Path = HISTORY) -> list[Stack]:
    """The recipes of ``backend``, oldest release first; a malformed file is one line."""
    if backend not in BACKENDS:
        raise HistoryError(f"no history for backend {backend!r}; there is: {', '.join(BACKENDS)}")
    path = directory / f"{backend}.toml"
    data = read_toml(path, HistoryError)
    stacks = []
    for n, entry in enumerate(data.get("stack", []), start=1):
        missing = [key for key in ("name", "keras", "released", "requirements") if key not in entry]
        if missing:
            raise HistoryError(f"{path.name} stack #{n}: missing {', '.join(missing)}")
        extra = set(entry) - {"name", "keras", "released", "requirements", "note", "impl", "follows"}
        if extra:
            raise HistoryError(f"{path.name} stack #{n}: unknown key(s) {sorted(extra)}")
        stack = Stack(entry["name"], backend, str(entry["keras"]), str(entry["released"]),
                      tuple(entry["requirements"]), " ".join(str(entry.get("note", "")).split()),
                      str(entry.get("impl", "")), str(entry.get("follows", "")))
        if stack.impl not in impl_ids():
            raise HistoryError(f"{path.name} stack {stack.name}: no implementation is called {stack.impl!r}")
        try:
            _ = stack.version
        except InvalidVersion:
            raise HistoryError(f"{path.name} stack {stack.name}: {stack.keras!r} is not a version") from None
        stacks.append(stack)
    names = [s.name for s in stacks]
    if len(set(names)) != len(names):
        raise HistoryError(f"{path.name}: a stack name is used twice")
    stacks.sort(key=lambda s: s.version)
    order = {s.name: i for i, s in enumerate(stacks)}
    for i, stack in enumerate(stacks):
        if stack.follows and order.get(stack.follows, i) >= i:
            where = "no stack" if stack.follows not in order else "a stack that does not come before it"
            raise HistoryError(f"{path.name} stack {stack.name}: follows {stack.follows!r}, {where}")
    return stacks


def impl_ids() -> set[str]:
    from conformance import impls

    return set(impls.IMPLS)


def resolve(name: str, stacks: list[Stack]) -> Stack:
    """The stack a user means by ``name``: a stack name, a Keras version ('3.13.2') or 'nightly'."""
    for stack in stacks:
        if name in (stack.name, stack.keras):
            return stack
    known = ", ".join(s.keras for s in stacks)
    raise HistoryError(f"no stack is called {name!r} (releases: {known})")


def select(stacks: list[Stack], pattern: str | None) -> list[Stack]:
    """The stacks whose name or Keras version matches the shell-style ``pattern`` (all when None)."""
    if not pattern:
        return stacks
    chosen = [s for s in stacks if fnmatch.fnmatchcase(s.name, pattern) or fnmatch.fnmatchcase(s.keras, pattern)]
    if not chosen:
        raise HistoryError(f"no stack matches {pattern!r}")
    return chosen


# -- Recording ---------------------------------------------------------------------------------


def fingerprint_path(history: Path, stack: Stack) -> Path:
    return history / stack.backend / f"{stack.name}.json"


def draft_path(history: Path, stack: Stack) -> Path:
    """Where a stack's unexpected results are kept as skeleton records (see ``merged_drafts``)."""
    return history / stack.backend / "drafts" / f"{stack.name}.toml"


def recorded(history: Path, stack: Stack) -> dict[str, Any] | None:
    """The stack's recorded fingerprint, or None; a corrupt one is an error."""
    path = fingerprint_path(history, stack)
    if not path.exists():
        return None
    try:
        return fingerprint.load(path)
    except fingerprint.FingerprintError as exc:
        raise HistoryError(str(exc)) from None


def is_current(history: Path, stack: Stack) -> bool:
    fp = recorded(history, stack)
    return fp is not None and fp["environment"].get("recipe") == stack.digest


def uv_binary() -> str:
    """The uv executable (the ``uv`` package's, else one on PATH)."""
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise HistoryError("the history needs uv: pip install uv (or keras-conformance[history])")


class StackFailed(Exception):
    """A stack did not build or did not give complete results; the message says why, in one line."""


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[:500]


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
                 [uv, "pip", "install", "-q", "--python", str(python), *_uv_file_option(Path(tmp), "--excludes", stack.excludes),
                  *_uv_file_option(Path(tmp), "--override", stack.overrides), *stack.requirements,
                  *SUITE_REQUIREMENTS]]
        for cmd in steps:
            proc = children.run(cmd, capture_output=True, timeout=1800)
            if proc.returncode != 0:
                raise StackFailed(f"{' '.join(cmd[1:3])} failed: {_tail(proc.stderr.decode(errors='replace'))}")
    marker.write_text(stack.digest)
    return python


def snapshot(directory: Path) -> Path:
    """A copy of the suite (the package and its fixtures) in ``directory``, so that every stack of a run
    runs the same suite, whatever happens to the source meanwhile; the root to put on PYTHONPATH."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "history")
    shutil.copytree(PACKAGE_ROOT / "conformance", directory / "conformance", ignore=ignore)
    shutil.copytree(FIXTURES, directory / "conformance" / "fixtures", ignore=ignore, dirs_exist_ok=True)
    return directory


def fingerprint_stack(stack: Stack, python: Path, timeout: float, root: Path = PACKAGE_ROOT,
                      draft: Path | None = None) -> dict[str, Any]:
    """Run the suite (the package under ``root``) on the stack's environment; its fingerprint, with the
    recipe's digest.  With ``draft``, also the skeleton expectation records of its unexpected results."""
    suite_file = root / "conformance" / "suite.py"
    with tempfile.TemporaryDirectory(prefix=f"history-{stack.name}-") as tmp:
        json_path = Path(tmp) / "run.json"
        cmd = [str(python), "-m", "pytest", str(suite_file), "-p", "conformance.plugin", "--impl", stack.impl,
               "--conformance-json", str(json_path), "-q", "--no-header", "-p", "no:cacheprovider",
               "--import-mode=importlib", "--rootdir", tmp]
        if draft is not None:
            cmd += ["--draft-expectations", str(draft.resolve())]
        fixtures = root / "conformance" / "fixtures" if root != PACKAGE_ROOT else FIXTURES
        env = dict(os.environ, PYTHONPATH=str(root), CONFORMANCE_FIXTURES=str(fixtures), PYTHONDONTWRITEBYTECODE="1")
        env.pop("CONFORMANCE_IMPL", None)
        try:
            proc = children.run(cmd, capture_output=True, timeout=timeout, cwd=tmp, env=env)
        except subprocess.TimeoutExpired:
            raise StackFailed(f"the suite ran past the stack's time limit of {timeout:g} s") from None
        if not json_path.exists():
            out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
            raise StackFailed(f"the suite gave no complete results (exit status {proc.returncode}): {_tail(out)}")
        run = json.loads(json_path.read_text())
    fp = fingerprint.from_run(run)
    fp["environment"] |= {"stack": stack.name, "recipe": stack.digest}
    return fp


@dataclass
class Outcome:
    stack: Stack
    status: str  # recorded | skipped | failed
    detail: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def record(stack: Stack, history: Path, envs: Path, timeout: float, force: bool = False,
           root: Path = PACKAGE_ROOT) -> Outcome:
    """Build, fingerprint and record one stack; a failure is an Outcome, never an exception."""
    if not force and is_current(history, stack):
        return Outcome(stack, "skipped", "already recorded with this recipe")
    times = {}
    try:
        start = time.monotonic()
        python = build(stack, envs)
        times["build"] = time.monotonic() - start
        start = time.monotonic()
        draft = draft_path(history, stack)
        draft.parent.mkdir(parents=True, exist_ok=True)
        fp = fingerprint_stack(stack, python, timeout, root, draft)
        times["suite"] = time.monotonic() - start
        if "[[divergence]]" not in draft.read_text():
            draft.unlink()
    except StackFailed as exc:
        return Outcome(stack, "failed", str(exc), times)
    path = fingerprint_path(history, stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, fingerprint.dumps(fp))
    return Outcome(stack, "recorded", verdict_summary(fp), times)


def verdict_summary(fp: dict[str, Any]) -> str:
    """'101 pass, 10 divergence, 1 fail': how many of a fingerprint's cases ended in each verdict."""
    from conformance.verdict import STATUSES

    statuses = [entry["status"] for entry in fp["cases"].values()]
    return ", ".join(f"{statuses.count(s)} {s}" for s in STATUSES if s in statuses)


def run(stacks: list[Stack], history: Path, envs: Path, jobs: int, timeout: float, force: bool,
        report: Callable[[str], None]) -> list[Outcome]:
    """Record every stack, ``jobs`` at a time; failures are recorded in ``<backend>/failed.json``."""
    outcomes: list[Outcome] = []
    history, envs = history.resolve(), envs.resolve()
    with tempfile.TemporaryDirectory(prefix="keras-conformance-suite-") as tmp, \
            concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        root = snapshot(Path(tmp))
        futures = {pool.submit(record, s, history, envs, timeout, force, root): s for s in stacks}
        try:
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                outcomes.append(outcome)
                took = ", ".join(f"{k} {v:.0f} s" for k, v in outcome.seconds.items())
                report(f"[{len(outcomes)}/{len(stacks)}] {outcome.stack.name}: {outcome.status}"
                       + (f" ({took})" if took else "") + (f": {outcome.detail}" if outcome.detail else ""))
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            children.stop_all()
            raise
    for backend in {s.backend for s in stacks}:
        path = history / backend / "failed.json"
        failed = json.loads(path.read_text()) if path.exists() else {}
        for o in outcomes:
            if o.stack.backend != backend:
                continue
            if o.status == "failed":
                failed[o.stack.name] = {"recipe": o.stack.digest, "error": o.detail}
            else:
                failed.pop(o.stack.name, None)
        if failed:
            write_atomic(path, json.dumps(failed, indent=1, sort_keys=True) + "\n")
        else:
            path.unlink(missing_ok=True)
    order = {s.name: i for i, s in enumerate(stacks)}
    return sorted(outcomes, key=lambda o: order[o.stack.name])


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

    from conformance.expectations import same

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


def records_matching_no_stack(history: Path, stacks: list[Stack]) -> list[Any]:
    """The expectation records for the stacks' implementations that apply to none of the recorded stacks
    on the CPU (records for another implementation or device are not judged)."""
    from conformance import expectations

    ran = []  # (implementation, variant, Keras version, environment) of each recorded stack
    for stack in stacks:
        fp = recorded(history, stack)
        if fp is not None:
            version, _, variant = str(fp["environment"].get("keras", "")).partition(" ")
            ran.append((stack.impl, variant.strip("()") or "keras", version or str(stack.version),
                        fp["environment"]))
    if not ran:
        return []
    impls_run = {impl for impl, _, _, _ in ran}
    out = []
    for r in expectations.load_all():
        mine = [impl for impl in impls_run if impl.split(":")[0] == r.family]
        if not mine or (r.only and not any(impl in r.only for impl in mine)
                        and not any(variant in r.only for _, variant, _, _ in ran)):
            continue
        if r.devices and "cpu" not in r.devices:
            continue
        if not any(r.applies_to(impl, variant, version, "cpu", env) for impl, variant, version, env in ran):
            out.append(r)
    return out


def failures(history: Path, backend: str) -> dict[str, dict[str, str]]:
    path = history / backend / "failed.json"
    return json.loads(path.read_text()) if path.exists() else {}


# -- Reading ------------------------------------------------------------------------------------


def load(history: Path, backend: str, stacks: list[Stack]) -> list[tuple[Stack, dict[str, Any]]]:
    """Every recorded stack of ``backend`` with its fingerprint, oldest first."""
    out = []
    for stack in stacks:
        fp = recorded(history, stack)
        if fp is not None:
            out.append((stack, fp))
    if not out:
        raise HistoryError(f"nothing is recorded for {backend} in {history / backend}; "
                           f"run: keras-conformance history run --backend {backend}")
    return out


def rows(fp: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A fingerprint as rows: each case, and each surface class as ``surface-<Class>``, with its checks'
    values keyed by check key (``verdict`` first)."""
    out = {}
    for case_id, entry in fp["cases"].items():
        checks = {"verdict": ("exact", entry["status"], "verdict")}
        for key, value in entry.get("behaviour", {}).items():
            checks[key] = (value["kind"], value["value"], value.get("label", key))
        out[case_id] = {"topic": entry["topic"], "description": entry["description"], "checks": checks}
    for name, entry in fp.get("surface", {}).items():
        topic, cls = name.split("/")
        checks = {key: ("exact", value, label) for key, (label, value) in surface.checks_of(entry).items()}
        out[f"surface-{cls}"] = {"topic": topic, "description": f"the public surface of {cls}", "checks": checks}
    return out


ABSENT = "(not observed)"


def predecessors(stacks: list[Stack]) -> list[int | None]:
    """For each stack of an ordered list, the index of the stack its users upgrade from, what a release page
    compares it with: the one it ``follows`` (Keras 3.0.5 on TensorFlow 2.16 follows Keras 2.15 on TensorFlow
    2.15, not the tf_keras releases that sort between them), else the one before it; None for the first,
    and where the stack it follows is not in the list."""
    index = {s.name: i for i, s in enumerate(stacks)}
    return [index.get(s.follows) if s.follows else (i - 1 if i else None) for i, s in enumerate(stacks)]


def timeline(recorded_stacks: list[tuple[Stack, dict[str, Any]]]) -> dict[str, Any]:
    """Per case and check, the runs of releases over which the observed value is the same.

    Values compare as the fingerprint diff compares them (numbers within ``NUMERIC_RTOL``,
    statistical checks by consistency only).  A case's ``changed_in`` lists the releases at
    which anything about it differs from the release it follows (``previous``: see ``predecessors``).
    """
    releases = [s.label for s, _ in recorded_stacks]
    previous = predecessors([s for s, _ in recorded_stacks])
    per_release = [rows(fp) for _, fp in recorded_stacks]
    case_ids = sorted({c for r in per_release for c in r}, key=lambda c: (c.startswith("surface-"), c))
    cases = {}
    for case_id in case_ids:
        present = [r.get(case_id) for r in per_release]
        first = next(p for p in present if p)
        keys = list(dict.fromkeys(k for p in present if p for k in p["checks"]))
        checks = {}
        for key in keys:
            values = [(p["checks"][key] if p and key in p["checks"] else ("exact", ABSENT, key)) for p in present]
            runs: list[dict[str, Any]] = []
            for i, (kind, value, _label) in enumerate(values):
                if runs and fingerprint._same(kind, runs[-1]["value"], value):
                    runs[-1]["last"] = i
                else:
                    runs.append({"first": i, "last": i, "value": value})
            checks[key] = {"label": values[-1][2], "kind": values[-1][0], "runs": runs}
        case = {"topic": first["topic"], "description": first["description"], "checks": checks}
        changed = [i for i in range(len(releases)) if timeline_view.changes_at({"previous": previous}, case, i)]
        cases[case_id] = case | {"changed_in": [releases[i] for i in changed]}
    return {"backend": recorded_stacks[0][0].backend, "releases": releases, "previous": previous,
            "stacks": [{"name": s.name, "keras": s.keras, "label": s.label, "released": s.released,
                        "framework": s.framework, "impl": s.impl, "environment": fp["environment"]} for s, fp in recorded_stacks],
            "cases": cases}


def changes_by_release(tl: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """For each release, every check whose value differs from the release it follows: case, check, old, new."""
    out: dict[str, list[dict[str, Any]]] = {r: [] for r in tl["releases"]}
    for i, release in enumerate(tl["releases"]):
        for case_id, case in tl["cases"].items():
            out[release] += [{"case": case_id, "topic": case["topic"], **change}
                             for change in timeline_view.changes_at(tl, case, i)]
    return out


# -- Recipes ------------------------------------------------------------------------------------

#: What each backend adds to Keras in a recipe of ``history add``.  torch: its CPU build, from a find-links or
#: index that serves it (export UV_FIND_LINKS or UV_INDEX); a bare `torch` is the multi-GB CUDA build.
BACKEND_REQUIREMENT = {"jax": "jax[cpu]", "tensorflow": "tensorflow-cpu", "torch": "torch==2.13.0+cpu"}
#: The packages that name a stack's backend framework (the first one pinned), and how the history says it.
FRAMEWORKS = {"jax": (("jax", "JAX"),), "torch": (("torch", "PyTorch"),),
              "tensorflow": (("tensorflow-cpu", "TensorFlow"), ("tensorflow", "TensorFlow"),
                             ("tf-nightly", "tf-nightly"), ("tf-nightly-cpu", "tf-nightly"))}


def resolve_recipe(keras: str, released: str, backend: str = "jax", requirements: list[str] | None = None,
                   impl: str = "", name: str = "", as_of: str = "") -> Stack:
    """A new recipe: ``keras`` (a release, or 'nightly' for the newest keras-nightly) with the backend,
    every requirement pinned as ``uv pip compile`` resolves them from the packages published before the
    day after ``released`` (YYYY-MM-DD; ``as_of`` instead, where the backend is newer than the release, as
    torch's CPU build is here), for Python 3.11.  ``requirements`` replaces what is resolved (Keras and the
    backend) for other stacks: Keras 2 bundled with TensorFlow, tf_keras, tf-nightly."""
    import datetime

    for option, text in (("released", released), ("as of", as_of)):
        try:
            if text:
                datetime.date.fromisoformat(text)
        except ValueError:
            raise HistoryError(f"{option} {text!r} is not a date such as 2024-06-26") from None
    day = datetime.date.fromisoformat(as_of or released)
    if requirements is None:
        requirements = ["keras-nightly" if keras == "nightly" else f"keras=={keras}", BACKEND_REQUIREMENT[backend]]
    cmd = [uv_binary(), "pip", "compile", "-", "-q", "--no-header", "--no-annotate", "--python-version", "3.11",
           "--exclude-newer", (day + datetime.timedelta(days=1)).isoformat()]
    wanted = "\n".join(requirements)
    names = [requirement_name(r) for r in requirements]
    with tempfile.TemporaryDirectory(prefix="keras-conformance-recipe-") as tmp:
        excludes = _uv_file_option(Path(tmp), "--excludes", [other for package, other in SAME_MODULE.items() if package in names])
        proc = subprocess.run(cmd + excludes, input=wanted + "\n", capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise HistoryError(f"cannot resolve {' '.join(requirements)} as of {released}: {_tail(proc.stderr, 1)}")
    pins = [line.strip() for line in proc.stdout.splitlines() if line.strip() and not line.startswith("#")]
    short = {"jax": "jax", "tensorflow": "tf", "torch": "torch"}[backend]
    return Stack(name or f"keras-{keras}-{short}", backend, keras, released, tuple(pins), implementation=impl)


def write_stacks(stacks: list[Stack], backend: str = "jax", directory: Path = HISTORY) -> Path:
    """Write the recipes of ``backend`` (sorted by Keras version) to ``<directory>/<backend>.toml``."""
    import tomli_w

    header = (f"# The {backend} history: one recipe per Keras release (conformance/history.py).\n"
              "# Each stack's requirements are what `uv pip compile` resolved from the packages published\n"
              "# before the day after its release, for Python 3.11; add one with\n"
              f"#   keras-conformance history add VERSION --released YYYY-MM-DD --backend {backend}\n\n")
    entries = [{"name": s.name, "keras": s.keras, "released": s.released,
                **({"impl": s.implementation} if s.implementation else {}),
                **({"follows": s.follows} if s.follows else {}), "requirements": list(s.requirements),
                **({"note": s.note} if s.note else {})} for s in sorted(stacks, key=lambda s: s.version)]
    path = directory / f"{backend}.toml"
    write_atomic(path, header + tomli_w.dumps({"stack": entries}, multiline_strings=True))
    return path


# -- Keras's upgrade or the framework's? ------------------------------------------------------------

#: The packages that make up each backend's framework: what a cross stack takes from the older stack.
FRAMEWORK_PACKAGES = {
    "jax": ("jax", "jaxlib"),
    "torch": ("torch",),
    "tensorflow": ("tensorflow-cpu", "tensorflow", "tf-nightly", "tf-nightly-cpu", "tensorboard",
                   "tensorboard-data-server", "tensorflow-io-gcs-filesystem", "tensorflow-estimator"),
}


#: The distributions that are Keras itself, whichever variant a stack installs.
KERAS_PACKAGES = ("keras", "keras-nightly", "tf-keras")


def _framework_pins(new: Stack, old: Stack) -> tuple[str, ...]:
    """``old``'s pins of the framework's packages; one line where ``new`` runs on the same framework."""
    taken = tuple(r for r in old.requirements if requirement_name(r) in FRAMEWORK_PACKAGES[new.backend])
    if new.framework == old.framework or not taken:
        raise HistoryError(f"{old.label} and {new.label} run on the same framework ({new.framework or 'none pinned'}): "
                           "what changed between them is Keras's")
    return taken


def cross_stack(new: Stack, old: Stack) -> Stack:
    """``new``'s recipe on ``old``'s framework: its requirements with the framework's packages
    (``FRAMEWORK_PACKAGES``) pinned as ``old`` pins them, everything else as ``new`` has it."""
    framework = FRAMEWORK_PACKAGES[new.backend]
    taken = _framework_pins(new, old)
    kept = tuple(r for r in new.requirements if requirement_name(r) not in framework)
    return Stack(f"{new.name}-on-{old.name}", new.backend, new.keras, new.released, kept + taken,
                 implementation=new.implementation)


def cross_stack_in_environment(new: Stack, old: Stack) -> Stack:
    """``new``'s Keras in ``old``'s whole environment, where ``cross_stack`` cannot be installed (the framework's
    own pins conflict with ``new``'s): every package as ``old`` pins it, those ``old`` lacks as ``new`` pins them,
    and ``new``'s Keras installed over any pin the framework has on Keras (TensorFlow 2.15 requires its bundled
    Keras 2; Keras's install guide has its users reinstall Keras 3 after it)."""
    _framework_pins(new, old)  # the same framework: one line
    keras = tuple(r for r in new.requirements if requirement_name(r) in KERAS_PACKAGES)
    theirs = {requirement_name(r) for r in old.requirements}
    added = tuple(r for r in new.requirements if requirement_name(r) not in theirs and r not in keras)
    environment = tuple(r for r in old.requirements if requirement_name(r) not in KERAS_PACKAGES)
    return Stack(f"{new.name}-in-{old.name}", new.backend, new.keras, new.released, keras + added + environment,
                 implementation=new.implementation, overrides=keras)


#: What a cross stack's value says of a change: which upgrade alone reproduces it.
MOVED_BY = {(True, False): "the framework", (False, True): "Keras", (False, False): "both together",
            (True, True): "undecided"}


def attribution(tl: dict[str, Any], index: int, cross: dict[str, Any]) -> list[dict[str, Any]]:
    """For each change at the timeline's ``index``-th release, its value on the cross stack (that release's
    Keras on the release before's framework; ``cross`` is its fingerprint) and what moved it: 'the framework'
    where the cross stack
    keeps the old value (Keras's upgrade alone changes nothing), 'Keras' where it has the new one, 'both
    together' where it has neither."""
    case_rows = rows(cross)
    out = []
    for change in changes_by_release(tl)[tl["releases"][index]]:
        kind = tl["cases"][change["case"]]["checks"][change["key"]]["kind"]
        row = case_rows.get(change["case"], {"checks": {}})["checks"].get(change["key"])
        value = row[1] if row else ABSENT
        keeps_old = fingerprint._same(kind, change["old"], value)
        has_new = fingerprint._same(kind, change["new"], value)
        out.append(change | {"cross": value, "moved_by": MOVED_BY[keeps_old, has_new]})
    return out


# -- The nightly canary ---------------------------------------------------------------------------


def nightly_stacks(stacks: list[Stack]) -> list[Stack]:
    """The stacks of nightly builds: keras-nightly on a released backend, and tf-nightly."""
    return [s for s in stacks if s.keras.endswith("nightly")]


def newest_release(stacks: list[Stack], impl: str) -> Stack:
    """The newest released (not nightly) stack of ``impl``: what the next release is compared with."""
    released = [s for s in stacks if s.impl == impl and not s.keras.endswith("nightly")]
    if not released:
        raise HistoryError(f"no released stack of {impl} to compare the nightly with")
    return released[-1]


def todays_nightly(stack: Stack, today: str) -> Stack:
    """``stack``'s recipe re-resolved as of ``today``: the newest keras-nightly (and tf-nightly) that exist."""
    if stack.keras == "tf-nightly":
        wanted = ["tf-nightly", "keras-nightly"]
    else:
        wanted = ["keras-nightly", BACKEND_REQUIREMENT[stack.backend]]
    return resolve_recipe(stack.keras, today, stack.backend, wanted, stack.implementation, stack.name)


@dataclass
class CanaryResult:
    nightly: Stack
    release: Stack
    diff: dict[str, Any] | None  # None: the nightly did not build or run
    error: str = ""


def canary(stacks: list[Stack], history: Path, envs: Path, today: str, timeout: float,
           report: Callable[[str], None]) -> list[CanaryResult]:
    """Fingerprint today's nightlies and diff each against the newest release's recorded fingerprint."""
    results = []
    with tempfile.TemporaryDirectory(prefix="keras-conformance-suite-") as tmp:
        root = snapshot(Path(tmp))
        for stack in nightly_stacks(stacks):
            release = newest_release(stacks, stack.impl)
            old = recorded(history, release)
            if old is None:
                raise HistoryError(f"{release.name} is not recorded in {history / release.backend}; "
                                   f"run: keras-conformance history run --backend {release.backend} "
                                   f"--stacks {release.keras}")
            try:
                fresh = todays_nightly(stack, today)
                report(f"{fresh.name}: {fresh.label} on {fresh.framework}, against {release.label}")
                new = fingerprint_stack(fresh, build(fresh, envs / "canary"), timeout, root)
            except (StackFailed, HistoryError) as exc:
                results.append(CanaryResult(stack, release, None, str(exc)))
                continue
            results.append(CanaryResult(fresh, release, fingerprint.diff(old, new)))
    return results


def canary_report(results: list[CanaryResult], fmt: str, today: str = "") -> str:
    """The canary's findings: per nightly, what changes from the newest release (md or json)."""
    if fmt == "json":
        return json.dumps([{"date": today, "nightly": r.nightly.name, "label": r.nightly.label, "framework": r.nightly.framework,
                            "release": r.release.label, "error": r.error, "diff": r.diff} for r in results],
                          indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    out = ["# Nightly canary: what the next release will change", ""]
    if today:
        out += [f"The newest nightlies as of {today} (`keras-conformance history canary`), each against the newest "
                "release's recorded fingerprint.", ""]
    for r in results:
        head = f"## {r.nightly.label} on {r.nightly.framework}, against {r.release.label}"
        if r.diff is None:
            out += [head, "", f"**Did not run**: {r.error}", ""]
            continue
        body = fingerprint.render(r.diff, "md").split("\n", 1)[1].lstrip("\n")  # its own title dropped
        out += [head, "", "\n".join("#" + line if line.startswith("#") else line for line in body.split("\n"))]
    return "\n".join(out)


def canary_failed(results: list[CanaryResult]) -> bool:
    """The nightly changes a behaviour, or a nightly could not be checked."""
    return any(r.diff is None or fingerprint.has_changes(r.diff) for r in results)
