"""The documentation site: every notebook has a page, and the offline build produces it."""
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
import pytest
from conftest import ROOT


def notebooks():
    return sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_")) + ["study_report"]


def test_every_notebook_is_in_the_nav():
    nav = set(re.findall(r":\s*([\w.\-]+)\.ipynb\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    missing = sorted(set(notebooks()) - nav)
    assert not missing, f"notebooks without a page in mkdocs.yml's nav: {missing}"


SHIMS = ("sudo", "pip", "pip3", "curl", "wget", "dpkg", "apt-get")   # what nbdev's Quarto installer runs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`bash scripts/docs.sh` on a machine without Quarto (the case where nbdev_proc_nbs installs it), with an empty HOME
    and a PATH whose sudo, pip, curl, wget ... only record that they were called, and fail."""
    tmp = tmp_path_factory.mktemp("docs")
    shims, home, calls = tmp / "shims", tmp / "home", tmp / "calls"
    shims.mkdir(); home.mkdir()
    for name in SHIMS:
        (shims / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 1\n'); (shims / name).chmod(0o755)
    site_packages = Path(sysconfig.get_paths()["purelib"])
    before = sorted(p.name for p in site_packages.iterdir())
    path = f"{shims}:/usr/bin:/bin"
    env = dict(HOME=str(home), PATH=path, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", LANG="C.UTF-8")
    r = subprocess.run(["bash", str(ROOT / "scripts" / "docs.sh")], cwd=ROOT, env=env, capture_output=True, text=True)
    return dict(r=r, calls=calls.read_text().splitlines() if calls.exists() else [], home=sorted(p.name for p in home.iterdir()),
                site_packages=(before, sorted(p.name for p in site_packages.iterdir())), quarto=shutil.which("quarto", path=path))


def test_docs_build_touches_nothing_outside_the_checkout(built):
    assert built["r"].returncode == 0, built["r"].stderr[-3000:]
    assert built["calls"] == [], f"the documentation build ran {built['calls']}"
    assert built["home"] == [], f"the documentation build wrote into HOME: {built['home']}"
    before, after = built["site_packages"]
    assert before == after                                     # nothing installed or removed


def test_site_builds_with_a_page_per_notebook(built):
    assert built["r"].returncode == 0, built["r"].stderr[-3000:]
    site = ROOT / "site"
    for stem in notebooks():
        page = site / ("" if stem == "index" else stem) / "index.html"
        assert page.exists(), f"no page for {stem}"
    html = (site / "01_config" / "index.html").read_text()
    assert "resolve_config" in html and "<h1" in html          # API docs rendered from show_doc
    assert (site / "search" / "search_index.json").exists()    # offline search


def test_imports_sit_in_cells_of_their_own():
    "The docs build executes every cell that imports anything (nbdev's `exec_show_docs`): such a cell must hold only imports."
    import ast, json
    bad = []
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            src = "".join(cell["source"])
            if cell["cell_type"] != "code" or src.lstrip().startswith("#| export") or "#| exporti" in src: continue
            try: tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
            except SyntaxError: continue
            guarded = {id(n) for tr in ast.walk(tree) if isinstance(tr, ast.Try) for n in ast.walk(tr)}   # `try: import x` probes
            imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in guarded]
            if imports and any(not isinstance(s, (ast.Import, ast.ImportFrom)) for s in tree.body): bad.append(f"{nb.name} cell {i}")
    assert not bad, f"cells mixing imports with other code (move the imports to the notebook's import cell): {bad}"


def test_readme_switch_table_is_the_switch_table():
    "The README's table of CDNet switches is cdnet.switches.switch_table() verbatim: one home for the switches."
    from cdnet.switches import switch_table
    assert switch_table() in (ROOT / "README.md").read_text()
