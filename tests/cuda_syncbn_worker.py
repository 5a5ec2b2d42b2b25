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
    return [loss.detach()] + [p.grad.clone() for p in m.parameters()] + [b.clone() for b in m.buffers()]


def main(out):
    dist.init_process_group("nccl")
    torch.cuda.set_device(0)
    try:
        torch.manual_seed(0)
        plain = CDNet(channels=1, height=32, width=32, n_obs=4, hidden=4, refine_iters=2).cuda().train()
        synced = nn.SyncBatchNorm.convert_sync_batchnorm(CDNet(channels=1, height=32, width=32, n_obs=4, hidden=4, refine_iters=2))
        synced.load_state_dict(plain.state_dict())
        synced = synced.cuda().train()
        assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
        x = torch.rand(2, 6, 1, 32, 32, device="cuda")
        for a, b in zip(step(plain, x), step(synced, x)):
            torch.testing.assert_close(a.float(), b.float(), rtol=1e-4, atol=1e-5 * max(1.0, b.float().abs().max().item()))
        print("syncbn ok")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
