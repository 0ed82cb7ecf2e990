"""The layer zoo: declarations checked at collection, the templates' cases, and the references themselves."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conformance import cases
from conformance.engine.expectations import Record
from conformance.layers import REQUIRED, DeclarationError, Layer, Sample, Weight, all_layers, leading_axes_fans
from conformance.layers import references as ref

PRELU = dict(slug="prelu-test", cls="PReLU", topic="layer",
             arguments={"alpha_initializer": "zeros", "alpha_regularizer": None, "alpha_constraint": None},
             args={}, weights=(Weight("alpha", lambda a, s: s[1:], "zeros", "alpha_initializer", "alpha_regularizer",
                                      "alpha_constraint", fans=None),),
             samples=(Sample("default", (4, 6)),), output_shape=lambda a, s: s, reference=ref.prelu)


def test_every_declaration_is_consistent_and_unique():
    layers = all_layers()
    assert len({d.slug for d in layers}) == len(layers) >= 30
    for d in layers:
        assert d.defined_at.startswith("conformance/layers/zoo.py:"), d.slug
        assert d.samples, f"{d.slug} has no sample"


def test_the_templates_generate_the_cases_of_every_declared_layer():
    ids = {c.id for c in cases.all_cases()}
    for d in all_layers():
        assert f"layer-{d.slug}-documented-defaults" in ids
        assert f"layer-{d.slug}-config-round-trip" in ids
        if d.weights:
            assert f"layer-{d.slug}-initial-weights" in ids
        if d.reference is not None:
            assert {f"layer-{d.slug}-forward-{s.name}" for s in d.samples if s.name != "init"} <= ids
    generated = [c for c in cases.all_cases() if c.template.startswith("layer-{slug}-")]
    assert len(generated) > 400
    assert all(c.defined_at.startswith("conformance/layers/zoo.py:") and c.source == "layers" for c in generated)


def test_a_consistent_declaration_passes():
    Layer(**PRELU)


@pytest.mark.parametrize("change, field", [
    ({"args": {"alpha_init": "ones"}}, "args: 'alpha_init' is not an argument of PReLU (arguments)"),
    ({"weights": (Weight("alpha", lambda a, s: s[1:], "zeros", "alpha_init"),)},
     "weight alpha: 'alpha_init' is not an argument of PReLU (arguments)"),
    ({"weights": (Weight("alpha", lambda a, s: s[1:], "glorot_uniform", "alpha_initializer", fans=None),)},
     "weight alpha: its default glorot_uniform scales with fans, but it has no fan rule (fans)"),
    ({"output_shape": lambda a, s: (s[0], 1)}, "reference: gives shape (4, 6) on sample default, output_shape says (4, 1)"),
    ({"arguments": {**PRELU["arguments"], "shared_axes": REQUIRED}}, "args: the required argument 'shared_axes' has no value"),
    ({"dropout": (), "seed": True}, "seed: 'seed' is not an argument of it (arguments)"),
])
def test_an_inconsistent_declaration_fails_in_one_line_naming_the_layer_and_the_field(change, field):
    with pytest.raises(DeclarationError) as raised:
        Layer(**{**PRELU, **change})
    message = str(raised.value)
    assert "\n" not in message
    assert message == f"layer declaration prelu-test (PReLU), {field}"


def test_conv_transpose_reference_is_the_adjoint_of_conv():
    """<conv(x), y> = <x, conv_transpose(y)> for one kernel: the two references agree with each other."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 2, 4, 5))  # (kh, kw, in, out) for conv; (kh, kw, filters, in) for the transpose
    x = rng.normal(size=(2, 7, 6, 4))
    args = {"strides": 2, "dilation_rate": 1}
    y = ref.conv(x, {"kernel": kernel}, args)
    u = rng.normal(size=y.shape)
    back = ref.conv_transpose(u, {"kernel": kernel}, args)
    # the transpose's output is as long as the inputs that produced y: crop or pad x to it
    x_used = x[:, :back.shape[1], :back.shape[2]]
    assert np.isclose(np.sum(y * u), np.sum(x_used * back))


