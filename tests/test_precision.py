"""The dtype arithmetic behind the dtype axis: epsilons, rounding, errors in eps, buckets, and the
goodness-of-fit test against a distribution rounded to a 16-bit dtype."""

import math

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

from conformance.engine import oracles
from conformance.engine.checks import Checks
from conformance.engine.precision import (
    POLICIES,
    bucket,
    eps,
    error_in_eps,
    grid,
    policy_needs,
    round_to,
    rounded_cdf,
    rounded_error_in_eps,
)


def test_epsilons_are_the_documented_ones():
    assert (eps("float16"), eps("bfloat16"), eps("float32"), eps("float64")) == (2**-10, 2**-7, 2**-23, 2**-52)


def test_policies_name_their_variable_and_compute_dtypes_and_what_they_need():
    assert (POLICIES["mixed_float16"].variable, POLICIES["mixed_float16"].compute) == ("float32", "float16")
    assert policy_needs("float32") == () and policy_needs("mixed_bfloat16") == ("bfloat16",)


def test_rounding_overflows_to_inf_and_rounds_to_nearest():
    assert round_to(65504.0, "float16") == 65504.0 and math.isinf(round_to(9e4, "float16"))
    assert round_to(1 + 2**-11 + 2**-20, "float16") == 1 + 2**-10
    assert round_to(1.0 / 0.7, "bfloat16") == 1.4296875


def test_error_in_eps_is_normwise_and_relative_to_the_scale_given():
    assert error_in_eps([1 + 2**-23], [1.0], "float32") == pytest.approx(1.0)
    assert error_in_eps([2.0 + 2**-22], [2.0], "float32", scale=1.0) == pytest.approx(2.0)
    assert math.isinf(error_in_eps([np.nan], [1.0], "float32")) and math.isinf(error_in_eps([1, 2], [1], "float32"))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_float32_result_rounded_once_is_within_budget_and_one_computed_in_16_bits_is_not(dtype):
    """BatchNormalization's normalisation of inputs 10⁴ + 100·N(0, 1): terms of about 10², outputs of about 1."""
    x = round_to(1e4 + 100 * np.random.default_rng(0).normal(size=4096), dtype)
    expected = (x - x.mean()) / x.std()
    scale = float(np.max((np.abs(x) + abs(x.mean())) / x.std()))
    in_float32 = (x.astype(np.float32) - np.float32(x.mean())) / np.float32(x.std())
    assert rounded_error_in_eps(round_to(in_float32, dtype), expected, dtype, scale) <= 0.5 + 1e-3
    mean_in_16_bits = round_to(np.mean(x), dtype)  # the mean itself rounded to the 16-bit dtype: half a step off
    in_16_bits = round_to((x - mean_in_16_bits) / x.std(), dtype)
    assert mean_in_16_bits != x.mean() and rounded_error_in_eps(in_16_bits, expected, dtype, scale) > 1.5
    # the normwise measure relative to the terms would not see it
    assert error_in_eps(in_16_bits, expected, dtype, scale) < 1.5


def test_outputs_far_below_the_terms_are_measured_against_the_float32_arithmetic_floor():
    # an output of 1e-6 from terms of 1: float32 arithmetic errs by up to 16·2⁻²³ there, beyond an eps of
    # float16 of the output, so it is measured relative to the floor 16·2⁻²³/2⁻¹⁰ = 2⁻⁹ instead
    assert rounded_error_in_eps([1e-6 + 8 * 2**-23], [1e-6], "float16", scale=1.0) == pytest.approx(0.5, rel=1e-3)
    assert rounded_error_in_eps([1.0 + 2**-11], [1.0], "float16") == pytest.approx(0.5)
    assert math.isinf(rounded_error_in_eps([np.inf], [1.0], "float16"))


def test_buckets_are_powers_of_two_above_the_error():
    assert [bucket(e) for e in (0.2, 0.7, 1.0, 3.0, 88.0, math.inf)] == [
        "≤ 0.5 eps", "≤ 1 eps", "≤ 1 eps", "≤ 4 eps", "≤ 128 eps", "not finite"]


def test_the_grid_holds_every_finite_value_once():
    g = grid("float16")  # 2¹⁶ patterns, less 2·2¹⁰ with the top exponent (inf, NaN) and one of the two zeros
    assert g.size == 2**16 - 2 * 2**10 - 1 and g[-1] == 65504.0 and np.all(np.diff(g) > 0)
    values, cdf = rounded_cdf(stats.uniform(0, 1).cdf, "bfloat16")
    assert cdf[-1] == 1.0 and cdf[np.searchsorted(values, 0.5)] == pytest.approx(0.5 + 2**-9)  # the midpoint to the next bfloat16, 0.5 + 2⁻⁸


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_draws_rounded_to_the_dtype_pass_and_a_coarse_lattice_fails(dtype):
    rng = np.random.default_rng(0)
    uniform = stats.uniform(-0.1, 0.2)
    npdtype = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    checks = Checks()
    assert checks.fit_in_dtype("rounded", rng.uniform(-0.1, 0.1, 50_000).astype(npdtype), uniform, dtype,
                               alpha=1e-8, target="U")
    # What TensorFlow's and JAX's bfloat16 uniforms are: 128 equally spaced values, rounded.
    lattice = -0.1 + 0.2 * np.floor(rng.uniform(0, 1, 50_000) * 128) / 128
    assert not checks.fit_in_dtype("lattice", round_to(lattice, dtype), uniform, dtype, alpha=1e-8, target="U")
    assert not checks.fit_in_dtype("off the grid", np.full(10, 0.1234567), uniform, dtype, alpha=1e-8, target="U")


def test_float32_draws_are_tested_against_the_distribution_itself():
    checks = Checks()
    draws = np.random.default_rng(1).normal(0, 1, 50_000).astype(np.float32)
    assert checks.fit_in_dtype("n", draws, stats.norm(0, 1), "float32", alpha=1e-8, target="N")
    assert "KS test" in checks.items[0].how


def test_batchnorm_error_scale_is_the_size_of_the_terms():
    x = np.array([[5.0], [5.0]])
    assert oracles.batchnorm_error_scale(x, [2.0], [1.0], [5.0], [0.0], 1e-2) == pytest.approx(2 * 10 / 0.1 + 1)
