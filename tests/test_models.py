"""Model tests: parameter counts of the spec, invertibility, unrolled model == hand-stepped cells,
loss gradients, ablation switches, and the authors' checkpoint format. All on tiny CPU tensors."""
from pathlib import Path

import pytest
import torch

from cdnet.compat import authors_key_map, export_authors_weights, load_authors_weights
from cdnet.losses import area_loss
from cdnet.models.cdnet import CDNet, resolve_variant
from cdnet.models.crevnet import CrevNet
from cdnet.models.mim import MIM
from cdnet.models.motionrnn import MotionRNN
from cdnet.models.predrnn import PredRNN
from cdnet.modules.autoencoder import InvertibleAutoencoder, stream_width
from cdnet.modules.cells import AttentionGate, CellState, MaskHead, STCell
from cdnet.modules.global_info import GlobalInfo, StateInit, Updater
from cdnet.params import baseline_rows, count_params, param_table

torch.set_num_threads(1)
RGB = dict(channels=3, height=128, width=128, n_obs=4)


def meta_count(cls, **kw):
    with torch.device("meta"):
        return count_params(cls(**kw))


# ---------------------------------------------------------------- parameter counts (spec section 7)
# the model and table counts are checked where they are built: nbs/13, nbs/14 and nbs/16
def test_component_counts():
    with torch.device("meta"):
        assert count_params(InvertibleAutoencoder(3)) == 937_572
        assert count_params(InvertibleAutoencoder(1)) == 104_516
        assert count_params(STCell(96)) == 6_507_456
        assert count_params(STCell(96, use_mask=False)) == 5_493_504
        assert count_params(STCell(96, gates="paper")) == 5_014_464
        assert count_params(AttentionGate(96)) == 258_240
        assert count_params(StateInit(96, 96)) == 55_584
        assert count_params(GlobalInfo(96, 96, n_past=2)) + count_params(Updater(96)) == 830_016


def test_recurrent_baseline_counts():
    "PredRNN and MIM at OpenSTL's Moving MNIST configuration, MotionRNN at its official Human3.6M script."
    mnist = dict(channels=1, height=64, width=64)
    assert meta_count(PredRNN, **mnist, hidden=128, layers=4, kernel=5, patch=4) == 23_838_720   # OpenSTL: 23.8M
    mim = meta_count(MIM, **mnist, hidden=128, layers=4, kernel=5, patch=4)
    assert mim == 37_945_344 and mim + 3 * 256 * 128 == 38_043_648   # OpenSTL's 38.0M has three unused 1x1 convs more
    assert abs(mim / 38.0e6 - 1) < 0.005
    assert meta_count(MotionRNN, channels=3, height=128, width=128, hidden=64, layers=4, kernel=5, patch=4) == 7_214_657
    assert [r["params"] for r in baseline_rows()] == [23_838_720, 37_945_344, 7_214_657]


def test_ablation_switches_remove_exactly_their_modules():
    full = meta_count(CDNet, **RGB)
    with torch.device("meta"):
        mask_head = count_params(MaskHead(96))
        g_and_u = count_params(GlobalInfo(96, 96, 2)) + count_params(Updater(96))
    assert mask_head == 1_013_952
    assert full - meta_count(CDNet, **RGB, use_mask=False) == 3 * mask_head      # motion + 2 refine cells
    assert full - meta_count(CDNet, **RGB, use_global_info=False) == g_and_u == 830_016
    assert full - meta_count(CDNet, **RGB, refine_cells=1) == 6_507_456
    assert full - meta_count(CDNet, **RGB, motion_mask=False) == mask_head
    paper = meta_count(CDNet, **RGB, variant="paper")
    assert paper - meta_count(CDNet, **RGB, variant="paper", use_mask=False) == count_params(MaskHead(96, in_ch=96))


