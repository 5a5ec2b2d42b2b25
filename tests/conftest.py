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


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    "One torch thread: on a shared 2-core machine a second thread that has to wait for a busy core makes steps 100x slower."
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_configure(config):
    # registered here rather than in pyproject.toml, whose hash decides when scripts/setup.sh reinstalls
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")
