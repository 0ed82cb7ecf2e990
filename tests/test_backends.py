"""A backend is declared once, in conformance/backends/impls.py; what repeats it elsewhere is checked against it here."""

import configparser
import tomllib
from pathlib import Path

import pytest

from conformance.backends import impls
from conformance.history import BACKEND_REQUIREMENT

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tox():
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    return config


def test_every_implementation_names_an_extra_that_the_package_has_and_its_install_hint_uses_it():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for spec in impls.IMPLS.values():
        assert spec.extra in extras, spec.id
        assert f"keras-conformance[{spec.extra}]" in spec.install, spec.id


def conditional(setting: str) -> list[tuple[set[str], str]]:
    """tox's factor-conditional lines ('keras3-jax,keras3-numpy: jax') as (environments, value)."""
    out = []
    for line in setting.splitlines():
        envs, sep, value = line.partition(":")
        if sep and not line.lstrip().startswith("#"):
            out.append(({e.strip() for e in envs.split(",")}, value.strip()))
    return out


def test_every_implementation_has_its_tox_environment_with_its_extra(tox):
    envs = [e.strip() for e in tox["tox"]["env_list"].split(",")]
    runs = conditional(tox["testenv"]["setenv"])
    extras = conditional(tox["testenv"]["extras"])
    for spec in impls.IMPLS.values():
        named = [e for e in envs if any(e in where and value == f"CONFORMANCE_IMPL = {spec.id}" for where, value in runs)]
        assert named, f"no tox environment runs {spec.id}"
        with_extra = [e for e in named if any(e in where and value == spec.extra for where, value in extras)]
        assert with_extra, f"no tox environment of {spec.id} installs the extra {spec.extra!r}"


def test_the_pytorch_cpu_pin_is_written_once_and_repeated_only_where_it_is_checked(tox):
    assert f"keras3-torch: {impls.TORCH_CPU}" in tox["testenv"]["deps"]
    assert "pip install -q \"$(table 'impls.TORCH_CPU')\"" in (ROOT / ".ci" / "run").read_text()  # read from there
    assert f"`pip install {impls.TORCH_CPU}`" in (ROOT / "pyproject.toml").read_text()
    assert BACKEND_REQUIREMENT["torch"] == f"{impls.TORCH_CPU}+cpu"
    assert impls.TORCH_CPU in impls.IMPLS["keras3:torch"].install


def test_the_history_recipes_cover_the_backends_it_records():
    from conformance.history import BACKENDS

    assert set(BACKENDS) == set(BACKEND_REQUIREMENT)
