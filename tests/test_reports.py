"""Reports: atomic writes, Markdown, JUnit XML."""

import json
import xml.etree.ElementTree as ET

import pytest

from conformance.data import files, reports


def result(case_id, status, **extra):
    base = {"id": case_id, "topic": "dropout", "source": "notebook", "description": f"{case_id} does x",
            "impl": "keras3:jax", "status": status, "checks": [], "notes": {}, "problems": [],
            "divergences": [], "skip_reason": ""}
    return base | extra


RUN = {
    "impl": "keras3:jax",
    "environment": {"keras": "3", "device": "cpu"},
    "results": [
        result("a-pass", "pass"),
        result("b-div", "divergence", divergences=[{"check": "predict", "observed": "x `y`", "reason": "because",
                                                     "evidence": "docs", "file": "keras3.toml"}]),
        result("c-fail", "fail", problems=["value: expected 1, observed 2"]),
        result("d-skip", "skip", skip_reason="inference-only"),
    ],
}


def test_write_atomic_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError):
        files.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_markdown_lists_matrix_and_reasons():
    md = reports.markdown(reports.combine([RUN], {"keras2": "not installed"}))
    assert "| `a-pass` | pass |" in md and "| `c-fail` | FAIL |" in md
    assert "``x `y` ``" not in md and "`` x `y` ``" in md
    assert "because Evidence: docs" in md
    assert "not run: not installed" in md


def test_junit_xml_counts():
    root = ET.fromstring(reports.junit_xml(reports.combine([RUN])))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "2")
    failure = root.find(".//testcase[@name='c-fail']/failure")
    assert failure.get("message") == "value: expected 1, observed 2"


def test_unexpected_and_write_all(tmp_path):
    report = reports.combine([RUN])
    assert reports.unexpected(report) == [("keras3:jax", "c-fail")]
    paths = reports.write_all(report, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["junit.xml", "report.json", "report.md"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["format_version"] == reports.FORMAT_VERSION


def test_markdown_puts_totals_and_problems_first_and_keeps_its_columns():
    md = reports.markdown(reports.combine([RUN], {"keras2": "not installed"}))
    assert md.index("**1 unexpected result(s)**") < md.index("## Problems") < md.index("## Matrix")
    assert md.index("### `c-fail`") < md.index("### `b-div`")  # failures before recorded divergences
    tables = [block for block in md.split("\n\n") if block.startswith("|")]
    for table in tables:
        widths = {line.count("|") for line in table.splitlines()}
        assert len(widths) == 1, table  # every row, "not run" ones included, has the header's columns
    assert "| `keras3:jax` |" in md and "| 4 | 1 | 1 | 1 | 1 |" in md


def test_totals_line_says_case_in_the_singular():
    counts = {"cases": 1, "pass": 1, "divergence": 0, "fail": 0, "skip": 0}
    assert reports.totals_line(counts) == "1 case: 1 pass"


def test_verdicts_that_differ_between_two_kinds_of_cpu_are_listed_unless_a_device_scope_explains_them():
    scoped = {"check": "evaluated-loss", "observed": 7.16, "reason": "bf16", "evidence": "e", "file": "keras3.toml",
              "devices": ["cpu-bf16"]}
    native = {"impl": "keras3:openvino", "environment": {"device": "cpu (bf16)"}, "results": [
        result("same", "pass"), result("scoped", "divergence", divergences=[scoped]),
        result("moved", "pass"), result("skipped", "pass"), result("gone", "pass")]}
    avx2 = {"impl": "keras3:openvino", "environment": {"device": "cpu (f32)", "cpu_like": "avx2"}, "results": [
        result("same", "pass"), result("scoped", "pass"), result("moved", "fail"),
        result("skipped", "skip", skip_reason="keras3:openvino cannot compute in bfloat16 (... where --cpu-like caps)")]}
    assert reports.verdicts_that_differ(native, avx2) == [
        "gone: run on one side only", "moved: pass on cpu (bf16), fail on cpu (f32) as --cpu-like avx2"]
    assert reports.verdicts_that_differ(native, native) == []
