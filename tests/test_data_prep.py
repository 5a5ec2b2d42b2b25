"""Dataset preparation (data_prep/ and cdnet.prepared) on tiny sources generated in the official layouts."""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from cdnet.config import resolve_config
from cdnet.videoio import BadSource, container_frame_count, read_video
from cdnet.prepared import CLIP_FILES, prepare_human36m, prepare_ucf101
from cdnet.manifest import MANIFEST, PARTIAL, VERIFY_CACHE, is_prepared, read_manifest, sha256_file
from cdnet.data import load_prepared
from fixtures.data_prep_fixtures import STEP, make_damaged_video, make_h36m_frames, make_h36m_videos, make_ucf

ROOT = Path(__file__).resolve().parents[1]
CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"   # ../shared beside the checkout
QUIET = dict(progress=False, log=lambda s: None)

H36M_RECORDINGS = [("S1", "Walking", "54138969"), ("S1", "Walking 1", "54138969"), ("S1", "WalkingDog", "54138969"),
                   ("S1", "WalkTogether", "54138969"), ("S1", "WalkDog", "54138969"), ("S9", "Walking", "60457274"),
                   ("S11", "Walking 1", "55011271"), ("S2", "Walking", "54138969")]
KEPT = {"S1_Walking.54138969": ("train", 0), "S1_Walking_1.54138969": ("train", 1),   # id: (split, fixture index k)
        "S9_Walking.60457274": ("test", 5), "S11_Walking_1.55011271": ("test", 6)}


