"""The reproduction notebooks, executed through papermill at the `smoke` preset."""
import json
from pathlib import Path
import pandas as pd
import papermill as pm
import pytest
from conftest import ROOT


def run_nb(nb, tmp_path, **params):
    out = tmp_path / Path(nb).name
    pm.execute_notebook(str(ROOT / nb), str(out), parameters=params, cwd=str(ROOT), progress_bar=False, kernel_name="python3")
    return out


def test_main_results_smoke(tmp_path, mnist_dir):
    res = tmp_path / "results"
    run_nb("nbs/main_results.ipynb", tmp_path, preset="smoke", out_dir=str(res), mnist_dir=mnist_dir)
    table = pd.read_csv(res / "mmnist" / "smoke" / "main_results.csv")
    models = {"copy-last", "mean-frame", "convlstm", "predrnn", "mim", "motionrnn", "phydnet", "frnn", "crevnet", "cdnet-released",
              "cdnet-paper"}
    assert set(table.model) == models and set(table.convention) == {"standard", "authors"}
    for m in models:
        run = res / "mmnist" / "smoke" / m / "seed1234"
        assert json.loads((run / "status.json").read_text())["status"] == "done"
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["config"]["preset"] == "smoke" and cfg["provenance"]["versions"]["torch"]
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["summary"]["standard"]["mse"] > 0 and 0 < metrics["summary"]["standard"]["ssim"] <= 1
    assert (res / "mmnist" / "smoke" / "main_results_per_frame.png").stat().st_size > 10_000

    # the report reads only those files
    out = tmp_path / "report"
    run_nb("reports/study_report.ipynb", tmp_path, results_dir=str(res), out_dir=str(out))
    t = pd.read_csv(out / "table_mmnist_smoke_authors.csv")
    assert set(t.model) == models
    beside = pd.read_csv(out / "beside_paper.csv")
    assert {"published", "difference", "comparable"} <= set(beside.columns) and not beside.comparable.any()
    assert (out / "per_frame_mmnist_smoke.png").exists()


