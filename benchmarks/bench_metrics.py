"""Seconds per 1,000 frames for each metric of `cdnet.metrics`, at 64x64x1 and 128x128x3.

    python benchmarks/bench_metrics.py [--frames 256] [--skimage-frames 32] [--repeats 3] [--threads N]

Runs on CPU, and on CUDA when available. The LPIPS row uses a randomly initialised AlexNet
backbone (`pnet_rand=True`): its speed is that of the real network, its values mean nothing.
Each figure is the best of `--repeats` timed runs (after one warm-up), scaled to 1,000 frames.
"""
import argparse
import time

import numpy as np
import torch
from skimage.metrics import structural_similarity

from cdnet.metrics import frame_errors, frame_lpips, frame_metrics, frame_psnr, frame_ssim, load_lpips

SHAPES = [(1, 64, 64), (3, 128, 128)]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_1000(fn, n_frames, device, repeats):
    "Best wall time of `fn()` over `repeats` runs after a warm-up, scaled to 1,000 frames"
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best * 1000 / n_frames


def skimage_ssim_loop(pred, true):
    "The per-frame scikit-image SSIM loop of the standard convention (H x W x C frames, channel_axis)"
    return [structural_similarity(p, t, channel_axis=2, data_range=1.0) for p, t in zip(pred, true)]


def bench(device, shape, n_frames, n_skimage, repeats, lpips_model):
    g = torch.Generator().manual_seed(0)
    true = torch.rand(n_frames, *shape, generator=g, dtype=torch.float64)
    pred = (true + 0.1 * torch.randn(n_frames, *shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    true, pred = true.to(device), pred.to(device)
    rows = {
        "mse+mae (frame sums)": per_1000(lambda: frame_errors(pred, true), n_frames, device, repeats),
        "ssim, vectorised": per_1000(lambda: frame_ssim(pred, true, data_range=1.0), n_frames, device, repeats),
        "psnr": per_1000(lambda: frame_psnr(pred, true), n_frames, device, repeats),
        "lpips (random backbone, timing only)":
            per_1000(lambda: frame_lpips(lpips_model, pred, true, normalize=True), n_frames, device, repeats),
        "frame_metrics, standard, no lpips": per_1000(
            lambda: frame_metrics(pred[:, None], true[:, None], "standard"), n_frames, device, repeats),
    }
    if device.type == "cpu":
        p_np = np.ascontiguousarray(pred[:n_skimage].permute(0, 2, 3, 1).numpy())
        t_np = np.ascontiguousarray(true[:n_skimage].permute(0, 2, 3, 1).numpy())
        rows["ssim, scikit-image loop"] = per_1000(lambda: skimage_ssim_loop(p_np, t_np), n_skimage, device, repeats)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=256, help="frames per timed call (torch metrics)")
    ap.add_argument("--skimage-frames", type=int, default=32, help="frames per timed call (scikit-image loop)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    lpips_model = load_lpips(pnet_rand=True)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, float64 metrics, float32 LPIPS")
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        lpips_model.to(device)
        for shape in SHAPES:
            rows = bench(device, shape, args.frames, args.skimage_frames, args.repeats, lpips_model)
            print(f"\n{name}, frames {shape[1]}x{shape[2]}x{shape[0]}: seconds per 1,000 frames")
            for label, secs in rows.items():
                print(f"  {label:<40s} {secs:10.4f}")


if __name__ == "__main__":
    main()