def cli(script, *args):
    return subprocess.run([sys.executable, str(ROOT / "data_prep" / script), *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def records(m):
    return {r["id"]: dict(r, split=s) for s, recs in m["splits"].items() for r in recs}


def mtimes(d):
    return {p: p.stat().st_mtime_ns for p in Path(d).rglob("*") if p.is_file() and p.name != VERIFY_CACHE}


@pytest.fixture(scope="module")
def h36m_videos(tmp_path_factory):
    return make_h36m_videos(tmp_path_factory.mktemp("h36m_videos"), H36M_RECORDINGS)


@pytest.fixture(scope="module")
def h36m_prepared(h36m_videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "human36m"
    return out, prepare_human36m(h36m_videos, out, **QUIET)


# -- Human3.6M -----------------------------------------------------------------------------------

def test_h36m_videos_filter_split_crop_stride(h36m_videos, h36m_prepared):
    out, m = h36m_prepared
    recs = records(m)
    assert {k: r["split"] for k, r in recs.items()} == {k: s for k, (s, _) in KEPT.items()}   # Walking, Walking 1 only; S2 dropped
    assert m["options"]["layout"] == "videos" and m["options"]["video_step"] == 5 and m["options"]["frame_stride"] == 1
    assert m["source"]["missing_subjects"] == ["S5", "S6", "S7", "S8"]
    for cid, (split, k) in KEPT.items():
        r = recs[cid]
        assert (r["source_frames"], r["frames"], r["shape"]) == (11, 3, [3, 128, 128, 3])   # source frames 0, 5, 10
        assert r["file"] == f"{split}/{cid}.npy" and r["sha256"] == sha256_file(out / r["file"])
        a = np.load(out / r["file"])
        assert a.dtype == np.uint8
        assert np.abs(a[:, 3, 3].mean(-1) - (20 + k + STEP * np.array([0, 5, 10]))).max() <= 3   # corner: background only
        assert a[:, 64, 64].min() >= 245                                                        # centre pattern survives
    assert recs["S11_Walking_1.55011271"]["action"] == "Walking 1" and recs["S11_Walking_1.55011271"]["camera"] == "55011271"


def test_h36m_frames_layout_stride(tmp_path):
    src = make_h36m_frames(tmp_path / "src", [("S1", "Walking_1", "54138969"), ("S1", "WalkingDog", "54138969"),
                                              ("S5", "WalkTogether", "55011271"), ("S9", "Walking", "58860488"),
                                              ("S11", "Walking", "60457274")])
    m = prepare_human36m(src, tmp_path / "out", frame_stride=2, **QUIET)
    recs = records(m)
    assert {k: r["split"] for k, r in recs.items()} == {"S1_Walking_1.54138969": "train", "S9_Walking.58860488": "test",
                                                        "S11_Walking.60457274": "test"}
    assert m["options"]["layout"] == "frames" and m["options"]["frame_stride"] == 2 and m["options"]["video_step"] is None
    for cid, k in (("S1_Walking_1.54138969", 0), ("S9_Walking.58860488", 3), ("S11_Walking.60457274", 4)):
        a = np.load(tmp_path / "out" / recs[cid]["file"])
        assert a.shape == (3, 128, 128, 3) and recs[cid]["source_frames"] == 6
        assert np.abs(a[:, 3, 3].mean(-1) - (20 + k + STEP * np.array([0, 2, 4]))).max() <= 3   # files 1, 3, 5
        assert a[:, 64, 64].min() >= 240


def test_neither_layout(tmp_path):
    (tmp_path / "misc").mkdir(); (tmp_path / "misc" / "notes.txt").write_text("x")
    r = cli("human36m.py", "--src", tmp_path, "--out", tmp_path / "out")
    assert r.returncode == 2
    assert "neither Human3.6M layout" in r.stderr and "S1/Videos/Walking.54138969.mp4" in r.stderr
    assert "s1/S1_Walking.54138969_000001.jpg" in r.stderr
    r = cli("ucf101.py", "--src", tmp_path, "--out", tmp_path / "out", "--setting", "64x88")
    assert r.returncode == 2 and "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" in r.stderr


def test_help():
    for script in ("human36m.py", "ucf101.py", "clips.py"):
        r = cli(script, "--help")
        assert r.returncode == 0 and "--src" in r.stdout and "--out" in r.stdout and "--workers" in r.stdout


# -- idempotent, resumable, parallel ---------------------------------------------------------------

def test_second_run_writes_nothing(h36m_videos, tmp_path):
    out = tmp_path / "human36m"
    r = cli("human36m.py", "--src", h36m_videos, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "2 train + 2 test clips" in r.stdout and "frames/s" in r.stdout
    before = mtimes(out)
    r = cli("human36m.py", "--src", h36m_videos, "--out", out, "--quiet")
    assert r.returncode == 0 and "0 clips prepared, 4 already done" in r.stdout
    assert mtimes(out) == before and not (out / PARTIAL).exists()


def test_interrupted_run_resumes(h36m_videos, h36m_prepared, tmp_path):
    ref_out, ref = h36m_prepared
    out, seen = tmp_path / "human36m", []

    def stop_after_first(rec):
        seen.append(rec["id"])
        if len(seen) == 1: raise KeyboardInterrupt   # as if the user pressed Ctrl-C after one clip
    with pytest.raises(KeyboardInterrupt): prepare_human36m(h36m_videos, out, on_clip=stop_after_first, **QUIET)
    assert not is_prepared("human36m", out.parent) and len(json.loads((out / PARTIAL).read_text())["splits"]["test"]) == 1
    with pytest.raises(FileNotFoundError, match="interrupted preparation"): read_manifest("human36m", out.parent)
    (out / "test" / ".S9_Walking.60457274.npy.4242.tmp").write_bytes(b"half")          # left by a killed process
    m = prepare_human36m(h36m_videos, out, on_clip=lambda r: seen.append(r["id"]), **QUIET)
    assert len(seen) == 4 and len(set(seen)) == 4                                     # the other 3 clips, each once
    assert m == ref and not (out / PARTIAL).exists() and not list(out.glob("*/.*.tmp"))
    assert {r["file"]: sha256_file(out / r["file"]) for r in records(m).values()} == \
           {r["file"]: sha256_file(ref_out / r["file"]) for r in records(ref).values()}
    (out / "test" / "S9_Walking.60457274.npy").unlink()                                  # an output lost later
    seen.clear()
    assert prepare_human36m(h36m_videos, out, on_clip=lambda r: seen.append(r["id"]), **QUIET) == ref
    assert seen == ["S9_Walking.60457274"]


def test_workers_give_identical_results(h36m_videos, h36m_prepared, tmp_path):
    assert prepare_human36m(h36m_videos, tmp_path / "human36m", workers=2, **QUIET) == h36m_prepared[1]


def test_other_options_refused(h36m_videos, h36m_prepared):
    out, _ = h36m_prepared
    with pytest.raises(ValueError, match="frame_stride: 1 -> 2"): prepare_human36m(h36m_videos, out, frame_stride=2, **QUIET)


# -- bad sources -----------------------------------------------------------------------------------

def test_corrupt_sources(tmp_path):
    src = make_h36m_videos(tmp_path / "src", [("S1", "Walking", "54138969")])
    (src / "S9" / "Videos").mkdir(parents=True)
    (src / "S9" / "Videos" / "Walking.60457274.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 4000)   # unreadable
    (src / "S11" / "Videos").mkdir(parents=True)
    make_damaged_video(src / "S11" / "Videos" / "Walking.55011271.mp4")                  # frames lost mid-stream
    with pytest.raises(BadSource, match="decoded \\d+ frames but the container holds 30"): list(read_video(src / "S11" / "Videos" / "Walking.55011271.mp4"))
    assert container_frame_count(src / "S1" / "Videos" / "Walking.54138969.mp4") == 11

    r = cli("human36m.py", "--src", src, "--out", tmp_path / "out", "--quiet")                 # S11 comes first: stops there
    assert r.returncode == 1 and "S11/Videos/Walking.55011271.mp4: decoded" in r.stderr and "--skip-bad" in r.stderr
    assert not is_prepared("human36m", tmp_path)

    r = cli("human36m.py", "--src", src, "--out", tmp_path / "out", "--quiet", "--skip-bad")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert [r["id"] for r in m["splits"]["train"]] == ["S1_Walking.54138969"] and m["splits"]["test"] == []
    reasons = {s["id"]: s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"S9_Walking.60457274", "S11_Walking.55011271"}
    assert "ffmpeg cannot read it" in reasons["S9_Walking.60457274"]
    assert "but the container holds 30" in reasons["S11_Walking.55011271"]


# -- UCF101 ----------------------------------------------------------------------------------------

def test_ucf101_settings(tmp_path):
    names = ["v_Fencing_g01_c01", "v_Fencing_g19_c10", "v_Fencing_g20_c02", "v_Rowing_g25_c09", "v_Rowing_g08_c03"]
    make_ucf(tmp_path / "src", names)                                                     # 9 frames of 60x80 each
    m = prepare_ucf101(tmp_path / "src", tmp_path / "u160", "160x120", **QUIET)
    recs = records(m)
    assert {k: r["split"] for k, r in recs.items()} == {"v_Fencing_g01_c01": "train", "v_Fencing_g19_c10": "train",
                                                        "v_Rowing_g08_c03": "train", "v_Fencing_g20_c02": "test",
                                                        "v_Rowing_g25_c09": "test"}
    assert all(r["shape"] == [5, 120, 160, 3] and r["source_frames"] == 9 for r in recs.values())   # every 2nd frame
    a = np.load(tmp_path / "u160" / recs["v_Fencing_g20_c02"]["file"])
    assert np.abs(a[:, 90, 40].mean(-1) - (20 + 2 + STEP * np.array([0, 2, 4, 6, 8]))).max() <= 3
    assert m["options"]["clips"] == "all"
    m = prepare_ucf101(tmp_path / "src" / "UCF-101", tmp_path / "u160r", "160x120", released_clips=True, **QUIET)
    assert "v_Fencing_g19_c10" not in records(m) and m["options"]["clips"] == "c01-c09"

    (tmp_path / "train.txt").write_text("v_Fencing_g01_c01\nv_Fencing_g20_c02\n"); (tmp_path / "test.txt").write_text("v_Rowing_g08_c03\n")
    r = cli("ucf101.py", "--src", tmp_path / "src", "--out", tmp_path / "u64", "--setting", "64x88", "--quiet",
            "--train-list", tmp_path / "train.txt", "--test-list", tmp_path / "test.txt")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "u64" / MANIFEST).read_text())
    assert {k: (r["split"], r["shape"]) for k, r in records(m).items()} == {
        "v_Fencing_g01_c01": ("train", [5, 64, 88, 3]), "v_Fencing_g20_c02": ("train", [5, 64, 88, 3]),
        "v_Rowing_g08_c03": ("test", [5, 64, 88, 3])}
    assert m["options"]["lists"]["train"]["names"] == 2 and m["options"]["frame_stride"] == 2
    (tmp_path / "test.txt").write_text("v_Rowing_g08_c03\nv_Rowing_g09_c01\n")           # a listed video that is absent
    r = cli("ucf101.py", "--src", tmp_path / "src", "--out", tmp_path / "u64b", "--setting", "64x88", "--quiet",
            "--train-list", tmp_path / "train.txt", "--test-list", tmp_path / "test.txt")
    assert r.returncode == 1 and "v_Rowing_g09_c01.avi: listed in the split but not found" in r.stderr



def test_ucf101_overlapping_lists_refused(tmp_path):
    "A video in both lists would be written to train/ and test/ but listed once: refused, naming it (plain and official list formats)."
    names = ["v_Fencing_g01_c01", "v_Fencing_g20_c02", "v_Rowing_g08_c03"]
    make_ucf(tmp_path / "src", names)
    for train, test in (("v_Fencing_g01_c01\nv_Fencing_g20_c02\n", "v_Rowing_g08_c03\nv_Fencing_g20_c02\n"),
                        ("Fencing/v_Fencing_g01_c01.avi 1\nFencing/v_Fencing_g20_c02.avi 1\n", "Fencing/v_Fencing_g20_c02.avi\n")):
        (tmp_path / "train.txt").write_text(train); (tmp_path / "test.txt").write_text(test)
        r = cli("ucf101.py", "--src", tmp_path / "src", "--out", tmp_path / "u64", "--setting", "64x88", "--quiet",
                "--train-list", tmp_path / "train.txt", "--test-list", tmp_path / "test.txt")
        assert r.returncode == 2 and "share 1 video(s), e.g. v_Fencing_g20_c02" in r.stderr, r.stderr
        assert not (tmp_path / "u64").exists()
    (tmp_path / "test.txt").write_text("Rowing/v_Rowing_g08_c03.avi 2\n")                 # official trainlist0N.txt format
    r = cli("ucf101.py", "--src", tmp_path / "src", "--out", tmp_path / "u64", "--setting", "64x88", "--quiet",
            "--train-list", tmp_path / "train.txt", "--test-list", tmp_path / "test.txt")
    assert r.returncode == 0, r.stderr
    assert {k: r["split"] for k, r in records(json.loads((tmp_path / "u64" / MANIFEST).read_text())).items()} == {
        "v_Fencing_g01_c01": "train", "v_Fencing_g20_c02": "train", "v_Rowing_g08_c03": "test"}
    (tmp_path / "train.txt").write_text("v_Fencing_g01_c01\nv_Fencing_g01_c01\n")
    r = cli("ucf101.py", "--src", tmp_path / "src", "--out", tmp_path / "u64c", "--setting", "64x88", "--quiet",
            "--train-list", tmp_path / "train.txt", "--test-list", tmp_path / "test.txt")
    assert r.returncode == 2 and "v_Fencing_g01_c01 is listed twice" in r.stderr

# -- loader ----------------------------------------------------------------------------------------

def test_loader_windows(h36m_videos, tmp_path):
    from cdnet.data import get_dataset
    prepare_human36m(h36m_videos, tmp_path / "human36m", video_step=1, **QUIET)           # 11 frames a clip
    cfg = resolve_config("smoke", verbose=False, dataset="human36m", data_root=str(tmp_path))   # 4 -> 3
    ds = get_dataset("human36m", "test", cfg)
    assert len(ds) == 2 and ds.windows == [(0, 0), (1, 0)] and ds.names == ["S11_Walking_1.55011271", "S9_Walking.60457274"]
    x = ds[0]
    assert x.shape == (7, 3, 128, 128) and x.dtype.is_floating_point and 0 <= float(x.min()) and float(x.max()) <= 1
    assert np.abs(x[:, :, 3, 3].mean(1).numpy() * 255 - (26 + STEP * np.arange(7))).max() <= 3
    assert ds.prepared["options"]["video_step"] == 1
    tr = load_prepared("human36m", "train", cfg)
    assert tr.mode == "random" and len(tr) == cfg.n_train and tr[5].shape == (7, 3, 128, 128)
    assert [len(c) for c in tr.clips] == [11, 11]                   # too short to give validation a tail: whole in training
    with pytest.raises(ValueError, match="set val_every=0"): load_prepared("human36m", "val", cfg)
    cfg2 = resolve_config("smoke", verbose=False, dataset="human36m", data_root=str(tmp_path), n_obs=3, n_pred=2, frame_stride=2)
    y = load_prepared("human36m", "test", cfg2)[1]
    assert np.abs(y[:, :, 3, 3].mean(1).numpy() * 255 - (25 + 2 * STEP * np.arange(5))).max() <= 3   # every 2nd frame


def test_prepared_data_feeds_training(h36m_videos, tmp_path):
    "A prepared dataset goes through the whole experiment: training, evaluation, results files."
    import json
    from cdnet.experiment import run_experiment
    prepare_human36m(h36m_videos, tmp_path / "human36m", video_step=1, **QUIET)
    for model in ("convlstm", "cdnet"):
        cfg = resolve_config("smoke", verbose=False, dataset="human36m", data_root=str(tmp_path), model=model,
                             out_dir=str(tmp_path / "results"), hidden=2, refine_iters=1, iters_per_epoch=1)
        with pytest.warns(UserWarning, match="training without validation"):   # 11-frame clips: too short for both
            r = run_experiment(cfg, progress=False)
        assert json.loads((r["out"] / "status.json").read_text())["status"] == "done"
        assert r["summary"]["standard"]["mse"] > 0 and r["train"]["steps"] == 1
        assert json.loads((r["out"] / "config.json").read_text())["data"]["n_test"] == 2


def test_loader_detects_changed_file(h36m_videos, tmp_path):
    out = tmp_path / "human36m"
    m = prepare_human36m(h36m_videos, out, **QUIET)
    cfg = resolve_config("smoke", verbose=False, dataset="human36m", data_root=str(tmp_path), n_obs=1, n_pred=2, model="copy-last")
    for r in records(m).values():                                                        # as if prepared a minute ago
        os.utime(out / r["file"], ns=(os.stat(out / r["file"]).st_atime_ns, os.stat(out / r["file"]).st_mtime_ns - 60 * 10**9))
    assert len(load_prepared("human36m", "test", cfg)) == 2                              # hashes, caches
    f = out / "test" / "S9_Walking.60457274.npy"
    st = f.stat()
    b = bytearray(f.read_bytes()); b[-1] ^= 0xFF; f.write_bytes(bytes(b))                 # same size, new content, new mtime
    with pytest.raises(ValueError, match="no longer match manifest.json.*S9_Walking.60457274.npy: sha256") as e:
        load_prepared("human36m", "test", cfg)
    assert f"python data_prep/human36m.py --src <Human3.6M dir> --out {tmp_path}/human36m" in str(e.value)
    assert len(load_prepared("human36m", "train", cfg)) > 0                              # the other split is untouched
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))                                      # mtime forged back: only a full check sees it
    with pytest.raises(ValueError, match="no longer match"): load_prepared("human36m", "test", cfg, verify=True)
    f.write_bytes(b"short")
    with pytest.raises(ValueError, match="5 bytes, the manifest says"): load_prepared("human36m", "test", cfg, verify=False)


def test_loader_missing_dataset(tmp_path):
    cfg = resolve_config("smoke", verbose=False, dataset="ucf101_64x88", data_root=str(tmp_path))
    with pytest.raises(FileNotFoundError) as e: load_prepared("ucf101_64x88", "test", cfg)
    msg = str(e.value)
    assert f"python data_prep/ucf101.py --src <UCF-101 dir> --out {tmp_path}/ucf101_64x88 --setting 64x88" in msg
    assert "must be obtained by the user from the official site" in msg
    with pytest.raises(FileNotFoundError, match=f"--out {tmp_path}/human36m"): load_prepared("human36m", "train", cfg)


# -- the real clips --------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not CLIPS.is_dir(), reason=f"the real clips are not at {CLIPS} (../shared/data/clips beside the checkout)")
def test_real_clips(tmp_path):
    from cdnet.data import get_dataset
    counts = {"bedroom": 200, "01_dog": 289, "02_cups": 300, "03_blocks": 292, "04_coffee": 287, "05_default_juggle": 247}
    assert {n: container_frame_count(CLIPS / f"{n}.mp4") for n in CLIP_FILES} == counts
    assert {n: v[2] for n, v in CLIP_FILES.items()} == counts
    r = cli("clips.py", "--src", CLIPS, "--out", tmp_path, "--setting", "128", "--only", "bedroom", "05_default_juggle", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "clips_128" / MANIFEST).read_text())
    assert [(r["id"], r["frames"], r["shape"]) for r in m["splits"]["train"]] == [("bedroom", 200, [200, 128, 128, 3])]
    assert [(r["id"], r["frames"], r["shape"]) for r in m["splits"]["test"]] == [("05_default_juggle", 247, [247, 128, 128, 3])]
    r = cli("clips.py", "--src", CLIPS, "--out", tmp_path, "--setting", "160x120", "--only", "05_default_juggle", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "clips_160x120" / MANIFEST).read_text())
    assert m["splits"]["test"][0]["shape"] == [247, 120, 160, 3] and m["splits"]["train"] == []
    cfg = resolve_config("cpu", verbose=False, dataset="clips_128", data_root=str(tmp_path))
    ds = get_dataset("clips_128", "test", cfg)
    assert len(ds) == 247 // 8 and ds[0].shape == (8, 3, 128, 128)


