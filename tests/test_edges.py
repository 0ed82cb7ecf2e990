"""The edges of every argument: the grid's outcomes, its keys, its cases, and how selfcheck reads them."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from conformance import cases
from conformance.edges import EdgeError, Entry, Missing, outcome
from conformance.edges.grid import MODULES, class_entries, get_entries, key_for, layer_entries, unique_keys
from conformance.layers import all_layers
from conformance.quality.selfcheck import changed_outcomes

K = SimpleNamespace(keras=None)


def test_an_outcome_is_one_line_without_what_changes_between_runs():
    def raises():
        raise ValueError(f"Could not interpret {object()!r}\nfrom /usr/lib/python3/site-packages/keras/src/x.py")

    text = outcome(Entry("f()", lambda k: raises()), K)
    assert text.startswith("raises ValueError: Could not interpret <object object>") and "0x" not in text
    assert "\n" not in text
    assert outcome(Entry("g()", lambda k: (_ for _ in ()).throw(Missing("keras.random.SeedGenerator"))), K) == \
        "absent: keras.random.SeedGenerator is not in this Keras"


def test_tensorflows_device_prefix_is_left_out_of_a_message():
    def raises():
        raise ValueError("{{function_node __wrapped__SelectV2_device_/job:localhost/replica:0/task:0/device:GPU:0}} "
                         "condition [2,5,1], then [2,3,5]")

    assert outcome(Entry("f()", lambda k: raises()), K) == "raises ValueError: condition [2,5,1], then [2,3,5]"


@pytest.mark.parametrize("result, said", [
    (None, "returns null"),
    (np.zeros((3, 4), np.float32), "returns float32 (3, 4), all zeros"),
    (np.array([1.0, np.nan], np.float32), "returns float32 (2,), not finite"),
    (np.float32(0.0304349), "returns 0.03043"),
    (np.array(6.5454545, np.float32), "returns float32 6.545"),
    (dict, "returns the class dict"),
])
def test_what_a_call_returned_is_said_in_words_two_runs_give_alike(result, said):
    assert outcome(Entry("f()", lambda k: result), K) == said


def test_an_object_is_said_with_its_config_rounded():
    class Initializer:
        def get_config(self):
            return {"stddev": 0.05000000074505806, "seed": None}

    assert outcome(Entry("f()", lambda k: Initializer()), K) == 'returns a Initializer {"seed": null, "stddev": 0.05}'


@pytest.mark.parametrize("a, b", [("get('l1')", "get('L1')"), ("get('L1')", "get(L1)"), ("Dropout(seed=1)", "Dropout(seed=-1)"),
                                  ("Dropout(rate='0.5')", "Dropout(rate=0.5)")])
def test_calls_that_differ_get_different_check_keys(a, b):
    assert key_for(a) != key_for(b)


def test_two_entries_with_one_key_fail_in_one_line_naming_both():
    entries = [Entry("Dropout(rate=1)", lambda k: 0), Entry("Dropout(rate=1)", lambda k: 0)]
    with pytest.raises(EdgeError, match=r"^edges-x: the grid entries Dropout\(rate=1\) and Dropout\(rate=1\) share"):
        unique_keys(entries, "edges-x")


def test_a_required_argument_without_a_sample_fails_at_collection_in_one_line():
    decl = next(d for d in all_layers() if d.slug == "dropout")
    broken = object.__new__(type(decl))  # past the declaration's own validation, as a hand-made one would be
    for f in dataclasses.fields(decl):
        object.__setattr__(broken, f.name, getattr(decl, f.name))
    object.__setattr__(broken, "args", {})
    with pytest.raises(EdgeError, match="^layer declaration dropout: argument rate is required and has no sample"):
        layer_entries(broken)


def test_every_function_class_and_declared_layer_has_its_grid_case():
    ids = {c.id for c in cases.all_cases()}
    for module, (_, classes) in MODULES.items():
        assert f"edges-{module}-get" in ids
        assert len(classes) == sum(c.startswith(f"edges-{module}-") for c in ids) - 1
    for d in all_layers():
        assert f"edges-layer-{d.slug}" in ids
        entries = layer_entries(d)
        assert entries and len(unique_keys(entries, d.slug)) == len(entries)
        assert [e.label for e in entries] == [e.label for e in layer_entries(d)]  # fixed values, fixed order
    kinds = {e.label.split("(", 1)[1] for e in get_entries("initializers")}
    assert {"'glorot_uniform')", "GlorotUniform)", "GlorotUniform())", "None)", "custom_initializer)",
            "np.ones(3))"} <= kinds


def test_an_attention_layer_is_called_with_masks_of_every_dtype_rank_and_length():
    by_slug = {d.slug: d for d in all_layers()}
    for slug, argument in (("multi-head-attention", "attention_mask"), ("attention", "value_mask")):
        labels = [e.label for e in layer_entries(by_slug[slug])]
        masks = [label.split(f"with {argument}=", 1)[1] for label in labels if f"with {argument}=" in label]
        assert masks[:2] == ["int32", "float32"] and "all False" in masks and len(masks) == 6, masks
    with pytest.raises(Exception, match="attention_mask: 'key_mask' is neither"):
        dataclasses.replace(by_slug["multi-head-attention"], attention_mask="key_mask")


def test_a_class_grid_is_read_from_its_constructor():
    import inspect

    class RandomThing:
        def __init__(self, stddev=0.05, mode="fan_in", seed=None):
            pass

    labels = [e.label for e in class_entries("initializers", "RandomThing", inspect.signature(RandomThing.__init__))]
    assert labels[0] == "RandomThing()(shape=(3, 4))"
    assert "RandomThing(stddev=nan)(shape=(3, 4))" in labels and "RandomThing(mode='FAN_IN')(shape=(3, 4))" in labels
    assert "RandomThing(seed=SeedGenerator(1))(shape=(3, 4))" in labels
    assert "two RandomThing(seed=1), each called for (3, 4)" in labels


def test_selfcheck_counts_a_changed_recorded_outcome_as_a_kill():
    before = {("edges-layer-dropout", "Dropout(rate=1.5)"): "raises ValueError: Invalid value",
              ("edges-layer-dropout", "Dropout(rate=0)"): "accepts it; config: 0.0"}
    after = dict(before) | {("edges-layer-dropout", "Dropout(rate=1.5)"): "accepts it; config: 1.5"}
    assert changed_outcomes(before, after) == [
        "edges-layer-dropout: Dropout(rate=1.5) gave raises ValueError: Invalid value, now accepts it; config: 1.5"]
    assert changed_outcomes(before, before) == []


def test_a_set_in_a_message_is_said_in_one_order_whatever_the_hash_seed():
    def raises(order):
        raise ValueError(f"Invalid `mode` argument: x. Please use one of {{{order}}}")

    texts = {outcome(Entry("f()", lambda k, o=o: raises(o)), K)
             for o in ("'fan_out', 'fan_in', 'fan_avg'", "'fan_avg', 'fan_out', 'fan_in'")}
    assert texts == {"raises ValueError: Invalid `mode` argument: x. Please use one of {'fan_avg', 'fan_in', 'fan_out'}"}


def test_keras_3s_wrapped_call_error_is_said_by_its_own_first_line():
    def raises():
        raise IndexError("Exception encountered when calling LSTM.call().\n\n\x1b[1mlist assignment index out of "
                         "range\x1b[0m\n\nArguments received by LSTM.call():\n  • mask=tf.Tensor(shape=(5,))")

    assert outcome(Entry("f()", lambda k: raises()), K) == "raises IndexError: list assignment index out of range"


def test_a_call_that_does_not_return_is_stopped_and_said_so():
    def forever():
        while True:
            pass

    assert outcome(Entry("f()", lambda k: forever()), K, limit=0.2) == "does not return within 0.2 s of CPU time"
    assert outcome(Entry("g()", lambda k: 1), K, limit=0.2) == "returns 1"  # and the timer is off again


@pytest.mark.parametrize("old, new, sentence", [
    ("raises ValueError: Invalid value received for argument `rate`.", "accepts it; config: 1.5",
     "`Dropout(rate=1.5)` no longer raises ValueError: Invalid value received for argument `rate`.; "
     "now accepts it; config: 1.5"),
    ("accepts it; config: 1.5", "raises ValueError: Invalid value",
     "`Dropout(rate=1.5)` now raises ValueError: Invalid value (before, it accepts it; config: 1.5)"),
    ("raises ValueError: old words", "raises ValueError: new words",
     "`Dropout(rate=1.5)` raises ValueError with another message: «old words» → «new words»"),
    ("raises TypeError: x", "raises ValueError: y", "`Dropout(rate=1.5)` now raises ValueError: y instead of TypeError: x"),
    ("(not observed)", "accepts it; config: 1.5", "`Dropout(rate=1.5)` accepts it; config: 1.5 (not called before)"),
])
def test_a_changed_outcome_reads_as_what_an_upgrade_changes(old, new, sentence):
    from conformance.edges import said

    assert said("Dropout(rate=1.5)", old, new) == sentence


def test_a_diff_says_a_changed_outcome_in_words_in_markdown_and_html():
    from conformance.data import diffreport, fingerprint

    def fp(value):
        check = {"name": "Dropout(rate=1.5)", "key": "dropout-rate-1.5", "kind": "outcome", "expected": "(recorded)",
                 "observed": value, "passed": True}
        result = {"id": "edges-layer-dropout", "topic": "layer", "description": "d", "status": "pass",
                  "checks": [check], "notes": {}}
        return {"format": fingerprint.FORMAT, "format_version": fingerprint.FORMAT_VERSION,
                "environment": {"impl": "keras3:jax", "keras": "3.0.0"}, "surface": {},
                "cases": {"edges-layer-dropout": fingerprint.case_entry(result)}}

    d = fingerprint.diff(fp("raises ValueError: Invalid value"), fp("accepts it; config: 1.5"))
    md, page = diffreport.render(d, "md"), diffreport.render(d, "html")
    assert "- `Dropout(rate=1.5)` no longer raises ValueError: Invalid value; now accepts it; config: 1.5" in md
    assert "<li><code>Dropout(rate=1.5)</code> no longer raises ValueError: Invalid value; now accepts it" in page


def test_the_command_line_reports_a_grid_entry_that_cannot_be_built_in_one_line_and_exit_2(monkeypatch, capsys):
    from conformance import cli

    def broken():
        raise EdgeError("layer declaration dropout: argument rate is required and has no sample value in args")

    monkeypatch.setattr(cases, "all_cases", broken)
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument rate is required" in err and "Traceback" not in err


def test_a_layers_config_is_recorded_without_how_it_is_serialized():
    from conformance.edges.grid import unserialized

    held = {"class_name": "L2", "config": {"l2": 0.01}, "module": "keras.src.regularizers", "registered_name": None}
    assert unserialized(held) == {"class_name": "L2", "config": {"l2": 0.01}}
    assert unserialized({"module": "kept: not a serialized object"}) == {"module": "kept: not a serialized object"}
