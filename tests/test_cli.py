"""The `cdnet` command line: help, parameter counts, train -> evaluate -> predict round trips, and the errors."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cdnet.experiment as experiment
from cdnet.cli import main
from cdnet.videoio import container_frame_count, write_video

pytestmark = pytest.mark.filterwarnings("ignore:LPIPS is unavailable")
ROOT = Path(__file__).resolve().parents[1]
BEDROOM = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "bedroom.mp4"


def cli(capsys, *argv):
    "Run `cdnet ARGV` in this process: (exit status, stdout, stderr)."
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def data_args(mnist_dir):
    return [f"mnist_dir={mnist_dir}"] if mnist_dir else []


TRAINED = ("convlstm", "predrnn", "mim", "motionrnn", "phydnet", "frnn")  # trained by `cdnet train` in the fixture below


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir):
    "The frame-level models trained at the smoke preset on Moving MNIST through `cdnet train`, and an untrained smoke CDNet's checkpoint."
    from cdnet.config import resolve_config
    from cdnet.train import save_checkpoint
    from cdnet.zoo import build_model
    tmp = tmp_path_factory.mktemp("runs")
    for model in TRAINED:
        code = main(["train", "--preset", "smoke", "--dataset", "mmnist", "--model", model, "--out", str(tmp / model), "--quiet",
                     "convlstm_hidden=4", f"out_dir={tmp}", *data_args(mnist_dir)])
        assert code == 0, model
    # a CDNet step at 64x64 takes seconds on a small CPU: predict only needs the checkpoint format, so skip the training
    cfg = resolve_config("smoke", model="cdnet", dataset="mmnist", verbose=False)
    torch.manual_seed(0)
    save_checkpoint(tmp / "cdnet" / "checkpoint.pt", model=build_model(cfg, 1, 64, 64), config=vars(cfg))
    return tmp


def video(path, n=12, h=48, w=64):
    "A bright square moving right over a dark background."
    frames = np.full((n, h, w, 3), 20, np.uint8)
    for i in range(n): frames[i, 16:32, 4 * i:4 * i + 16] = 230
    return write_video(path, frames, fps=10)


# -- help and parameter counts -------------------------------------------------------------------

@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "params"])
def test_help(command, capsys):
    code, out, _ = cli(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: cdnet {command}") and "--debug" in out


def test_console_script():
    exe = Path(sys.executable).with_name("cdnet")
    r = subprocess.run([str(exe) if exe.exists() else "cdnet", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "train" in r.stdout and "predict" in r.stdout
    r = subprocess.run([str(exe) if exe.exists() else "cdnet", "train", "--model", "nope"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "invalid choice: 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_params(capsys):
    "The command line prints what cdnet.params counts (the counts themselves are checked in nbs/16_params.ipynb)."
    from cdnet.params import param_table
    table = param_table(trainable=True)
    code, out, _ = cli(capsys, "params", "--model", "cdnet", "--variant", "released", "--dataset", "human36m")
    n, t = next((r["params"], r["trainable"]) for r in table if (r["model"], r["variant"]) == ("CDNet", "released"))
    assert code == 0 and f"{n:,}" in out and f"{t:,}" in out
    code, out, _ = cli(capsys, "params", "--dataset", "human36m", "--format", "json")
    rows = json.loads(out)
    assert all(set(r) == {"model", "variant", "switches", "dataset", "params", "trainable"} for r in rows)
    got = {(r["model"], r["variant"]): (r["params"], r["trainable"]) for r in rows}
    assert got[("cdnet", "released")] == (n, t) and got[("cdnet", "paper")][0] == got[("cdnet", "paper")][1]
    assert got[("crevnet", "-")][0] == got[("crevnet", "-")][1] > 2 * n               # CrevNet: all trainable, over twice CDNet
    assert got[("discriminator", "-")][0] > 0 and got[("phydnet", "-")][0] > 0 and got[("frnn", "-")][0] > 0
    code, out, _ = cli(capsys, "params", "--model", "cdnet", "--format", "json")  # the specification's table
    assert {r["params"] for r in json.loads(out)} == {r["params"] for r in table if r["model"] == "CDNet"}
    code, _, err = cli(capsys, "params", "--model", "convlstm")
    assert code == 2 and "give --dataset" in err
    # the recurrent baselines: published configurations with their source, and at the paper preset
    code, out, _ = cli(capsys, "params", "--format", "json")
    got = {r["model"]: (r["params"], r["variant"]) for r in json.loads(out) if r["model"] in ("PredRNN", "MIM", "MotionRNN")}
    assert got == {"PredRNN": (23_838_720, "OpenSTL configs/mmnist/PredRNN.py"), "MIM": (37_945_344, "OpenSTL configs/mmnist/MIM.py"),
                   "MotionRNN": (7_214_657, "thuml/MotionRNN human_script/MotionRNN_PredRNN_human_train.sh")}
    code, out, _ = cli(capsys, "params", "--model", "predrnn", "--dataset", "mmnist")
    assert code == 0 and "23,838,720" in out
    code, out, _ = cli(capsys, "params", "--model", "phydnet")      # the published configurations, with their source
    assert code == 0 and "3,091,732" in out and "configs/mmnist/PhyDNet.py" in out
    code, out, _ = cli(capsys, "params", "--model", "frnn")
    assert code == 0 and "105,709,219" in out and "model/ucf101/model_frnn.py" in out


# -- train, evaluate, predict ----------------------------------------------------------------------

@pytest.mark.parametrize("model", TRAINED)
def test_train_writes_a_run(runs, model):
    run = runs / model
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    assert (run / "checkpoint.pt").is_file() and (run / "metrics.json").is_file()
    assert [int(r.split(",")[0]) for r in (run / "train_log.csv").read_text().splitlines()[1:]] == [1, 2]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["model"] == model and cfg["train"]["amp"] is None and cfg["train"]["world_size"] == 1
    assert cfg["config"]["convlstm_hidden"] == 4 and cfg["switches"]["hidden"] == (4 if model == "convlstm" else 8)


def test_train_config_file_and_usage_errors(tmp_path, capsys, mnist_dir):
    (tmp_path / "run.yaml").write_text("preset: smoke\nmodel: copy-last\ndataset: mmnist\n")
    code, out, _ = cli(capsys, "train", "--config", tmp_path / "run.yaml", "--out", tmp_path / "copy", "--variant", "paper",
                       "refine_iters=3", "use_mask=false", "lr=1e-4", *data_args(mnist_dir))
    assert code == 0 and f"results: {tmp_path / 'copy'}" in out and "nothing to train" in out
    cfg = json.loads((tmp_path / "copy" / "config.json").read_text())["config"]  # file, options and key=value all arrive
    assert (cfg["model"], cfg["variant"], cfg["refine_iters"], cfg["use_mask"], cfg["lr"]) == ("copy-last", "paper", 3, False, 1e-4)
    code, _, err = cli(capsys, "train", "--preset", "smoke", "refinement=3")
    assert code == 2 and "invalid value for `refinement`" in err and "Traceback" not in err
    code, _, err = cli(capsys, "train", "--preset", "smoke", "lr=-1")
    assert code == 2 and err.startswith("cdnet train: error: invalid value for `lr`: -1")
    code, _, err = cli(capsys, "train", "--config", tmp_path / "missing.yaml")
    assert code == 1 and "config file not found" in err


def test_train_config_values_of_the_wrong_type(tmp_path, capsys, mnist_dir):
    "YAML 1.1 reads 1e-4 as text; quoted numbers are text: converted by the command line's rule, anything else refused by name."
    (tmp_path / "run.yaml").write_text("preset: smoke\nmodel: copy-last\nlr: 1e-4\narea_weight: 1e-4\nseed: '7'\nlr_gamma: '0.2'\n")
    code, _, err = cli(capsys, "train", "--config", tmp_path / "run.yaml", "--out", tmp_path / "ok", *data_args(mnist_dir))
    assert code == 0, err
    cfg = json.loads((tmp_path / "ok" / "config.json").read_text())["config"]
    assert (cfg["lr"], cfg["area_weight"], cfg["seed"], cfg["lr_gamma"]) == (1e-4, 1e-4, 7, 0.2)
    for line, message in (("seed: 1000.0", "invalid value for `seed`: 1000.0 (allowed: an integer)"),
                          ("device: 0", "invalid value for `device`: 0 (allowed: text)"),
                          ("area_weight: small", "invalid value for `area_weight`: 'small' (allowed: a number)"),
                          ("amp: maybe", "invalid value for `amp`: 'maybe'")):
        (tmp_path / "bad.yaml").write_text(f"preset: smoke\nmodel: copy-last\n{line}\n")
        code, _, err = cli(capsys, "train", "--config", tmp_path / "bad.yaml", "--out", tmp_path / "bad")
        assert code == 2 and message in err and "Traceback" not in err, err
    code, _, err = cli(capsys, "train", "--preset", "smoke", "seed=1000.0")
    assert code == 2 and "invalid value for `seed`: 1000.0 (allowed: an integer)" in err


def test_train_runtime_error_and_debug(tmp_path, capsys, mnist_dir):
    argv = ["train", "--preset", "smoke", "--model", "convlstm", "--dataset", "mmnist", "--out", tmp_path, "--quiet",
            "lr=1e30", "epochs=5", *data_args(mnist_dir)]
    code, _, err = cli(capsys, *argv)
    assert code == 1 and "cdnet train: error: non-finite loss at step" in err and "Traceback" not in err
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "failed"
    with pytest.raises(Exception, match="non-finite loss"):
        main([str(a) for a in argv] + ["--debug"])


class StopAt3(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def loss(self, frames, n_obs, *, epoch=0):
        self.calls += 1
        if self.calls == 3: raise KeyboardInterrupt
        return self.model.loss(frames, n_obs, epoch=epoch)

    def predict(self, context, n_pred): return self.model.predict(context, n_pred)


def test_train_interrupt_then_resume(tmp_path, capsys, monkeypatch, mnist_dir):
    build = experiment.build_model
    monkeypatch.setattr(experiment, "build_model", lambda *a: StopAt3(build(*a)))
    argv = ["train", "--preset", "smoke", "--model", "convlstm", "--dataset", "mmnist", "--out", tmp_path, "--quiet",
            "convlstm_hidden=4", "epochs=2", *data_args(mnist_dir)]
    code, _, err = cli(capsys, *argv)
    assert code == 130 and "interrupted during step 3 of 4; checkpoint of step 2" in err and "--resume" in err
    code, out, _ = cli(capsys, *argv, "--resume")
    assert code == 0 and json.loads((tmp_path / "status.json").read_text())["status"] == "done"


def test_evaluate(runs, tmp_path, capsys):
    ck = runs / "convlstm" / "checkpoint.pt"
    code, out, _ = cli(capsys, "evaluate", "--checkpoint", ck, "--convention", "authors", "--out", tmp_path / "ev")
    assert code == 0 and f"results: {tmp_path / 'ev'}" in out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["conventions"] == ["authors"] and m["n_sequences"] == 4 and m["summary"]["authors"]["mse"] > 0
    assert m["test_data"] and m["test_data"] == json.loads((runs / "convlstm" / "config.json").read_text())["data"]["test"]
    # the same numbers as the evaluation at the end of training
    trained = json.loads((runs / "convlstm" / "metrics.json").read_text())
    for k, v in trained["summary"]["authors"].items():
        assert m["summary"]["authors"][k] == (None if v is None else pytest.approx(v, rel=1e-6)), k
    code, _, err = cli(capsys, "evaluate", "--checkpoint", ck, "--dataset", "clips_128")
    assert code == 1 and "trained on mmnist (1x64x64 frames) and cannot read clips_128 (3x128x128 frames)" in err


def test_predict_synthetic_video(runs, tmp_path, capsys):
    src = video(tmp_path / "square.mp4")
    ck = runs / "convlstm" / "checkpoint.pt"
    code, out, _ = cli(capsys, "predict", "--checkpoint", ck, "--input", src, "--context", 4, "--horizon", 3,
                       "--out", tmp_path / "p.gif", "--scale", 2)
    assert code == 0 and "per-frame MSE" in out
    gif = Image.open(tmp_path / "p.gif")
    assert gif.n_frames == 7 and gif.size == (2 * (3 * 64 + 4), 2 * 64)
    code, _, _ = cli(capsys, "predict", "--checkpoint", ck, "--input", src, "--context", 2, "--horizon", 2, "--stride", 2,
                     "--out", tmp_path / "p.mp4")
    assert code == 0 and container_frame_count(tmp_path / "p.mp4") == 4
    code, _, _ = cli(capsys, "predict", "--checkpoint", ck, "--input", src, "--context", 3, "--horizon", 2, "--out", tmp_path / "png")
    pngs = sorted(os.listdir(tmp_path / "png"))
    assert code == 0 and pngs == [f"frame_{i:03d}.png" for i in range(5)]
    first = np.asarray(Image.open(tmp_path / "png" / pngs[0]))
    assert first.shape == (64, 3 * 64 + 4, 3) and first[:, -64:].max() == 0   # a context frame: no error
    last = np.asarray(Image.open(tmp_path / "png" / pngs[-1]))
    assert last[:, -64:].max() > 0                                            # a predicted frame: some error


@pytest.mark.parametrize("model", TRAINED)
def test_predict_frame_directory(runs, tmp_path, capsys, model):
    (tmp_path / "frames").mkdir()
    for i in range(8):
        Image.fromarray(np.full((40, 30, 3), 30 * i, np.uint8)).save(tmp_path / "frames" / f"{i:04d}.jpg")
    code, out, _ = cli(capsys, "predict", "--checkpoint", runs / model / "checkpoint.pt", "--input", tmp_path / "frames",
                       "--context", 4, "--horizon", 4, "--out", tmp_path / "d.gif")
    assert code == 0 and Image.open(tmp_path / "d.gif").n_frames == 8
    # the MSE printed is that of the model's own prediction on the fitted frames
    from cdnet.cli import fit_frame, load_trained
    from cdnet.data import to_float_frames
    net, cfg = load_trained(runs / model / "checkpoint.pt")
    frames = [np.asarray(Image.open(tmp_path / "frames" / f"{i:04d}.jpg")) for i in range(8)]
    clip = to_float_frames(np.stack([fit_frame(f, 64, 64, 1) for f in frames]))[None]
    with torch.no_grad(): pred = net.predict(clip[:, :4], 4).clamp(0, 1)
    mse = ((pred - clip[:, 4:]) ** 2).sum(dim=(2, 3, 4))[0]
    assert out.split("(sum over pixels): ")[1].split()[:4] == [f"{x:.4g}" for x in mse.tolist()]


@pytest.mark.skipif(not BEDROOM.is_file(), reason=f"{BEDROOM} not present")
def test_predict_real_clip(runs, tmp_path, capsys):
    "Smoke models (1 channel, 64x64) on a 960x540 colour clip: centre crop, resize, grey."
    code, out, err = cli(capsys, "predict", "--checkpoint", runs / "convlstm" / "checkpoint.pt", "--input", BEDROOM,
                         "--context", 4, "--horizon", 4, "--out", tmp_path / "bedroom.gif")
    assert code == 0, err
    assert Image.open(tmp_path / "bedroom.gif").n_frames == 8
    ck = runs / "cdnet" / "checkpoint.pt"
    code, out, err = cli(capsys, "predict", "--checkpoint", ck, "--input", BEDROOM, "--context", 4, "--horizon", 3,
                         "--start", 30, "--stride", 2, "--out", tmp_path / "bedroom.mp4")
    assert code == 0, err
    assert "64x64x1, stride 2" in out and container_frame_count(tmp_path / "bedroom.mp4") == 7
    code, _, err = cli(capsys, "predict", "--checkpoint", ck, "--input", BEDROOM, "--context", 5, "--horizon", 3, "--out", tmp_path / "x.gif")
    assert code == 2 and "trained with n_obs=4" in err and "use --context 4" in err


# -- errors ----------------------------------------------------------------------------------------

def test_predict_errors(runs, tmp_path, capsys):
    ck = runs / "convlstm" / "checkpoint.pt"
    src = video(tmp_path / "short.mp4", n=6)
    base = ["predict", "--checkpoint", ck, "--context", 4, "--horizon", 3, "--out", tmp_path / "o.gif"]

    (tmp_path / "notes.mp4").write_text("these are notes, not a video\n")
    code, _, err = cli(capsys, *base, "--input", tmp_path / "notes.mp4")
    assert code == 1 and f"{tmp_path / 'notes.mp4'}: not a video that ffmpeg can read (" in err and "Traceback" not in err

    code, _, err = cli(capsys, *base, "--input", src)
    assert code == 1 and "too few frames: has 6, needs 7 (--start 0 + context 4 + horizon 3 at frame stride 1)" in err

    code, _, err = cli(capsys, *base, "--input", tmp_path / "nothing.mp4")
    assert code == 1 and "input not found" in err

    code, _, err = cli(capsys, *base[:-1], tmp_path / "o.avi", "--input", video(tmp_path / "long.mp4"))
    assert code == 2 and "write a .gif or an .mp4" in err

    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint")
    code, _, err = cli(capsys, "predict", "--checkpoint", tmp_path / "garbage.pt", "--input", src, "--context", 2, "--horizon", 1,
                       "--out", tmp_path / "o.gif")
    assert code == 1 and "garbage.pt: not a readable checkpoint" in err

    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    code, _, err = cli(capsys, "evaluate", "--checkpoint", tmp_path / "foreign.pt")
    assert code == 1 and "foreign.pt: not a cdnet checkpoint" in err

    # a checkpoint whose configuration describes other shapes than its weights
    state = torch.load(ck, weights_only=False)
    state["config"]["convlstm_hidden"] = 16
    torch.save(state, tmp_path / "mismatch.pt")
    code, _, err = cli(capsys, "predict", "--checkpoint", tmp_path / "mismatch.pt", "--input", src, "--context", 2, "--horizon", 1,
                       "--out", tmp_path / "o.gif")
    assert code == 1 and "mismatch.pt: its weights do not fit the model its configuration describes (convlstm, 1x64x64 frames)" in err


# -- torchrun ----------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="torchrun not installed")
def test_torchrun_two_processes(tmp_path, mnist_dir):
    "`torchrun --nproc_per_node 2 -m cdnet.cli train`: a gloo group of 2, one results directory written by rank 0."
    import signal, socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--master_port", str(port), "-m", "cdnet.cli",
           "train", "--preset", "smoke", "--model", "convlstm", "--dataset", "mmnist", "--out", str(tmp_path / "run"), "--quiet",
           "convlstm_hidden=4", "device=cpu", *data_args(mnist_dir)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env, start_new_session=True)
    try: out, err = p.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # torchrun and both workers
        raise
    r = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "on 2 process(es)" in r.stdout and r.stdout.count("results:") == 1
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["world_size"] == 2 and json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "done"
