"""Fingerprints and their diff: stable, tolerant to noise, strict about behaviour, safe on bad input."""

import copy
import json
import subprocess
import sys

import pytest

from conformance.data import diffreport, fingerprint
from conformance.data.fingerprint import FingerprintError


def result(checks, status="pass", notes=None):
    return {"id": "c1", "topic": "dropout", "description": "d", "status": status, "checks": checks,
            "notes": notes or {}, "skip_reason": ""}


def check(name, observed, kind="exact", passed=True, expected=None):
    return {"name": name, "expected": expected, "observed": observed, "passed": passed, "how": "", "kind": kind}


RUN = {"impl": "keras3:jax", "environment": {"keras": "3.15.1", "numpy": "2.4"},
       "results": [result([check("count", 121), check("loss", 1.0, "numeric"),
                           check("fit", {"mean": 0.1}, "statistical", expected={"mean": 0.0})])]}


def test_statistical_noise_and_float_rounding_do_not_show():
    old = fingerprint.from_run(RUN)
    run = copy.deepcopy(RUN)
    run["results"][0]["checks"][1]["observed"] = 1.0 + 1e-6
    run["results"][0]["checks"][2]["observed"] = {"mean": 0.2}
    new = fingerprint.from_run(run)
    assert not fingerprint.has_changes(fingerprint.diff(old, new))


def test_behaviour_changes_show_with_old_and_new():
    old = fingerprint.from_run(RUN)
    run = copy.deepcopy(RUN)
    run["results"][0]["checks"][0]["observed"] = 120
    run["results"][0]["checks"][2]["passed"] = False
    run["results"][0]["status"] = "fail"
    d = fingerprint.diff(old, fingerprint.from_run(run))
    changes = {c["what"]: (c["old"], c["new"]) for c in d["changed"]["c1"]["changes"]}
    assert changes["count"] == (121, 120)
    assert changes["verdict"] == ("pass", "fail")
    assert changes["fit"][1]["consistent"] is False
    md = diffreport.render(d, "md")
    assert "## dropout" in md and "| count | 121 | 120 |" in md
    page = diffreport.render(d, "html")
    assert "<td><code>121</code></td><td><code>120</code></td>" in page
    assert "<span class='tag regressed'>" in page  # a pass that became a failure is coloured as a regression


def test_added_removed_and_environment():
    old = fingerprint.from_run(RUN)
    new = copy.deepcopy(old)
    new["cases"]["c2"] = new["cases"].pop("c1")
    new["environment"]["keras"] = "3.16.0"
    d = fingerprint.diff(old, new)
    assert (d["added"], d["removed"]) == (["c2"], ["c1"])
    assert d["environment"] == {"keras": ["3.15.1", "3.16.0"]}


def test_dump_is_stable_under_reordering():
    run = copy.deepcopy(RUN)
    run["results"].append(result([check("x", 1)]) | {"id": "c0"})
    reordered = copy.deepcopy(run)
    reordered["results"].reverse()
    assert fingerprint.dumps(fingerprint.from_run(run)) == fingerprint.dumps(fingerprint.from_run(reordered))


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ('{"format": "keras-conformance-fingerprint", "cases": {', "not valid JSON"),
    ('{"some": "other json"}', "not a keras-conformance fingerprint"),
    ('{"format": "keras-conformance-fingerprint", "format_version": 99, "cases": {}, "environment": {}}',
     "format version 99"),
])
def test_bad_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "fp.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FingerprintError, match=message) as info:
        fingerprint.load(path)
    assert "\n" not in str(info.value)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True)


def test_diff_exit_codes_and_no_partial_output(tmp_path):
    a, b, bad = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "bad.json"
    fp = fingerprint.from_run(RUN)
    a.write_text(fingerprint.dumps(fp))
    fp["cases"]["c1"]["behaviour"]["count"]["value"] = 7
    b.write_text(fingerprint.dumps(fp))
    bad.write_text(fingerprint.dumps(fp)[:40])
    assert cli("diff", str(a), str(a)).returncode == 0
    out = tmp_path / "report.html"
    proc = cli("diff", str(a), str(b), "--format", "html", "--out", str(out))
    assert proc.returncode == 1 and out.read_text().startswith("<!doctype html>")
    out2 = tmp_path / "never.md"
    proc = cli("diff", str(a), str(bad), "--out", str(out2))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "truncated?" in proc.stderr
    assert not out2.exists()
    assert json.loads(cli("diff", str(a), str(b), "--format", "json").stdout)["changed"]


def test_numeric_tolerance_is_relative_to_the_largest_value():
    assert fingerprint.same_value("numeric", {"mean": 5e-9, "std": 0.7}, {"mean": -5e-9, "std": 0.7})
    assert not fingerprint.same_value("numeric", {"mean": 0.01, "std": 0.7}, {"mean": 0.0, "std": 0.7})
    assert not fingerprint.same_value("numeric", [1.0, 2.0], [1.0, 2.1])
    assert fingerprint.same_value("exact", "runs", "runs") and not fingerprint.same_value("exact", [1], [2])


