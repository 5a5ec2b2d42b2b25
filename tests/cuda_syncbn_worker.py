"""Run under `torchrun --nproc_per_node=1` (NCCL): a CDNet training step with SyncBatchNorm equals the step with
BatchNorm (one process: the global batch statistics are the local ones), then `train(..., sync_bn=True)` runs."""
import sys

import torch
import torch.distributed as dist
from torch import nn

from cdnet.models.cdnet import CDNet


def step(m, x):
    torch.manual_seed(1)
    m.zero_grad()
    loss, _ = m.loss(x, 4)
    loss.backward()
    grads = [p.grad.clone() for p in m.parameters() if p.grad is not None]   # the released motion mask head gets none
    return [loss.detach()] + grads + [b.clone() for b in m.buffers()]


def main(out):
    dist.init_process_group("nccl")
    torch.cuda.set_device(0)
    try:
        torch.manual_seed(0)
        # float64: in float32 the two batch-norm implementations reduce in other orders, and the tiny autoencoder's
        # deepest batch norms (a few elements per channel) amplify that rounding far beyond a tolerance
        plain = CDNet(channels=1, height=32, width=32, n_obs=4, hidden=4, refine_iters=2).cuda().double().train()
        synced = nn.SyncBatchNorm.convert_sync_batchnorm(CDNet(channels=1, height=32, width=32, n_obs=4, hidden=4, refine_iters=2))
        synced.load_state_dict(plain.state_dict())
        synced = synced.cuda().double().train()
        assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
        x = torch.rand(2, 6, 1, 32, 32, device="cuda", dtype=torch.float64)
        for a, b in zip(step(plain, x), step(synced, x)):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9 * max(1.0, b.abs().max().item()))
        print("syncbn ok")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
