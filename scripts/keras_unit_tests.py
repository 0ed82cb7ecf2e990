"""Keras's own unit tests of the modules the suite pins, as the Keras wheel ships them.

Shared by ``speed-vs-keras-tests.py`` and ``mutants-vs-keras-tests.py``.  The wheel ships
the tests (``keras/src/**/*_test.py``) but not the conftest.py at the root of Keras's
repository; ``prepare`` writes a stand-in for what the tests import from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: What Keras's tests import from the conftest.py at the root of Keras's repository, which the wheel does
#: not ship: its two markers and ``skip_if_backend``.
KERAS_CONFTEST = """\
import pytest
from keras.src.backend import backend


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_trainable_backend: trainable backends only")
    config.addinivalue_line("markers", "multi_device: several devices only")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "requires_trainable_backend" in item.keywords and backend() in ("numpy", "openvino"):
            item.add_marker(pytest.mark.skip(reason="no trainer"))
        if "multi_device" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="one device"))


def skip_if_backend(given_backend, reason):
    return pytest.mark.skipif(backend() == given_backend, reason=reason)
"""
#: Keras's tests of the modules the suite pins, relative to the installed ``keras`` package.
#: With the layer zoo, every module of a declared layer (conformance/layers/zoo.py) is among them.
KERAS_TESTS = ["src/initializers", "src/regularizers", "src/layers/regularization",
               "src/layers/normalization/batch_normalization_test.py",
               "src/layers/normalization/layer_normalization_test.py",
               "src/layers/normalization/group_normalization_test.py",
               "src/layers/normalization/rms_normalization_test.py",
               "src/layers/normalization/unit_normalization_test.py",
               "src/layers/core/dense_test.py", "src/layers/core/embedding_test.py",
               "src/layers/core/einsum_dense_test.py", "src/layers/activations/prelu_test.py",
               "src/layers/convolutional/conv_test.py", "src/layers/convolutional/conv_transpose_test.py",
               "src/layers/convolutional/depthwise_conv_test.py", "src/layers/convolutional/separable_conv_test.py",
               "src/layers/attention/attention_test.py", "src/layers/attention/multi_head_attention_test.py",
               "src/layers/attention/additive_attention_test.py",
               "src/layers/attention/grouped_query_attention_test.py",
               "src/layers/rnn/rnn_test.py", "src/layers/rnn/simple_rnn_test.py", "src/layers/rnn/gru_test.py",
               "src/layers/rnn/lstm_test.py", "src/layers/rnn/conv_lstm_test.py", "src/layers/rnn/conv_lstm1d_test.py",
               "src/layers/rnn/conv_lstm2d_test.py", "src/layers/rnn/conv_lstm3d_test.py",
               "src/layers/rnn/dropout_rnn_cell_test.py"]


def missing(keras_dir: Path) -> list[str]:
    """The test paths this Keras does not ship (its tests ship with the wheel from 3.0)."""
    return [t for t in KERAS_TESTS if not (keras_dir / t).exists()]


def prepare(scratch: Path) -> None:
    """Write the conftest stand-in and an empty pytest.ini into ``scratch``."""
    (scratch / "conftest.py").write_text(KERAS_CONFTEST)
    (scratch / "pytest.ini").write_text("[pytest]\n")


def command(keras_dir: Path, scratch: Path, *extra: str) -> list[str]:
    """pytest on Keras's tests under ``keras_dir``, with ``scratch`` (see ``prepare``) on PYTHONPATH.

    Keras's conftest stand-in as a plugin, no other conftest (this checkout's is above
    site-packages), and not this project's plugin or settings.  The root directory is the
    one that holds ``keras``, so that pytest names each test ``keras/src/...``.
    """
    return [sys.executable, "-m", "pytest", *[str(keras_dir / t) for t in KERAS_TESTS], "-q",
            "-c", str(scratch / "pytest.ini"), "--rootdir", str(keras_dir.parent), "--noconftest", "-p", "conftest",
            "-p", "no:keras_conformance", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
