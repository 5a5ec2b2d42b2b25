"""Build the documentation site offline: executed notebooks -> nbdev's processed notebooks -> mkdocs-material pages.

The component notebooks (`nbs/NN_*.ipynb`) are stored without outputs. The build copies `nbs/` to
`_exec/` and executes the numbered notebooks there, one after another in one process (execnb, the
executor of `nbdev_test`; cells flagged with settings.ini's `tst_flags` or `#| eval: false` and
notebooks with `skip_exec: true` front matter are not run; the unnumbered reproduction notebooks,
which train, are shown as stored), so that shapes, tables and figures appear on the site;
`--no-exec` skips this. The whole build takes 3 to 5 minutes on 2 cores busy with other work (two
builds at `nice -n 19`: 306 s and 192 s, two thirds of it executing, most in `35_cli` and
`16_params`), about 1 minute with `--no-exec`.

nbdev's notebook processing (`nbdev.serve.proc_nbs`, the step of nbdev_proc_nbs that renders each
notebook as nbdev_docs would for Quarto: API docs from `show_doc`, export cells hidden, front
matter from the title cell) writes `_proc/`. It is called directly: the `nbdev_proc_nbs` command
first installs Quarto when it is missing (sudo, a download, then `pip install -e .` with whatever
pip is first on the PATH), and building the site must touch nothing outside the checkout and
`.venv/`. This script turns the Quarto-flavoured output into plain notebooks that mkdocs-jupyter
renders, adds the reproduction reports, and runs `mkdocs build`. Users who have Quarto can run
`nbdev_docs` instead.

In the conversion, outputs that do not belong on a web page are dropped: stderr streams (warnings,
progress bars, training logs), errors, widgets, and lines naming local absolute paths.
`$...$` and `$$...$$` in markdown become MathML (latex2mathml), which browsers render without
MathJax or a network connection; dollars in code spans, code blocks and `\\$` are left alone.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "_site_src"
EXEC = ROOT / "_exec"                  # executed copy of nbs/ (a build tree, ignored by git)
DIRECTIVE = re.compile(r"^\s*#\|.*\n?", re.M)
PANDOC_ATTRS = re.compile(r"\{(?:target|style|\.)[^}\n]*\}")
NBDEV_LINK = re.compile(r"https://cdnet-repro\.github\.io/cdnet/([\w.\-]+)\.html(#[\w\-.]*)?")
NB_LINK = re.compile(r"\]\((?!https?://)([\w.\-]+)\.ipynb(#[\w\-.]*)?\)")
# fenced code blocks and code spans (their dollars are not mathematics), then $$display$$ and $inline$ mathematics:
# an inline formula opens with a `$` not followed by a space and closes with one not preceded by a space nor
# followed by a digit (pandoc's rule, so "costs $5 and $6" stays text); `\$` is an escaped dollar
CODE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?^[ \t]{0,3}\1[ \t]*$|(`+)(?!`).+?(?<!`)\2(?!`)", re.M | re.S)
MATH = re.compile(r"(?<![\\$])\$\$(?P<display>.+?)\$\$|(?<![\\$])\$(?![\s$])(?P<inline>(?:\\.|[^$\\\n])+?)(?<![\s\\])\$(?!\d)", re.S)
PROGRESS = re.compile(r"\d+%\|.*\||\d+(?:\.\d+)?\s*(?:it/s|s/it)\b")   # tqdm-style progress bars


def page_names(nbs: Path) -> dict[str, str]:
    "nbdev's html name (number prefix dropped) -> notebook stem."
    return {re.sub(r"^\d+_", "", p.stem): p.stem for p in nbs.glob("*.ipynb")}


def front_matter(src: str) -> dict:
    out = {}
    for key in ("title", "description"):
        m = re.search(rf"^{key}:[ \t]*(.*(?:\n[ \t]+\S.*)*)", src, re.M)
        if m: out[key] = " ".join(s.strip() for s in m.group(1).splitlines()).strip("'\"")
    return out


def _mathml(m: re.Match) -> str:
    from latex2mathml.converter import convert as latex_to_mathml
    display = m.group("display") is not None
    tex = (m.group("display") if display else m.group("inline")).strip()
    try: return latex_to_mathml(tex, display="block" if display else "inline")
    except Exception as e:                           # noqa: BLE001 (the library raises many types): keep the source visible
        print(f"warning: LaTeX not converted ({type(e).__name__}: {e}): {tex!r}", file=sys.stderr)
        return m.group(0)


def math_to_mathml(text: str) -> str:
    "Markdown `text` with every `$...$` / `$$...$$` outside code replaced by a MathML `<math>` element (inline / block)."
    out, last = [], 0
    for m in CODE.finditer(text):
        out += [MATH.sub(_mathml, text[last:m.start()]), m.group(0)]; last = m.end()
    return "".join(out + [MATH.sub(_mathml, text[last:])])


def private_paths() -> list[str]:
    "Local absolute paths that must not reach the site (checked after `_exec/` and the checkout were made relative)."
    return sorted({str(ROOT.parent) + "/", str(Path.home()) + "/", "/work/", "/tmp/"}, key=len, reverse=True)


def scrub(text: str, *, drop_lines: bool) -> str:
    """`text` with the build tree and the checkout as relative paths; lines still naming a local absolute path (and
    progress-bar lines) dropped when `drop_lines`, else those paths replaced by `...`."""
    text = text.replace(str(EXEC) + "/", "nbs/").replace(str(EXEC), "nbs").replace(str(ROOT) + "/", "").replace(str(ROOT), ".")
    private = private_paths()
    if not drop_lines:
        for p in private: text = re.sub(re.escape(p) + r"[^\s\"'<>]*", "...", text)
        return text
    lines = [l.rsplit("\r", 1)[-1] for l in text.split("\n")]          # a carriage return redraws the line
    return "\n".join(l for l in lines if not PROGRESS.search(l) and not any(p in l for p in private))


def clean_outputs(outputs: list[dict]) -> list[dict]:
    "The outputs of a code cell that belong on a web page: no stderr, errors, widgets, progress bars or local paths."
    keep = []
    for o in outputs:
        kind = o.get("output_type")
        if kind == "error" or (kind == "stream" and o.get("name") != "stdout"): continue
        if kind == "stream":
            text = scrub("".join(o["text"]) if isinstance(o["text"], list) else o["text"], drop_lines=True)
            if text.strip(): keep.append(dict(o, text=text))
            continue
        data = {}
        for mime, v in o.get("data", {}).items():
            if "widget" in mime: continue
            if mime.startswith("text/"):
                v = scrub("".join(v) if isinstance(v, list) else v, drop_lines=mime == "text/plain")
                if not v.strip(): continue
            data[mime] = v
        if data: keep.append(dict(o, data=data))
    return keep


def convert(nb: dict, names: dict[str, str], depth: int) -> dict:
    "Quarto-flavoured processed notebook -> notebook for mkdocs-jupyter (mathematics as MathML, outputs cleaned)."
    up = "../" * depth
    def links(text: str) -> str:
        text = PANDOC_ATTRS.sub("", math_to_mathml(text))
        text = NBDEV_LINK.sub(lambda m: f"{up}{names.get(m.group(1), m.group(1))}/{m.group(2) or ''}", text)
        return NB_LINK.sub(lambda m: f"]({up}{m.group(1)}/{m.group(2) or ''})", text)
    cells = []
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c["cell_type"] == "raw" and src.startswith("---"):
            fm = front_matter(src)
            if "title" in fm:
                cells.append(dict(cell_type="markdown", metadata={}, source=links(f"# {fm['title']}\n\n> {fm.get('description', '')}")))
            continue
        if "WARNING: THIS FILE WAS AUTOGENERATED" in src: continue
        if c["cell_type"] == "markdown":
            cells.append(dict(c, source=links(src))); continue
        if c["cell_type"] != "code": continue
        if re.search(r"^#\|\s*echo:\s*false", src, re.M):  # show_doc: keep only its rendered markdown
            md = [o["data"]["text/markdown"] for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
            if md: cells.append(dict(cell_type="markdown", metadata={}, source=links("".join("".join(m) for m in md))))
            continue
        cells.append(dict(c, source=DIRECTIVE.sub("", src), outputs=clean_outputs(c.get("outputs", []))))
    return dict(nb, cells=cells)


def md_notebook(title: str, text: str) -> dict:
    return dict(cells=[dict(cell_type="markdown", metadata={}, source=f"# {title}\n\n{text}")], metadata={}, nbformat=4, nbformat_minor=5)


def skips_exec(nb: dict) -> bool:
    "Whether the notebook's raw front matter says `skip_exec: true` (as `nbdev_test` reads it)."
    raw = next((c for c in nb["cells"] if c["cell_type"] == "raw"), None)
    src = "".join(raw["source"]) if raw else ""
    return bool(re.search(r"^skip_exec:\s*(true|yes|1)\s*$", src, re.M | re.I))


def execute_notebook(path: Path) -> float:
    """Execute the notebook at `path` in place with execnb, as `nbdev_test` runs it (working directory: its folder;
    cells with a `tst_flags` directive of settings.ini or `#| eval: false` skipped) and store the outputs in it.
    Returns the seconds taken; raises `RuntimeError` with the traceback when a cell fails."""
    import time
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.process import extract_directives
    flags = set(get_config(path=ROOT).get("tst_flags", "").split())
    def no_eval(cell) -> bool:
        if cell.cell_type != "code": return True
        d = extract_directives(cell, remove=False)
        return d.get("eval:", [""])[0].lower() == "false" or bool(flags & d.keys())
    nb, start = read_nb(path), time.time()
    shell = CaptureShell(path)
    try:
        with working_directory(path.parent): shell.run_all(nb, exc_stop=True, preproc=no_eval)
    except Exception as e:
        tb = shell.prettytb(fname=path) if getattr(shell, "_cell_idx", None) else repr(e)
        raise RuntimeError(f"{path.name} failed while executing for the docs:\n{tb}") from e
    write_nb(nb, path)
    return time.time() - start


def execute_notebooks(src: Path = ROOT / "nbs", dest: Path = EXEC) -> Path:
    """Copy the notebook folder `src` to `dest` and execute its numbered notebooks (`NN_*.ipynb`) there in order,
    except those with `skip_exec: true` front matter; the stored notebooks in `src` keep no outputs. Returns `dest`."""
    if dest.exists(): shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for p in sorted(dest.glob("[0-9]*.ipynb")):
        if skips_exec(json.loads(p.read_text())): continue
        print(f"executing {p.name} ...", end=" ", flush=True)
        print(f"{execute_notebook(p):.0f} s", flush=True)
    return dest


def process_notebooks(nbs: Path, force: bool = False) -> Path:
    "`nbs` -> _proc/ as nbdev_proc_nbs does, without its Quarto installer (no sudo, pip or download)."
    from nbdev.serve import proc_nbs
    os.chdir(ROOT)                                   # nbdev finds settings.ini from the working directory
    return proc_nbs(str(nbs), n_workers=min(4, os.cpu_count() or 1), force=force)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-proc", action="store_true", help="reuse _proc/ from an earlier run")
    ap.add_argument("--no-build", action="store_true", help="prepare _site_src/ only, do not run mkdocs")
    ap.add_argument("--no-exec", action="store_true", help="do not execute the notebooks: pages without outputs, much faster")
    a = ap.parse_args(argv)
    bin_ = Path(sys.executable).parent
    if not a.skip_proc:
        # _proc/ is a cache keyed on file times: rebuild it whole when it was made from the other kind of source
        kind, stamp = ("stored" if a.no_exec else "executed"), ROOT / "_proc" / ".cdnet-source"
        force = not stamp.exists() or stamp.read_text() != kind
        process_notebooks(ROOT / "nbs" if a.no_exec else execute_notebooks(), force=force)
        stamp.write_text(kind)
    if SRC.exists(): shutil.rmtree(SRC)
    SRC.mkdir()
    names = page_names(ROOT / "nbs")
    for p in sorted((ROOT / "_proc").glob("*.ipynb")):
        nb = convert(json.loads(p.read_text()), names, depth=0 if p.stem == "index" else 1)
        (SRC / p.name).write_text(json.dumps(nb))
    # the report notebook and what the last report run wrote
    rep = json.loads((ROOT / "reports" / "study_report.ipynb").read_text())
    (SRC / "study_report.ipynb").write_text(json.dumps(convert(rep, names, depth=1)))
    out = ROOT / "reports" / "output"
    parts = []
    (SRC / "results").mkdir()
    order = ["tables_authors", "tables_standard", "beside_paper", "runs"]  # the paper-style tables first
    for f in sorted(out.glob("*.md"), key=lambda f: (order.index(f.stem) if f.stem in order else len(order), f.stem)) if out.is_dir() else []:
        parts.append(f"## {f.stem.replace('_', ' ')}\n\n" + f.read_text())
    for f in sorted(out.glob("*.png")) if out.is_dir() else []:
        shutil.copy(f, SRC / "results" / f.name); parts.append(f"## {f.stem.replace('_', ' ')}\n\n![{f.stem}]({f.name})")
    text = ("Tables and plots written by `reports/study_report.ipynb` from the results files of the runs made so far "
            "(`bash scripts/main.sh` regenerates them).\n\n" + "\n\n".join(parts)) if parts else \
           "No report yet: run `bash scripts/main.sh`, then rebuild the site."
    (SRC / "results" / "index.md").write_text("# Results\n\n" + text + "\n")
    findings = ROOT / "reports" / "findings.md"   # the verdict per claim, written by the report
    (SRC / "findings.md").write_text(math_to_mathml(findings.read_text()) if findings.exists() else
                                     "# Findings\n\nNo findings yet: run `bash scripts/main.sh`, then rebuild the site.\n")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if not a.no_build: subprocess.run([str(bin_ / "mkdocs"), "build", "--clean", "--quiet"], cwd=ROOT, check=True, env=env)
    print(f"site: {ROOT / 'site' / 'index.html'}")


if __name__ == "__main__":
    main()
