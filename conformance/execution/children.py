"""Child processes that end with their parent.

The CLI runs pytest in child processes (one per implementation, per mutant,
per flake-hunting run).  An interrupt of the parent -- Ctrl-C, or SIGINT sent
to the parent alone -- must end every child, and the parent must wait for
it, so that no child goes on running, and writing, after the parent has
cleaned up.

``run`` is ``subprocess.run`` with that guarantee.  While the child is being
created, SIGINT is only recorded, and acted on once the parent holds the
child's handle: an interrupt cannot fall between the fork and that moment.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")

GRACE_SECONDS = 30.0  # how long an interrupted child may take to stop before it is killed

_live: set[subprocess.Popen] = set()
_lock = threading.Lock()


def _start(cmd: list[str], kwargs: dict[str, Any], started: list[subprocess.Popen]) -> subprocess.Popen:
    """Popen(cmd), appended to ``started`` and registered as live before any interrupt can be raised;
    an interrupt while it starts is re-raised once it is, so the caller's handler finds the child.

    Python delivers signals to the main thread only, so only there are they held off: SIGINT, and SIGTERM
    where a handler turns it into an interrupt (``keras-conformance``'s ``cli.terminated``). SIGINT is
    replaced even where it is ignored: a child started while it is ignored would ignore it too (an ignored
    signal stays ignored across exec), and SIGINT to the process group would not stop it.
    """
    on_main = threading.current_thread() is threading.main_thread()
    interrupted = []
    held = {}
    if on_main:
        for number in (signal.SIGINT, signal.SIGTERM):
            if number == signal.SIGINT or callable(signal.getsignal(number)):
                held[number] = signal.signal(number, lambda signum, frame: interrupted.append(signum))
    try:
        proc = subprocess.Popen(cmd, **kwargs)
        started.append(proc)
        with _lock:
            _live.add(proc)
    finally:
        for number, previous in held.items():
            signal.signal(number, previous)
    if interrupted:
        raise KeyboardInterrupt
    return proc


def _stop(proc: subprocess.Popen) -> None:
    """Terminate ``proc``, give it GRACE_SECONDS to finish, then kill it.

    SIGTERM, not SIGINT: the child's results are discarded anyway, and a
    Python child interrupted while still importing would print a traceback.
    (Ctrl-C in a terminal reaches the child directly, as SIGINT.)
    """
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.communicate(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def stop_all() -> None:
    """Terminate every child still running, wait GRACE_SECONDS, kill those left.

    For the main thread when it is interrupted while worker threads wait on
    children: each worker goes on draining its child's output.
    """
    with _lock:
        live = list(_live)
    for proc in live:
        if proc.poll() is None:
            proc.terminate()
    for proc in live:
        try:
            proc.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(cmd: list[str], *, capture_output: bool = False, timeout: float | None = None,
        **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, ...)``, with stdin closed, that never leaves the child running.

    On ``timeout`` the child is killed and ``subprocess.TimeoutExpired`` raised;
    on KeyboardInterrupt it is terminated and waited for, then the interrupt
    goes on.
    """
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    started: list[subprocess.Popen] = []  # the child, from the moment an interrupt could be raised
    try:
        proc = _start(cmd, kwargs, started)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    except KeyboardInterrupt:
        # wherever it was raised once the child exists: while it started, waiting for it, or in between
        for child in started:
            _stop(child)
        raise
    finally:
        with _lock:
            _live.difference_update(started)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def map_in_threads(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``list(map(fn, items))`` on ``workers`` threads, each of which may ``run`` children.

    On KeyboardInterrupt the items not yet started are cancelled and every child
    still running is stopped (``stop_all``) before the interrupt goes on.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        results = list(pool.map(fn, items))
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        raise
    pool.shutdown()
    return results


def tail(text: str, lines: int = 3) -> str:
    """The last ``lines`` non-empty lines of a child's output, joined with ' | ' into one line (500 characters
    at most): what a one-line error says of why a child failed."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[:500]