@pytest.mark.skipif(not CLIPS.is_dir(), reason=f"the real clips are not at {CLIPS} (../shared/data/clips beside the checkout)")
def test_download_checks_sha256(tmp_path, monkeypatch):
    import shutil
    import cdnet.prepared as prepared
    origin = tmp_path / "origin"                                          # a stand-in for the sam2 repository
    (origin / "notebooks" / "videos").mkdir(parents=True); (origin / "demo" / "data" / "gallery").mkdir(parents=True)
    shutil.copy(CLIPS / "bedroom.mp4", origin / "notebooks" / "videos" / "bedroom.mp4")
    (origin / "demo" / "data" / "gallery" / "01_dog.mp4").write_bytes(b"not the published file")
    monkeypatch.setattr(prepared, "CLIPS_BASE_URL", origin.as_uri() + "/")
    (p,) = prepared.download_clips(tmp_path / "clips", ["bedroom"])
    assert sha256_file(p) == CLIP_FILES["bedroom"][1]
    stamp = p.stat().st_mtime_ns
    prepared.download_clips(tmp_path / "clips", ["bedroom"])              # already there and correct: kept
    assert p.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="sha256 differs from the published"): prepared.download_clips(tmp_path / "clips", ["01_dog"])
    assert not (tmp_path / "clips" / "01_dog.mp4").exists()
    monkeypatch.setattr(prepared, "CLIPS_BASE_URL", "http://127.0.0.1:9/")   # nothing listens: no network
    with pytest.raises(OSError, match="copy 02_cups.mp4 into"): prepared.download_clips(tmp_path / "clips", ["02_cups"], timeout=2)



