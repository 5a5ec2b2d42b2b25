"""The reproduction notebooks of Tables 2, 4, 5, Fig. 5 and the long-horizon figure, executed through papermill at the `smoke` preset."""
import json
from pathlib import Path
import numpy as np
import pandas as pd
import papermill as pm
import pytest
from conftest import ROOT


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    "Kernels inherit the environment: one OpenMP thread each, since two-thread teams stall on a busy 2-core machine."
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def run_nb(name, tmp_path, **params):
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(ROOT / "nbs" / f"{name}.ipynb"), str(out), parameters=params, cwd=str(ROOT),
                        progress_bar=False, kernel_name="python3")
    return out


def read_json(p):
    return json.loads(Path(p).read_text())


def test_params(tmp_path):
    res = tmp_path / "results"
    run_nb("parameter_counts", tmp_path, out_dir=str(res), dataset="mmnist", preset="smoke")
    d = res / "params"
    spec = pd.read_csv(d / "params.csv")
    assert spec.matches_spec.all() and len(spec) == 12   # the spec counts and the temporal discriminator
    counts = spec.groupby(["model", "variant"]).params.apply(set)
    assert 21_862_020 in counts["CDNet", "released"] and 46_951_524 in counts["CrevNet", "conv2"]
    t5 = pd.read_csv(d / "table5.csv").set_index("model")
    assert t5.loc["CDNet, paper-table reading", "ours"] == 23_134_212
    assert t5.loc["CDNet, paper-table reading", "reduction_ours_pct"] == 50.73
    assert t5.loc["CDNet, released code", "reduction_ours_pct"] == 53.44
    assert t5.loc["CrevNet", "paper_1e7"] == 4.70 and t5.loc["CrevNet", "ours_1e7"] == pytest.approx(4.695)
    per_dataset = pd.read_csv(d / "params_mmnist_smoke.csv").set_index("model")
    assert set(per_dataset.index) == {"convlstm", "predrnn", "mim", "motionrnn", "phydnet", "frnn", "crevnet", "cdnet-released", "cdnet-paper"} \
        and (per_dataset.params > 0).all()   # every model main_results trains
    assert "| 21862020 | 20848068 | 21862020 | True |" in (d / "params.md").read_text()   # params, trainable, spec
    prov = read_json(d / "config.json")
    assert prov["parameters"]["dataset"] == "mmnist" and prov["provenance"]["versions"]["torch"]


def test_ablation_one_row(tmp_path, mnist_dir):
    res = tmp_path / "results"
    run_nb("ablation", tmp_path, refine_iters=3, preset="smoke", out_dir=str(res), mnist_dir=mnist_dir)
    base = res / "mmnist" / "smoke"
    run = base / "cdnet-released" / "refine_iters=3" / "seed1234"
    cfg = read_json(run / "config.json")
    assert cfg["tag"] == "refine_iters=3" and cfg["switches"]["refine_iters"] == 3 and cfg["config"]["refine_iters"] == 3
    assert cfg["switches"]["hidden"] == 4 and cfg["switches"]["area_loss"] == "exact"     # everything else: preset and variant
    assert read_json(run / "status.json")["status"] == "done"
    t = pd.read_csv(base / "ablation_refine_iters=3.csv")
    assert set(t.convention) == {"standard", "authors"} and (t.row == "refine iterations=3").all() and (t.table == "T4").all()
    assert (t.mse_paper == 16.6).all() and not t.comparable.any() and t.mse_difference.isna().all() and (t.mse > 0).all()
    assert "Not comparable with the paper" in (base / "ablation_refine_iters=3.md").read_text()
    # several switches (strings as the command line passes them): a tag of every switch that differs from the variant
    run_nb("ablation", tmp_path, use_mask="false", area_loss="none", pixel_loss="l2", preset="smoke", out_dir=str(res), mnist_dir=mnist_dir)
    cfg = read_json(base / "cdnet-released" / "use_mask=False,area_loss=none" / "seed1234" / "config.json")
    assert cfg["tag"] == "use_mask=False,area_loss=none"      # pixel_loss=l2 is the released variant's own value
    assert (cfg["switches"]["use_mask"], cfg["switches"]["area_loss"], cfg["switches"]["refine_iters"]) == (False, "none", 2)
    t = pd.read_csv(base / "ablation_use_mask=False,area_loss=none.csv")
    assert t.table.isna().all() and t.mse_paper.isna().all()   # no row of the paper has both switches