def test_main_results_bad_parameter(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb("nbs/main_results.ipynb", tmp_path, preset="smoke", models="copy-last,transformer", out_dir=str(tmp_path / "r"))
    assert "invalid value for `model`: 'transformer'" in str(e.value)
    assert not (tmp_path / "r").exists()      # nothing written before the configuration is valid


def test_main_results_seeds_summary_and_curves(tmp_path, mnist_dir):
    "Two seeds on the miniature: intervals and paired tests equal scipy's on the per-seed results files; a rerun reuses every run, a later seed's without its checkpoint."
    import numpy as np
    from scipy import stats
    res, models = tmp_path / "results", ["copy-last", "mean-frame", "convlstm"]
    run_nb("nbs/main_results.ipynb", tmp_path, preset="smoke", dataset="mmnist_32", models=",".join(models), seeds=[1, 2],
           out_dir=str(res), mnist_dir=mnist_dir, reuse=True)
    base = res / "mmnist_32" / "smoke"
    per_seed = {(m, s): json.loads((base / m / f"seed{s}" / "metrics.json").read_text())["summary"]["standard"]
                for m in models for s in (1, 2)}
    val = pd.read_csv(base / "convlstm" / "seed1" / "val_log.csv")
    assert list(val.step) == [0, 1, 2] and (val.val_mse > 0).all() and val.train_seconds.is_monotonic_increasing
    assert len(pd.read_csv(base / "copy-last" / "seed1" / "val_log.csv")) == 1          # a baseline: its level
    for png in ("main_results_learning_curves.png", "main_results_example.png", "main_results_per_frame.png"):
        assert (base / png).stat().st_size > 10_000
    assert "±" in (base / "main_results.md").read_text()
    stamp = {p: p.stat().st_mtime_ns for p in base.rglob("metrics.json")}

    out = tmp_path / "report"
    run_nb("reports/study_report.ipynb", tmp_path, results_dir=str(res), out_dir=str(out), findings_preset="smoke")
    findings = (tmp_path / "findings.md").read_text()                                  # beside out_dir by default
    claims = findings.split("## Claims")[1].split("\n## ")[0]
    assert "| Sec. 4.3, Table 1 |" in claims and "not yet run" in claims and "| reproduced |" in claims   # no CDNet runs; the counts
    assert "## What needs a GPU or the real datasets" in findings
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""])
    assert list(summary.columns) == ["dataset", "preset", "model", "tag", "convention", "metric", "mean", "ci_low", "ci_high",
                                     "n_seeds", "paper_value", "comparable"]
    row = summary[(summary.model == "convlstm") & (summary.convention == "standard") & (summary.metric == "mse")].iloc[0]
    x = [per_seed["convlstm", s]["mse"] for s in (1, 2)]
    lo, hi = stats.t.interval(0.95, 1, loc=np.mean(x), scale=stats.sem(x))
    assert row["n_seeds"] == 2 and np.isclose(row["mean"], np.mean(x)) and np.allclose([row.ci_low, row.ci_high], [lo, hi])
    assert summary.paper_value.isna().all()                                            # a miniature: no paper number
    paired = pd.read_csv(out / "paired.csv")
    p = paired[(paired.model == "convlstm") & (paired.against == "copy-last") & (paired.metric == "mse") & (paired.convention == "standard")].iloc[0]
    ref = stats.ttest_rel(x, [per_seed["copy-last", s]["mse"] for s in (1, 2)])
    assert np.isclose(p.t, ref.statistic) and np.isclose(p.p, ref.pvalue)
    signal = pd.read_csv(out / "signal.csv").set_index("model")                       # two seeds: never "signal" (3 needed)
    cl = summary[(summary.model == "copy-last") & (summary.convention == "standard") & (summary.metric == "mse")].iloc[0]
    assert signal.loc["convlstm", "mse_below_copy-last"] == (row.ci_high < cl.ci_low) and not signal.signal.any()
    assert (out / "learning_curves_mmnist_32_smoke.png").stat().st_size > 10_000
    assert "±" in (out / "tables_standard.md").read_text()

    # a killed or repeated study reads back what finished; after the first seed, without its checkpoint (none committed)
    (base / "convlstm" / "seed2" / "checkpoint.pt").unlink()
    run_nb("nbs/main_results.ipynb", tmp_path, preset="smoke", dataset="mmnist_32", models=",".join(models), seeds="1,2",
           out_dir=str(res), mnist_dir=mnist_dir, reuse=True)
    assert {p: p.stat().st_mtime_ns for p in base.rglob("metrics.json")} == stamp


REPRODUCTION = sorted([*(ROOT / "nbs").glob("[a-z]*.ipynb"), ROOT / "reports" / "study_report.ipynb"])


def parameters(nb: Path) -> list[tuple[str, str, str]]:
    "(name, type, comment) of each line of a notebook's `parameters` cell."
    import re
    cells = json.loads(nb.read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c["metadata"].get("tags", [])), None)
    return [] if cell is None else re.findall(r"^(\w+)\s*:\s*([\w\[\]]+)\s*=[^#\n]*#?(.*)$", "".join(cell["source"]), re.M)


@pytest.mark.parametrize("nb", REPRODUCTION, ids=lambda p: p.stem)
def test_boolean_parameters_use_the_shared_conversion(nb):
    "papermill passes `-p reuse false` as the text 'false': every on/off parameter goes through cdnet.config.to_bool."
    text = nb.read_text()
    for name, typ, comment in parameters(nb):
        if typ in ("bool", "Optional[bool]"):
            assert f'to_bool(\\"{name}\\", {name}' in text, \
                f"{nb.name}: the parameter {name} is not converted by cdnet.config.to_bool"


@pytest.mark.parametrize("nb", REPRODUCTION, ids=lambda p: p.stem)
def test_misspelt_parameters_are_stopped(nb):
    "papermill injects its cell right after the parameters cell: the first code cell after that must run `check_parameters`."
    cells = json.loads(nb.read_text())["cells"]
    i = next((i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])), None)
    if i is None: pytest.skip(f"{nb.name} takes no parameters")
    first = next(c for c in cells[i + 1:] if c["cell_type"] == "code")
    assert "".join(first["source"]).startswith("check_parameters(globals())"), f"{nb.name}: no check_parameters after the parameters"