def test_config_records_prepared_dataset_identity(h36m_videos, tmp_path):
    "config.json of a run on each kind of prepared dataset names its directory and the sha256 of its manifest."
    from cdnet.experiment import run_experiment
    from cdnet.prepared import Clip, Recipe, prepare
    from cdnet.videoio import write_video
    from fixtures.data_prep_fixtures import pattern_frames
    root = tmp_path / "data"
    prepare_human36m(h36m_videos, root / "human36m", video_step=1, **QUIET)
    names = ["v_Fencing_g01_c01", "v_Fencing_g20_c02", "v_Rowing_g08_c03"]
    make_ucf(tmp_path / "ucf", names)
    (tmp_path / "train.txt").write_text("v_Fencing_g01_c01\n"); (tmp_path / "test.txt").write_text("v_Fencing_g20_c02\n")
    prepare_ucf101(tmp_path / "ucf", root / "ucf101_64x88", "64x88", train_list=tmp_path / "train.txt", test_list=tmp_path / "test.txt", **QUIET)
    prepare_ucf101(tmp_path / "ucf", root / "ucf101_160x120", "160x120", **QUIET)
    videos = [write_video(tmp_path / f"c{k}.mp4", pattern_frames(8, 48, 64)) for k in range(2)]
    for name, size in (("clips_128", (128, 128)), ("clips_160x120", (120, 160))):
        clips = [Clip(f"c{k}", split, "video", (str(v),), v.name) for k, (split, v) in enumerate(zip(("train", "test"), videos))]
        prepare(name, clips, root / name, Recipe((size,), size[1] / size[0]), {}, progress=False, log=lambda s: None)
    for name in ("human36m", "ucf101_64x88", "ucf101_160x120", "clips_128", "clips_160x120"):
        cfg = resolve_config("smoke", verbose=False, dataset=name, data_root=str(root), model="copy-last", n_obs=2, n_pred=2,
                             out_dir=str(tmp_path / "results"))
        out = run_experiment(cfg, progress=False)["out"]
        data = json.loads((out / "config.json").read_text())["data"]
        want = dict(dataset=name, dir=str((root / name).resolve()), manifest_sha256=sha256_file(root / name / MANIFEST))
        assert data["train"] == want and data["test"] == want, (name, data)
        assert json.loads((out / "metrics.json").read_text())["test_data"] == want