def test_ablation_table2_and_area_loss(tmp_path, mnist_dir):
    res = tmp_path / "results"
    run_nb("ablation", tmp_path, rows="table2", preset="smoke", out_dir=str(res), mnist_dir=mnist_dir)
    base = res / "mmnist" / "smoke"
    t = pd.read_csv(base / "ablation_table2.csv")
    assert set(t.row) == {"CDNet", "without G", "without mask", "without area loss", "L1&L2"} and len(t) == 10
    assert t.mse_paper.notna().all() and not t.comparable.any()
    expected = {None: {}, "without-G": dict(use_global_info=False), "without-mask": dict(use_mask=False),
                "without-area-loss": dict(area_loss="none"), "l1+l2": dict(pixel_loss="l1+l2", pixel_iters="last")}
    full = read_json(base / "cdnet-released" / "seed1234" / "config.json")["switches"]
    for tag, changed in expected.items():
        cfg = read_json(base / "cdnet-released" / (tag or "") / "seed1234" / "config.json")
        assert cfg["tag"] == tag and cfg["switches"] == {**full, **changed}
    # area_loss exact (the released full model) and none train identically
    area = pd.read_csv(base / "ablation_area_check.csv").iloc[0]
    assert area.identical and area.weights_max_abs_diff == 0 and area.pixel_loss_max_abs_diff == 0 and area.steps == 2
    assert 0 < area.exact_area_term_max < 1e-6 and area.none_area_term_max == 0
    assert "exact vs none" in (base / "ablation_table2.md").read_text()


