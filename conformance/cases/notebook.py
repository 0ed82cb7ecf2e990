"""The seed notebook's behaviours as portable cases.

Each notebook cell is rebuilt through the adapter (so it runs on Keras 2 and
Keras 3 alike) and every number it printed is pinned: the initializer calls,
the parameter counts 20 / 8 / 121, BatchNormalization's 6/2 split, ``predict``
giving ones, the dropout output lattice (39280 is one point of it) and the
regulariser penalties.  The cells as written are run by ``notebook_cells.py``.
"""

from __future__ import annotations

import numpy as np

from conformance.cases import case
from conformance.cases.helpers import (
    BATCHNORM_DEFAULT_EPSILON,
    build_batchnorm_model,
    build_dropout_model,
    build_init_model,
    dropout_distribution,
    param_split,
    penalty_values,
    random_weights,
    set_weights,
    summary_totals,
)
from conformance.engine import oracles
from conformance.engine.checks import FALSE_ALARM

#: The batch of ones(1, 10) rows the Dropout cell's cases push through its model: one batch for all three,
#: so that they share what they compile (each new batch size is a new program per op on JAX).
DROPOUT_BATCH = 20000

# -- Initialization cell --------------------------------------------------------------


@case("notebook-init-initializer-calls", "Dense(10) on Input((1,)) calls the kernel initializer once with (1, 10), then the bias one with (10,)",
      topic="init")
def init_initializer_calls(k, checks):
    calls: list = []
    build_init_model(k, calls)
    checks.equal("calls (initializer, shape)", [["kernel", [1, 10]], ["bias", [10]]],
                 [[c["role"], [int(d) for d in c["shape"]]] for c in calls])
    checks.equal("printed shapes", ["(1, 10)", "(10,)"], [c["printed"] for c in calls])
    checks.note("shape type", sorted({type(c["shape"]).__name__ for c in calls}))
    checks.note("dtype received", sorted({repr(c["dtype"]) for c in calls}))


@case("notebook-init-20-params", "Dense(10) on one input has 20 parameters, all trainable, and the summary says so",
      topic="init")
def init_20_params(k, checks):
    model = build_init_model(k, [])
    expected = {"total": 20, "trainable": 20, "non_trainable": 0}
    checks.equal("parameter counts", expected, param_split(model))
    checks.equal("summary totals", expected, summary_totals(model))


@case("notebook-init-predict-ones", "zero kernel and ones bias: predict([[1]]) is exactly ten float32 ones",
      topic="init")
def init_predict_ones(k, checks):
    model = build_init_model(k, [])
    y = np.asarray(model.predict(np.array([[1.0]], dtype=np.float32), verbose=0))
    checks.equal("dtype", "float32", str(y.dtype))
    checks.equal("prediction", oracles.dense([[1.0]], np.zeros((1, 10)), np.ones(10)), y)


# -- Batch Normalization cell ---------------------------------------------------------


@case("notebook-batchnorm-8-params", "Dense(1)+BatchNormalization: 4 + 4 = 8 parameters, 6 trainable (kernel, bias, gamma, beta), "
      "2 non-trainable (moving mean and variance)",
      topic="batchnorm")
def batchnorm_8_params(k, checks):
    model, bn = build_batchnorm_model(k)
    checks.equal("parameters per layer", [4, 4], [int(layer.count_params()) for layer in model.layers[1:]])
    expected = {"total": 8, "trainable": 6, "non_trainable": 2}
    checks.equal("parameter counts", expected, param_split(model))
    checks.equal("summary totals", expected, summary_totals(model))
    checks.equal("trainable weights", ["kernel", "bias", "gamma", "beta"],
                 [k.weight_name(w) for w in model.trainable_weights])
    checks.equal("non-trainable weights", ["moving_mean", "moving_variance"],
                 [k.weight_name(w) for w in model.non_trainable_weights])


