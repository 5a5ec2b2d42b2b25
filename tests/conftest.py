import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"          # offline data beside the checkout, when present
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def mnist_dir():
    d = SHARED / "data" / "mnist"
    return str(d) if d.is_dir() else ""
