"""The README is for the first minutes; the rest is the documentation site (mkdocs.yml), whose pages it lists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_keeps_to_what_a_newcomer_needs_first():
    assert README.count("\n") <= 300
    assert README.startswith("# keras-conformance\n\n```bash\npip install -e '.[tensorflow]' && keras-conformance run")


def test_every_page_the_readme_lists_exists_and_is_in_the_sites_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = re.findall(r"\]\(docs/([a-z-]+\.md)\)", README)
    assert len(pages) >= 10
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), page
        assert f": {page}" in nav, f"{page} is not in mkdocs.yml's nav"


def test_the_sites_home_page_is_the_readme_with_its_links_made_relative_to_docs():
    home = (ROOT / "docs" / "index.md").read_text()
    assert home == README.replace("](docs/", "](").replace(
        "`docs/organisation.md`", "[the organisation page](organisation.md)"), \
        "regenerate docs/index.md from README.md"


def test_the_site_builds_strictly(tmp_path):
    mkdocs = pytest.importorskip("mkdocs.commands.build")
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"), strict=True)
    mkdocs.build(config)
    assert (tmp_path / "site" / "topics" / "index.html").is_file()
