"""The time limits of cases and grid entries (conformance.engine.limits): they stop Python code, without a signal."""

import time

import pytest

from conformance.engine import limits


class Stop(BaseException):
    pass


def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.parametrize("cpu", [False, True])
def test_a_loop_is_stopped_at_its_limit(cpu):
    start = time.monotonic()
    with pytest.raises(Stop):
        with limits.time_limit(0.2, Stop, cpu=cpu):
            spin(20)
    assert time.monotonic() - start < 5


def test_a_loop_that_swallows_exceptions_is_told_again():
    class Soft(Exception):
        pass

    swallowed = []
    with pytest.raises(Soft):
        with limits.time_limit(0.1, Soft, cpu=True):
            while len(swallowed) < 2:
                try:
                    spin(20)
                except Soft:
                    swallowed.append(True)
            spin(20)
    assert len(swallowed) == 2


def test_a_cpu_limit_counts_this_threads_cpu_time_not_the_wall_clock():
    with limits.time_limit(0.2, Stop, cpu=True):
        time.sleep(0.5)  # asleep: no CPU time passes


def test_code_that_returns_in_time_is_never_stopped_later():
    with limits.time_limit(0.05, Stop):
        pass
    spin(0.3)  # a Stop raised after the block would fail this test
    assert not limits.WATCHDOG.limits


def test_limits_nest():
    with pytest.raises(Stop):
        with limits.time_limit(30, KeyboardInterrupt):
            with limits.time_limit(0.1, Stop):
                spin(20)
    assert not limits.WATCHDOG.limits


def test_no_limit_for_none_or_zero():
    for seconds in (None, 0):
        with limits.time_limit(seconds, Stop):
            spin(0.05)
    assert not limits.WATCHDOG.limits
