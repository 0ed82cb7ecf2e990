"""The history's recipes: every Keras release as a stack, with the pinned requirements that install it.

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

``resolve_recipe`` makes a new one with ``uv pip compile --exclude-newer``;
``write_stacks`` writes them back.  Building a stack's environment is
``conformance.history.environments``; recording it, ``recording``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from conformance import FIXTURES
from conformance.backends import impls
from conformance.data.files import FixtureError, read_toml, write_atomic
from conformance.execution import children

HISTORY = FIXTURES / "history"
BACKENDS = ("jax", "tensorflow", "torch")
#: What the suite needs in a stack's environment besides the stack itself (the suite is on PYTHONPATH).
SUITE_REQUIREMENTS = ("pytest>=8", "packaging", "tomli-w", "scipy", "ml-dtypes", "matplotlib")  # matplotlib: the notebook


#: A distribution, and another that installs the same module: a stack with the first never gets the second.
SAME_MODULE = {"keras-nightly": "keras"}


def uv_file_option(directory: Path, option: str, lines: tuple[str, ...] | list[str]) -> list[str]:
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




#: What each backend adds to Keras in a recipe of ``history add``.  torch: its CPU build, from a find-links or
#: index that serves it (export UV_FIND_LINKS or UV_INDEX); a bare `torch` is the multi-GB CUDA build.
BACKEND_REQUIREMENT = {spec.backend: spec.recipe_requirement for spec in impls.IMPLS.values() if spec.recipe_requirement}
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
        excludes = uv_file_option(Path(tmp), "--excludes", [other for package, other in SAME_MODULE.items() if package in names])
        proc = subprocess.run(cmd + excludes, input=wanted + "\n", capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise HistoryError(f"cannot resolve {' '.join(requirements)} as of {released}: {children.tail(proc.stderr, 1)}")
    pins = [line.strip() for line in proc.stdout.splitlines() if line.strip() and not line.startswith("#")]
    short = {"jax": "jax", "tensorflow": "tf", "torch": "torch"}[backend]
    return Stack(name or f"keras-{keras}-{short}", backend, keras, released, tuple(pins), implementation=impl)


def write_stacks(stacks: list[Stack], backend: str = "jax", directory: Path = HISTORY) -> Path:
    """Write the recipes of ``backend`` (sorted by Keras version) to ``<directory>/<backend>.toml``."""
    import tomli_w

    header = (f"# The {backend} history: one recipe per Keras release (conformance/history/recipes.py).\n"
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
