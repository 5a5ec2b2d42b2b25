"""Training throughput (sequences per second) and peak memory of the real training loop (`cdnet.train.train`)
for every trained model, and what the paper's schedule would cost at that speed.

    python benchmarks/bench_train.py                         # `cpu` preset rows; on CUDA also the `paper` rows
    python benchmarks/bench_train.py --paper                 # `paper` rows on the CPU too (slow: one timed step each)
    python benchmarks/bench_train.py --models convlstm cdnet-released --iters 5 --threads 2

Rows:
- `cpu` preset, Moving MNIST (1x64x64, 10 -> 10, batch 16, the preset's widths): every model.
- `paper` preset at Human3.6M's shapes (3x128x128, 4 -> 4, batch 4, hidden 32, L = 5): every model in float32, and
  on CUDA also with bf16 autocast and with bf16 + torch.compile. Human3.6M itself is licensed and usually absent, so
  these rows train on random uint8 clips of the same shape (the cost of a step does not depend on pixel values).

Each row runs `train` in a fresh process for `warmup + iters` steps and times the last `iters` steps from the
`seconds` column of `train_log.csv` (wall time of each step; reading the loss synchronises with the device).
Memory: on CUDA the peak of `torch.cuda.max_memory_allocated` over the run; on the CPU the peak resident set
size of the process (`getrusage`), beside the resident size before the model was built (Python, torch, data).
The last columns give the time of the preset's own schedule and of the paper's Human3.6M schedule (120 epochs
of 375 iterations = 45,000 steps at batch 4) at the measured speed; the latter only for rows at the paper's shapes.
"""
import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {  # name: Config fields
    "convlstm": dict(model="convlstm"),
    "phydnet": dict(model="phydnet"),
    "frnn": dict(model="frnn"),
    "crevnet": dict(model="crevnet"),
    "cdnet-released": dict(model="cdnet", variant="released"),
    "cdnet-paper": dict(model="cdnet", variant="paper"),
}
PAPER_ITERS = 45_000  # Human3.6M: 120 epochs x 375 iterations at batch 4 (cdnet.md Sec. 6)


