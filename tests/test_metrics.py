"""Frame metrics against the protocol's cross-checks and against scikit-image itself."""
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from cdnet.metrics import (CONVENTIONS, LPIPSUnavailableWarning, frame_metrics, load_lpips, summarize,
                           to_paper_units)

C, H, W = 3, 32, 40


@pytest.fixture(scope="module")
def frames():
    "A natural-looking target (smoothed noise) and a blurred, shifted, partly out-of-range prediction"
    rng = np.random.default_rng(0)
    true = ndimage.gaussian_filter(rng.random((2, 3, C, H, W)), (0, 0, 0, 2, 2))
    true = (true - true.min()) / (true.max() - true.min())
    pred = ndimage.shift(ndimage.gaussian_filter(true, (0, 0, 0, 1, 1)), (0, 0, 0, 1, 1), mode="nearest")
    return pred * 1.6 - 0.3, true  # some values below 0 and above 1 in every frame


@pytest.fixture(scope="module")
def rand_lpips():
    return load_lpips(pnet_rand=True)  # random backbone: plumbing only


def _hwc(x):
    return np.ascontiguousarray(np.moveaxis(x, 0, -1))


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_identical_inputs(frames, rand_lpips, convention):
    _, true = frames
    m = frame_metrics(true, true, convention, rand_lpips)
    assert {k: v.shape for k, v in m.items()} == {k: (2, 3) for k in ("mse", "mae", "ssim", "psnr", "lpips")}
    assert all(v.dtype == np.float64 for v in m.values())
    assert (m["mse"] == 0).all() and (m["mae"] == 0).all() and (m["lpips"] == 0).all()
    np.testing.assert_allclose(m["ssim"], 1.0, atol=1e-12)
    assert (m["psnr"] == 100.0).all()  # the documented cap


def test_sum_and_psnr_cross_checks(frames):
    pred, true = frames
    pred = np.clip(pred, 0, 1)  # nothing left to clip
    m = frame_metrics(pred, true, "authors")
    np.testing.assert_allclose(m["mse"], C * H * W * ((pred - true) ** 2).mean((2, 3, 4)), rtol=1e-12)
    np.testing.assert_allclose(m["psnr"], 10 * np.log10(C * H * W / m["mse"]), rtol=1e-12)


def test_mse_of_128x128x3_frames_is_49152_times_the_pixel_mean():
    rng = np.random.default_rng(1)
    a, b = rng.random((1, 2, 3, 128, 128)), rng.random((1, 2, 3, 128, 128))
    np.testing.assert_allclose(frame_metrics(a, b)["mse"], 49152 * ((a - b) ** 2).mean((2, 3, 4)), rtol=1e-12)


def test_ssim_matches_scikit_image(frames):
    pred, true = frames
    s, a = frame_metrics(pred, true, "standard"), frame_metrics(pred, true, "authors")
    for n in range(2):
        for t in range(3):
            p, x = pred[n, t], true[n, t]
            std = structural_similarity(_hwc(np.clip(p, 0, 1)), _hwc(x), channel_axis=2, data_range=1)
            auth = np.mean([structural_similarity(p[c], x[c], data_range=2) for c in range(C)])
            assert abs(s["ssim"][n, t] - std) < 1e-6
            assert abs(a["ssim"][n, t] - auth) < 1e-6
    assert (np.abs(a["ssim"] - s["ssim"]) > 1e-3).all()  # the conventions differ on the same input


def test_ssim_matches_scikit_image_on_random_frames():
    rng = np.random.default_rng(2)
    p, x = rng.random((1, 1, 3, 16, 23)) * 1.4 - 0.2, rng.random((1, 1, 3, 16, 23))
    auth = np.mean([structural_similarity(p[0, 0, c], x[0, 0, c], data_range=2) for c in range(3)])
    std = structural_similarity(_hwc(np.clip(p[0, 0], 0, 1)), _hwc(x[0, 0]), channel_axis=2, data_range=1)
    assert abs(frame_metrics(p, x, "authors")["ssim"].item() - auth) < 1e-6
    assert abs(frame_metrics(p, x, "standard")["ssim"].item() - std) < 1e-6


