"""Expectation records as data (divergence, skip, tolerance, change): loading, validation, strict judging,
stale records and drafts."""

import dataclasses

import pytest

from conformance import cases
from conformance.backends import impls
from conformance.data.target import Target
from conformance.engine import expectations
from conformance.engine.checks import Check, Checks
from conformance.engine.expectations import ExpectationsError, Record, judge, same

ENTRY = '''
[[divergence]]
case = "notebook-init-20-params"
check = "summary-totals"
observed = {total = 20}
reason = "r"
evidence = "e"
'''


def divergence(check="c", observed=1):
    return Record("divergence", "case", "because", "docs", "keras3", "keras3.toml", check=check, observed=observed)


def tolerance(check="c", rtol=1e-3):
    return Record("tolerance", "case", "looser", "docs", "keras3", "keras3.toml", check=check, rtol=rtol)


def test_the_shipped_fixtures_are_valid():
    entries = expectations.load_all()
    expectations.validate(entries, {c.id for c in cases.all_cases()}, set(impls.IMPLS),
                          {"tf_keras", "tensorflow.keras", "keras"})
    assert entries, "fixtures/expectations holds no divergence"
    assert all(d.reason and d.evidence for d in entries)


def test_load_valid_file(tmp_path):
    (tmp_path / "keras3.toml").write_text(ENTRY)
    [d] = expectations.load_all(tmp_path)
    assert (d.family, d.case, d.observed, d.line) == ("keras3", "notebook-init-20-params", {"total": 20}, 2)


def test_load_skip_and_tolerance_records(tmp_path):
    (tmp_path / "keras3.toml").write_text(ENTRY + '\n[[skip]]\ncase = "a"\nreason = "hangs"\nevidence = "issue 1"\n'
                                          '\n[[tolerance]]\ncase = "b"\ncheck = "out"\nrtol = 1e-3\n'
                                          'reason = "r"\nevidence = "e"\n')
    kinds = [(d.kind, d.case, d.line) for d in expectations.load_all(tmp_path)]
    assert kinds == [("divergence", "notebook-init-20-params", 2), ("skip", "a", 9), ("tolerance", "b", 14)]


