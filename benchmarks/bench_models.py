"""Seconds per training step (forward + backward of `model.loss`), sequences per second and peak memory of
ConvLSTM, CrevNet and CDNet (released), each beside the same step of a baseline commit, timed in interleaved
repeats.

    python benchmarks/bench_models.py                              # cpu preset shapes, baseline 23b04d1, 3 repeats
    python benchmarks/bench_models.py --shapes cpu paper --repeats 3
    python benchmarks/bench_models.py --shapes paper --models cdnet --variants plain reversible --no-baseline
    python benchmarks/bench_models.py --models cdnet crevnet --shapes paper --variants plain bf16   # bf16 autocast
    python benchmarks/bench_models.py --device cuda --shapes cpu paper --repeats 5

Shapes:
- `cpu`: the `cpu` preset on Moving MNIST (1x64x64, 10 -> 10, batch 8, hidden 8, L = 3; ConvLSTM 2 layers of 32).
- `paper`: the `paper` preset at Human3.6M's shapes (3x128x128, 4 -> 4, batch 4, hidden 32, L = 5; ConvLSTM
  4 layers of 64). Frames are random (the cost of a step does not depend on pixel values).

Every measurement runs in a fresh process (its own peak memory): build the model from the preset's `Config`
with `cdnet.zoo.build_model`, `--warmup` untimed steps, then `--iters` timed steps (the median is the row's
time). The baseline is the `cdnet` package of `--baseline` (a git revision), extracted with `git archive` into
a temporary directory and imported through `PYTHONPATH` in its own processes; on a machine without the git
history, `--baseline-dir DIR` names a directory that holds that `cdnet/` already
(`git archive 23b04d1 cdnet | tar -x -C DIR`). Processes of the current code
and of the baseline alternate (repeat 1: every row of both, repeat 2: again, ...), so that a change in the
machine's load hits both; the table gives the median over repeats, the spread (min-max), and the ratio
current / baseline as the median of the per-repeat ratios with their min-max.

Memory: on the CPU the peak resident set size of the worker process (`getrusage`, includes Python, torch and
the model: `base` gives the resident size before the model was built); on CUDA the peak of
`torch.cuda.max_memory_allocated` over the steps.
Variants (current code only; the baseline row beside them is the plain baseline): `reversible` sets
`reversible_backprop=True` (CDNet and CrevNet), `rev+ckpt` also `checkpoint_cells=True` (CDNet), `bf16` runs the
forward pass under `torch.autocast(bfloat16)` on the benchmark's device (`amp=True`; on a CPU this pays where
bf16 is computed in hardware, AVX512-BF16 or AMX, which the header says; elsewhere the row times emulated bf16,
which training would not use). Every row also gives the loss of its first step on the same weights and
frames, and the `bf16` row shows what bf16 changes. Plain rows of both revisions agree to float rounding where
the model's equations are unchanged (CrevNet); the released CDNet's differ by about 0.3% because its motion
LSTM outputs H~ since 9848b39 (as the authors' code does), where 23b04d1 blended it with its mask.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"convlstm": dict(model="convlstm"), "crevnet": dict(model="crevnet"),
          "cdnet": dict(model="cdnet", variant="released"), "cdnet-paper": dict(model="cdnet", variant="paper")}
VARIANTS = {"plain": {}, "reversible": dict(reversible_backprop=True),
            "rev+ckpt": dict(reversible_backprop=True, checkpoint_cells=True),
            "bf16": dict(amp=True)}  # Config fields (current code only)
SHAPES = {"cpu": dict(preset="cpu", dataset="mmnist", batch_size=8),
          "paper": dict(preset="paper", dataset="human36m", batch_size=4)}


def current_rss() -> int:
    "Resident set size now, in bytes (Linux /proc)."
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def worker(spec: dict) -> dict:
    import torch
    from cdnet.config import DATASETS, resolve_config
    from cdnet.zoo import build_model

    torch.set_num_threads(spec["threads"])
    dev = torch.device(spec["device"])
    kw = dict(MODELS[spec["model"]], **SHAPES[spec["shape"]])
    kw.update(spec.get("options", {}))
    cfg = resolve_config(kw.pop("preset"), device=spec["device"], verbose=False, **kw)
    d = DATASETS[cfg.dataset]
    torch.manual_seed(cfg.seed)
    base = current_rss()
    model = build_model(cfg, d["channels"], d["height"], d["width"]).to(dev).train()
    frames = torch.rand(cfg.batch_size, cfg.n_obs + cfg.n_pred, d["channels"], d["height"], d["width"], device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(getattr(cfg, "amp", False)))

    def step():
        model.zero_grad(set_to_none=True)
        with amp: loss, _ = model.loss(frames, cfg.n_obs, epoch=0)
        loss.backward()
        sync()
        return loss.item()

    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)
    losses, times = [step() for _ in range(spec["warmup"])], []
    for _ in range(spec["iters"]):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(step_s=statistics.median(times), loss=losses[0], seq_s=cfg.batch_size / statistics.median(times), peak=peak,
                base=base if dev.type == "cpu" else 0, batch=cfg.batch_size,
                desc=f"{d['channels']}x{d['height']}x{d['width']} {cfg.n_obs}->{cfg.n_pred} b{cfg.batch_size}")


def run(spec: dict, pythonpath: str, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS=str(spec["threads"]))
    r = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=pythonpath)
    if r.returncode: return dict(error=(r.stderr.strip().splitlines() or ["no output"])[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])


def baseline_tree(rev: str) -> str:
    "A temporary directory holding `cdnet/` of revision `rev`."
    out = tempfile.mkdtemp(prefix="cdnet-baseline-")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "cdnet"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", out], input=archive, check=True)
    return out


def write_json(path: str, runs: dict):
    "Every measurement so far, written under a temporary name and renamed (never half-written)."
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps([dict(model=k[0], shape=k[1], variant=k[2], runs=v) for k, v in runs.items()], indent=2))
    tmp.replace(path)


def spread(xs) -> str:
    return f"{statistics.median(xs):.3f} [{min(xs):.3f}-{max(xs):.3f}]"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=tuple(MODELS), default=["convlstm", "crevnet", "cdnet"])
    p.add_argument("--shapes", nargs="+", choices=tuple(SHAPES), default=["cpu"])
    p.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=["plain"])
    p.add_argument("--baseline", default="23b04d1", help="git revision to compare with")
    p.add_argument("--baseline-dir", metavar="DIR", help="a directory holding the baseline's cdnet/ (instead of git)")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (fresh processes each)")
    p.add_argument("--iters", type=int, default=2, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    p.add_argument("--json", metavar="FILE", help="also write every measurement as JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return
    base_dir, own_base = None, False
    if a.baseline_dir and not a.no_baseline:
        if not (Path(a.baseline_dir) / "cdnet" / "__init__.py").is_file():
            p.error(f"--baseline-dir {a.baseline_dir}: expected a directory holding cdnet/__init__.py")
        base_dir = str(Path(a.baseline_dir).resolve())
    elif not a.no_baseline:
        own_base = True
        try:
            base_dir = baseline_tree(a.baseline)
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            print(f"baseline {a.baseline} unavailable ({e}); measuring the current code only", file=sys.stderr)
    try:
        rows = [dict(model=m, shape=s, variant=v) for s in a.shapes for m in a.models for v in a.variants
                if v == "plain" or m != "convlstm"]
        runs = {}  # (model, shape, variant) -> results of the current code; (model, shape, "baseline") -> baseline's
        for rep in range(a.repeats):
            for row in rows:
                spec = dict(row, threads=a.threads, device=a.device, warmup=a.warmup, iters=a.iters)
                first = row["variant"] == next(r["variant"] for r in rows if r["model"] == row["model"])
                impls = [("current", str(ROOT))] + ([("baseline", base_dir)] if base_dir and first else [])
                if rep % 2: impls.reverse()
                for name, path in impls:
                    t = time.time()
                    opts = VARIANTS[row["variant"]] if name == "current" else {}
                    if row["model"] == "crevnet": opts = {k: v for k, v in opts.items() if k != "checkpoint_cells"}
                    res = run(dict(spec, options=opts), path, a.timeout)
                    key = (row["model"], row["shape"], row["variant"] if name == "current" else "baseline")
                    runs.setdefault(key, []).append(res)
                    if a.json: write_json(a.json, runs)   # as measurements finish: a killed run keeps them
                    print(f"  repeat {rep + 1}: {row['model']} {row['shape']} {row['variant'] if name == 'current' else ''} {name}: "
                          f"{res.get('step_s', float('nan')):.3f} s/step, {res.get('peak', 0) / 2**30:.2f} GiB "
                          f"({time.time() - t:.0f} s)", file=sys.stderr, flush=True)
    finally:
        if base_dir and own_base: shutil.rmtree(base_dir, ignore_errors=True)
    import torch
    from cdnet.train import cpu_has_bf16
    print(f"torch {torch.__version__}, device {a.device}, {a.threads} thread(s), {a.repeats} interleaved repeats x "
          f"{a.iters} timed steps (after {a.warmup} warm-up), baseline {(a.baseline_dir or a.baseline) if base_dir else None}"
          + (f"; bf16 hardware (AVX512-BF16 or AMX): {cpu_has_bf16()}" if a.device == "cpu" else ""))
    unit = "GiB max_allocated" if a.device == "cuda" else "GiB peak RSS"
    head = f"{'model':<12}{'shape':<7}{'variant':<11}{'data':<22}{'s/step med [min-max]':<24}{'seq/s':>7}" \
           f"{unit:>20}{'base':>6}{'x time [min-max]':>22}{'x mem':>7}{'loss':>12}"
    print(head + "\n" + "-" * len(head))
    for row in rows:
        cur = [r for r in runs[(row["model"], row["shape"], row["variant"])] if "error" not in r]
        if not cur:
            print(f"{row['model']:<12}{row['shape']:<7}{row['variant']:<11}error: "
                  f"{runs[(row['model'], row['shape'], row['variant'])][0]['error'][:80]}")
            continue
        st = [r["step_s"] for r in cur]
        pk = statistics.median(r["peak"] for r in cur) / 2**30
        ratio, mem = "-", "-"
        bl = [r for r in runs.get((row["model"], row["shape"], "baseline"), []) if "error" not in r]
        if bl and len(bl) == len(cur):
            rs = [c["step_s"] / b["step_s"] for c, b in zip(cur, bl)]   # same repeat: neighbours in time
            ratio = f"{statistics.median(rs):.2f} [{min(rs):.2f}-{max(rs):.2f}]"
            mem = f"{pk / (statistics.median(r['peak'] for r in bl) / 2**30):.2f}"
        print(f"{row['model']:<12}{row['shape']:<7}{row['variant']:<11}{cur[0]['desc']:<22}{spread(st):<24}"
              f"{statistics.median(r['seq_s'] for r in cur):>7.2f}{pk:>20.2f}{cur[0]['base'] / 2**30:>6.2f}{ratio:>22}{mem:>7}"
              f"{cur[0].get('loss', float('nan')):>12.6g}")
        if bl and row["variant"] == next(r["variant"] for r in rows if r["model"] == row["model"]):
            bst = [r["step_s"] for r in bl]
            print(f"{'':<12}{'':<7}{'baseline':<11}{'':<22}{spread(bst):<24}{statistics.median(r['seq_s'] for r in bl):>7.2f}"
                  f"{statistics.median(r['peak'] for r in bl) / 2**30:>20.2f}{'':>35}{bl[0].get('loss', float('nan')):>12.6g}")
    if a.json: write_json(a.json, runs)


if __name__ == "__main__":
    main()
