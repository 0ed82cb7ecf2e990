"""The Checks recorder: comparisons that can fail, and a statistical test with a known false-alarm rate."""

import numpy as np

from conformance.engine.checks import Checks, summarise


def test_equal_and_close_record_pass_and_fail():
    c = Checks()
    assert c.equal("same", [1, 2], (1, 2))
    assert not c.equal("different", 3, 4)
    assert c.close("near", [1.0], [1.0 + 1e-8], rtol=1e-6)
    assert not c.close("far", [1.0], [1.1], rtol=1e-6)
    assert not c.close("shape", [1.0, 2.0], [1.0], rtol=1)
    assert [x.name for x in c.failed] == ["different", "far", "shape"]
    assert "max abs error" in c.items[3].how


def test_duplicate_names_are_refused():
    c = Checks()
    c.equal("x", 1, 1)
    try:
        c.equal("x", 1, 1)
    except ValueError as exc:
        assert "duplicate" in str(exc)
    else:
        raise AssertionError("a duplicate check name was accepted")


def test_z_test_accepts_the_truth_and_rejects_a_ten_percent_error():
    rng = np.random.default_rng(1)
    samples = rng.normal(10.0, 2.0, 20_000)
    c = Checks()
    assert c.z_test("true mean", samples.mean(), samples.size, 10.0, 2.0, alpha=1e-6)
    assert not c.z_test("mean off by 10%", 1.1 * samples.mean(), samples.size, 10.0, 2.0, alpha=1e-6)


def test_summarise_rounds_arrays_and_keeps_plain_values():
    assert summarise(np.float32(0.1)) == 0.1
    assert summarise(np.array([[1.0, 2.0]], dtype=np.float32)) == [[1.0, 2.0]]
    assert summarise({"a": (1, "x")}) == {"a": [1, "x"]}


def test_error_text_masks_addresses():
    from conformance.engine.checks import error_text

    exc = ValueError("Received: regularizer=<function f at 0x7ff90bebcf40>\nmore")
    assert error_text(exc) == "ValueError: Received: regularizer=<function f at 0x…>"
    assert error_text(KeyError()) == "KeyError"


def test_equal_is_exact_for_floats_and_rounds_only_what_it_shows():
    checks = Checks()
    assert not checks.equal("ten digits", 1.0, 1.0000000001)
    assert not checks.equal("float32 tenth", 0.1, np.float32(0.1))
    assert not checks.equal("array", [1.0, 2.0], np.array([1.0, 2.0 + 1e-12]))
    assert checks.equal("same array", (1.0, 2.0), np.array([1.0, 2.0]))
    assert checks.items[0].observed == 1.0000000001  # where rounding would hide the difference, every digit shows
    assert checks.items[1].observed == 0.10000000149011612
    assert checks.equal("long float", 1 / 3, 1 / 3) and checks.items[-1].observed == 0.3333333  # else rounded
