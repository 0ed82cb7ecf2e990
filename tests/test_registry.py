"""The case registry: declarations, ID templates, topics declared once, and finding a case from its ID."""

import re
from pathlib import Path

import pytest

from conformance import cases, suite
from conformance.layers import all_layers

ROOT = suite.CHECKOUT


def test_every_case_is_found_by_searching_its_id_or_its_template():
    """The file and line ``defined_at`` names hold the case's ID, or its family's ID template."""
    for c in cases.all_cases():
        path, line = c.defined_at.rsplit(":", 1)
        text = (ROOT / path).read_text(encoding="utf-8")
        declaration = "\n".join(text.splitlines()[int(line) - 1:int(line) + 3])
        if path.endswith(".toml"):  # a notebook cell: declared as data, its ID's last part at that line
            wanted = c.id.removeprefix(c.template.split("{")[0])
        elif path == "conformance/layers/zoo.py":  # a declared layer: declare(...) there, its slug quoted in the file
            assert "declare(" in declaration, f"{c.id}: no declaration at {c.defined_at}"
            slug = max((d.slug for d in all_layers() if d.defined_at == c.defined_at and c.id.startswith(f"layer-{d.slug}-")),
                       key=len)
            assert c.id.startswith(f"layer-{slug}-") and f'"{slug}"' in text, c.id
            wanted = "declare("
        else:
            wanted = c.id if not c.template else c.template.split("{")[0]
        assert wanted in declaration, f"{c.id}: {wanted!r} not at {c.defined_at}"
        if c.template:  # the template itself is in the source, where a search for the ID's prefix finds it
            assert any(c.template.split("{")[0].replace("{slug}", "") in p.read_text(encoding="utf-8")
                       for p in (ROOT / "conformance" / "cases").glob("*.py")), c.template
        if c.template:
            pattern = re.escape(c.template).replace(r"\{", "{").replace(r"\}", "}")
            pattern = re.sub(r"\{[a-z_]+\}", ".+", pattern)
            assert re.fullmatch(pattern, c.id), f"{c.id} does not match its template {c.template}"


def test_topics_and_markers_are_declared_once():
    assert {c.topic for c in cases.all_cases()} == set(cases.TOPICS)
    assert "markers = [" not in (ROOT / "pyproject.toml").read_text(encoding="utf-8"), \
        "markers come from conformance.cases.MARKERS, not pyproject.toml"
    for module in cases.case_modules():
        text = (ROOT / "conformance" / "cases" / f"{module}.py").read_text(encoding="utf-8")
        spelled = re.findall(r'@(?:case|family)\([^)]*?topic="(\w+)"', text, flags=re.S)
        assert set(spelled) <= set(cases.TOPICS)


def test_a_case_module_that_declares_no_case_is_an_error(monkeypatch):
    monkeypatch.setattr(cases, "_DISCOVERED", False)
    monkeypatch.setattr(cases, "case_modules", lambda: ["dropout", "helpers"])
    with pytest.raises(RuntimeError, match="helpers.py declares no case"):
        cases.all_cases()


def test_a_family_registers_one_case_per_parameter_set_and_rejects_duplicates(monkeypatch):
    monkeypatch.setattr(cases, "_REGISTRY", {})
    TOPIC = "dropout"  # noqa: F841  (read from the module, not from here)

    @cases.family("scratch-rate-{rate}", "rate {rate}", [{"rate": 0.1}, {"rate": 0.2}], topic="dropout")
    def scratch(k, checks, rate):
        checks.append(rate)

    made = list(cases._REGISTRY.values())
    assert [(c.id, c.description, c.template) for c in made] == [
        ("scratch-rate-0.1", "rate 0.1", "scratch-rate-{rate}"), ("scratch-rate-0.2", "rate 0.2", "scratch-rate-{rate}")]
    seen = []
    made[1].run(None, seen)
    assert seen == [0.2]
    with pytest.raises(ValueError, match="declared twice"):
        cases.family("scratch-rate-{rate}", "x", [{"rate": 0.1}], topic="dropout")(scratch)
    with pytest.raises(ValueError, match="topic 'weights' is not one of"):
        cases.case("scratch-other", "x", topic="weights")(scratch)


def test_helpers_declare_no_case():
    before = len(cases.all_cases())
    import conformance.cases.helpers  # noqa: F401

    assert len(cases.all_cases()) == before
    assert "helpers" not in cases.case_modules()
    assert Path(cases.__file__).with_name("helpers.py").is_file()
