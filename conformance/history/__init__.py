"""Behaviour history: every Keras release as a stack, fingerprinted, and read back offline.

A *stack* is a recipe: one Keras release (or the nightly) on one backend, with
the pinned requirements that install it, resolved as of the day the release
was published, in ``fixtures/history/<backend>.toml`` (the format:
``conformance.history.recipes``).  Each is fingerprinted in its own uv
environment; the timeline, diffs and release pages read the recorded
fingerprints and install nothing.

One module a job, each depending on the data model (``conformance.data.fingerprint``,
``conformance.data.target``) and on the modules above it here, never on another's
private helpers:

==================  ==========================================================
``recipes``         the stacks: loading, resolving and writing recipes
``environments``    building a stack's environment with uv; the suite's copy
``recording``       running the suite on each stack and recording fingerprints
``drafts``          draft expectation records from the recorded stacks
``model``           the timeline: per check, the runs of releases that agree
``attribution``     cross stacks: Keras's upgrade or the framework's?
``canary``          today's nightlies against the newest release
``view``            the timeline, release pages and show, as Markdown and HTML
``workflow``        the generated GitHub Actions workflow
``cli``             ``keras-conformance history ...``
==================  ==========================================================

The names below are what the rest of the suite uses, re-exported.
"""

from conformance.history.attribution import (  # noqa: F401
    FRAMEWORK_PACKAGES,
    KERAS_PACKAGES,
    MOVED_BY,
    attribution,
    cross_stack,
    cross_stack_in_environment,
)
from conformance.history.canary import (  # noqa: F401
    CanaryResult,
    canary,
    canary_failed,
    canary_report,
    newest_release,
    nightly_stacks,
    todays_nightly,
)
from conformance.history.drafts import merged_drafts  # noqa: F401
from conformance.history.environments import PACKAGE_ROOT, StackFailed, build, snapshot  # noqa: F401
from conformance.history.model import ABSENT, changes_by_release, predecessors, rows, timeline  # noqa: F401
from conformance.history.recipes import (  # noqa: F401
    BACKEND_REQUIREMENT,
    BACKENDS,
    FRAMEWORKS,
    HISTORY,
    SAME_MODULE,
    SUITE_REQUIREMENTS,
    HistoryError,
    Stack,
    impl_ids,
    load_stacks,
    requirement_name,
    resolve,
    resolve_recipe,
    select,
    uv_binary,
    write_stacks,
)
from conformance.history.recording import (  # noqa: F401
    DEFAULT_TIMEOUT,
    Outcome,
    draft_path,
    failures,
    fingerprint_path,
    fingerprint_stack,
    is_current,
    load,
    record,
    recorded,
    records_matching_no_stack,
    run,
    verdict_summary,
)
