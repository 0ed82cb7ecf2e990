"""``keras-conformance bench-report``: pytest-benchmark JSON → Markdown table and plots.

Rows are workload × call path; columns the median and IQR of the timed
rounds, samples/s, GFLOP/s, the fraction of the ceiling (the measured matmul
rate of the same run; on an accelerator the roofline bound
``max(FLOPs/peak, bytes/bandwidth)`` over the measured time where a bandwidth
was recorded) and the ratio to the raw-framework baseline of the same
workload.  With ``--compare OLD.json``, the change of each median, flagging
slowdowns beyond a threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from conformance.data.files import read_json, write_atomic
from conformance.data.schema import BenchmarkRow


class BenchReportError(Exception):
    """A results file is missing, corrupt or not pytest-benchmark's; the message is one line."""


def load(path: Path) -> list[BenchmarkRow]:
    """The benchmarks of a pytest-benchmark JSON file, each with its extra_info."""
    data = read_json(path, BenchReportError)
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BenchReportError(f"{path} is not a pytest-benchmark results file (no 'benchmarks' list)")
    try:
        return load_rows(data)
    except ValueError as exc:
        raise BenchReportError(f"{path}: {exc}") from None


def load_rows(data: dict[str, Any]) -> list[BenchmarkRow]:  # pytest-benchmark's JSON in
    """One row per benchmark: its extra_info with the median, IQR and rounds of its timings."""
    rows = []
    for b in data["benchmarks"]:
        info, stats = b.get("extra_info", {}), b.get("stats", {})
        if "workload" not in info or "median" not in stats or "iqr" not in stats:
            raise ValueError(f"benchmark {b.get('name')!r} lacks keras-conformance extra_info or stats")
        rows.append({"name": b["name"], **info, "median": stats["median"], "iqr": stats["iqr"],
                     "rounds": stats.get("rounds")})
    if not rows:
        raise ValueError("holds no benchmarks")
    return cast(list[BenchmarkRow], rows)  # the extra_info the benchmark group wrote


def key(row: BenchmarkRow) -> tuple:
    return (row["impl"], row["workload"], row["call_path"], row["batch"], bool(row.get("training")))


def table_rows(rows: list[BenchmarkRow]) -> list[BenchmarkRow]:
    # The ceiling is the device's: the fastest matmul any implementation in the report measured on it.
    peaks: dict[str, float] = {}
    for r in rows:
        if r["workload"] == "matmul-peak":
            peaks[r["device"]] = max(peaks.get(r["device"], 0.0), r["flops"] / r["median"])
    raw = {(r["impl"], r["workload"], r["batch"]): r["median"] for r in rows if r["call_path"] == "raw"}
    out: list[BenchmarkRow] = []
    for r in sorted(rows, key=key):
        peak = peaks.get(r["device"])
        bound = r["flops"] / peak if peak else None
        if bound is not None and r.get("bandwidth"):
            bound = max(bound, r["bytes"] / r["bandwidth"])
        base = raw.get((r["impl"], r["workload"], r["batch"]))
        row: BenchmarkRow = {**r, "samples_per_s": r["batch"] / r["median"], "gflops": r["flops"] / r["median"] / 1e9,
                             "of_ceiling": (bound / r["median"]) if bound else None,
                             "vs_raw": (r["median"] / base) if base else None}
        row["noise"] = noise(row)
        out.append(row)
    return out


