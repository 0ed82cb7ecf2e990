"""The selfcheck's machinery: catalogue loading, patching, stale detection, shadow copies, scoring."""

import sys

import pytest

from conformance.quality import selfcheck
from conformance.quality.selfcheck import Mutation, Outcome, SelfcheckError, apply, load_catalogue, score, shadow_copy


def mutation(**kw):
    base = dict(id="m", topic="init", description="d", file="src/a.py", find="x = 1", replace="x = 2")
    return Mutation(**(base | kw))


def test_apply_replaces_every_or_the_nth_occurrence():
    text = "x = 1\ny = 0\nx = 1\n"
    assert apply(text, mutation()) == "x = 2\ny = 0\nx = 2\n"
    assert apply(text, mutation(occurrence=2)) == "x = 1\ny = 0\nx = 2\n"
    assert apply(text, mutation(occurrence=3)) is None
    assert apply("nothing here", mutation()) is None


def test_shadow_copy_links_everything_but_the_mutated_file(tmp_path):
    src = tmp_path / "pkg"
    (src / "src").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "src" / "a.py").write_text("x = 1\n")
    (src / "src" / "b.py").write_text("y = 1\n")
    dest = shadow_copy(src, tmp_path / "shadow", "pkg", mutation())
    assert (dest / "src" / "a.py").read_text() == "x = 2\n"
    assert not (dest / "src" / "a.py").is_symlink()
    assert (dest / "src" / "b.py").is_symlink()
    assert (src / "src" / "a.py").read_text() == "x = 1\n"  # the original is untouched
    assert shadow_copy(src, tmp_path / "stale", "pkg", mutation(find="z = 3")) is None


def test_shadow_copy_is_imported_first(tmp_path):
    src = tmp_path / "orig" / "shadowpkg"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("VALUE = 1\n")
    m = mutation(file="__init__.py", find="VALUE = 1", replace="VALUE = 2")
    shadow_copy(src, tmp_path / "mut", "shadowpkg", m)
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import shadowpkg; print(shadowpkg.VALUE)"],
                         env={"PYTHONPATH": f"{tmp_path / 'mut'}:{tmp_path / 'orig'}"}, capture_output=True, text=True)
    assert out.stdout.strip() == "2"


def test_score_counts_timeouts_as_killed_and_skips_stale_and_equivalent():
    outcomes = [Outcome("a", "", "killed"), Outcome("b", "", "timeout"), Outcome("c", "", "survived"),
                Outcome("d", "", "stale"), Outcome("e", "", "equivalent")]
    assert score(outcomes) == (2, 3, 2 / 3)
    assert score([]) == (0, 0, 1.0)


def test_catalogue_errors_are_one_line(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text('package = "keras"\n[[mutation]]\nid = "a"\n')
    with pytest.raises(SelfcheckError, match="mutation #1") as info:
        load_catalogue(bad)
    assert "\n" not in str(info.value)
    bad.write_text("not toml [")
    with pytest.raises(SelfcheckError, match="not valid TOML"):
        load_catalogue(bad)
    with pytest.raises(SelfcheckError, match="cannot read"):
        load_catalogue(tmp_path / "missing.toml")


@pytest.mark.parametrize("name", ["keras3", "tf_keras"])
def test_shipped_catalogues_are_valid_and_large(name):
    package, mutations = load_catalogue(selfcheck.MUTATIONS_DIR / f"{name}.toml")
    assert package in ("keras", "tf_keras")
    assert len(mutations) >= 40
    topics = {m.topic for m in mutations}
    assert {"init", "batchnorm", "dropout", "regularizer", "dense"} <= topics


def test_unknown_mutation_is_refused():
    _, mutations = load_catalogue(selfcheck.MUTATIONS_DIR / "keras3.toml")
    with pytest.raises(SelfcheckError, match="no mutation called nope"):
        selfcheck.applicable(mutations, "jax", ["nope"])
    assert all(not m.backends or "jax" in m.backends for m in selfcheck.applicable(mutations, "jax", None))