@pytest.mark.parametrize("text, message", [
    ("[[divergence]]\ncase = 1 =", "not valid TOML"),
    (ENTRY.replace('evidence = "e"', ""), "missing evidence"),
    (ENTRY.replace('reason = "r"', 'reason = " "'), "reason is empty"),
    (ENTRY + "colour = 1\n", "unknown key"),
    ("[something]\n", "unknown top-level"),
    (ENTRY + 'versions = "3.14+"\n', "not a version specifier"),
    (ENTRY + 'devices = ["cuda"]\n', "devices \\['cuda'\\] unknown"),
    (ENTRY + 'framework = "mxnet>=1"\n', "framework 'mxnet>=1' is not a framework"),
    (ENTRY + 'framework = "jax"\n', "framework 'jax' is not a framework and its versions"),
    (ENTRY + 'framework = "jax 0.4"\n', "framework 'jax 0.4' is not"),
    (ENTRY.replace("summary-totals", "summary totals"), "not a check key such as 'summary-totals'"),
    ('[[skip]]\ncase = "a"\ncheck = "b"\nreason = "r"\nevidence = "e"\n', "unknown key\\(s\\) \\['check'\\] for a skip"),
    ('[[tolerance]]\ncase = "a"\ncheck = "b"\nreason = "r"\nevidence = "e"\n', "missing rtol"),
    ('[[tolerance]]\ncase = "a"\ncheck = "b"\nrtol = 2\nreason = "r"\nevidence = "e"\n', "rtol 2 is not a number"),
    (ENTRY.replace("[[divergence]]", "[[change]]"), "a change needs versions or framework"),
])
def test_malformed_files_give_one_line(tmp_path, text, message):
    (tmp_path / "keras3.toml").write_text(text)
    with pytest.raises(ExpectationsError, match=message) as info:
        expectations.load_all(tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("versions, keras_version, applies", [
    ("", "3.15.1", True), ("<3.14", "3.13.2", True), ("<3.14", "3.14.0", False),
    (">=3.1,<3.15", "3.0.5", False), (">=3.1,<3.15", "3.10.0", True), (">=3.1,<3.15", "3.14.0rc1", True), (">=3.1,<3.15", "3.15.0rc1", False),
])
def test_versions_limit_where_a_divergence_applies(tmp_path, versions, keras_version, applies):
    (tmp_path / "keras3.toml").write_text(ENTRY + (f'versions = "{versions}"\n' if versions else ""))
    [d] = expectations.load_all(tmp_path)
    assert d.applies_to(Target("keras3:jax", "keras", keras_version)) is applies


def test_only_and_versions_both_apply():
    d = Record("divergence", "case", "r", "e", "keras3", "keras3.toml", check="c", observed=1,
               only=("keras3:tensorflow",), versions="<3.14")
    assert d.applies_to(Target("keras3:tensorflow", "keras", "3.10.0"))
    assert not d.applies_to(Target("keras3:jax", "keras", "3.10.0"))
    assert not d.applies_to(Target("keras3:tensorflow", "keras", "3.15.1"))
    assert not d.applies_to(Target("keras2", "tf_keras", "2.15.0"))  # another family's file


def test_devices_scope_a_divergence_to_a_kind_of_device(tmp_path):
    (tmp_path / "keras3.toml").write_text(ENTRY + 'devices = ["gpu"]\n')
    [d] = expectations.load_all(tmp_path)
    assert d.applies_to(Target("keras3:torch", "keras", "3.15.1", "gpu"))
    assert not d.applies_to(Target("keras3:torch", "keras", "3.15.1", "cpu"))
    assert d.applies_to(Target("keras3:torch", "keras", "3.15.1", None))  # an unknown device narrows nothing


@pytest.mark.parametrize("frameworks, applies", [
    ({"jax": "0.4.21"}, True), ({"jax": "0.4.23"}, True), ({"jax": "0.4.24"}, False), ({"jax": "0.4.20"}, False),
    ({"jax": None}, True), (None, True), ({"torch": "2.1.0"}, True),
])
def test_framework_scopes_a_record_to_framework_versions(tmp_path, frameworks, applies):
    """A framework release's behaviour, whatever the Keras above it: unknown versions do not narrow it."""
    (tmp_path / "keras3.toml").write_text(ENTRY + 'framework = "jax>=0.4.21,<0.4.24"\n')
    [d] = expectations.load_all(tmp_path)
    assert d.applies_to(Target("keras3:jax", "keras", "3.0.2", "cpu", frameworks or {})) is applies
    assert d.to_json()["framework"] == "jax>=0.4.21,<0.4.24"


def test_validate_rejects_unknown_case_and_impl(tmp_path):
    (tmp_path / "keras3.toml").write_text(ENTRY)
    entries = expectations.load_all(tmp_path)
    with pytest.raises(ExpectationsError, match="no case is called"):
        expectations.validate(entries, {"other"}, set(impls.IMPLS), set())
    (tmp_path / "keras3.toml").write_text(ENTRY + 'only = ["keras3:mxnet"]\n')
    with pytest.raises(ExpectationsError, match="unknown implementation"):
        expectations.validate(expectations.load_all(tmp_path), {"notebook-init-20-params"}, set(impls.IMPLS), set())


def test_validate_rejects_a_record_given_twice_but_not_one_per_framework_range(tmp_path):
    ids = {"notebook-init-20-params"}
    (tmp_path / "keras3.toml").write_text(ENTRY + ENTRY)
    with pytest.raises(ExpectationsError, match="recorded twice"):
        expectations.validate(expectations.load_all(tmp_path), ids, set(impls.IMPLS), set())
    (tmp_path / "keras3.toml").write_text(ENTRY + 'framework = "jax<0.5"\n' + ENTRY + 'framework = "jax>=0.5"\n')
    expectations.validate(expectations.load_all(tmp_path), ids, set(impls.IMPLS), set())


def test_same_compares_numbers_lists_and_wildcards():
    assert same(1.0, 1.0 + 1e-9)
    assert not same(1.0, 1.1)
    assert same(["[1, 10]", 2], ["[1, 10]", 2])
    assert same("ValueError at `x`: *", "ValueError at `x`: anything [here]")
    assert not same("ValueError*", "TypeError: x")
    assert not same(False, 0)
    assert same([float("nan"), 1.0], [float("nan"), 1.0]) and not same(float("nan"), 1.0)


def test_judge_pass_divergence_and_strictness():
    ok = Check("c", 1, 1, True)
    bad = Check("c", 1, 2, False)
    assert judge([ok], []).status == "pass"
    assert judge([bad], []).status == "fail"
    held = judge([bad], [divergence(observed=2)])
    assert (held.status, len(held.divergences)) == ("divergence", 1)
    gone = judge([ok], [divergence(observed=2)])
    assert gone.status == "fail" and "no longer happens" in gone.problems[0]
    other = judge([bad], [divergence(observed=3)])
    assert other.status == "fail" and "diverges differently" in other.problems[0]
    missing = judge([bad], [divergence(check="nope", observed=2)])
    assert missing.status == "fail"


def _coarse_uniform_draws(seed: int, shift: float = 0.0) -> Checks:
    """A failing statistical check, as on a 16-bit uniform: 128-value lattice draws of U(±0.0667)."""
    import numpy as np
    from scipy import stats

    lattice = np.linspace(-0.0667, 0.0667, 128)
    draws = np.random.default_rng(seed).choice(lattice, 50_000) + shift
    checks = Checks()
    checks.fit_in_dtype("distribution", draws.astype(np.float32), stats.uniform(-0.0667, 0.1334), "bfloat16",
                        alpha=1e-8, target="U(±0.0667)")
    return checks


def test_a_statistical_divergence_holds_for_another_stream_of_the_same_draws():
    """A statistical divergence records the moments its stream gave; another seed (or another random bit
    generator: JAX's partitionable threefry from 0.5.0) of the same distribution is the same divergence,
    a shifted distribution is not, and a check without standard errors stays exact."""
    recorded = _coarse_uniform_draws(seed=0).items[0]
    assert not recorded.passed and recorded.spread["mean"] > 0 and recorded.spread["std"] > 0
    record = divergence(check=recorded.key, observed=recorded.observed)
    for seed in (1, 2, 3):
        assert judge(_coarse_uniform_draws(seed).items, [record]).status == "divergence"
    shifted = judge(_coarse_uniform_draws(seed=1, shift=0.004).items, [record])
    assert shifted.status == "fail" and "beyond 6 standard errors" in shifted.problems[0]
    exact = Check(recorded.key, recorded.expected, {"mean": recorded.observed["mean"] * 1.001,
                                                    "std": recorded.observed["std"]}, False)
    assert judge([exact], [record]).status == "fail"


def test_standard_errors_of_a_sample_mean_and_a_proportion():
    checks = Checks()
    checks.z_test("mean", 0.5, n=10_000, mean=0.0, std=2.0, alpha=1e-8)
    checks.binomial_test("kept", 7_000, 10_000, 0.5, alpha=1e-8, what="kept units")
    assert checks.items[0].spread == pytest.approx(0.02)
    assert checks.items[1].spread == pytest.approx((0.7 * 0.3 / 10_000) ** 0.5)


def test_check_keys_are_stable_and_separate_from_the_text():
    checks = Checks()
    checks.equal("model(x, training=False) applies dropout", 1, 1)
    checks.equal("reworded text", 1, 2, key="rate-1")
    assert [c.key for c in checks.items] == ["model-x-training-false-applies-dropout", "rate-1"]
    held = judge(checks.items, [divergence(check="rate-1", observed=2)])
    assert held.status == "divergence"
    with pytest.raises(ValueError, match="duplicate check key"):
        checks.equal("Rate 1", 1, 1)


def made_with_tolerance(record, expected, observed, rtol):
    checks = Checks(tolerances={record.check: record})
    checks.close("c", expected, observed, rtol=rtol)
    return checks.items


def test_tolerance_records_loosen_a_check_and_are_strict():
    loose = tolerance(rtol=1e-3)
    [check] = made_with_tolerance(loose, 1.0, 1.0005, rtol=1e-6)
    assert check.passed and "tolerance record" in check.how and check.override["passes_default"] is False
    verdict = judge([check], [loose])
    assert (verdict.status, verdict.tolerances) == ("pass", [loose])
    # Still too far even at the looser tolerance: a failure.
    [far] = made_with_tolerance(loose, 1.0, 1.01, rtol=1e-6)
    assert judge([far], [loose]).status == "fail"
    # Right at the case's own tolerance: the record is stale, and says so.
    [exact] = made_with_tolerance(loose, 1.0, 1.0, rtol=1e-6)
    stale = judge([exact], [loose])
    assert stale.status == "fail" and "no longer needed" in stale.problems[0]
    # A tolerance for a check that is not compared with a tolerance, or not made at all.
    assert "not compared with a tolerance" in judge([Check("c", 1, 1, True)], [loose]).problems[0]
    assert "did not make" in judge([Check("d", 1, 1, True)], [loose]).problems[0]


def test_records_that_apply_to_nothing_run_are_listed():
    older = Record("divergence", "a", "r", "e", "keras3", "keras3.toml", check="c", observed=1, versions="<3.10")
    current = Record("divergence", "a", "r", "e", "keras3", "keras3.toml", check="c", observed=1)
    other_case = Record("skip", "b", "r", "e", "keras3", "keras3.toml")
    other_family = Record("skip", "a", "r", "e", "keras2", "keras2.toml")
    other_impl = Record("skip", "a", "r", "e", "keras3", "keras3.toml", only=("keras3:torch",), devices=("gpu",))
    ran = [("a", Target("keras3:jax", "keras", "3.15.1", "cpu"))]
    assert expectations.unmatched([older, current, other_case, other_family, other_impl], ran) == [older]


def test_a_change_is_loaded_with_its_scope_and_no_run_judges_by_it(tmp_path):
    (tmp_path / "keras3.toml").write_text(ENTRY.replace("[[divergence]]", "[[change]]") + 'framework = "jax>=0.10.2"\n')
    [d] = expectations.load_all(tmp_path)
    assert (d.kind, d.check, d.observed, d.framework) == ("change", "summary-totals", {"total": 20}, "jax>=0.10.2")
    assert d.to_json()["observed"] == {"total": 20}
    assert "change" not in expectations.JUDGED and set(expectations.JUDGED) < set(expectations.KINDS)


def test_draft_writes_records_that_are_rejected_until_filled_in(tmp_path):
    result = {"id": "notebook-init-20-params", "status": "fail", "divergences": [], "checks": [
        Check("summary totals", {"total": 20}, {"total": 21}, False).to_json(),
        Check("fine", 1, 1, True).to_json()]}
    text = expectations.draft([result], "keras3:jax", "3.15.1", "gpu")
    path = tmp_path / "keras3.toml"
    path.write_text(text)
    with pytest.raises(ExpectationsError, match="reason is empty"):
        expectations.load_all(tmp_path)
    path.write_text(text.replace('reason = ""', 'reason = "why"').replace('evidence = ""', 'evidence = "where"'))
    [d] = expectations.load_all(tmp_path)
    assert (d.case, d.check, d.observed, d.only, d.versions, d.devices) == (
        "notebook-init-20-params", "summary-totals", {"total": 21}, ("keras3:jax",), "==3.15.1", ("gpu",))


def test_a_draft_seen_on_a_bfloat16_cpu_is_not_scoped_to_it_untried(tmp_path):
    """What OpenVINO does on a CPU with bfloat16 instructions may happen on one without (it did): the draft says
    how to try the other kind before a person scopes the record to cpu-bf16."""
    result = {"id": "notebook-init-20-params", "status": "fail", "divergences": [], "checks": [
        Check("summary totals", {"total": 20}, {"total": 21}, False).to_json()]}
    text = expectations.draft([result], "keras3:openvino", "3.15.1", "cpu-bf16")
    assert "pytest --impl keras3:openvino --cpu-like avx2 -k 'notebook-init-20-params'" in text
    (tmp_path / "keras3.toml").write_text(text.replace('reason = ""', 'reason = "why"')
                                          .replace('evidence = ""', 'evidence = "where"'))
    [d] = expectations.load_all(tmp_path)
    assert d.devices == ()


def test_a_pattern_record_is_about_the_cases_of_its_family_that_make_its_check():
    """A `layer-*-regularizers` record of 'activity-penalty' leaves a layer without one alone, and holds strictly
    where the check is made."""
    ok, bad = Check("c", 1, 1, True), Check("c", 1, 2, False)
    pattern = dataclasses.replace(divergence(observed=2), case="layer-*-regularizers")
    assert judge([Check("other", 1, 1, True)], [pattern]).status == "pass"
    assert judge([bad], [pattern]).status == "divergence"
    assert "no longer happens" in judge([ok], [pattern]).problems[0]
    exact = dataclasses.replace(pattern, case="layer-dense-regularizers")
    assert "did not make" in judge([Check("other", 1, 1, True)], [exact]).problems[0]
    own = dataclasses.replace(exact, observed=3)  # the case's own record wins over the pattern's
    assert judge([Check("c", 1, 3, False)], [pattern, own]).status == "divergence"
