"""Seconds per training step (forward + backward of `model.loss`, no update) of a trained model with subnormal floats
computed as they are and flushed to zero (`torch.set_flush_denormal`, the `flush_denormal` training option).

    python benchmarks/bench_denormal.py --model crevnet --dataset clips_32 \\
        --checkpoint results/clips_32/cpu/crevnet/seed1/checkpoint.pt      # a model trained by the study
    python benchmarks/bench_denormal.py --model crevnet --dataset clips_32   # trains --warm-steps first, unflushed
    python benchmarks/bench_denormal.py --model crevnet --dataset clips_32 --checkpoint ... --threads 2   # the pool too

A model that has learned to copy its input (CrevNet and CDNet on the real clips) carries activations and gradients
far below 1e-30; x86 cores handle subnormal operands in microcode, many times slower than normal ones. Both
settings time the same weights and the same batch, interleaved over `--repeats` rounds in one process, after one
untimed step of each; flushing is `cdnet.train.set_flush_denormal`, on every thread. With `--threads N` (N > 1) a
third setting, `calling`, flushes on the calling thread only (`torch.set_flush_denormal` alone: OpenMP's worker
threads keep their own floating-point mode). Printed: the median and range of each, their
ratio, the numbers of subnormal weights and of subnormal parameter gradients (unflushed), and the relative
differences of the loss and of the parameter gradients between the two (flushing changes only values below 1.2e-38).
`--compare-run RUN_DIR` trains a finished unflushed run's configuration again with flushing and compares every
logged loss and test metric. `--trajectory N` then trains N Adam steps from those weights with each setting and compares the weights.
Checkpoints are not committed: `--checkpoint` needs a model trained on this machine (the main job or a figure
notebook writes one beside each run); without it the script trains `--warm-steps` Adam steps at the preset's step
size first. One intra-op thread unless `--threads` says otherwise (`--compare-run`: always one).
"""
import argparse
import json
import os
import statistics
import sys
import time