def test_trimmed_video_prepares(tmp_path):
    "A clip cut with `ffmpeg -ss ... -c copy` (an edit list hides the first packets) is prepared with the frames a player shows."
    import imageio_ffmpeg
    from cdnet.prepared import Clip, Recipe, prepare
    from cdnet.videoio import write_video
    from fixtures.data_prep_fixtures import pattern_frames
    src = write_video(tmp_path / "full.mp4", pattern_frames(30, 48, 64))                  # 30 frames at 25 fps
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-ss", "0.2", "-i", str(src), "-c", "copy",
                    str(tmp_path / "cut.mp4")], check=True)
    assert container_frame_count(tmp_path / "cut.mp4") == 25
    m = prepare("clips_128", [Clip("cut", "test", "video", (str(tmp_path / "cut.mp4"),), "cut.mp4")], tmp_path / "clips_128",
                Recipe(((128, 128),), 1.0), {}, progress=False, log=lambda s: None)
    rec = m["splits"]["test"][0]
    assert rec["source_frames"] == 25 and rec["shape"] == [25, 128, 128, 3]
    a = np.load(tmp_path / "clips_128" / rec["file"])
    assert abs(float(a[0, 100, 100].mean()) - (20 + STEP * 5)) <= 3                       # the first frame shown is source frame 5
