"""Keras's upgrade or the framework's? Cross stacks, and what moved each change of a release."""

from __future__ import annotations

from conformance.data import fingerprint
from conformance.data.schema import Attributed, Fingerprint, Timeline
from conformance.history.model import ABSENT, changes_by_release, rows
from conformance.history.recipes import HistoryError, Stack, requirement_name

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


def attribution(tl: Timeline, index: int, cross: Fingerprint) -> list[Attributed]:
    """For each change at the timeline's ``index``-th release, its value on the cross stack (that release's
    Keras on the release before's framework; ``cross`` is its fingerprint) and what moved it: 'the framework'
    where the cross stack
    keeps the old value (Keras's upgrade alone changes nothing), 'Keras' where it has the new one, 'both
    together' where it has neither."""
    case_rows = rows(cross)
    out: list[Attributed] = []
    for change in changes_by_release(tl)[tl["releases"][index]]:
        kind = tl["cases"][change["case"]]["checks"][change["key"]]["kind"]
        row = case_rows.get(change["case"], {"checks": {}})["checks"].get(change["key"])
        value = row[1] if row else ABSENT
        keeps_old = fingerprint.same_value(kind, change["old"], value)
        has_new = fingerprint.same_value(kind, change["new"], value)
        out.append(Attributed(**change, cross=value, moved_by=MOVED_BY[keeps_old, has_new]))
    return out