def test_non_finite_numbers_equal_themselves_and_nothing_else():
    inf, nan = float("inf"), float("nan")
    assert fingerprint.same_value("numeric", inf, inf) and fingerprint.same_value("numeric", [nan, 1.0], [nan, 1.0])
    assert not fingerprint.same_value("numeric", inf, 65504.0) and not fingerprint.same_value("numeric", inf, -inf)
    assert not fingerprint.same_value("numeric", nan, 1.0) and not fingerprint.same_value("numeric", [inf, 1.0], [inf, 2.0])


def test_summaries_compare_whatever_their_key_order():
    a = {"shape": [2], "mean": 1.0, "std": 2.0}
    b = json.loads(json.dumps(a, sort_keys=True))
    assert fingerprint.same_value("numeric", a, b)


def test_baselines_hold_exactly_the_registered_cases():
    """Adding or removing a case means regenerating the baselines (docs/upgrades.md)."""
    from conformance import FIXTURES, cases

    registered = {c.id for c in cases.all_cases()}
    for path in sorted((FIXTURES / "baselines").glob("*.json")):
        assert set(fingerprint.load(path)["cases"]) == registered, f"{path.name} is out of date"


def test_checks_are_keyed_by_their_stable_key_and_a_reworded_label_is_no_change(tmp_path):
    old = fingerprint.from_run(RUN)
    assert set(old["cases"]["c1"]["behaviour"]) == {"count", "loss", "fit"}
    run = copy.deepcopy(RUN)
    run["results"][0]["checks"][0] |= {"name": "number of parameters", "key": "count"}
    new = fingerprint.from_run(run)
    assert new["cases"]["c1"]["behaviour"]["count"]["label"] == "number of parameters"
    assert not fingerprint.has_changes(fingerprint.diff(old, new))


def test_version_1_files_are_read_with_their_checks_keyed(tmp_path):
    v1 = {"format": fingerprint.FORMAT, "format_version": 1, "environment": {"impl": "keras3:jax"},
          "cases": {"c1": {"topic": "init", "description": "d", "status": "pass", "notes": {},
                           "behaviour": {"clone's arguments (sorted)": {"kind": "exact", "value": 1}}}}}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1))
    loaded = fingerprint.load(path)
    assert loaded["format_version"] == fingerprint.FORMAT_VERSION
    assert loaded["cases"]["c1"]["behaviour"] == {
        "clones-arguments-sorted": {"kind": "exact", "value": 1, "label": "clone's arguments (sorted)"}}


def test_the_public_surface_shows_in_the_diff_argument_by_argument():
    old = fingerprint.from_run(RUN | {"surface": {
        "batchnorm/BatchNormalization": {"arguments": {"epsilon": 0.001, "renorm": False}, "config-keys": ["epsilon"]},
        "dropout/AlphaDropout": {"arguments": "(absent)", "config-keys": "(absent)"}}})
    new = fingerprint.from_run(RUN | {"surface": {
        "batchnorm/BatchNormalization": {"arguments": {"epsilon": 0.01, "synchronized": False},
                                         "config-keys": ["epsilon", "synchronized"]},
        "dropout/AlphaDropout": {"arguments": {"rate": "(required)"}, "config-keys": ["rate"]}}})
    d = fingerprint.diff(old, new)
    bn = {c["key"]: (c["old"], c["new"]) for c in d["changed"]["surface-BatchNormalization"]["changes"]}
    assert bn == {"argument-epsilon": (0.001, 0.01), "argument-renorm": (False, "(absent)"),
                  "argument-synchronized": ("(absent)", False), "config-keys": (["epsilon"], ["epsilon", "synchronized"])}
    assert d["changed"]["surface-AlphaDropout"]["changes"] == [
        {"what": "class", "key": "class", "old": "(absent)", "new": "exists"}]
    assert not fingerprint.has_changes(fingerprint.diff(old, copy.deepcopy(old)))


def test_the_surface_is_recorded_from_the_keras_under_test():
    from conformance.engine import surface

    class Layers:
        class Dense:
            def __init__(self, units, use_bias=True, **kwargs):
                self.units = units

            def get_config(self):
                return {"units": self.units, "use_bias": True}

    class Keras:
        initializers = regularizers = object()
        layers = Layers

    recorded = surface.surface(Keras)
    assert recorded["dense/Dense"] == {"arguments": {"units": "(required)", "use_bias": True},
                                       "config-keys": ["units", "use_bias"]}
    assert recorded["batchnorm/BatchNormalization"] == {"arguments": "(absent)", "config-keys": "(absent)"}


# -- What the machine measures is kept apart from what Keras does -------------------------------------

def with_measurements(run, measurements, notes=None):
    run = copy.deepcopy(run)
    run["results"][0] |= {"measurements": measurements, "notes": notes or {}}
    return run