def test_hidden_adds_projections():
    # hidden 16 per channel: cells 48 wide, 1x1x1 projections 96 <-> 48 in both stream updates
    m = CDNet(**{**RGB, "height": 16, "width": 16}, hidden=16, refine_iters=1)
    assert m.cell_width == 48 and m.motion_update.to_cell.weight.shape == (48, 96, 1, 1, 1)
    assert isinstance(CDNet(**{**RGB, "height": 16, "width": 16}, refine_iters=1).motion_update.to_cell, torch.nn.Identity)


# ---------------------------------------------------------------- autoencoder
@pytest.mark.parametrize("c,h,w", [(3, 128, 128), (3, 120, 160), (3, 64, 88), (1, 64, 64)])
def test_encode_decode_identity(c, h, w):
    torch.manual_seed(0)
    ae = InvertibleAutoencoder(c).eval()
    for bn in ae.modules():  # non-trivial BatchNorm statistics
        if isinstance(bn, torch.nn.BatchNorm3d):
            bn.running_mean.uniform_(-0.1, 0.1); bn.running_var.uniform_(0.5, 1.5)
    x = torch.rand(1, c, 3, h, w)
    with torch.no_grad():
        s0, s1 = ae.encode(x)
        assert s0.shape == s1.shape == (1, stream_width(c), 3, h // 8, w // 8)
        assert (ae.decode(s0, s1) - x).abs().max() < 1e-5


def test_frame_size_error_names_the_shape():
    with pytest.raises(ValueError, match="64x85"):
        CDNet(channels=3, height=64, width=85, n_obs=4)


# ---------------------------------------------------------------- unrolled model == cells stepped by hand
def _window(frames, i):
    return frames[:, i:i + 3].transpose(1, 2)


def _test_input(frames, prev, k, n_obs, n_past):
    if k <= n_past:
        return _window(frames, k - 1)
    x = prev.clone()
    for t in range(3):
        if k - 1 + t < n_obs:
            x[:, :, t] = frames[:, k - 1 + t]
    return x


def _gate_into(update, dst, out):
    hs = update.to_stream(out)
    g = update.gate(hs)
    return (1 - g) * dst + g * hs


def cdnet_by_hand(m, frames, n_obs, n_pred):
    n_past, decodes, prev = n_obs - 2, [], None
    for k in range(1, n_past + n_pred):
        s0, s1 = m.autoencoder.encode(_test_input(frames, prev, k, n_obs, n_past))
        enc = torch.cat([s0, s1], 1)
        if k == 1:
            h0, c0, b0 = m.state_init.conv(enc).chunk(3, 1)
            mot = ref = CellState(h0, c0, b0, torch.zeros_like(h0))
            memory = []
        if k <= n_past:
            memory.append(enc)
        out, mot = m.motion_lstm(m.motion_update.to_cell(s0), mot)
        if not m.switches["motion_blend"]:
            out = mot.h                    # released: the motion output is H~, the state it carries
        s1 = _gate_into(m.motion_update, s1, out)
        step = [m.autoencoder.decode(s0, s1)]
        cell = m.refine_lstm[min(len(m.refine_lstm) - 1, int(k > n_past))]
        ref = ref._replace(m=mot.m)
        for j in range(1, m.refine_iters + 1):
            if k > n_past:
                g = torch.cat([m.global_info.memory(torch.cat(memory, 1)), m.global_info.current(enc)], 1)
                ref = ref._replace(c=m.updater.net(torch.cat([g, ref.c], 1)))
            if j % 2:
                out, ref = cell(m.refine_update.to_cell(s1), ref)
                s0 = _gate_into(m.refine_update, s0, out)
            else:
                out, ref = cell(m.refine_update.to_cell(s0), ref)
                s1 = _gate_into(m.refine_update, s1, out)
            step.append(m.autoencoder.decode(s0, s1))
        mot = mot._replace(m=ref.m)
        decodes.append(step)
        prev = step[-1]
    return decodes


@pytest.mark.parametrize("variant,hidden,over", [("released", 32, {}), ("paper", 32, {}), ("released", 8, {}),
                                                 ("released", 8, dict(motion_blend=True))])
def test_cdnet_unroll_equals_hand_stepping(variant, hidden, over):
    torch.manual_seed(0)
    frames = torch.rand(2, 6, 1, 16, 16)
    m = CDNet(channels=1, height=16, width=16, n_obs=4, hidden=hidden, refine_iters=3, variant=variant, **over).eval()
    with torch.no_grad():
        r, ref = m(frames, 4, 2), cdnet_by_hand(m, frames, 4, 2)
        pred = m.predict(frames[:, :4], 2)
    assert len(r.decodes) == 3 and all(len(d) == 4 for d in r.decodes)   # S steps, L + 1 decodes each
    for a, b in zip(sum(r.decodes, []), sum(ref, [])):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert pred.shape == (2, 2, 1, 16, 16)
    torch.testing.assert_close(pred, torch.stack([ref[1][-1][:, :, 2], ref[2][-1][:, :, 2]], 1), rtol=0, atol=1e-6)


def test_refine_iters_decodes_per_step():
    m = CDNet(channels=1, height=16, width=16, n_obs=3, hidden=4, refine_iters=5)
    with torch.no_grad():
        r = m(torch.rand(1, 6, 1, 16, 16), 3, 3, teacher_p=0.5)
    assert [len(d) for d in r.decodes] == [6, 6, 6]
    assert all(d.shape == (1, 1, 3, 16, 16) for step in r.decodes for d in step)


def test_crevnet_unroll_equals_hand_stepping():
    torch.manual_seed(0)
    frames = torch.rand(2, 6, 1, 16, 16)
    m = CrevNet(channels=1, height=16, width=16, n_obs=4, hidden=8, layers=4, gate="conv1").eval()
    n_obs, n_pred, n_past, decodes, prev = 4, 2, 2, [], None
    with torch.no_grad():
        for k in range(1, n_past + n_pred):
            s = list(m.autoencoder.encode(_test_input(frames, prev, k, n_obs, n_past)))
            if k == 1:
                z = torch.zeros(2, m.cell_width, *s[0].shape[2:])
                hc, mem = [(z, z)] * m.layers, z
            for i in range(m.layers):
                src, dst = (0, 1) if i % 2 == 0 else (1, 0)
                out, st = m.cells[i](m.updates[i].to_cell(s[src]), CellState(*hc[i], None, mem))
                hc[i], mem = (st.h, st.c), st.m
                s[dst] = _gate_into(m.updates[i], s[dst], out)
            prev = m.autoencoder.decode(*s)
            decodes.append(prev)
        r = m(frames, n_obs, n_pred)
    for a, b in zip(r.final, decodes):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- losses
def _area_grads(mode):
    torch.manual_seed(0)
    frames = torch.rand(1, 6, 1, 16, 16)
    m = CDNet(channels=1, height=16, width=16, n_obs=4, hidden=4, refine_iters=2, area_loss=mode)
    m.objective(m(frames, 4, 2, teacher_p=0.0), frames)["area"].backward()
    return [p.grad for p in m.parameters() if p.grad is not None]


def test_exact_area_loss_has_zero_gradient_soft_does_not():
    exact, soft = _area_grads("exact"), _area_grads("soft")
    assert exact and all((g == 0).all() for g in exact)
    assert any((g != 0).any() for g in soft)


def test_area_loss_zero_on_identical_inputs():
    x, prev = torch.rand(1, 3, 3, 8, 8), torch.rand(1, 3, 3, 8, 8)
    for mode in ("exact", "none"):
        assert area_loss(x, prev, x, mode=mode) == 0
    assert 0 <= area_loss(x, prev, x, mode="soft") < 1e-5   # sigmoid masks are only nearly binary


def test_exact_and_none_give_the_same_gradients():
    frames = torch.rand(1, 6, 1, 16, 16)
    grads = {}
    for mode in ("exact", "none"):
        torch.manual_seed(0)
        m = CDNet(channels=1, height=16, width=16, n_obs=4, hidden=4, refine_iters=2, area_loss=mode)
        loss, terms = m.loss(frames, 4, epoch=0)
        loss.backward()
        grads[mode] = [p.grad for p in m.parameters()]
        assert (terms["area"] > 0) == (mode == "exact")
    for a, b in zip(grads["exact"], grads["none"]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_model_contract():
    frames = torch.rand(2, 7, 3, 16, 16)
    rnn = dict(channels=3, height=16, width=16, hidden=4, layers=2, kernel=3, patch=2)
    for m in (CDNet(channels=3, height=16, width=16, n_obs=4, hidden=2, refine_iters=2, variant="paper"),
              CrevNet(channels=3, height=16, width=16, n_obs=4, hidden=2, layers=2),
              PredRNN(**rnn), MIM(**rnn), MotionRNN(**rnn), MotionRNN(**rnn, sampling="shared", layer_norm=True)):
        loss, terms = m.loss(frames, 4, epoch=7)
        assert loss.ndim == 0 and torch.isfinite(loss) and all(isinstance(v, float) for v in terms.values())
        assert m.predict(frames[:, :4], 3).shape == (2, 3, 3, 16, 16)


def test_resolve_variant_overrides_and_rejects_unknown():
    assert resolve_variant("paper", refine_cells=2)["refine_cells"] == 2
    assert resolve_variant("released")["area_loss"] == "exact"
    with pytest.raises(TypeError, match="refine_cell"):
        resolve_variant("released", refine_cell=1)


# ---------------------------------------------------------------- the authors' checkpoint format
def _random_state(rows, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {"encoder": {}, "frame_predictor": {}}
    for mod, key, shape in rows:
        out[mod][key] = (torch.randint(0, 1000, (), generator=g) if key.endswith("num_batches_tracked")
                         else torch.randn(shape, generator=g))
    return out


def _model_rows():
    m = CDNet(**RGB, refine_iters=1)
    sd = m.state_dict()
    return [(mod, key, tuple(sd[mk].shape)) for mk, (mod, key) in authors_key_map(m).items()]


def _roundtrip(rows):
    src = _random_state(rows)
    model = load_authors_weights(src["encoder"], src["frame_predictor"])
    sd = model.state_dict()
    used = []
    for mk, (mod, key) in authors_key_map(model).items():
        assert torch.equal(sd[mk], src[mod][key]), mk
        used.append((mod, key))
    assert len(used) == len(set(used)) == len(rows) == len(sd)   # each tensor in exactly one place, none left
    enc, pred = export_authors_weights(model)
    assert enc.keys() == src["encoder"].keys() and pred.keys() == src["frame_predictor"].keys()
    assert all(torch.equal(enc[k], v) for k, v in src["encoder"].items())
    assert all(torch.equal(pred[k], v) for k, v in src["frame_predictor"].items())


def test_authors_format_roundtrip_from_model_keys():
    _roundtrip(_model_rows())


def _tsv_path():
    here = Path(__file__).resolve()
    for base in here.parents:
        p = base / "shared" / "spec" / "authors_checkpoint_keys.tsv"
        if p.exists():
            return p


def test_authors_format_matches_published_key_list():
    path = _tsv_path()
    if path is None:
        pytest.skip("shared/spec/authors_checkpoint_keys.tsv not found next to or above the repository")
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("module\t"):
            continue
        mod, key, shape = line.split("\t")
        rows.append((mod, key, () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))))
    assert sorted(rows) == sorted(_model_rows())
    _roundtrip(rows)


def test_load_rejects_foreign_tensors():
    src = _random_state(_model_rows())
    with pytest.raises(KeyError, match="extra.weight"):
        load_authors_weights(src["encoder"], {**src["frame_predictor"], "extra.weight": torch.ones(1)})


# -- fast paths: fused gate convolutions, channels_last_3d weights, reversible backprop ------------

def _reference_stcell(cell, x, st):
    "The released/paper ST cell written out with one plain convolution per gate (Eq. 1, 5, 6)."
    h, c, b, m = st
    xc = torch.cat([x, h, c] if cell.gates == "released" else [x, h], 1)
    c_new = torch.sigmoid(cell.gate_f(xc)) * c + torch.sigmoid(cell.gate_i(xc)) * torch.tanh(cell.gate_g(xc))
    xm = torch.cat([x, m, c_new] if cell.gates == "released" else [x, m], 1)
    m_new = torch.sigmoid(cell.gate_f_m(xm)) * m + torch.sigmoid(cell.gate_i_m(xm)) * torch.tanh(cell.gate_g_m(xm))
    o = torch.sigmoid(cell.gate_o(torch.cat([x, h, c_new, m_new], 1)))
    h_t = o * torch.tanh(cell.w_1(torch.cat([c_new, m_new], 1)))
    b_new = cell.mask(x, b, c_new, m_new)
    return h_t * b_new + h * (1 - b_new)


@pytest.mark.parametrize("gates", ["released", "paper"])
@pytest.mark.parametrize("dtype,eps", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_fused_gates_equal_reference_cell(gates, dtype, eps):
    torch.manual_seed(0)
    cell = STCell(4, gates=gates).to(dtype).to(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 4, 3, 4, 4, dtype=dtype, requires_grad=True)
    st = CellState(*(torch.randn(2, 4, 3, 4, 4, dtype=dtype) for _ in range(4)))
    w = torch.randn(2, 4, 3, 4, 4, dtype=dtype)
    res = []
    for fn in (lambda: cell(x, st)[0], lambda: _reference_stcell(cell, x, st)):
        cell.zero_grad(); x.grad = None
        out = fn(); (out * w).sum().backward()
        res.append([out.detach(), x.grad.clone()] + [p.grad.clone() for p in cell.parameters()])
    for a, b in zip(*res):
        assert torch.allclose(a, b, rtol=eps, atol=eps * b.abs().max().item()), (a - b).abs().max()


def _loss_grads(m, frames, n_obs):
    torch.manual_seed(1)
    m.zero_grad()
    loss, _ = m.loss(frames, n_obs)
    loss.backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in m.parameters()]  # None: unused here
    return [loss.detach()] + grads, [b.clone() for b in m.buffers()]


@pytest.mark.parametrize("kind", ["cdnet", "crevnet"])
def test_fast_training_step_equals_plain_autograd(kind):
    "channels_last weights + reversible backprop (+ checkpointed cells) give the loss, gradients and BN statistics of the plain model."
    torch.manual_seed(0)
    build = ((lambda **kw: CDNet(channels=1, height=16, width=16, n_obs=4, hidden=2, refine_iters=2, **kw)) if kind == "cdnet"
             else (lambda **kw: CrevNet(channels=1, height=16, width=16, n_obs=4, hidden=2, layers=2, **kw)))
    plain = build(channels_last=False).double()
    fast = build(reversible_backprop=True, **(dict(checkpoint_cells=True) if kind == "cdnet" else {})).double()
    fast.load_state_dict(plain.state_dict())
    assert fast.autoencoder.blocks[1].f[2].weight.is_contiguous(memory_format=torch.channels_last_3d)
    frames = torch.rand(2, 7, 1, 16, 16, dtype=torch.float64)
    (g1, b1), (g2, b2) = _loss_grads(plain, frames, 4), _loss_grads(fast, frames, 4)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9 * a.abs().max().item()), (a - b).abs().max()
    for a, b in zip(b1, b2): assert torch.equal(a, b)          # running statistics updated once, identically


def test_fused_model_still_loads_and_exports_the_authors_format():
    m = CDNet(channels=1, height=16, width=16, n_obs=4, hidden=32, refine_iters=1)
    enc, pred = export_authors_weights(m)
    back = load_authors_weights(enc, pred, height=16, width=16, refine_iters=1)
    for k, v in m.state_dict().items(): assert torch.equal(v, back.state_dict()[k]), k
    enc2, pred2 = export_authors_weights(back)
    assert all(torch.equal(enc[k], enc2[k]) for k in enc) and all(torch.equal(pred[k], pred2[k]) for k in pred)
