"""Prepare Human3.6M "Walking" for the paper's 4 -> 4 protocol: 128x128 uint8 arrays and a manifest."""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cli
from cdnet.prepared import prepare_human36m

EPILOG = """\
Accepted layouts of --src:
  official videos     SRC/S1/Videos/Walking.54138969.mp4, SRC/S1/Videos/Walking 1.54138969.mp4, ...
  extracted frames    SRC/s1/S1_Walking.54138969_000001.jpg, ...
Kept: recordings Walking and Walking 1 / Walking_1 of all cameras (not WalkDog, WalkingDog, WalkTogether);
train S1 S5 S6 S7 S8, test S9 S11. Each frame: the centred square of half its side ([250:750, 250:750]
of a 1000x1000 frame), resized to 128x128 (PIL Lanczos). Output: OUT/{train,test}/<clip>.npy [T,128,128,3]
and OUT/manifest.json. Human3.6M must be obtained by the user from http://vision.imar.ro/human3.6m/.

example: python data_prep/human36m.py --src ~/datasets/human36m --out data/human36m"""


def main(argv=None) -> int:
    p = _cli.parser(__doc__, EPILOG)
    p.add_argument("--src", required=True, help="Human3.6M directory in one of the layouts below")
    p.add_argument("--out", required=True, help="output directory, normally <data_root>/human36m")
    p.add_argument("--layout", choices=("auto", "videos", "frames"), default="auto", help="input layout (default: detected)")
    p.add_argument("--frame-stride", type=int, default=1, metavar="N",
                   help="keep every Nth extracted frame: 1 = consecutive frames as the released CDNet code (default), 2 = MIM/MotionRNN")
    p.add_argument("--video-step", type=int, default=5, metavar="N",
                   help="video frames per extracted frame when reading videos (default 5: the 50 fps videos give the 10 fps "
                        "frames of the extracted layout)")
    a = p.parse_args(argv)
    if a.frame_stride < 1 or a.video_step < 1: p.error("--frame-stride and --video-step must be >= 1")
    return _cli.run(prepare_human36m, a.src, a.out, layout=a.layout, video_step=a.video_step, frame_stride=a.frame_stride, **_cli.common(a))


if __name__ == "__main__": sys.exit(main())
