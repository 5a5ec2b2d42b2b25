"""The documentation site: every notebook has a page, and the offline build produces it."""
import re
import subprocess
import sys
from pathlib import Path
from conftest import ROOT


def notebooks():
    return sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_")) + ["report"]


def test_every_notebook_is_in_the_nav():
    nav = set(re.findall(r":\s*([\w.\-]+)\.ipynb\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    missing = sorted(set(notebooks()) - nav)
    assert not missing, f"notebooks without a page in mkdocs.yml's nav: {missing}"


def test_site_builds_with_a_page_per_notebook(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_docs.py")], cwd=ROOT, check=True, capture_output=True)
    site = ROOT / "site"
    for stem in notebooks():
        page = site / ("" if stem == "index" else stem) / "index.html"
        assert page.exists(), f"no page for {stem}"
    html = (site / "01_config" / "index.html").read_text()
    assert "resolve_config" in html and "<h1" in html          # API docs rendered from show_doc
    assert (site / "search" / "search_index.json").exists()    # offline search
