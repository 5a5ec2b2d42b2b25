"""Prepare UCF101 for the paper's settings: 64x88 (10 -> 10) or 160x120 (4 -> 10); uint8 arrays and a manifest."""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cli
from cdnet.prepared import prepare_ucf101

EPILOG = """\
--src is the unpacked official archive: SRC/<Class>/v_<Class>_gXX_cXX.avi (SRC may also be the parent of UCF-101/).
  64x88    split by the packaged video lists (9,957 train / 3,363 test names), every 2nd frame,
           each frame resized to 64x85 then to 64x88 (H x W); arrays [T, 64, 88, 3]
  160x120  groups g01-g19 train, g20-g25 test, every 2nd frame, resized to 160x120 (W x H); arrays [T, 120, 160, 3];
           --released-clips keeps only clips c01-c09 of each group, as the authors' code did
Output: OUT/{train,test}/<video>.npy and OUT/manifest.json. UCF101 must be obtained by the user from
https://www.crcv.ucf.edu/data/UCF101.php.

example: python data_prep/ucf101.py --src ~/datasets/UCF-101 --out data/ucf101_64x88 --setting 64x88"""


def main(argv=None) -> int:
    p = _cli.parser(__doc__, EPILOG)
    p.add_argument("--src", required=True, help="the UCF-101 directory (or its parent)")
    p.add_argument("--out", required=True, help="output directory, normally <data_root>/ucf101_64x88 or <data_root>/ucf101_160x120")
    p.add_argument("--setting", required=True, choices=("64x88", "160x120"))
    p.add_argument("--frame-stride", type=int, default=2, metavar="N", help="keep every Nth video frame (default 2, the paper's sub-sampling)")
    p.add_argument("--released-clips", action="store_true", help="160x120 only: keep clips c01-c09 of each group, as the released code did")
    p.add_argument("--train-list", metavar="FILE", help="64x88 only: training video names, one a line (default: the packaged list)")
    p.add_argument("--test-list", metavar="FILE", help="64x88 only: test video names (default: the packaged list)")
    a = p.parse_args(argv)
    if a.frame_stride < 1: p.error("--frame-stride must be >= 1")
    if a.setting == "64x88" and a.released_clips: p.error("--released-clips applies to --setting 160x120")
    if a.setting == "160x120" and (a.train_list or a.test_list): p.error("--train-list/--test-list apply to --setting 64x88")
    return _cli.run(prepare_ucf101, a.src, a.out, a.setting, frame_stride=a.frame_stride, released_clips=a.released_clips,
                    train_list=a.train_list, test_list=a.test_list, **_cli.common(a))


if __name__ == "__main__": sys.exit(main())
