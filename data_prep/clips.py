"""Prepare the six real clips at the shapes of the paper's settings, OUT/clips_128 (4 -> 4) and OUT/clips_160x120 (4 -> 10), or as the miniatures OUT/clips_32 and OUT/clips_64 (4 -> 4)."""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cli
from cdnet.prepared import CLIP_FILES, CLIP_SPLIT, prepare_real_clips

EPILOG = f"""\
--src holds the clips as <name>.mp4: {', '.join(CLIP_FILES)}; each must match its published sha256.
With --download they are fetched into --src first (files already there and correct are kept).
Split by clip: train {', '.join(CLIP_SPLIT['train'])}; test {', '.join(CLIP_SPLIT['test'])}.
  128      largest centred square, resized to 128x128         -> OUT/clips_128/
  160x120  largest centred 4:3 region, resized to 160x120 (W x H) -> OUT/clips_160x120/
  32, 64   largest centred square, resized to 32x32 or 64x64 (miniatures) -> OUT/clips_32/, OUT/clips_64/
Both paper settings by default (one after the other; each decodes the clips). OUT is the data root, e.g. data.

example: python data_prep/clips.py --src ../shared/data/clips --out data"""


def main(argv=None) -> int:
    p = _cli.parser(__doc__, EPILOG)
    p.add_argument("--src", required=True, help="directory holding the clips (created with --download)")
    p.add_argument("--out", required=True, help="data root: a setting goes to OUT/clips_<setting>")
    p.add_argument("--setting", choices=("128", "160x120", "32", "64", "both"), default="both",
                   help="both: 128 and 160x120 (the paper's shapes); 32, 64: the miniatures")
    p.add_argument("--download", action="store_true", help="fetch missing or mismatching clips into --src (needs a network)")
    p.add_argument("--frame-stride", type=int, default=1, metavar="N", help="keep every Nth video frame (default 1)")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=list(CLIP_FILES), help="prepare only these clips (a quick trial)")
    a = p.parse_args(argv)
    if a.frame_stride < 1: p.error("--frame-stride must be >= 1")
    if a.download: Path(a.src).mkdir(parents=True, exist_ok=True)
    for setting in (("128", "160x120") if a.setting == "both" else (a.setting,)):
        rc = _cli.run(prepare_real_clips, a.src, a.out, setting, frame_stride=a.frame_stride, names=a.only,
                      download=a.download, **_cli.common(a))
        if rc: return rc
    return 0


if __name__ == "__main__": sys.exit(main())
