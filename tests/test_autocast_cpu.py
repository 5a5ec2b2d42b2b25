"""Mixed precision on the CPU (the same code paths as bf16 autocast on a GPU, which `tests/test_cuda.py` covers):
a training step of CDNet and CrevNet, plain and with reversible backprop, under `torch.autocast(bfloat16)` gives
a finite loss close to the float32 step's and finite float32 gradients (before the fused gate convolution
followed autocast's casts, CrevNet's backward failed on mixed dtypes)."""
import pytest
import torch

from cdnet.models.cdnet import CDNet
from cdnet.models.crevnet import CrevNet


def tiny(kind, **kw):
    torch.manual_seed(0)
    if kind == "crevnet": return CrevNet(channels=1, height=16, width=16, n_obs=3, hidden=4, layers=2, **kw)
    return CDNet(channels=1, height=16, width=16, n_obs=3, hidden=4, refine_iters=2, **kw)


@pytest.mark.parametrize("kind", ["cdnet", "crevnet"])
@pytest.mark.parametrize("reversible", [False, True])
def test_bf16_autocast_step_on_cpu(kind, reversible):
    x = torch.rand(2, 5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    losses = {}
    for amp in (False, True):
        m = tiny(kind, reversible_backprop=reversible).train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss, _ = m.loss(x, 3)
        loss.backward()
        assert torch.isfinite(loss)
        losses[amp] = loss.item()
        grads = [p.grad for p in m.parameters() if p.grad is not None]
        assert len(grads) > 0 and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert losses[True] == pytest.approx(losses[False], rel=1e-2)   # bf16 keeps 8 bits of mantissa