def noise(row: BenchmarkRow) -> list[str]:
    """What makes a row impossible as a fact: faster than the measured ceiling, or a Keras call path
    faster than the raw framework doing the same work. Either means the timings are noise (too few
    rounds, a busy machine, or a ceiling measured low), not a result."""
    flags = []
    if row["of_ceiling"] is not None and row["of_ceiling"] > 1.0 and row["workload"] != "matmul-peak":
        flags.append(f"{100 * row['of_ceiling']:.0f} % of the measured ceiling")
    if row["vs_raw"] is not None and row["vs_raw"] < 1.0 and row["call_path"] != "raw":
        flags.append(f"faster than the raw baseline ({row['vs_raw']:.2f}×)")
    return flags


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def markdown(rows: list[BenchmarkRow], changes: dict | None = None, threshold: float = 0.1) -> str:
    env = rows[0]
    lines = ["# keras-conformance benchmarks", "",
             f"Device: {env.get('device')}; dtype {env.get('dtype')} ({env.get('precision')}). "
             "Median and IQR of the timed rounds; compilation and warm-up are outside them "
             "(first call shown separately). % of ceiling: the time the FLOPs would take at the fastest matmul "
             "rate measured on the device in these results, over the measured time. vs raw: median over the "
             "raw-framework baseline's.",
             "", "| workload | impl | call path | batch | median | IQR | first call | samples/s | GFLOP/s "
             "| % of ceiling | vs raw |" + (" change |" if changes else ""),
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if changes else "")]
    for r in table_rows(rows):
        path = r["call_path"] + (" (training)" if r.get("training") else "")
        cells = [r["workload"], r["impl"], path, str(r["batch"]), fmt_time(r["median"]), fmt_time(r["iqr"]),
                 fmt_time(r["first_call_s"]), f"{r['samples_per_s']:.3g}", f"{r['gflops']:.3g}",
                 f"{100 * r['of_ceiling']:.1f} %" if r["of_ceiling"] is not None else "—",
                 f"{r['vs_raw']:.2f}×" if r["vs_raw"] is not None else "—"]
        if r["noise"]:
            cells[0] += " (noise†)"
        if changes:
            change = changes.get(key(r))
            mark = " **slower**" if change is not None and change > threshold else ""
            cells.append(f"{100 * change:+.1f} %{mark}" if change is not None else "new")
        lines.append("| " + " | ".join(cells) + " |")
    noisy = [r for r in table_rows(rows) if r["noise"]]
    if noisy:
        lines += ["", "† Not a result: these timings contradict what is possible, so they are noise (too few "
                  "rounds, a busy machine, or a ceiling measured low). Re-run with more rounds "
                  "(`--benchmark-min-rounds`) before reading them.", ""]
        lines += [f"- {r['workload']}, {r['impl']}, {r['call_path']}, batch {r['batch']}: {'; '.join(r['noise'])}"
                  for r in noisy]
    return "\n".join(lines) + "\n"


def compare(old: list[BenchmarkRow], new: list[BenchmarkRow]) -> dict[tuple, float]:
    """Relative change of each median (new/old − 1), for benchmarks present in both."""
    before = {key(r): r["median"] for r in old}
    return {key(r): r["median"] / before[key(r)] - 1.0 for r in new if key(r) in before}


def plots(rows: list[BenchmarkRow], out: Path) -> list[Path]:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    layer_rows = [r for r in rows if r["workload"].startswith("layer-")]
    if layer_rows:
        fig, ax = plt.subplots(figsize=(8, 5))
        for name in sorted({(r["impl"], r["workload"]) for r in layer_rows}):
            pts = sorted((r["batch"], r["median"]) for r in layer_rows if (r["impl"], r["workload"]) == name)
            ax.plot([p[0] for p in pts], [p[1] * 1e3 for p in pts], marker="o", label=f"{name[1]} ({name[0]})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        batches = sorted({r["batch"] for r in layer_rows})
        ax.set_xticks(batches, [str(b) for b in batches])
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.set_xlabel("batch size (samples)")
        ax.set_ylabel("median time per forward pass (ms)")
        ax.set_title("Single layers, eager call, width 512")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(save(fig, out / "time-vs-batch.png"))
        plt.close(fig)
    ratio_rows = [r for r in table_rows(rows) if r["vs_raw"] is not None and r["call_path"] != "raw"]
    ratios = [float(r["vs_raw"] or 0.0) for r in ratio_rows]
    if ratio_rows:
        # One horizontal bar a row, labelled on the left and valued on the right: readable for any count.
        fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(ratio_rows)))
        labels = [f"{r['workload']} · {r['call_path']} · {r['impl']}" for r in ratio_rows]
        colours = ["tab:gray" if r["noise"] else "tab:blue" for r in ratio_rows]
        positions = range(len(ratio_rows))[::-1]  # the table's order, top to bottom
        bars = ax.barh(list(positions), ratios, color=colours)
        ax.bar_label(bars, labels=[f"{r['vs_raw']:.2f}×" + (" (noise)" if r["noise"] else "") for r in ratio_rows],
                     fontsize=8, padding=3)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(list(positions), labels, fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("median time / raw-framework baseline (×, log scale)")
        ax.set_title("Keras overhead per call path (1 = the raw framework; grey: noise)")
        ax.margins(x=0.15)
        fig.tight_layout()
        written.append(save(fig, out / "overhead-vs-raw.png"))
        plt.close(fig)
    return written


def save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    return path


def report(results: list[Path], out: Path, old: Path | None = None, threshold: float = 0.1) -> list[Path]:
    rows = [row for path in results for row in load(path)]
    changes = compare(load(old), rows) if old is not None else None
    out.mkdir(parents=True, exist_ok=True)
    md = out / "benchmarks.md"
    write_atomic(md, markdown(rows, changes, threshold))
    return [md, *plots(rows, out)]
