"""The documentation site: every notebook has a page, and the offline build produces it."""
import os
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
    """`bash scripts/docs.sh --no-exec` on a machine without Quarto (the case where nbdev_proc_nbs installs it), with an empty HOME
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
    # --no-exec: executing every component notebook takes many minutes; test_executed_outputs checks that path
    r = subprocess.run(["bash", str(ROOT / "scripts" / "docs.sh"), "--no-exec"], cwd=ROOT, env=env, capture_output=True, text=True)
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


def test_equations_are_mathml(built):
    "LaTeX in markdown reaches the page as MathML (rendered by the browser, offline), not as `$...$` source."
    assert built["r"].returncode == 0, built["r"].stderr[-3000:]
    for stem in ("13_models.cdnet", "11_modules.cells", "21_metrics"):
        html = (ROOT / "site" / stem / "index.html").read_text()
        assert html.count("<math") > 10, stem
        assert "$n_{past}" not in html and "\\odot" not in html and "\\mathrm" not in html, stem
    assert 'display="block"' in (ROOT / "site" / "21_metrics" / "index.html").read_text()   # $$...$$


def build_docs():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_docs
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return build_docs


def test_math_conversion_leaves_code_and_dollars_alone():
    b = build_docs()
    out = b.math_to_mathml("cost $x_t$ and $$\\sum_i a_i$$, not `$HOME` nor \\$5 or $5 and $6;\n```sh\necho $PATH $x$\n```\n")
    assert out.count("<math") == 2 and 'display="block"' in out and 'display="inline"' in out
    assert "`$HOME`" in out and "\\$5" in out and "$5 and $6" in out and "echo $PATH $x$" in out


def test_outputs_are_cleaned():
    b = build_docs()
    outs = [dict(output_type="stream", name="stderr", text="UserWarning: ...\n"),
            dict(output_type="stream", name="stdout", text=f"shape (2, 3)\nwrote {b.ROOT}/results/x.csv\nread /work/data/y\n"
                                                             f"epoch 1:  40%|####      | 4/10 [00:01<00:02, 3.1it/s]\n"),
            dict(output_type="error", ename="ValueError", evalue="", traceback=[]),
            dict(output_type="display_data", data={"text/plain": f"{Path.home()}/x", "text/html": f"<td>{Path.home()}/x</td>"}, metadata={})]
    got = b.clean_outputs(outs)
    assert [o["output_type"] for o in got] == ["stream", "display_data"]
    assert got[0]["text"] == "shape (2, 3)\nwrote results/x.csv\n"
    assert "text/plain" not in got[1]["data"] and str(Path.home()) not in got[1]["data"]["text/html"]


def test_executed_outputs(tmp_path):
    "A component notebook is executed as nbdev_test runs it and keeps its outputs (figures included); `skip_exec` is honoured."
    import json
    b = build_docs()
    def code(src): return dict(cell_type="code", execution_count=None, metadata={}, outputs=[], source=src)
    nb = dict(nbformat=4, nbformat_minor=5, metadata={}, cells=[
        code("import matplotlib.pyplot as plt"), code("print(2 + 3)"), code("#| eval: false\nraise SystemExit"),
        code("#| slow\nraise SystemExit"), code("plt.plot([0, 1]);")])
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "01_x.ipynb").write_text(json.dumps(nb))
    skipped = dict(nb, cells=[dict(cell_type="raw", metadata={}, source="---\nskip_exec: true\n---")] + nb["cells"])
    (tmp_path / "nbs" / "02_y.ipynb").write_text(json.dumps(skipped))
    dest = b.execute_notebooks(tmp_path / "nbs", tmp_path / "exec")
    cells = json.loads((dest / "01_x.ipynb").read_text())["cells"]
    assert "".join(cells[1]["outputs"][0]["text"]) == "5\n"
    assert not cells[2]["outputs"] and not cells[3]["outputs"]
    assert any("image/png" in o.get("data", {}) for o in cells[4]["outputs"])
    assert all(not c["outputs"] for c in json.loads((dest / "02_y.ipynb").read_text())["cells"] if c["cell_type"] == "code")
    assert all(not c["outputs"] for c in json.loads((tmp_path / "nbs" / "01_x.ipynb").read_text())["cells"])   # the source stays clean


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


FAKE_QUARTO = """#!/bin/bash
# stands in for Quarto: the README render writes _docs/README.md (as quarto does in nbdev's cache), the site render a page
for a in "$@"; do [ "$a" = README.md ] && { mkdir -p _docs; echo "the index page" > _docs/README.md; exit 0; }; done
mkdir -p _docs; echo "<html></html>" > _docs/index.html
"""


def test_nbdev_docs_keeps_the_readme(tmp_path):
    """nbdev_docs renders README.md from nbs/index.ipynb (settings.ini: readme_nb), replacing the project's README;
    scripts/nbdev_docs.sh runs it and puts the README back. Quarto is a stand-in here (none is installed)."""
    repo, bin_ = tmp_path / "repo", tmp_path / "bin"
    repo.mkdir(); bin_.mkdir()
    for name in ("nbs", "cdnet", "scripts"): shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "_*.ipynb"))
    for name in ("settings.ini", "README.md", "setup.py", "pyproject.toml", "mkdocs.yml"):
        if (ROOT / name).exists(): shutil.copy(ROOT / name, repo / name)
    (repo / ".venv").symlink_to(ROOT / ".venv")
    (bin_ / "quarto").write_text(FAKE_QUARTO); (bin_ / "quarto").chmod(0o755)
    readme = (repo / "README.md").read_text()
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"}
    (repo / "nbs" / "index.ipynb").touch()                                  # newer than the README: nbdev renders it
    r = subprocess.run(["bash", "scripts/nbdev_docs.sh"], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (repo / "_docs" / "index.html").exists()                        # the site was built
    assert (repo / "README.md").read_text() == readme                      # and the README is the project's
    assert not list(repo.glob("README.md.*"))                              # the kept copy is gone