def adam_steps(model, ds, cfg, n: int, seed: int) -> None:
    "`n` Adam steps at `cfg.lr` (gradient clipped at `cfg.grad_clip`) on consecutive batches of `ds`, each step's sampling seeded."
    import torch
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for k in range(n):
        torch.manual_seed(seed + k)
        frames = torch.stack([ds[(k * cfg.batch_size + i) % len(ds)] for i in range(cfg.batch_size)])[:, :cfg.n_obs + cfg.n_pred]
        opt.zero_grad(set_to_none=True)
        loss, _ = model.loss(frames, cfg.n_obs, epoch=0)
        loss.backward()
        if cfg.grad_clip: torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="crevnet", help="a model name of cdnet.experiment.model_names (crevnet, cdnet-released, ...)")
    p.add_argument("--dataset", default="clips_32", help="a dataset of cdnet.config.DATASETS (prepared under --data-root when real)")
    p.add_argument("--data-root", default="data")
    p.add_argument("--mnist-dir", default=None)
    p.add_argument("--checkpoint", default=None, help="a checkpoint.pt of this model and dataset at the cpu preset")
    p.add_argument("--warm-steps", type=int, default=60, help="without --checkpoint: unflushed Adam steps before timing")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds of one step with each setting")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads; above 1 a third setting, `calling`, flushes on the "
                   "calling thread only (torch.set_flush_denormal alone), beside `flush` on every thread (cdnet.train.set_flush_denormal)")
    p.add_argument("--trajectory", type=int, default=0, help="then N Adam steps from the same weights with each setting: their weights compared")
    p.add_argument("--compare-run", default=None, help="a finished run trained without flushing (its directory): trained again "
                   "with flushing into a temporary directory, every logged loss and test metric compared, then exit")
    p.add_argument("--out", default=None, help="write the measurements to this JSON file too (temporary name, then rename)")
    args = p.parse_args()

    import torch
    from cdnet.config import DATASETS, resolve_config
    from cdnet.core import atomic_write_text
    from cdnet.data import get_dataset
    from cdnet.experiment import model_fields
    from cdnet.train import load_checkpoint, set_flush_denormal
    from cdnet.zoo import build_model

    if args.threads < 1: sys.exit(f"--threads {args.threads}: expected 1 or more")
    torch.set_num_threads(1 if args.compare_run else args.threads)
    if args.compare_run: return compare_run(args)
    if not torch.set_flush_denormal(True):
        sys.exit("this CPU cannot flush subnormals (torch.set_flush_denormal needs x86 with SSE3)")
    torch.set_flush_denormal(False)
    extra = {"mnist_dir": args.mnist_dir} if args.mnist_dir else {}
    cfg = resolve_config("cpu", dataset=args.dataset, data_root=args.data_root, seed=args.seed, verbose=False,
                         **model_fields(args.model), **extra)
    shape = DATASETS[cfg.dataset]
    torch.manual_seed(args.seed)
    model = build_model(cfg, shape["channels"], shape["height"], shape["width"]).train()
    ds = get_dataset(cfg.dataset, "train", cfg)
    batch = torch.stack([ds[i] for i in range(cfg.batch_size)])[:, :cfg.n_obs + cfg.n_pred]
    if args.checkpoint:
        if not os.path.isfile(args.checkpoint): sys.exit(f"--checkpoint {args.checkpoint}: no such file")
        model.load_state_dict(load_checkpoint(args.checkpoint)["model"])
        origin = f"weights of {args.checkpoint}"
    else:
        t0 = time.perf_counter()
        adam_steps(model, ds, cfg, args.warm_steps, args.seed)
        origin = f"{args.warm_steps} unflushed Adam steps at lr {cfg.lr} ({time.perf_counter() - t0:.0f} s)"

    def set_mode(mode: str) -> None:
        set_flush_denormal(False)                   # every thread computes subnormals, then
        if mode == "flush": set_flush_denormal(True)           # every thread flushes
        elif mode == "calling": torch.set_flush_denormal(True)  # only this one does

    def step(mode: str):
        set_mode(mode)
        try:
            torch.manual_seed(args.seed)            # the same scheduled-sampling draws in both settings
            model.zero_grad(set_to_none=True)
            t = time.perf_counter()
            loss, _ = model.loss(batch, cfg.n_obs, epoch=0)
            loss.backward()
            seconds = time.perf_counter() - t
        finally:
            set_mode("plain")
        grads = torch.cat([w.grad.flatten() for w in model.parameters() if w.grad is not None])
        return seconds, loss.item(), grads

    tiny = torch.finfo(torch.float32).tiny
    weights = torch.cat([w.detach().flatten() for w in model.parameters()])
    n_sub = int(((weights != 0) & (weights.abs() < tiny)).sum())
    modes = ("plain", "calling", "flush") if args.threads > 1 else ("plain", "flush")
    _, loss_plain, g_plain = step("plain")
    _, loss_flush, g_flush = step("flush")
    if "calling" in modes: step("calling")
    times = {m: [] for m in modes}
    for _ in range(args.repeats):
        for m in modes: times[m].append(step(m)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    result = dict(model=args.model, dataset=cfg.dataset, batch=cfg.batch_size, frames=f"{cfg.n_obs} -> {cfg.n_pred}",
                  origin=origin, threads=args.threads, repeats=args.repeats, seconds=times, median=med,
                  ratio_flush_to_plain=med["flush"] / med["plain"],
                  **({"ratio_calling_to_plain": med["calling"] / med["plain"]} if "calling" in med else {}), subnormal_weights=n_sub, n_weights=weights.numel(),
                  subnormal_grads_plain=int(((g_plain != 0) & (g_plain.abs() < tiny)).sum()),
                  loss_rel_diff=abs(loss_flush - loss_plain) / abs(loss_plain),
                  grad_rel_diff=float((g_flush - g_plain).abs().max() / g_plain.abs().max()),
                  command=" ".join([os.path.basename(sys.executable), *sys.argv]))
    if args.trajectory:
        import copy
        start = copy.deepcopy(model.state_dict())
        def trajectory(flush: bool):
            model.load_state_dict(start)
            set_mode("flush" if flush else "plain")
            try: adam_steps(model, ds, cfg, args.trajectory, args.seed)
            finally: set_mode("plain")
            return torch.cat([w.detach().flatten().clone() for w in model.parameters()])
        w_plain, w_flush = trajectory(False), trajectory(True)
        result.update(trajectory_steps=args.trajectory, trajectory_weights_equal=bool(torch.equal(w_plain, w_flush)),
                      trajectory_weight_max_abs_diff=float((w_plain - w_flush).abs().max()))
    print(f"{args.model} on {cfg.dataset} (batch {cfg.batch_size}, {cfg.n_obs} -> {cfg.n_pred}, "
          f"{'one thread' if args.threads == 1 else f'{args.threads} threads'}), {origin}")
    for k in modes:
        print(f"  {k:>7}: median {med[k]:.3f} s a step [{min(times[k]):.3f}-{max(times[k]):.3f}] over {args.repeats} interleaved repeats")
    if "calling" in med: print(f"  calling thread only / plain: {result['ratio_calling_to_plain']:.2f}")
    print(f"  flush / plain: {result['ratio_flush_to_plain']:.2f}; subnormal weights {n_sub:,} of {weights.numel():,}, "
          f"subnormal gradients {result['subnormal_grads_plain']:,}; loss differs by {result['loss_rel_diff']:.1e} relative, "
          f"gradients by {result['grad_rel_diff']:.1e} of their largest")
    if args.trajectory:
        print(f"  after {args.trajectory} Adam steps from these weights with each setting: weights "
              + ("bit-identical" if result["trajectory_weights_equal"] else f"differ by at most {result['trajectory_weight_max_abs_diff']:.1e}"))
    if args.out: atomic_write_text(args.out, json.dumps(result, indent=2))


def compare_run(args) -> None:
    "Train the configuration of the run in `args.compare_run` again with flushing; compare its losses, metrics and time."
    import tempfile
    from pathlib import Path
    import pandas as pd
    from cdnet.config import load_config
    from cdnet.core import atomic_write_text
    from cdnet.experiment import run_experiment
    ref = Path(args.compare_run)
    try: saved = json.loads((ref / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e: sys.exit(f"--compare-run {ref}: no readable config.json ({e})")
    if saved.get("config", {}).get("flush_denormal"): sys.exit(f"--compare-run {ref}: that run was trained with flushing already")
    cfg = load_config(ref / "config.json", flush_denormal=True, device="cpu")
    with tempfile.TemporaryDirectory() as d:
        run_experiment(cfg, out=Path(d), progress=False)
        new_log, new_cfg = pd.read_csv(Path(d) / "train_log.csv"), json.loads((Path(d) / "config.json").read_text())
        new_metrics = json.loads((Path(d) / "metrics.json").read_text())["summary"]
    old_log, old_metrics = pd.read_csv(ref / "train_log.csv"), json.loads((ref / "metrics.json").read_text())["summary"]
    result = dict(run=str(ref), steps=len(new_log), losses_identical=bool(new_log.loss.equals(old_log.loss)),
                  grad_norms_identical=bool(new_log.grad_norm.equals(old_log.grad_norm)), metrics_identical=new_metrics == old_metrics,
                  train_seconds_flush=new_cfg["train"]["seconds"], train_seconds_plain=saved["train"]["seconds"],
                  plain_torch_threads=(saved.get("provenance") or {}).get("torch_threads"),
                  command=" ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"{ref} trained again with flushing ({len(new_log)} steps, one thread): every logged loss "
          f"{'identical' if result['losses_identical'] else 'DIFFERENT'}, gradient norms {'identical' if result['grad_norms_identical'] else 'DIFFERENT'}, "
          f"test metrics {'identical' if result['metrics_identical'] else 'DIFFERENT'}; training {result['train_seconds_flush']:.0f} s "
          f"against {result['train_seconds_plain']:.0f} s without flushing")
    if args.out: atomic_write_text(args.out, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
