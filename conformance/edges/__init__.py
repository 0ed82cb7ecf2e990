"""The edges of every argument: what Keras accepts, rejects and creates, recorded rather than judged.

For each public function and class of the four topics (``initializers.get``,
``regularizers.get``, ``constraints.get``, each initializer, regulariser and
constraint, each declared layer of :mod:`conformance.layers`), :mod:`.grid`
generates a fixed grid of calls at the edges of its arguments: every kind of
identifier (a documented string spelling, a class name, a dict config, the
class, an instance, a plain function, an array), numeric edges (zero, one,
negative, non-integer, very large, NaN), and seeds of every kind.  Each call is
an :class:`Entry`; its outcome (:func:`outcome`) is a short text:

- ``raises ValueError: <the first line of the message>``, memory addresses masked;
- ``returns a GlorotUniform {"seed": null}`` (an object with its config),
  ``returns float32 (3, 4)`` (an array: its dtype and shape, and ``not finite``
  or ``all zeros`` where that holds), ``returns 0.0304`` (a number, to 4
  significant digits), ``returns None``, ``returns the object given``;
- for a layer, ``accepts it; config: <what get_config() holds for the argument>``.

An outcome is recorded in the fingerprint as a check of kind ``outcome``,
which no verdict depends on, so that a change in what Keras accepts, rejects
or creates shows in ``history diff`` like any other.  Where the documentation
states the outcome (``get(None)`` returns None, each documented spelling gives
its class, two initializers with one integer seed draw the same values), the
entry carries it as ``documented``: a check, which a record may explain.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from conformance.engine.checks import error_text
from conformance.layers import DeclarationError

#: The length an outcome is cut to.
OUTCOME_LIMIT = 160
#: Seconds of CPU time a call may spend before it is stopped and recorded as not returning: every call of
#: the grid spends well under one and a half where it returns at all.
TIME_LIMIT = 6.0


class EdgeError(DeclarationError):
    """A grid entry that cannot be built (a required argument with no sample): one line naming it, which
    ``keras-conformance`` and the plugin report as they report an inconsistent declaration (exit status 2)."""


class Missing(Exception):
    """What an entry calls is not in this Keras (a class a release lacks, ``keras.random.SeedGenerator`` in
    Keras 2): its outcome is ``absent: <what>``."""


@dataclass(frozen=True)
class Entry:
    """One call of the grid: ``label`` is the call as a user would write it (``Dropout(rate=1.5)``);
    ``call(k)`` makes it with the adapter ``k`` (its Keras is ``k.keras``) and returns what it gave; ``documented`` is an ``fnmatch`` pattern of the
    outcome the documentation states (``"returns None"``), with ``source`` saying where, or ''."""

    label: str
    call: Callable[[Any], Any]
    documented: str = ""
    source: str = ""
    #: Turns what ``call`` returned into the outcome's text (``describe`` unless the entry says otherwise).
    describe: Callable[[Any], str] | None = None


def outcome(entry: Entry, k: Any, limit: float = TIME_LIMIT) -> str:
    """What ``entry``'s call gives with the adapter ``k``, as one line (see the module's docstring); a call
    still running after ``limit`` seconds is stopped, and its outcome is that it does not return."""
    from conformance.engine.runner import time_limit  # (conformance.cases imports this module)

    try:
        with time_limit(limit, Hung, cpu=True):  # CPU time: a busy machine does not stop a call that returns
            result = entry.call(k)
    except Hung:
        return f"does not return within {limit:g} s of CPU time"
    except Missing as exc:
        return f"absent: {exc} is not in this Keras"
    except Exception as exc:  # what Keras raises is the outcome
        return cut("raises " + clean(error_text(unwrapped(exc))))
    return cut((entry.describe or describe)(result))


class Hung(BaseException):
    """A call ran past its time limit (``TruncatedNormal(stddev=nan)`` on NumPy draws until none is NaN); a
    BaseException, so that no ``except Exception`` in Keras swallows it."""


class Wrapped(Exception):
    """An exception whose message is the line Keras 3 wraps in "Exception encountered when calling …"."""


def unwrapped(exc: BaseException) -> BaseException:
    """Keras 3 re-raises an error in ``call()`` as the same type with the message "Exception encountered when
    calling LSTM.call().", the error's own first line after it (in bold); that line is the outcome's."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    if lines and lines[0].startswith("Exception encountered when calling"):
        own = next((line for line in lines[1:] if line), "")
        wrapped = Wrapped(own)
        wrapped.__class__ = type(type(exc).__name__, (Wrapped,), {})
        return wrapped
    return exc


