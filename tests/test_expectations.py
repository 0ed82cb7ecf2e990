"""Divergences as data: loading, validation, and strict judging."""

import pytest

from conformance import cases, expectations, impls
from conformance.checks import Check
from conformance.expectations import Divergence, ExpectationsError, judge, same

ENTRY = '''
[[divergence]]
case = "notebook-init-20-params"
check = "summary totals"
observed = {total = 20}
reason = "r"
evidence = "e"
'''


def divergence(check="c", observed=1):
    return Divergence("case", check, observed, "because", "docs", "keras3", "keras3.toml")


def test_the_shipped_fixtures_are_valid():
    entries = expectations.load_all()
    expectations.validate(entries, {c.id for c in cases.all_cases()}, set(impls.IMPLS),
                          {"tf_keras", "tensorflow.keras", "keras"})
    assert entries, "fixtures/expectations holds no divergence"
    assert all(d.reason and d.evidence for d in entries)


def test_load_valid_file(tmp_path):
    (tmp_path / "keras3.toml").write_text(ENTRY)
    [d] = expectations.load_all(tmp_path)
    assert (d.family, d.case, d.observed) == ("keras3", "notebook-init-20-params", {"total": 20})


@pytest.mark.parametrize("text, message", [
    ("[[divergence]]\ncase = 1 =", "not valid TOML"),
    (ENTRY.replace('evidence = "e"', ""), "missing evidence"),
    (ENTRY.replace('reason = "r"', 'reason = " "'), "reason is empty"),
    (ENTRY + "colour = 1\n", "unknown key"),
    ("[something]\n", "unknown top-level"),
    (ENTRY + 'versions = "3.14+"\n', "not a version specifier"),
    (ENTRY + 'devices = ["cuda"]\n', "devices \\['cuda'\\] unknown"),
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
    assert d.applies_to("keras3:jax", "keras", keras_version) is applies


def test_only_and_versions_both_apply():
    d = Divergence("case", "c", 1, "r", "e", "keras3", "keras3.toml", only=("keras3:tensorflow",), versions="<3.14")
    assert d.applies_to("keras3:tensorflow", "keras", "3.10.0")
    assert not d.applies_to("keras3:jax", "keras", "3.10.0")
    assert not d.applies_to("keras3:tensorflow", "keras", "3.15.1")


def test_devices_scope_a_divergence_to_a_kind_of_device(tmp_path):
    (tmp_path / "keras3.toml").write_text(ENTRY + 'devices = ["gpu"]\n')
    [d] = expectations.load_all(tmp_path)
    assert d.applies_to("keras3:torch", "keras", "3.15.1", "gpu")
    assert not d.applies_to("keras3:torch", "keras", "3.15.1", "cpu")


def test_validate_rejects_unknown_case_and_impl(tmp_path):
    (tmp_path / "keras3.toml").write_text(ENTRY)
    entries = expectations.load_all(tmp_path)
    with pytest.raises(ExpectationsError, match="unknown case"):
        expectations.validate(entries, {"other"}, set(impls.IMPLS), set())
    (tmp_path / "keras3.toml").write_text(ENTRY + 'only = ["keras3:mxnet"]\n')
    with pytest.raises(ExpectationsError, match="unknown implementation"):
        expectations.validate(expectations.load_all(tmp_path), {"notebook-init-20-params"}, set(impls.IMPLS), set())


def test_same_compares_numbers_lists_and_wildcards():
    assert same(1.0, 1.0 + 1e-9)
    assert not same(1.0, 1.1)
    assert same(["[1, 10]", 2], ["[1, 10]", 2])
    assert same("ValueError at `x`: *", "ValueError at `x`: anything [here]")
    assert not same("ValueError*", "TypeError: x")
    assert not same(False, 0)


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