def test_conv_reference_matches_numpy_correlate_for_one_channel():
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=12), rng.normal(size=4)
    out = ref.conv(x.reshape(1, 12, 1), {"kernel": k.reshape(4, 1, 1)}, {})
    assert np.allclose(out.ravel(), np.correlate(x, k, mode="valid"))
    same = ref.conv(x.reshape(1, 12, 1), {"kernel": k.reshape(4, 1, 1)}, {"padding": "same"})
    assert np.allclose(same.ravel(), np.correlate(np.pad(x, (1, 2)), k, mode="valid"))


def test_lstm_reference_with_a_masked_tail_stops_at_the_last_unmasked_step():
    rng = np.random.default_rng(2)
    w = {"kernel": rng.normal(size=(3, 8)), "recurrent_kernel": rng.normal(size=(2, 8)), "bias": rng.normal(size=8)}
    x = rng.normal(size=(1, 5, 3))
    mask = np.array([[True, True, True, False, False]])
    assert np.allclose(ref.lstm(x, w, {}, mask=mask), ref.lstm(x[:, :3], w, {}))


def test_einsum_fans_count_the_contracted_and_the_output_axes():
    assert leading_axes_fans(1)((128, 8, 32)) == (128.0, 256.0)
    assert leading_axes_fans(2)((8, 32, 128)) == (256.0, 128.0)


def test_a_record_pattern_covers_the_cases_it_names():
    record = Record("divergence", "layer-*-regularizers", "r", "e", "keras3", "keras3.toml", check="error")
    assert record.covers("layer-conv2d-regularizers") and not record.covers("layer-conv2d-constraints")
    exact = dataclasses.replace(record, case="layer-conv2d-regularizers")
    assert exact.covers("layer-conv2d-regularizers") and not exact.covers("layer-conv1d-regularizers")


def test_the_command_line_reports_an_inconsistent_declaration_in_one_line_and_exit_2(monkeypatch, capsys):
    from conformance import cli

    def broken():
        raise DeclarationError("layer declaration prelu (PReLU), weight alpha: 'alpha_init' is not an argument of PReLU")

    monkeypatch.setattr(cases, "all_cases", broken)
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layer declaration prelu (PReLU)" in err and "Traceback" not in err


def test_a_config_round_trip_records_what_the_clone_keeps_not_how_the_config_is_written():
    from conformance.cases.layers import config_differences

    written = {"dtype": {"class_name": "FloatDTypePolicy", "config": {"name": "float32"}}, "rate": 0.25}
    assert config_differences(written, dict(written)) == {}  # however Keras writes it, a kept config is {}
    assert config_differences({"rate": 0.25, "seed": 77}, {"rate": 0.5}) == {
        "rate": [0.25, 0.5], "seed": [77, "<absent>"]}


@pytest.mark.parametrize("original, clone, said", [
    ([0.015, 0.02], [0.015, 0.02 * (1 + 1e-7)], "the original's"),
    ([0.015, 0.02, 0.01875], [0.015, 0.01875], "2 where the original has 3"),
    ([0.015, 0.02], [0.015, 0.03], "1 of 2 differ"),
    ([], [], "the original's"),
])
def test_the_clones_penalties_are_said_against_the_originals(original, clone, said):
    """In words, so that a release that rescales every penalty (activity penalties divided by the batch size
    from 3.14) does not change the round trip's record when the clone still matches."""
    from conformance.cases.layers import penalties_against

    assert penalties_against(original, clone) == said
    assert penalties_against([10 * p for p in original], [10 * p for p in clone]) == said


@pytest.mark.parametrize("error, compute, said", [
    (3.0, "float64", "within"),
    (64.0, "float64", "within"),
    (4e8, "float64", "float32's precision"),  # 4e8 eps of float64 is 0.8 eps of float32
    (2e13, "float64", "≤ 35184372088832 eps of float64"),  # beyond float32 too
    (100.0, "bfloat16", "≤ 128 eps of bfloat16"),  # a one-pass variance's cancellation
    (100.0, "float32", "≤ 128 eps of float32"),
    (float("inf"), "float64", "not finite"),
])
def test_a_policy_output_beyond_its_budget_is_recorded_as_the_precision_it_carries(error, compute, said):
    """A category, not the measured error: the same Keras on another CPU records the same value."""
    from conformance.cases.layers import precision_carried

    assert precision_carried(error, compute) == said
