"""The training loop: exact resume (epoch boundary, mid-epoch, Ctrl-C), loud failure through run_experiment,
TensorBoard plumbing, and two gloo processes against one."""
import csv
import json
import os
import pickle
import signal
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import cdnet.experiment as experiment
import cdnet.train as train_mod
from cdnet.config import resolve_config
from cdnet.data import ClipWindows
from cdnet.models.baselines import ConvLSTM
from cdnet.models.cdnet import CDNet
from cdnet.models.mim import MIM
from cdnet.models.motionrnn import MotionRNN
from cdnet.models.predrnn import PredRNN
from cdnet.models.frnn import FRNN
from cdnet.models.phydnet import PhyDNet
from cdnet.train import load_checkpoint, train
from cdnet.core import distributed, seed_everything

pytestmark = pytest.mark.filterwarnings("ignore:LPIPS is unavailable")
N_OBS, N_PRED, ITERS = 4, 2, 3  # 3 iterations an epoch, so step 4 is in the middle of epoch 2


def clips_dataset(size=16, channels=1):
    "Random windows of 6 frames over three random uint8 clips (the same on every call)."
    g = np.random.default_rng(0)
    clips = [(g.random((14, size, size, channels)) * 255).astype(np.uint8) for _ in range(3)]
    return ClipWindows(clips, N_OBS + N_PRED, mode="random", n_windows=12, seed=0)


def make_model(kind):
    torch.manual_seed(0)
    if kind == "convlstm": return ConvLSTM(channels=1, hidden=4, layers=1, patch=2)
    if kind in ("predrnn", "mim", "motionrnn"):   # the linear schedule reaches 0 in epoch 1: both ways of feeding are exercised
        cls = dict(predrnn=PredRNN, mim=MIM, motionrnn=MotionRNN)[kind]
        return cls(channels=1, height=16, width=16, hidden=4, layers=2, kernel=3, patch=2, sampling_stop=1)
    if kind == "phydnet": return PhyDNet(channels=1, height=16, width=16, hidden=4)
    if kind == "frnn": return FRNN(channels=1, width=4, layers=2)   # layer removal on: the draw must resume too
    return CDNet(channels=1, height=32, width=32, n_obs=N_OBS, hidden=4, refine_iters=2)


def config(kind, epochs=2, **kw):
    kw = dict(dict(n_obs=N_OBS, n_pred=N_PRED, epochs=epochs, iters_per_epoch=ITERS, batch_size=2, ckpt_every=1), **kw)
    return resolve_config("smoke", model=kind, verbose=False, **kw)


class Stopping(torch.nn.Module):
    "Wraps a model; at loss call `at` raises KeyboardInterrupt (after the loss drew its random numbers), or sends signal `how`."
    def __init__(self, model, at=None, how="raise"):
        super().__init__()
        self.model, self.at, self.how, self.calls = model, at, how, 0

    def loss(self, frames, n_obs, *, epoch=0, **kw):
        self.calls += 1
        out = self.model.loss(frames, n_obs, epoch=epoch, **kw)
        if self.calls == self.at:
            if self.how == "raise": raise KeyboardInterrupt
            os.kill(os.getpid(), self.how)  # a real Ctrl-C (or SIGTERM): the step finishes, then the loop stops
        return out

    def predict(self, context, n_pred): return self.model.predict(context, n_pred)


def run(kind, out, ds, *, epochs=2, resume=False, at=None, how="raise", **cfg):
    m = Stopping(make_model(kind), at, how)
    train(m, ds, config(kind, epochs, **cfg), out, resume=resume, progress=False)
    return m.model


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa: assert torch.equal(sa[k], sb[k]), k


def log_steps(out):
    return [int(r["step"]) for r in csv.DictReader(open(out / "train_log.csv"))]


