"""The benchmark group: forward passes per model, call path and implementation.

Run serially (pytest-benchmark disables itself under xdist) and only when asked:

    pytest tests/benchmarks --benchmarks --impl keras3:jax --benchmark-json=bench.json
    keras-conformance bench-report bench.json --out bench-report/

A smoke run that executes every benchmark once without timing:

    pytest tests/benchmarks --benchmarks --benchmark-disable

Compilation and warm-up happen before the timed rounds (``first_call_s`` in
extra_info); each timed call waits for its result.
"""

import pytest

from conformance import bench
from conformance.engine.plugin import state_of

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def k(request):
    return state_of(request.config).adapter  # float32 matmuls pinned at load (TF32 off), as for every case


def record(benchmark, k, w, path, first_call, **extra):
    benchmark.extra_info.update({
        "impl": k.id, "call_path": path, "device": k.device(), "dtype": bench.DTYPE, "precision": k.precision,
        "batch": int(w.x.shape[0]), "flops": w.flops, "bytes": w.bytes, "first_call_s": first_call,
        "workload": w.name, **extra,
    })


def run(benchmark, k, w, path, training=False, **extra):
    try:
        fn = bench.call_path(k, w, path, training=training)
    except bench.Unsupported as exc:
        pytest.skip(str(exc))
    first = bench.prepare(fn)
    record(benchmark, k, w, path, first, training=training, **extra)
    benchmark.group = f"{w.name}"
    benchmark(fn)


@pytest.mark.parametrize("path", bench.CALL_PATHS)
@pytest.mark.parametrize("stack", list(bench.STACKS))
def test_stack(benchmark, k, stack, path):
    if bench.STACKS[stack][3] and bench.accelerator(k) is None:
        pytest.skip(f"stack-{stack} is compute-bound: it runs only on an accelerator, and {k.id} runs on the CPU")
    run(benchmark, k, bench.stack_workload(k, stack), path)


@pytest.mark.parametrize("path", ["predict", "eager", "compiled-xla"])
@pytest.mark.parametrize("index", [0, 1, 2], ids=["init", "batchnorm", "dropout"])
def test_notebook_model(benchmark, k, index, path):
    run(benchmark, k, bench.notebook_workloads(k)[index], path)


@pytest.mark.parametrize("batch", [32, 512, 4096])
@pytest.mark.parametrize("layer, training", [("dense", False), ("batchnorm", False), ("batchnorm", True),
                                              ("dropout", False), ("dropout", True)],
                         ids=["dense", "batchnorm-inference", "batchnorm-training", "dropout-off", "dropout-on"])
def test_layer(benchmark, k, layer, training, batch):
    w = bench.layer_workload(k, layer, batch)
    w.name = f"layer-{layer}-{'training' if training else 'inference'}"
    run(benchmark, k, w, "eager", training=training, layer=layer)


def test_matmul_peak(benchmark, k):
    """The backend's float32 matmul rate on this device: the ceiling the report compares against."""
    n = bench.matmul_size(k)
    fn = bench.matmul_peak(k, n)
    first = bench.prepare(fn)
    w = bench.Workload("matmul-peak", None, bench.make_input((n, 1)), 2.0 * n**3, 4.0 * 3 * n * n, [], [])
    record(benchmark, k, w, "raw", first)
    benchmark.group = "matmul-peak"
    benchmark(fn)
