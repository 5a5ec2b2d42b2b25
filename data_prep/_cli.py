"""Arguments and error handling shared by the data_prep scripts (the logic lives in `cdnet.prepared`)."""
import argparse, sys
from cdnet.videoio import BadSource


def parser(description: str, epilog: str) -> argparse.ArgumentParser:
    "An argument parser with the options every preparation script takes."
    p = argparse.ArgumentParser(description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=1, metavar="N", help="clips prepared in parallel by a process pool (default: 1)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable or corrupt sources and list them in the manifest, instead of stopping at the first")
    p.add_argument("--verify", action="store_true", help="re-hash every file already prepared instead of trusting the size/mtime cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def common(args) -> dict:
    "The keyword arguments of `cdnet.prepared.prepare` that the shared options set."
    if args.workers < 1: sys.exit("error: --workers must be >= 1")
    return dict(workers=args.workers, skip_bad=args.skip_bad, verify=args.verify, progress=not args.quiet)


def run(fn, *a, **kw) -> int:
    "Call `fn`; a bad source or a wrong argument ends the process with its message instead of a traceback."
    try: fn(*a, **kw)
    except BadSource as e:
        print(f"error: stopped at a bad source: {e}", file=sys.stderr); return 1
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr); return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue where it stopped", file=sys.stderr); return 130
    return 0
