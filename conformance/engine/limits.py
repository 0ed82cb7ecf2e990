"""Time limits that stop Python code without a signal.

A limit is watched by one daemon thread per process. When a limited thread passes its deadline (of wall
time, or of that thread's own CPU time), the watchdog raises the limit's exception in it with
``PyThreadState_SetAsyncExc``, which the interpreter raises between two bytecodes of that thread, as it
would a ``KeyboardInterrupt``. A call stuck inside a native function is stopped when that function returns.

No signal is used, on purpose: a signal handler runs on the thread's alternate signal stack and interrupts
whatever native code is running, and an interval timer's signal arriving during a loop of NumPy calls
crashed OpenVINO's worker processes (``TruncatedNormal(stddev=nan)``, which draws until none is NaN).
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass
from typing import Callable

#: How often a stopped thread that swallowed the exception (a bare ``except``) is told again, in seconds.
REPEAT = 1.0


@dataclass(eq=False)
class _Limit:
    thread: int
    clock: Callable[[], float]
    deadline: float
    stop: type[BaseException]
    told: float | None = None  # when the exception was last raised in ``thread`` (monotonic)


class _Watchdog:
    """The one thread that watches every limit of this process."""

    def __init__(self) -> None:
        self.limits: list[_Limit] = []
        self.changed = threading.Condition()
        self.thread: threading.Thread | None = None

    def add(self, limit: _Limit) -> None:
        with self.changed:
            self.limits.append(limit)
            if self.thread is None or not self.thread.is_alive():  # (a forked child has no watchdog thread)
                self.thread = threading.Thread(target=self.watch, name="conformance-time-limits", daemon=True)
                self.thread.start()
            self.changed.notify()

    def remove(self, limit: _Limit) -> None:
        with self.changed:
            if limit in self.limits:
                self.limits.remove(limit)
            if limit.told is not None:  # raised but perhaps not yet delivered: withdraw it
                raise_in(limit.thread, None)

    def watch(self) -> None:
        with self.changed:
            while True:
                wait = None
                for limit in self.limits:
                    left = limit.deadline - limit.clock()
                    now = time.monotonic()
                    if left <= 0 and (limit.told is None or now - limit.told >= REPEAT):
                        raise_in(limit.thread, limit.stop)
                        limit.told = now
                    # a thread's CPU clock runs no faster than the wall clock: ``left`` wall seconds is the
                    # soonest the deadline can pass
                    next_look = max(left, 0.0) if limit.told is None else REPEAT
                    wait = next_look if wait is None else min(wait, next_look)
                self.changed.wait(None if wait is None else max(wait, 0.005))


WATCHDOG = _Watchdog()


def raise_in(thread: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in the thread ``thread`` at its next bytecode (None withdraws one not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exc) if exc else None)


class time_limit:
    """Raise ``stop`` in this thread once ``seconds`` have passed: of wall time, or with ``cpu`` of this
    thread's CPU time, which a busy machine does not make pass faster. ``seconds`` None or 0: no limit."""

    def __init__(self, seconds: float | None, stop: type[BaseException], cpu: bool = False) -> None:
        self.limit: _Limit | None = None
        if not seconds:
            return
        thread = threading.get_ident()
        clock: Callable[[], float]
        if cpu:
            clock_id = time.pthread_getcpuclockid(thread)

            def clock() -> float:
                return time.clock_gettime(clock_id)
        else:
            clock = time.monotonic
        self.limit = _Limit(thread, clock, clock() + seconds, stop)

    def __enter__(self) -> None:
        if self.limit is not None:
            WATCHDOG.add(self.limit)

    def __exit__(self, *exc_info: object) -> None:
        while self.limit is not None:
            try:
                WATCHDOG.remove(self.limit)
                return
            except self.limit.stop:  # the deadline passed as the limited code returned: it returned in time
                continue