@pytest.mark.parametrize("kind", ["convlstm", "cdnet", "predrnn", "mim", "motionrnn", "phydnet", "frnn"])
def test_resume_is_bit_identical(kind, tmp_path):
    ds = clips_dataset(32 if kind == "cdnet" else 16)
    straight = run(kind, tmp_path / "straight", ds)

    # stop at an epoch boundary (N = 3 steps), resume to 2N
    run(kind, tmp_path / "boundary", ds, epochs=1)
    assert_same_weights(straight, run(kind, tmp_path / "boundary", ds, resume=True))

    # KeyboardInterrupt raised inside step 5 (the middle of epoch 2): rolled back to step 4, resumed
    with pytest.raises(KeyboardInterrupt, match="interrupted during step 5 of 6; checkpoint of step 4"):
        run(kind, tmp_path / "mid", ds, at=5)
    assert load_checkpoint(tmp_path / "mid" / "checkpoint.pt")["step"] == 4
    assert_same_weights(straight, run(kind, tmp_path / "mid", ds, resume=True))
    assert log_steps(tmp_path / "mid") == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("form", ["released", "corrected"])
def test_resume_with_discriminator_is_bit_identical(form, tmp_path):
    ds, gan = clips_dataset(32), dict(adversarial_weight=1e-3, discriminator=form)
    straight = run("cdnet", tmp_path / "straight", ds, **gan)
    with pytest.raises(KeyboardInterrupt, match="interrupted during step 5 of 6"):
        run("cdnet", tmp_path / "mid", ds, at=5, **gan)
    assert_same_weights(straight, run("cdnet", tmp_path / "mid", ds, resume=True, **gan))
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt")["adversary"] for d in ("straight", "mid"))
    assert a["form"] == form and a["scheduler"] == b["scheduler"] and a["scheduler"]["last_epoch"] == 2
    for k, v in a["discriminator"].items(): assert torch.equal(v, b["discriminator"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    rows = list(csv.DictReader(open(tmp_path / "mid" / "train_log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6] and all(float(r["adversarial"]) > 0 for r in rows)
    with pytest.raises(ValueError, match="adversarial_weight: 0.001 -> 0.0"):   # the discriminator cannot be switched off mid-run
        run("cdnet", tmp_path / "mid", ds, resume=True, epochs=3)
    assert a["discriminator"].keys() != straight.state_dict().keys()


def test_rng_states_restore_wherever_the_checkpoint_was_loaded(tmp_path):
    "train() loads a checkpoint with map_location=its device, which moves every tensor there; the generator states must still restore."
    m = make_model("convlstm")
    seed_everything(3)
    train_mod.save_checkpoint(tmp_path / "c.pt", model=m)
    want = (torch.rand(4), np.random.rand(2), __import__("random").random())
    moved = load_checkpoint(tmp_path / "c.pt", map_location="meta")                      # as a GPU map_location moves them
    assert next(iter(moved["model"].values())).device.type == "meta"
    torch.manual_seed(99)
    train_mod.set_rng_states(moved["rng"])
    got = (torch.rand(4), np.random.rand(2), __import__("random").random())
    assert torch.equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[2] == want[2]
    seed_everything(3); s = dict(train_mod.rng_states(), torch=torch.get_rng_state())   # a checkpoint of torch tensors
    torch.manual_seed(99); train_mod.set_rng_states(s)
    assert torch.equal(torch.rand(4), want[0])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resume_on_cuda(tmp_path):
    "Resume on the GPU: the checkpoint is loaded onto the device and training continues from its step."
    ds = clips_dataset(16)
    cfg = lambda epochs: config("convlstm", epochs, device="cuda")
    train(make_model("convlstm"), ds, cfg(1), tmp_path, device="cuda", progress=False)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    assert saved["step"] == ITERS
    m = make_model("convlstm")
    train(m, ds, cfg(2), tmp_path, device="cuda", resume=True, progress=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2 * ITERS and log_steps(tmp_path) == list(range(1, 2 * ITERS + 1))
    straight = make_model("convlstm")
    train(straight, ds, cfg(2), tmp_path / "straight", device="cuda", progress=False)
    for k, v in straight.state_dict().items(): assert torch.allclose(v, m.state_dict()[k], atol=1e-5), k


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_finishes_the_step_then_stops(sig, tmp_path):
    ds = clips_dataset()
    straight = run("convlstm", tmp_path / "straight", ds, ckpt_every=0)
    handlers = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    with pytest.raises(KeyboardInterrupt, match="interrupted after step 4 of 6"):
        run("convlstm", tmp_path / "sig", ds, at=4, how=sig, ckpt_every=0)  # the signal arrives during step 4
    assert load_checkpoint(tmp_path / "sig" / "checkpoint.pt")["step"] == 4  # written although ckpt_every=0 says epoch ends
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == handlers
    assert_same_weights(straight, run("convlstm", tmp_path / "sig", ds, resume=True, ckpt_every=0))


def test_resume_refuses_other_settings(tmp_path):
    ds = clips_dataset()
    run("convlstm", tmp_path, ds, epochs=1)
    with pytest.raises(ValueError, match=r"seed: 1234 -> 7"):
        run("convlstm", tmp_path, ds, resume=True, seed=7)


class NaNAtStep3(ConvLSTM):
    calls = 0

    def loss(self, frames, n_obs, *, epoch=0):
        self.calls += 1
        loss, terms = super().loss(frames, n_obs, epoch=epoch)
        return (loss * float("nan"), dict(terms, mse=float("nan"))) if self.calls == 3 else (loss, terms)


def smoke_cfg(tmp_path, mnist_dir, **kw):
    kw = dict(dict(epochs=2, convlstm_hidden=4), **kw)
    return resolve_config("smoke", model="convlstm", dataset="mmnist", mnist_dir=mnist_dir or None, out_dir=str(tmp_path),
                          verbose=False, **kw)


def test_nan_at_step_3_fails_the_run(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setattr(experiment, "build_model", lambda cfg, c, h, w: NaNAtStep3(channels=c, hidden=4, layers=1, patch=4))
    cfg = smoke_cfg(tmp_path, mnist_dir, ckpt_every=1)
    with pytest.raises(train_mod.NonFiniteLoss, match="non-finite loss at step 3: loss=nan, mse=nan"):
        experiment.run_experiment(cfg, progress=False)
    out = experiment.run_dir(cfg)
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and "NonFiniteLoss: non-finite loss at step 3" in status["reason"]
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["step"] == 2 and all(torch.isfinite(v).all() for v in ck["model"].values())  # the last good one
    assert log_steps(out) == [1, 2]


def test_huge_learning_rate_fails_the_run(tmp_path, mnist_dir):
    cfg = smoke_cfg(tmp_path, mnist_dir, lr=1e30, epochs=5)
    with pytest.raises(train_mod.NonFiniteLoss) as e:
        experiment.run_experiment(cfg, progress=False)
    assert e.value.step >= 2 and "loss" in e.value.terms  # step 1 is finite, the 1e30 update ruins what follows
    status = json.loads((experiment.run_dir(cfg) / "status.json").read_text())
    assert status["status"] == "failed" and status["reason"].startswith(f"NonFiniteLoss: non-finite loss at step {e.value.step}")


def test_interrupted_experiment_resumes(tmp_path, monkeypatch, mnist_dir):
    cfg = smoke_cfg(tmp_path / "a", mnist_dir, ckpt_every=1)
    straight = experiment.run_experiment(cfg, progress=False)["model_obj"]
    build = experiment.build_model
    monkeypatch.setattr(experiment, "build_model", lambda *a: Stopping(build(*a), at=3))
    cfg = smoke_cfg(tmp_path / "b", mnist_dir, ckpt_every=1)
    with pytest.raises(KeyboardInterrupt):
        experiment.run_experiment(cfg, progress=False)
    status = json.loads((experiment.run_dir(cfg) / "status.json").read_text())
    assert status["status"] == "failed" and "KeyboardInterrupt: interrupted during step 3 of 4" in status["reason"]
    monkeypatch.setattr(experiment, "build_model", lambda *a: Stopping(build(*a)))  # same state_dict keys, no stop
    r = experiment.run_experiment(cfg, progress=False, resume=True)
    assert json.loads((r["out"] / "status.json").read_text())["status"] == "done"
    assert_same_weights(straight, r["model_obj"].model)
    # the validation curve continues where the checkpoint was: every step once, the same values as straight through
    val = lambda run: [(int(v["step"]), float(v["val_mse"])) for v in csv.DictReader(open(run / "val_log.csv"))]
    assert val(r["out"]) == val(experiment.run_dir(smoke_cfg(tmp_path / "a", mnist_dir, ckpt_every=1)))
    assert [s for s, _ in val(r["out"])] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("bf16", [False, True])
def test_speed_switches_are_recorded(tmp_path, mnist_dir, capsys, monkeypatch, bf16):
    # bf16 autocast runs on a CPU with bf16 hardware and is ignored (float32) without; both paths on every machine
    monkeypatch.setattr(train_mod, "cpu_has_bf16", lambda: bf16)
    cfg = smoke_cfg(tmp_path, mnist_dir, amp=True, compile=True, epochs=1)
    r = experiment.run_experiment(cfg, progress=False)
    err = capsys.readouterr().err
    assert "compile=True ignored: torch.compile is used on CUDA only (device cpu)" in err
    assert ("amp=True ignored: no bf16 hardware on this CPU" in err) is not bf16
    assert r["out"].parent.name == "amp=bf16"                           # its own directory either way: never a float32 run's
    fit = json.loads((r["out"] / "config.json").read_text())["train"]
    assert fit["amp"] == ("bf16" if bf16 else None) and fit["compile"] is False
    assert len(fit["notes"]) == (1 if bf16 else 2) and fit["sequences_per_second"] > 0


def test_tensorboard_scalars(tmp_path, monkeypatch):
    calls = []

    class Writer:
        def __init__(self, log_dir, purge_step): calls.append(("open", purge_step))
        def add_scalar(self, tag, value, step): calls.append((tag, step))
        def close(self): calls.append(("close",))

    monkeypatch.setattr(train_mod, "summary_writer", Writer)
    ds = clips_dataset()
    run("convlstm", tmp_path, ds, epochs=1)
    run("convlstm", tmp_path, ds, resume=True)
    assert calls[0] == ("open", None) and ("open", 3) in calls and calls[-1] == ("close",)
    assert [s for t, *s in calls if t == "train/loss"] == [[1], [2], [3], [4], [5], [6]]
    assert {t for t, *_ in calls} >= {"train/lr", "train/grad_norm", "train/mse", "train/epoch"}


# -- two gloo processes against one ------------------------------------------------------------

class Recording(torch.nn.Module):
    "Wraps a model and records torch's generator state at every loss call (scheduled sampling draws from it)."
    def __init__(self, model):
        super().__init__()
        self.model, self.states = model, []

    def loss(self, frames, n_obs, *, epoch=0):
        self.states.append(torch.get_rng_state().clone())
        return self.model.loss(frames, n_obs, epoch=epoch)


def ddp_cfg(kind):
    return config(kind, epochs=1, batch_size=4, ckpt_every=0)


def _worker(rank, world, port, tmp):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    with distributed("cpu") as (r, w):
        assert (r, w) == (rank, world)
        result = {}
        for kind in ("convlstm", "cdnet"):
            m = Recording(make_model(kind))
            ds = clips_dataset(32 if kind == "cdnet" else 16)
            fit = train(m, ds, ddp_cfg(kind), os.path.join(tmp, f"{kind}{rank}"), progress=False)
            result[kind] = dict(state=m.model.state_dict(), rng=m.states, world=fit["world_size"])
        try:
            train(make_model("cdnet"), clips_dataset(32), ddp_cfg("cdnet"), os.path.join(tmp, "syncbn"), progress=False, sync_bn=True)
        except ValueError as e:
            result["sync_bn"] = str(e)
    with open(os.path.join(tmp, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump(result, f)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, free_port(), str(tmp)), nprocs=2, join=True)
    ranks = [pickle.load(open(tmp / f"rank{r}.pkl", "rb")) for r in range(2)]
    single = {}
    for kind in ("convlstm", "cdnet"):
        m = Recording(make_model(kind))
        train(m, clips_dataset(32 if kind == "cdnet" else 16), ddp_cfg(kind), tmp / f"{kind}-single", progress=False)
        single[kind] = dict(state=m.model.state_dict(), rng=m.states)
    return ranks, single


def max_abs_diff(a, b, params_only=True):
    keys = [k for k in a if not params_only or a[k].is_floating_point() and "running" not in k]
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in keys)


def test_two_processes_equal_one_convlstm(two_processes, capsys):
    ranks, single = two_processes
    with capsys.disabled():
        diff = max_abs_diff(ranks[0]["convlstm"]["state"], single["convlstm"]["state"])
        print(f"\nConvLSTM, 2 gloo processes vs 1, {ITERS} steps: max |weight diff| {diff:.3g}")
    assert [r["convlstm"]["world"] for r in ranks] == [2, 2]
    for r in ranks:
        # every rank drew the same scheduled-sampling numbers as the single process
        assert len(r["convlstm"]["rng"]) == len(single["convlstm"]["rng"]) == ITERS
        for a, b in zip(r["convlstm"]["rng"], single["convlstm"]["rng"]): assert torch.equal(a, b)
        for k, v in single["convlstm"]["state"].items():
            torch.testing.assert_close(r["convlstm"]["state"][k], v, atol=1e-6, rtol=0)


def test_two_processes_cdnet_batchnorm(two_processes, capsys):
    ranks, single = two_processes
    assert max_abs_diff(ranks[0]["cdnet"]["state"], ranks[1]["cdnet"]["state"]) == 0  # DDP keeps the ranks' weights in step
    # without SyncBatchNorm each process normalises with its half-batch's statistics: close to, not equal to, one process
    params = max_abs_diff(ranks[0]["cdnet"]["state"], single["cdnet"]["state"])
    everything = max_abs_diff(ranks[0]["cdnet"]["state"], single["cdnet"]["state"], params_only=False)
    moved = max_abs_diff(make_model("cdnet").state_dict(), single["cdnet"]["state"])
    with capsys.disabled():
        print(f"\nCDNet smoke, 2 gloo processes vs 1, {ITERS} steps: max |weight diff| {params:.3g} (weights moved up to "
              f"{moved:.3g} from their initial values), incl. BN running stats {everything:.3g}")
    assert 0 < params < 1e-2
    assert ranks[0]["sync_bn"].startswith("sync_bn needs CUDA")


def test_grad_clip_acts_before_the_adam_step(tmp_path):
    "Clipping at a norm no gradient reaches leaves training bit-identical to no clipping (0); a small norm changes it."
    ds = clips_dataset()
    off = run("convlstm", tmp_path / "off", ds, epochs=1, grad_clip=0)
    never = run("convlstm", tmp_path / "never", ds, epochs=1, grad_clip=1e9)
    tight = run("convlstm", tmp_path / "tight", ds, epochs=1, grad_clip=1e-4)
    assert_same_weights(off, never)
    assert any(not torch.equal(a, b) for a, b in zip(off.state_dict().values(), tight.state_dict().values()))
    norms = [float(r["grad_norm"]) for r in csv.DictReader(open(tmp_path / "tight" / "train_log.csv"))]
    assert len(norms) == ITERS and min(norms) > 1e-4   # the log keeps the norm before clipping