@case("notebook-batchnorm-inference-output", "predict(ones(1, 3)) through kernel [2, 2, 2] and a fresh BatchNormalization is 6/sqrt(1 + epsilon)",
      topic="batchnorm")
def batchnorm_inference_output(k, checks):
    model, bn = build_batchnorm_model(k)
    checks.equal("default epsilon", BATCHNORM_DEFAULT_EPSILON, float(bn.epsilon))
    y = np.asarray(model.predict(np.ones((1, 3), dtype=np.float32), verbose=0))
    dense_out = oracles.dense(np.ones((1, 3)), np.full((3, 1), 2.0), np.zeros(1))
    # Fresh layer: gamma=1, beta=0, moving mean 0 and variance 1 (documented initial values).
    expected = oracles.batchnorm_inference(dense_out, 1.0, 0.0, 0.0, 1.0, float(bn.epsilon))
    checks.close("prediction", expected, y, rtol=1e-6)


# -- Dropout cell ------------------------------------------------------------------------


@case("notebook-dropout-121-params", "Dense(10)→Dropout→Dense(1)→Dropout on 10 inputs: 110 + 11 = 121 parameters, all trainable",
      topic="dropout")
def dropout_121_params(k, checks):
    model = build_dropout_model(k)
    checks.equal("parameters per layer", [110, 0, 11, 0], [int(layer.count_params()) for layer in model.layers[1:]])
    expected = {"total": 121, "trainable": 121, "non_trainable": 0}
    checks.equal("parameter counts", expected, param_split(model))
    checks.equal("summary totals", expected, summary_totals(model))


@case("notebook-dropout-output-on-lattice", "every output for ones(1, 10) is 0 or 4·Σ_{j∈S} j·(450+10j) for a subset S (39280 is one)",
      topic="dropout")
def dropout_output_on_lattice(k, checks):
    model = build_dropout_model(k)
    values, _ = dropout_distribution()
    y = k.to_numpy(model(np.ones((DROPOUT_BATCH, 10), dtype=np.float32)))
    off = y.ravel()[~oracles.on_lattice(y, values)]
    checks.equal("outputs off the lattice (first 5)", [], off[:5])
    checks.true("dropout applied", len(np.unique(y)) > 1, f"{DROPOUT_BATCH} outputs are not all equal")


@case("notebook-dropout-output-mean", f"the mean output for ones(1, 10) over {DROPOUT_BATCH} draws is the oracle's 23100 (z-test, alpha {FALSE_ALARM:g})",
      topic="dropout")
def dropout_output_mean(k, checks):
    model = build_dropout_model(k)
    mean, std = oracles.distribution_moments(*dropout_distribution())
    y = k.to_numpy(model(np.ones((DROPOUT_BATCH, 10), dtype=np.float32)))
    checks.z_test("mean output", y.mean(), y.size, mean, std, alpha=FALSE_ALARM)


@case("notebook-dropout-build-time-training", "Dropout(…, training=True) fixed when the graph was built applies in model(x), "
      "model(x, training=False) and predict (the notebook's predict printed 39280)",
      topic="dropout")
def dropout_build_time_training(k, checks):
    model = build_dropout_model(k)
    x = np.ones((DROPOUT_BATCH, 10), dtype=np.float32)
    # Without dropout every output is Dense·Dense = 23100; with it, the last Dropout zeroes each output
    # with probability 1/2, so among the outputs some are exactly 0 (all nonzero: probability 2⁻²⁰⁰⁰⁰).
    # Zeros, not closeness to 23100, so that an implementation computing in lower precision is judged alike.
    applied = lambda y: bool(np.any(np.asarray(y) == 0.0))  # noqa: E731
    checks.equal("model(x) applies dropout", True, applied(k.to_numpy(model(x))))
    checks.equal("model(x, training=False) applies dropout", True, applied(k.to_numpy(model(x, training=False))))
    checks.equal("predict applies dropout", True, applied(model.predict(x, verbose=0, batch_size=DROPOUT_BATCH)))