def rss_now() -> int:
    "Resident set size now, in bytes (Linux /proc)."
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def worker(spec: dict) -> dict:
    import numpy as np
    import torch
    from cdnet.config import DATASETS, resolve_config
    from cdnet.data import ClipWindows, get_dataset
    from cdnet.params import count_params
    from cdnet.train import train
    from cdnet.core import seed_everything
    from cdnet.zoo import build_model

    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    steps = spec["warmup"] + spec["iters"]
    cfg = resolve_config(spec["preset"], dataset=spec["dataset"], mnist_dir=spec["mnist_dir"], device=spec["device"],
                         amp=spec["amp"], compile=spec["compile"], epochs=1, iters_per_epoch=steps, ckpt_every=0,
                         verbose=False, **MODELS[spec["name"]])
    seed_everything(cfg.seed)
    if spec["synthetic"]:  # random uint8 clips of the dataset's shape
        d = DATASETS[cfg.dataset]
        g = np.random.default_rng(0)
        clips = [g.integers(0, 256, (40, d["height"], d["width"], d["channels"]), dtype=np.uint8) for _ in range(4)]
        ds = ClipWindows(clips, cfg.n_obs + cfg.n_pred, mode="random", n_windows=steps * cfg.batch_size, seed=cfg.seed)
    else:
        ds = get_dataset(cfg.dataset, "train", cfg)
    rss_before = rss_now()
    shape = DATASETS[cfg.dataset]
    model = build_model(cfg, shape["channels"], shape["height"], shape["width"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as out:
        fit = train(model, ds, cfg, out, device=device, progress=False, tensorboard=False)
        times = [float(r["seconds"]) for r in csv.DictReader(open(Path(out) / "train_log.csv"))]
    timed = times[spec["warmup"]:]
    it_s = len(timed) / sum(timed)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    preset = resolve_config(spec["preset"], dataset=spec["dataset"], verbose=False, **MODELS[spec["name"]])  # the preset's own schedule
    schedule = None if spec["synthetic"] else preset.epochs * (preset.iters_per_epoch or max(1, len(ds) // preset.batch_size))
    return dict(name=spec["name"], preset=cfg.preset, dataset=cfg.dataset, synthetic=spec["synthetic"], device=str(device),
                amp=fit["amp"], compile=fit["compile"], threads=spec["threads"], batch=cfg.batch_size,
                frames=f"{cfg.n_obs}->{cfg.n_pred}", shape=f"{shape['channels']}x{shape['height']}x{shape['width']}",
                params=count_params(model), steps_timed=len(timed), step_s=1 / it_s, seq_per_s=it_s * cfg.batch_size,
                peak_mem=peak, rss_before=rss_before if device.type == "cpu" else None,
                schedule_iters=schedule, schedule_h=schedule / it_s / 3600 if schedule else None,
                paper_h=PAPER_ITERS / it_s / 3600 if spec["paper_shapes"] else None, notes=fit["notes"])


def run_row(spec: dict, timeout: float) -> dict:
    "One row in a fresh process (its own peak memory and allocator)."
    r = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, OMP_NUM_THREADS=str(spec["threads"])))
    if r.returncode:
        return dict(spec, error=(r.stderr.strip().splitlines() or ["no output"])[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])


def gib(x): return f"{x / 2**30:.2f}" if x else "-"


def hours(h):
    if h is None: return "-"
    return f"{h * 60:.1f} min" if h < 1 else f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} d"


def table(rows) -> str:
    head = ["model", "preset", "data", "device", "amp", "compile", "batch", "params", "s/step", "seq/s", "peak GiB",
            "base GiB", "preset schedule", "45k H3.6M steps"]
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["name"], r["preset"], r["dataset"], r["device"], str(r["amp"]), str(r["compile"])] + ["-"] * 7 + [r["error"][:60]])
            continue
        data = f"{r['dataset']} {r['shape']} {r['frames']}" + (" (random)" if r["synthetic"] else "")
        sched = f"{r['schedule_iters']} its: {hours(r['schedule_h'])}" if r["schedule_iters"] else "-"
        lines.append([r["name"], r["preset"], data, f"{r['device']} x{r['threads']}" if r["device"] == "cpu" else r["device"],
                      r["amp"] or "fp32", "yes" if r["compile"] else "no", str(r["batch"]), f"{r['params']:,}",
                      f"{r['step_s']:.3f}", f"{r['seq_per_s']:.2f}", gib(r["peak_mem"]), gib(r["rss_before"]), sched, hours(r["paper_h"])])
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(head)]
    fmt = lambda xs: "  ".join(f"{x:<{w}}" for x, w in zip(xs, widths)).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(l) for l in lines])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    p.add_argument("--iters", type=int, default=3, help="timed steps per row (after the warm-up)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads on the CPU")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--paper", action="store_true", help="also the paper-shape rows on the CPU (one timed step each)")
    p.add_argument("--mnist-dir", default=None, help="MNIST test set directory (only the training split is used here)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per row")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return
    import torch
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = dict(threads=a.threads, mnist_dir=a.mnist_dir, device=device)
    specs = [dict(base, name=m, preset="cpu", dataset="mmnist", synthetic=False, paper_shapes=False, amp=False, compile=False,
                  warmup=a.warmup, iters=a.iters) for m in a.models]
    if device == "cuda" or a.paper:
        modes = [(False, False), (True, False), (True, True)] if device == "cuda" else [(False, False)]
        specs += [dict(base, name=m, preset="paper", dataset="human36m", synthetic=True, paper_shapes=True, amp=amp, compile=comp,
                       warmup=a.warmup + (2 if comp else 0), iters=a.iters if device == "cuda" else 1)
                  for m in a.models for amp, comp in modes]
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else f", {a.threads} thread(s), {os.cpu_count()} CPUs")
          + f", load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for s in specs:
        t = time.time()
        rows.append(run_row(s, a.timeout))
        print(f"  {s['name']} {s['preset']} amp={s['amp']} compile={s['compile']}: {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
