"""Time and peak memory of one training step (forward + backward of `model.loss`) of CDNet (released and
paper variants) and CrevNet at the paper's Human3.6M shapes: batch 4, 128x128 RGB, 4 -> 4.

    python benchmarks/bench_models.py                      # CPU, one thread, one timed step per model
    python benchmarks/bench_models.py --device cuda --repeats 5 --warmup 2

Every model runs in its own process, so that the peak memory of one does not hide another's.
Memory: on CUDA the peak of `torch.cuda.max_memory_allocated` above what the model and the batch
already hold; on CPU the growth of the resident set size (peak RSS during the step minus RSS
before it).
"""
import argparse
import json
import resource
import subprocess
import sys
import time

MODELS = {
    "cdnet-released": ("cdnet", dict(variant="released")),
    "cdnet-paper": ("cdnet", dict(variant="paper")),
    "crevnet": ("crevnet", dict(gate="conv2")),
}


def current_rss() -> int:
    "Resident set size now, in bytes (Linux /proc)."
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    "Peak resident set size of this process so far, in bytes (Linux reports KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(args) -> dict:
    import torch
    from cdnet.models.cdnet import CDNet
    from cdnet.models.crevnet import CrevNet
    from cdnet.params import count_params

    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    dev = torch.device(args.device)
    kind, kw = MODELS[args.worker]
    shape = dict(channels=3, height=args.size, width=args.size, n_obs=args.n_obs)
    model = (CDNet(**shape, refine_iters=args.refine_iters, **kw) if kind == "cdnet" else CrevNet(**shape, **kw))
    model = model.to(dev).train()
    frames = torch.rand(args.batch, args.n_obs + args.n_pred, 3, args.size, args.size, device=dev)

    def step():
        model.zero_grad(set_to_none=True)
        loss, _ = model.loss(frames, args.n_obs, epoch=0)
        loss.backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    model.zero_grad(set_to_none=True)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = current_rss()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else peak_rss()
    return dict(model=args.worker, params=count_params(model), seconds=min(times), mean_seconds=sum(times) / len(times),
                peak_mib=(peak - base) / 2**20, device=torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                threads=args.threads)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--n-obs", type=int, default=4)
    p.add_argument("--n-pred", type=int, default=4)
    p.add_argument("--refine-iters", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--worker", choices=list(MODELS), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    rows = []
    for name in args.models.split(","):
        opts = dict(device=args.device, threads=args.threads, batch=args.batch, size=args.size, n_obs=args.n_obs,
                    n_pred=args.n_pred, refine_iters=args.refine_iters, repeats=args.repeats, warmup=args.warmup)
        cmd = [sys.executable, __file__, "--worker", name]
        cmd += [a for k, v in opts.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  {name}: {rows[-1]['seconds']:.2f} s", file=sys.stderr)
    ref = rows[0]
    print(f"one training step (forward + backward), batch {args.batch}, {args.size}x{args.size}x3, "
          f"{args.n_obs}->{args.n_pred}, L={args.refine_iters}, device {ref['device']}, threads {ref['threads']}, "
          f"best of {args.repeats} after {args.warmup} warm-up")
    print(f"{'model':<16}{'params':>12}{'time s':>10}{'x time':>8}{'peak MiB':>11}{'x mem':>8}")
    for r in rows:
        print(f"{r['model']:<16}{r['params']:>12,}{r['seconds']:>10.2f}{r['seconds'] / ref['seconds']:>8.2f}"
              f"{r['peak_mib']:>11.0f}{r['peak_mib'] / ref['peak_mib']:>8.2f}")


if __name__ == "__main__":
    main()