def clean(text: str) -> str:
    """A message without what changes from run to run or machine to machine: memory addresses, paths, and
    the order of a set of strings (Python's hash of a string is seeded per process), and TensorFlow's
    ``{{function_node …device:CPU:0}}`` prefix, which names the device."""
    text = re.sub(r" at 0x[0-9a-fA-F]+| at 0x…", "", text)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\{('[^']*'(?:, '[^']*')+)\}",
                  lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", text)
    text = re.sub(r"(?:/[^\s/:'\"]+)+/([^\s/:'\"]+\.py)", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def cut(text: str) -> str:
    return text if len(text) <= OUTCOME_LIMIT else text[:OUTCOME_LIMIT - 1] + "…"


def describe(result: Any) -> str:
    """``returns …``: what a call gave, in words that two runs of one stack give alike."""
    return "returns " + shown(result)


def shown(value: Any) -> str:
    if value is None or isinstance(value, (bool, str)):
        return json.dumps(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return number(float(value)) if isinstance(value, (float, np.floating)) else str(int(value))
    if isinstance(value, type):
        return f"the class {value.__name__}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return array_text(value)
    if hasattr(value, "get_config"):
        try:
            config = json.dumps(plain(value.get_config()), sort_keys=True)
        except Exception as exc:  # noqa: BLE001  (a config that cannot be read is its outcome)
            config = f"(get_config raises {type(exc).__name__})"
        return f"a {type(value).__name__} {config}"
    if callable(value):
        return f"a function {getattr(value, '__name__', type(value).__name__)}"
    return f"a {type(value).__name__}"


def number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def array_text(value: Any) -> str:
    """``float32 (3, 4)``, with ``not finite`` or ``all zeros`` where that holds; a 0-d array is its number."""
    try:
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    except Exception:  # noqa: BLE001  (a tensor NumPy cannot read: its dtype and shape say enough)
        return f"{dtype_text(value.dtype)} {tuple(value.shape)}"
    if arr.shape == () and arr.dtype.kind in "fiu":
        return f"{dtype_text(arr.dtype)} {number(float(arr))}"
    text = f"{dtype_text(arr.dtype)} {tuple(arr.shape)}"
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        text += ", not finite"
    elif arr.size and not arr.any():
        text += ", all zeros"
    return text


def dtype_text(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype)).replace("torch.", "").replace("<dtype: '", "").rstrip("'>")


def plain(value: Any) -> Any:
    """A config as JSON keeps it: floats to 4 significant digits, anything else as its class name."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return float(number(value)) if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, np.generic):
        return plain(value.item())
    return type(value).__name__


#: What an outcome said before a case was recorded on a side ("(not observed)" in the history, a diff).
NOT_OBSERVED = ("(not observed)", None)


def said(label: str, old: Any, new: Any) -> str:
    """A changed outcome as a person upgrading reads it: "`Dropout(rate=1.5)` no longer raises ValueError: …;
    now accepts it; config: 1.5", "`…` now raises …", or both sides where neither raises."""
    call = f"`{label}`"
    if old in NOT_OBSERVED:
        return f"{call} {new} (not called before)"
    if new in NOT_OBSERVED:
        return f"{call}: not called any more (it {old})"
    raised_old, raised_new = str(old).startswith("raises "), str(new).startswith("raises ")
    if raised_old and not raised_new:
        return f"{call} no longer {old}; now {new}"
    if raised_new and not raised_old:
        return f"{call} now {new} (before, it {old})"
    if raised_old and raised_new:
        old_type, new_type = str(old)[7:].split(":", 1)[0], str(new)[7:].split(":", 1)[0]
        if old_type == new_type:
            message = lambda v: str(v)[7:].split(":", 1)[-1].strip()  # noqa: E731
            return f"{call} raises {new_type} with another message: «{message(old)}» → «{message(new)}»"
        return f"{call} now {new} instead of {str(old)[7:]}"
    return f"{call} now {new} (before, it {old})"
