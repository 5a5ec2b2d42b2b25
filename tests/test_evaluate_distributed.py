"""Evaluation split over two gloo processes equals the single-process evaluation, exactly."""
import os
import pickle
import warnings

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cdnet.evaluate import evaluate, write_results

N_SEQ, N_OBS, N_PRED, BATCH = 7, 3, 2, 2  # 7 sequences in batches of 2: each rank's last batch is ragged


class Sequences(torch.utils.data.Dataset):
    "Deterministic sequences [T, 3, 8, 8] in [0, 1], different for every index"
    def __len__(self):
        return N_SEQ

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(100 + i)
        return torch.rand(N_OBS + N_PRED + 1, 3, 8, 8, generator=g)


class CopyLast(torch.nn.Module):
    def predict(self, context, n_pred):
        return context[:, -1:].expand(-1, n_pred, -1, -1, -1) * 1.1 - 0.02  # leaves [0, 1] a little


def _worker(rank, world, tmp):
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the LPIPS-unavailable notice
            res = evaluate(CopyLast(), Sequences(), n_obs=N_OBS, n_pred=N_PRED, batch_size=BATCH)
        written = write_results(res, os.path.join(tmp, f"out{rank}"), config={"convention": "both"})
        with open(os.path.join(tmp, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump((res, written), f)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_equal_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no LPIPS weights, in the workers too
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = evaluate(CopyLast(), Sequences(), n_obs=N_OBS, n_pred=N_PRED, batch_size=BATCH)
    np.testing.assert_array_equal(single.indices, np.arange(N_SEQ))
    for rank in range(2):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as f:
            gathered, written = pickle.load(f)
        np.testing.assert_array_equal(gathered.indices, single.indices)
        assert gathered.per_frame.keys() == single.per_frame.keys() == {"standard", "authors"}
        for conv, metrics in single.per_frame.items():
            assert metrics["lpips"] is None and gathered.per_frame[conv]["lpips"] is None
            for m in ("mse", "mae", "ssim", "psnr"):
                assert metrics[m].shape == (N_SEQ, N_PRED)
                np.testing.assert_array_equal(gathered.per_frame[conv][m], metrics[m])
        assert gathered.summary() == single.summary()
        assert (written is not None) == (rank == 0)  # only rank 0 writes
    assert (tmp_path / "out0" / "metrics.json").is_file() and not (tmp_path / "out1").exists()
