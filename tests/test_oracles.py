"""The NumPy float64 oracles against hand-computed values and simulation."""

import numpy as np
import pytest

from conformance.cases.helpers import dropout_distribution
from conformance.engine import oracles


def test_dense_is_matmul_plus_bias():
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]])
    assert oracles.dense(x, w, [1.0, 1.0, 1.0]).tolist() == [[2.0, 3.0, 9.0]]


def test_batchnorm_inference_formula():
    # (6 - 0) / sqrt(1 + 1e-3) * 1 + 0, the notebook's BatchNormalization cell.
    assert oracles.batchnorm_inference(6.0, 1.0, 0.0, 0.0, 1.0, 1e-3) == pytest.approx(5.997001499)
    # gamma, beta, mean and variance all take part.
    assert oracles.batchnorm_inference(5.0, 2.0, 1.0, 1.0, 3.0, 1.0) == pytest.approx(2.0 * 4.0 / 2.0 + 1.0)


def test_penalties_by_hand():
    w = np.array([[1.0, -2.0], [3.0, -4.0]])
    assert oracles.l1_penalty(w, 0.1) == pytest.approx(1.0)
    assert oracles.l2_penalty(w, 0.1) == pytest.approx(3.0)  # no factor 1/2
    assert oracles.l1_l2_penalty(w, 0.1, 0.1) == pytest.approx(4.0)


def test_mse():
    assert oracles.mean_squared_error([[1.0, 3.0]], [[0.0, 0.0]]) == pytest.approx(5.0)


def test_notebook_dropout_distribution():
    values, probs = dropout_distribution()
    assert probs.sum() == pytest.approx(1.0)
    mean, _ = oracles.distribution_moments(values, probs)
    assert mean == pytest.approx(23100.0)  # inverted dropout keeps the mean: Σ j(450+10j)
    # The notebook printed 39280: it must be one of the outputs, and the no-dropout 23100 not.
    assert oracles.on_lattice(np.array([39280.0, 0.0, 23100.0]), values).tolist() == [True, True, False]
    # P(output = 0) = 1/2 (second dropout) + 1/2 · P(no unit j>0 kept) = 1/2 + 1/2 · 2**-9.
    assert probs[values == 0.0][0] == pytest.approx(0.5 + 0.5 * 2.0**-9)


def test_dropout_distribution_matches_simulation():
    """The enumeration agrees with a direct NumPy simulation of the two masks."""
    rng = np.random.default_rng(0)
    h = np.array([1.0, 2.0, 5.0])
    w = np.array([3.0, -1.0, 0.5])
    values, probs = oracles.dense_dropout_dense_dropout(h, w, 0.25, 0.5)
    n = 200_000
    m1 = rng.random((n, 3)) >= 0.25
    m2 = rng.random(n) >= 0.5
    sims = (m1 * h * w).sum(axis=1) / 0.75 * m2 / 0.5
    assert oracles.on_lattice(sims, values).all()
    sim_probs = np.array([np.mean(np.isclose(sims, v)) for v in values])
    assert np.abs(sim_probs - probs).max() < 0.01


def test_on_lattice_tolerance_and_single_value():
    assert oracles.on_lattice(np.array([1.0, 1.0 + 1e-9, 1.1]), np.array([1.0])).tolist() == [True, True, False]


def test_alpha_dropout_keeps_unit_variance_and_matches_simulation():
    rate = 0.2
    m2, m4 = oracles.alpha_dropout_moments(rate)
    assert m2 == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=400_000)
    keep = rng.random(x.size) >= rate
    a, b = oracles.alpha_dropout_affine(rate)
    y = a * np.where(keep, x, oracles.ALPHA_PRIME) + b
    assert y.mean() == pytest.approx(0.0, abs=0.01)
    assert np.mean(y**4) == pytest.approx(m4, rel=0.02)