def test_ablation_bad_parameter(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb("ablation", tmp_path, refine_iters=0, preset="smoke", out_dir=str(tmp_path / "r"))
    assert "invalid value for `refine_iters`: 0" in str(e.value)
    assert not (tmp_path / "r").exists()      # nothing written before the configuration is valid


def test_misspelt_parameter_stops_the_run(tmp_path):
    "papermill only warns about a name the parameters cell does not declare; `check_parameters` stops the run before anything is written."
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb("ablation", tmp_path, refine_iter=3, preset="smoke", out_dir=str(tmp_path / "r"))
    assert "invalid value for `refine_iter`: 3 (allowed: did you mean `refine_iters`?" in str(e.value)
    assert not (tmp_path / "r").exists()


def test_intermediate(tmp_path, mnist_dir):
    res = tmp_path / "results"
    run_nb("intermediate", tmp_path, preset="smoke", out_dir=str(res), mnist_dir=mnist_dir)
    d = res / "mmnist" / "smoke" / "intermediate"
    it = pd.read_csv(d / "per_iteration.csv")
    assert list(it.iteration) == [0, 1, 2] and list(it.stage) == ["motion LSTM", "refine 1", "refine 2"]  # L + 1, smoke L = 2
    assert (it.mse > 0).all() and (it.n_sequences == 4).all()
    frames = pd.read_csv(d / "per_iteration_frame.csv")
    assert len(frames) == 3 * 3 and set(frames.frame) == {1, 2, 3}
    # the last iteration is the model's prediction: the run's own evaluation scores the same frames
    run = res / "mmnist" / "smoke" / "cdnet-released" / "seed1234"
    assert it.mse.iloc[-1] == pytest.approx(read_json(run / "metrics.json")["summary"]["standard"]["mse"], rel=1e-9)
    for png in ("intermediate.png", "per_iteration.png"): assert (d / png).stat().st_size > 5_000
    # the same model rebuilt from its checkpoint gives the same table
    res2 = tmp_path / "from_checkpoint"
    run_nb("intermediate", tmp_path, checkpoint=str(run / "checkpoint.pt"), out_dir=str(res2), mnist_dir=mnist_dir)
    pd.testing.assert_frame_equal(pd.read_csv(res2 / "mmnist" / "smoke" / "intermediate" / "per_iteration.csv"), it)


def test_long_horizon(tmp_path, mnist_dir):
    res = tmp_path / "results"
    models = ["copy-last", "crevnet", "cdnet-released"]
    run_nb("long_horizon", tmp_path, preset="smoke", horizon=6, models=",".join(models), out_dir=str(res), mnist_dir=mnist_dir)
    d = res / "mmnist" / "smoke" / "long_horizon"
    pf = pd.read_csv(d / "per_frame.csv")
    assert set(pf.model) == set(models) and set(pf.convention) == {"standard", "authors"}
    for _, g in pf.groupby(["model", "convention", "metric"]):
        assert sorted(g.frame) == list(range(1, 7))                          # horizon frames
    assert (pf.beyond_training == (pf.frame > 3)).all()
    # the first n_pred frames are the usual evaluation: same test sequences, causal prediction
    for m in models:
        usual = pd.read_csv(res / "mmnist" / "smoke" / m / "seed1234" / "per_frame.csv")
        first = pf[(pf.model == m) & (pf.frame <= 3)].merge(usual, on=["convention", "metric", "frame"], suffixes=("", "_usual"))
        assert len(first) == len(usual) and np.allclose(first["mean"], first.mean_usual, rtol=1e-9)
    summary = pd.read_csv(d / "summary.csv")
    assert {"frames 1-3", "frames 4-6", "frame 6"} <= set(summary.columns)
    assert (d / "per_frame.png").stat().st_size > 10_000
    cfg = read_json(d / "config.json")
    assert cfg["resolved"]["horizon"] == 6 and not any(r["reused"] for r in cfg["runs"].values())


def test_learning_curves(tmp_path, mnist_dir):
    res = tmp_path / "curves"
    run_nb("learning_curves", tmp_path, preset="smoke", dataset="mmnist", candidates="convlstm; convlstm lr=0.002 batch_size=4",
           steps=4, val_every=2, seeds=[1, 2], out_dir=str(res), mnist_dir=mnist_dir)
    d = res / "mmnist_32" / "smoke" / "learning_curves"                    # the family at the smoke size
    curves = pd.read_csv(d / "curves.csv")
    trained = curves[curves.trained]
    assert set(trained.tag) == {"lc-preset", "lc-lr=0.002,batch_size=4"} and set(trained.seed) == {1, 2}
    for _, g in trained.groupby(["tag", "seed"]): assert sorted(g.step) == [0, 2, 4]
    cfg = read_json(res / "mmnist_32" / "smoke" / "convlstm" / "lc-lr=0.002,batch_size=4" / "seed2" / "config.json")["config"]
    assert (cfg["lr"], cfg["batch_size"], cfg["iters_per_epoch"], cfg["val_every"]) == (0.002, 4, 4, 2)
    levels = pd.read_csv(d / "levels.csv").set_index("model").val_mse
    assert set(levels.index) == {"copy-last", "mean-frame"} and (levels > 0).all()
    final = pd.read_csv(d / "final.csv").set_index("tag")
    last = trained[trained.step == 4].groupby("tag").val_mse.mean()
    assert np.allclose(final.loc[last.index, "val_mse"], last)               # the last validation, mean over seeds
    assert (final["below_copy-last"] == (final.val_mse < levels["copy-last"])).all()
    assert (d / "learning_curves.png").stat().st_size > 10_000
    # `common` changes the protocol for the baselines too, in directories of their own
    run_nb("learning_curves", tmp_path, preset="smoke", dataset="mmnist", candidates="convlstm", common="n_digits=1", steps=2,
           val_every=2, seeds=[1], out_dir=str(res), mnist_dir=mnist_dir)
    base = res / "mmnist_32" / "smoke"
    for model, tag in (("convlstm", "lc-n_digits=1"), ("copy-last", "lc-n_digits=1"), ("mean-frame", "lc-n_digits=1")):
        assert read_json(base / model / tag / "seed1" / "config.json")["config"]["n_digits"] == 1
    assert read_json(base / "copy-last" / "seed1" / "config.json")["config"]["n_digits"] == 2   # the earlier level is kept
    other = pd.read_csv(base / "learning_curves_n_digits=1" / "curves.csv")    # its figure and tables in a folder of their own
    assert set(other[other.trained].tag) == {"lc-n_digits=1"}
    assert set(pd.read_csv(d / "curves.csv").tag) == set(curves.tag)           # the first protocol's tables are kept


def test_ablation_seeds(tmp_path, mnist_dir):
    "Two seeds: the row is the mean over seeds, its half-width the Student t interval's (scipy)."
    from scipy import stats
    res = tmp_path / "results"
    run_nb("ablation", tmp_path, refine_iters=3, preset="smoke", seeds=[1, 2], out_dir=str(res), mnist_dir=mnist_dir)
    base = res / "mmnist" / "smoke"
    x = [read_json(base / "cdnet-released" / "refine_iters=3" / f"seed{s}" / "metrics.json")["summary"]["authors"]["mse"] / 10 for s in (1, 2)]
    row = pd.read_csv(base / "ablation_refine_iters=3.csv").set_index("convention").loc["authors"]
    lo, hi = stats.t.interval(0.95, 1, loc=np.mean(x), scale=stats.sem(x))
    assert row.n_seeds == 2 and np.isclose(row.mse, np.mean(x)) and np.isclose(row.mse_half_width, hi - np.mean(x))
    assert "±" in (base / "ablation_refine_iters=3.md").read_text() and "seeds 1 2" in (base / "ablation_refine_iters=3.md").read_text()


def test_long_horizon_seeds_miniature(tmp_path, mnist_dir):
    res = tmp_path / "results"
    run_nb("long_horizon", tmp_path, preset="smoke", dataset="mmnist_32", seeds=[1, 2], models="copy-last,convlstm",
           out_dir=str(res), mnist_dir=mnist_dir)
    d = res / "mmnist_32" / "smoke" / "long_horizon"
    pf = pd.read_csv(d / "per_frame.csv")
    assert set(pf.seed) == {1, 2} and sorted(pf.frame.unique()) == list(range(1, 7))    # horizon 0: twice n_pred
    # each seed's first n_pred frames are that seed's usual evaluation
    usual = pd.read_csv(res / "mmnist_32" / "smoke" / "convlstm" / "seed2" / "per_frame.csv")
    first = pf[(pf.model == "convlstm") & (pf.seed == 2) & (pf.frame <= 3)].merge(usual, on=["convention", "metric", "frame"], suffixes=("", "_usual"))
    assert len(first) == len(usual) and np.allclose(first["mean"], first.mean_usual, rtol=1e-9)
    summary = pd.read_csv(d / "summary.csv").set_index(["model", "convention", "metric"])
    mse = pf[(pf.model == "convlstm") & (pf.convention == "standard") & (pf.metric == "mse") & (pf.frame > 3)]
    assert np.isclose(summary.loc[("convlstm", "standard", "mse"), "frames 4-6"], mse["mean"].mean())     # over frames and seeds


def test_intermediate_seeds(tmp_path, mnist_dir):
    from scipy import stats
    res = tmp_path / "results"
    run_nb("intermediate", tmp_path, preset="smoke", seeds=[1, 2], out_dir=str(res), mnist_dir=mnist_dir)
    it = pd.read_csv(res / "mmnist" / "smoke" / "intermediate" / "per_iteration.csv")
    # the last iteration is each seed's prediction: the mean of the two runs' own evaluations, with their t interval
    x = [read_json(res / "mmnist" / "smoke" / "cdnet-released" / f"seed{s}" / "metrics.json")["summary"]["standard"]["mse"] for s in (1, 2)]
    lo, hi = stats.t.interval(0.95, 1, loc=np.mean(x), scale=stats.sem(x))
    assert (it.n_seeds == 2).all() and it.mse.iloc[-1] == pytest.approx(np.mean(x), rel=1e-9)
    assert it.mse_half_width.iloc[-1] == pytest.approx(hi - np.mean(x), rel=1e-6)


def test_qualitative(tmp_path, mnist_dir):
    "Figs. 4, 6, 10-12: every third future frame past the trained horizon, two samples, a figure and a GIF each; a wrong sample is refused."
    res = tmp_path / "results"
    run_nb("qualitative", tmp_path, preset="smoke", dataset="mmnist_32", seeds=[1, 2], models="copy-last,cdnet-released", samples=[1, 3],
           horizon=7, every=3, out_dir=str(res), mnist_dir=mnist_dir)
    d = res / "mmnist_32" / "smoke" / "qualitative"
    cfg = read_json(d / "config.json")
    n_obs = cfg["resolved"]["n_obs"]
    assert cfg["resolved"]["frames"] == [1, 4, 7] and cfg["resolved"]["horizon"] == 7
    assert set(cfg["runs"]) == {f"{m} seed{s}" for m in ("copy-last", "cdnet-released") for s in (1, 2)}
    reg = pd.read_csv(d / "regions.csv").set_index(["model", "seed", "metric"]).value
    assert len(reg) == 2 * 2 * 3 and reg["copy-last", 1, "mse_static"] < 0.1 * reg["copy-last", 1, "mse_moving"]   # copy-last holds the background
    for s in (1, 2):   # static + moving = the run's test MSE (standard convention, every test sequence)
        m = read_json(res / "mmnist_32" / "smoke" / "cdnet-released" / f"seed{s}" / "metrics.json")["summary"]["standard"]["mse"]
        assert np.isclose(reg["cdnet-released", s, "mse_static"] + reg["cdnet-released", s, "mse_moving"], m, rtol=1e-5)
    from PIL import Image
    for s in (1, 3):
        assert (d / f"sample{s}.png").stat().st_size > 5_000
        g = Image.open(d / f"sample{s}.gif")
        scale = 96 // 32
        assert g.n_frames == n_obs + 7 and g.size == (3 * (32 + 2) * scale - 2 * scale, (2 * 32 + 2) * scale)
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb("qualitative", tmp_path, preset="smoke", dataset="mmnist_32", seeds=[1], models="copy-last", samples=[10_000],
               out_dir=str(tmp_path / "r"), mnist_dir=mnist_dir)
    assert "invalid value for `samples`" in str(e.value) and not (tmp_path / "r").exists()