def test_measured_errors_are_never_a_behaviour_change():
    """The same stack on another CPU: errors in eps move (0.6108 -> 0.6287, 0.885 -> 0.736, as seen on an AMD
    EPYC against the shipped record); no behaviour changed, and the diff says so."""
    old = fingerprint.from_run(with_measurements(RUN, {"inference output: error in eps of float32": 0.6108,
                                                       "training output: error in eps of float32": 0.885}))
    new = fingerprint.from_run(with_measurements(RUN, {"inference output: error in eps of float32": 0.6287,
                                                       "training output: error in eps of float32": 0.736}))
    d = fingerprint.diff(old, new)
    assert not fingerprint.has_changes(d) and d["measured"] == {}
    assert "No behaviour changed." in diffreport.render(d, "md")


def test_a_measured_error_that_moves_to_another_power_of_two_is_shown_apart_and_not_counted():
    old = fingerprint.from_run(with_measurements(RUN, {"output: error in eps": 0.9}))
    new = fingerprint.from_run(with_measurements(RUN, {"output: error in eps": 3.0}))
    d = fingerprint.diff(old, new)
    assert not fingerprint.has_changes(d)
    assert d["measured"] == {"c1": [{"what": "output: error in eps", "old": 0.9, "new": 3.0}]}
    md = diffreport.render(d, "md")
    assert md.index("No behaviour changed.") < md.index(f"## {diffreport.MEASURED_TITLE}")
    assert "| `c1` | output: error in eps | 0.9 (≤ 1 eps) | 3 (≤ 4 eps) |" in md
    assert diffreport.MEASURED_TITLE in diffreport.render(d, "html")


def test_a_note_is_behaviour_and_still_a_change():
    old = fingerprint.from_run(with_measurements(RUN, {}, {"batch variance": [1.0, 2.0]}))
    new = fingerprint.from_run(with_measurements(RUN, {}, {"batch variance": [1.0, -2.0]}))
    assert fingerprint.has_changes(fingerprint.diff(old, new))


def test_version_2_files_are_read_with_their_measured_errors_apart(tmp_path):
    v2 = {"format": fingerprint.FORMAT, "format_version": 2,
          "environment": {"impl": "keras3:openvino", "device": "cpu (OpenVINO default inference precision bf16)"},
          "cases": {"c1": {"topic": "init", "description": "d", "status": "pass", "behaviour": {},
                           "notes": {"output: error in eps": 0.5, "dtype received": "float32"}}}}
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(v2))
    loaded = fingerprint.load(path)
    assert loaded["format_version"] == fingerprint.FORMAT_VERSION == 3
    assert loaded["cases"]["c1"]["notes"] == {"dtype received": "float32"}
    assert loaded["cases"]["c1"]["measurements"] == {"output: error in eps": 0.5}
    assert loaded["environment"]["device_kind"] == "cpu-bf16"


@pytest.mark.parametrize("version, says", [
    (4, "reads versions 1, 2, 3 (a newer keras-conformance wrote it: upgrade this one)"),
    (0, "reads versions 1, 2, 3"), ("2", "reads versions 1, 2, 3"), (None, "reads versions 1, 2, 3"),
])
def test_an_unknown_format_version_is_one_line_naming_file_version_and_versions_understood(tmp_path, version, says):
    path = tmp_path / "fp.json"
    path.write_text(json.dumps({"format": fingerprint.FORMAT, "format_version": version, "cases": {},
                                "environment": {}}))
    with pytest.raises(FingerprintError) as info:
        fingerprint.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and f"format version {version!r}" in message
    assert message.endswith(says)
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "diff", str(path), str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def shipped_fingerprints():
    from conformance import FIXTURES

    return sorted([*(FIXTURES / "baselines").glob("*.json"), *(FIXTURES / "history").glob("*/*.json")])


def test_every_shipped_fingerprint_reads_back_identically_through_the_current_format(tmp_path):
    """Read through the migrations, every shipped fingerprint keeps its verdicts, behaviour, surface and
    environment; its notes and measurements together are the notes it had; and what it is written as reads
    back the same."""
    paths = shipped_fingerprints()
    assert len(paths) > 50
    for path in paths:
        raw = json.loads(path.read_text())
        loaded = fingerprint.load(path)
        assert loaded["surface"] == raw.get("surface", loaded["surface"])
        kept = {k: v for k, v in loaded["environment"].items() if k != "device_kind" or "device_kind" in raw["environment"]}
        assert kept == raw["environment"], path
        for case_id, entry in raw["cases"].items():
            now = loaded["cases"][case_id]
            assert (now["status"], now["topic"]) == (entry["status"], entry["topic"]), (path, case_id)
            assert {k: v["value"] for k, v in now["behaviour"].items()} \
                == {fingerprint.key_of(k) if raw["format_version"] == 1 else k: v["value"]
                    for k, v in entry["behaviour"].items()}, (path, case_id)
            assert now["notes"] | now["measurements"] == entry["notes"] | entry.get("measurements", {}), (path, case_id)
            assert not set(now["notes"]) & set(now["measurements"])
        again = tmp_path / path.name
        again.write_text(fingerprint.dumps(loaded))
        assert fingerprint.load(again) == loaded, path