@pytest.mark.parametrize("nb", REPRODUCTION, ids=lambda p: p.stem)
def test_reproduction_notebooks_are_thin(nb):
    """A reproduction notebook defines no function or class (its logic is package code, tested in the component notebooks),
    and a parameter that can be left unset is `Optional[...] = None`, the one "not set" (no -1, 0, "" or "auto" sentinels)."""
    import ast, re
    cells = [("".join(c["source"])) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    defined = [n.name for s in cells for n in ast.walk(ast.parse(s)) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not defined, f"{nb.name} defines {defined}: move them into the package (a component notebook, with a test)"
    cell = next((c for c in json.loads(nb.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])), None)
    for line in "".join(cell["source"] if cell else []).splitlines():
        m = re.match(r"^(\w+)\s*:\s*([\w\[\]]+)\s*=\s*([^#]*?)\s*#(.*)$", line)
        assert m, f"{nb.name}: a parameter without a type or a comment: {line!r}"
        name, typ, default, comment = m.groups()
        if re.search(r"\b(None|empty|-1|0):", comment):
            assert typ.startswith("Optional[") and default == "None" and "None:" in comment, f"{nb.name}: {name} is not set by a sentinel"


def test_main_results_boolean_text(tmp_path, mnist_dir):
    "reuse='false' (papermill's text) trains again; reuse='true' reads the finished run back; other text is refused by name."
    res = tmp_path / "results"
    common = dict(preset="smoke", models="copy-last", out_dir=str(res), mnist_dir=mnist_dir)
    run_nb("nbs/main_results.ipynb", tmp_path, **common)
    metrics = res / "mmnist" / "smoke" / "copy-last" / "seed1234" / "metrics.json"
    m = json.loads(metrics.read_text()); true_mse = m["summary"]["standard"]["mse"]
    m["summary"]["standard"]["mse"] = 999.0; metrics.write_text(json.dumps(m))      # marks a read-back run
    table = lambda: pd.read_csv(res / "mmnist" / "smoke" / "main_results.csv").query("convention == 'standard'").mse.iloc[0]
    run_nb("nbs/main_results.ipynb", tmp_path, **common, reuse="true")
    assert table() == 999.0
    run_nb("nbs/main_results.ipynb", tmp_path, **common, reuse="false")
    assert table() == pytest.approx(true_mse)
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb("nbs/main_results.ipynb", tmp_path, **common, stop_on_failure="maybe")
    assert "invalid value for `stop_on_failure`: 'maybe'" in str(e.value)


@pytest.mark.parametrize("nb, params, message", [
    ("nbs/long_horizon.ipynb", dict(reuse="maybe"), "invalid value for `reuse`: 'maybe'"),
    ("nbs/ablation.ipynb", dict(use_mask="maybe"), "invalid value for `use_mask`: 'maybe' (allowed: True | False"),
])
def test_boolean_parameter_text_refused_by_name(nb, params, message, tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb(nb, tmp_path, preset="smoke", out_dir=str(tmp_path / "r"), **params)
    assert message in str(e.value)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("nb", REPRODUCTION, ids=lambda p: p.stem)
def test_every_parameter_is_documented_by_papermill(nb):
    "`papermill --help-notebook` lists every parameter (its parser skips a line whose comment holds `=` or quotes)."
    from papermill.translators import PythonTranslator
    cells = json.loads(nb.read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c["metadata"].get("tags", [])), None)
    if cell is None: return
    found = {p.name for p in PythonTranslator.inspect({"source": "".join(cell["source"])})}
    assert found == {name for name, _, _ in parameters(nb)}, f"{nb.name}: papermill does not parse {sorted({n for n, _, _ in parameters(nb)} - found)}"


def test_protocol_audit_smoke(tmp_path, mnist_dir):
    "Three rows over two seeds: runs tagged audit:..., the references, the exact area loss identical to its reference, the convention gap, files; a later call with another row keeps the earlier rows in the files; a wrong row is refused."
    res = tmp_path / "results"
    run_nb("nbs/main_results.ipynb", tmp_path, preset="smoke", dataset="mmnist_32", seeds=[1], models="cdnet-released", out_dir=str(res),
           mnist_dir=mnist_dir)                                         # a main run for seed 1 only: the reference row pairs with it
    run_nb("nbs/protocol_audit.ipynb", tmp_path, preset="smoke", dataset="mmnist", seeds=[1, 2], out_dir=str(res), mnist_dir=mnist_dir,
           rows="area_loss=none,gates=paper,crevnet_sampling=teacher")
    base = res / "mmnist_32" / "smoke"
    assert (base / "cdnet-released" / "audit:gates=paper" / "seed2" / "metrics.json").exists()
    assert (base / "crevnet" / "audit:crevnet_sampling=teacher" / "seed1" / "config.json").exists()
    assert all((base / m / "audit:reference" / f"seed{s}" / "metrics.json").exists() for m in ("cdnet-released", "crevnet") for s in (1, 2))
    eff = pd.read_csv(base / "audit_effects.csv")
    assert set(eff.metric) == {"mse", "ssim"} and (eff[eff.tag != "audit:reference"].n_seeds == 2).all()
    area = eff[(eff.tag == "audit:area_loss=none") & (eff.convention == "standard")]
    assert len(area) == 2 and (area.verdict == "identical").all() and (area.effect == 0).all()
    gap = eff[eff.convention == "authors - standard"]
    assert set(gap.model) == {"cdnet-released", "crevnet"} and gap.effect.abs().gt(0).all()
    ref = eff[(eff.tag == "audit:reference") & (eff.convention == "standard")]
    assert set(ref.model) == {"cdnet-released"} and (ref.n_seeds == 1).all() and (ref.verdict == "identical").all()   # retrained alike: the same run
    assert (base / "audit_forest.png").stat().st_size > 10_000 and "identical" in (base / "audit.md").read_text()
    run_nb("nbs/protocol_audit.ipynb", tmp_path, preset="smoke", dataset="mmnist", seeds=[1, 2], out_dir=str(res), mnist_dir=mnist_dir,
           rows="mask_sigmoid=false")                                   # one more row: the earlier ones stay in the files, unchanged
    eff2 = pd.read_csv(base / "audit_effects.csv")
    assert set(eff2.tag) == set(eff.tag) | {"audit:mask_sigmoid=false"}
    key = ["model", "tag", "convention", "metric"]
    pd.testing.assert_frame_equal(eff2[eff2.tag != "audit:mask_sigmoid=false"].sort_values(key).reset_index(drop=True),
                                  eff.sort_values(key).reset_index(drop=True))
    assert "mask_sigmoid=false" in (base / "audit.md").read_text() and "gates=paper" in (base / "audit.md").read_text()
    cfg = base / "cdnet-released" / "audit:gates=paper" / "seed2" / "config.json"   # a kept row trained otherwise than its reference
    c = json.loads(cfg.read_text()); c["provenance"]["torch_threads"] = 99; cfg.write_text(json.dumps(c))
    out = run_nb("nbs/protocol_audit.ipynb", tmp_path, preset="smoke", dataset="mmnist", seeds=[1, 2], out_dir=str(res), mnist_dir=mnist_dir,
                 rows="mask_sigmoid=false").read_text()
    assert "1 runs not known to share their reference's conditions" in out and "gates=paper seed 2" in out
    with pytest.raises(pm.PapermillExecutionError) as e:                 # no prepared clips: every run fails, and the error says why
        run_nb("nbs/protocol_audit.ipynb", tmp_path, preset="smoke", dataset="clips_32", seeds=[1], rows="gates=paper",
               out_dir=str(tmp_path / "c"), data_root=str(tmp_path / "no_data"))
    assert "all 2 runs failed" in str(e.value) and "not prepared" in str(e.value)
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb("nbs/protocol_audit.ipynb", tmp_path, preset="smoke", out_dir=str(tmp_path / "r"), rows="gates=released")
    assert "invalid value for `rows`: 'gates=released'" in str(e.value) and not (tmp_path / "r").exists()