def test_clipping(frames):
    pred, true = frames
    a, s = frame_metrics(pred, true, "authors"), frame_metrics(pred, true, "standard")
    np.testing.assert_allclose(a["mae"], np.abs(pred - true).sum((2, 3, 4)), rtol=1e-12)  # not clipped
    np.testing.assert_allclose(s["mae"], np.abs(np.clip(pred, 0, 1) - true).sum((2, 3, 4)), rtol=1e-12)
    np.testing.assert_allclose(s["mse"], ((np.clip(pred, 0, 1) - true) ** 2).sum((2, 3, 4)), rtol=1e-12)
    assert (a["mse"] > s["mse"]).all()
    np.testing.assert_array_equal(a["psnr"], s["psnr"])


def test_torch_inputs_equal_numpy_inputs(frames):
    pred, true = frames
    a = frame_metrics(torch.from_numpy(pred).float(), torch.from_numpy(true).float(), "authors")
    b = frame_metrics(pred.astype(np.float32), true.astype(np.float32), "authors")
    for k in ("mse", "mae", "ssim", "psnr"):
        np.testing.assert_array_equal(a[k], b[k])


def test_lpips_conventions_feed_the_network_differently(frames, rand_lpips):
    pred, true = frames
    a, s = frame_metrics(pred, true, "authors", rand_lpips), frame_metrics(pred, true, "standard", rand_lpips)
    assert a["lpips"].shape == (2, 3) and (a["lpips"] > 0).all()
    assert not np.allclose(a["lpips"], s["lpips"])


@pytest.mark.parametrize("call, message", [
    (lambda p, t: frame_metrics(p, t, "paper"), "`convention` must be one of ('standard', 'authors'), got 'paper'"),
    (lambda p, t: frame_metrics(p, t[:, :2]), "`pred` and `true` must have the same shape"),
    (lambda p, t: frame_metrics(p[0], t[0]), "`pred` must be [N, T, C, H, W]"),
    (lambda p, t: frame_metrics(p * 255, t), "`pred` must hold values in [0, 1]"),
    (lambda p, t: frame_metrics(p, t - 3), "`true` must hold values in [0, 1] (accepted: [-1e-06, 1.000001]), got -"),
])
def test_errors(frames, call, message):
    pred, true = frames
    with pytest.raises(ValueError) as e:
        call(pred, true)
    assert message in str(e.value)


def test_nan_is_reported_with_input_and_index(frames):
    pred, true = frames
    bad = pred.copy()
    bad[1, 0, 2, 5, 7] = np.nan
    with pytest.raises(ValueError, match=r"`pred` contains nan at index \(1, 0, 2, 5, 7\)"):
        frame_metrics(bad, true)


def test_lpips_missing_weights_warns_once_and_gives_none(frames, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_lpips()
    assert model is None
    assert [w.category for w in caught] == [LPIPSUnavailableWarning]
    message = str(caught[0].message)
    assert str(tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in message
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in message
    pred, true = frames
    assert frame_metrics(pred, true, "standard", model)["lpips"] is None


def test_summarize_and_paper_units():
    v = np.arange(12, dtype=np.float64).reshape(4, 3)
    s = summarize({"mse": v, "lpips": None})
    assert s["lpips"] is None
    np.testing.assert_allclose(s["mse"]["per_frame"], v.mean(0))
    assert s["mse"]["mean"] == v.mean() and s["mse"]["n"] == 4
    lo, hi = s["mse"]["ci95"]
    half = 3.182446305284263 * v.mean(1).std(ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert abs(hi - v.mean() - half) < 1e-9 and abs(v.mean() - lo - half) < 1e-9
    paper = to_paper_units({"mse": 250.0, "mae": 800.0, "lpips": 0.04, "ssim": 0.9, "psnr": None})
    assert paper == {"mse": 25.0, "mae": 8.0, "lpips": 40.0, "ssim": 0.9, "psnr": None}
    assert to_paper_units({"lpips": 0.04}, lpips_scale=100) == {"lpips": 4.0}