# -- Regularizers cell -------------------------------------------------------------------


def regularized_dense(k, **regularizers):
    """Dense(64) on 64 inputs (the notebook's ``input_dim=64``) with seeded random weights."""
    keras = k.keras
    inputs = keras.Input(shape=(64,))
    layer = keras.layers.Dense(64, **regularizers)
    model = keras.Model(inputs, layer(inputs))
    kernel, bias = random_weights(64, (64, 64), (64,))
    set_weights(layer, [kernel, bias])
    return model, layer, kernel, bias


@case("notebook-regularizers-dense-penalties", "Dense(64, kernel_regularizer=l2(0.01), bias_regularizer=l1(0.01)): "
      "layer.losses are 0.01·Σw² and 0.01·Σ|b| of the current weights",
      topic="regularizer")
def regularizers_dense_penalties(k, checks):
    r = k.keras.regularizers
    _, layer, kernel, bias = regularized_dense(k, kernel_regularizer=r.l2(0.01), bias_regularizer=r.l1(0.01))
    expected = [oracles.l2_penalty(kernel, 0.01), oracles.l1_penalty(bias, 0.01)]
    checks.close("layer.losses (kernel, bias)", expected, penalty_values(k, layer.losses), rtol=1e-5)


@case("notebook-regularizers-zero-factors", "l1(0.) and l2(0.) give zero penalties on random weights",
      topic="regularizer")
def regularizers_zero_factors(k, checks):
    r = k.keras.regularizers
    (w,) = random_weights(1, (8, 8))
    checks.close("l1(0.)(w)", 0.0, float(k.to_numpy(r.l1(0.0)(w))), rtol=0, atol=0)
    checks.close("l2(0.)(w)", 0.0, float(k.to_numpy(r.l2(0.0)(w))), rtol=0, atol=0)


@case("notebook-regularizers-l1-l2-sum", "l1_l2(l1=0.01, l2=0.01) is the sum 0.01·Σ|w| + 0.01·Σw²",
      topic="regularizer")
def regularizers_l1_l2_sum(k, checks):
    (w,) = random_weights(2, (8, 8))
    observed = float(k.to_numpy(k.keras.regularizers.l1_l2(l1=0.01, l2=0.01)(w)))
    checks.close("l1_l2(0.01, 0.01)(w)", oracles.l1_l2_penalty(w, 0.01, 0.01), observed, rtol=1e-5)


@case("notebook-regularizers-custom-function", "a function regulariser 0.01·Σ|W| on Dense's kernel adds exactly that loss",
      topic="regularizer")
def regularizers_custom_function(k, checks):
    def l1_reg(weight_matrix):
        return 0.01 * k.sum_abs(weight_matrix)

    _, layer, kernel, _ = regularized_dense(k, kernel_regularizer=l1_reg)
    checks.close("layer.losses", [oracles.l1_penalty(kernel, 0.01)], penalty_values(k, layer.losses), rtol=1e-5)


@case("notebook-regularizers-training-loss", "one training step from known weights reports mse + 0.01·Σw² + 0.01·Σ|b|",
      topic="regularizer", needs=("train",))
def regularizers_training_loss(k, checks):
    r = k.keras.regularizers
    model, _, kernel, bias = regularized_dense(k, kernel_regularizer=r.l2(0.01), bias_regularizer=r.l1(0.01))
    model.compile(optimizer="sgd", loss="mse")
    x, y = random_weights(3, (16, 64), (16, 64))
    loss = model.train_on_batch(x, y)
    data_loss = oracles.mean_squared_error(oracles.dense(x, kernel, bias), y)
    expected = data_loss + oracles.l2_penalty(kernel, 0.01) + oracles.l1_penalty(bias, 0.01)
    checks.close("reported loss", expected, float(np.ravel(loss)[0]), rtol=1e-5)
    checks.note("data loss", data_loss)
