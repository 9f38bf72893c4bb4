"""Shared fixtures: the CIFAR-10 subset, tiny protocols, and one real smoke store.

Everything here trains, stores and reports for real; the expensive results (one
``nasbench run --all`` on the smoke protocol with two seeds) are produced once per
session and shared read-only (tests that write take a copy).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "cifar10_subset.npz"

# The test machine has 2 cores and other work may run beside the suite: with torch's
# default of one OpenMP thread per core, these tiny networks train up to 20x slower
# under contention (threads spin-waiting for each other). One thread is fast and,
# being the same in every test and in the subprocess tests, keeps results comparable.
torch.set_num_threads(1)
SUBPROCESS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def subset_path() -> Path:
    """$NASBENCH_DATA (relative to the working directory or, failing that, to the
    repository root, as CI sets it), else ../shared/data/cifar10_subset.npz."""
    configured = os.environ.get("NASBENCH_DATA")
    if not configured:
        return DEFAULT_DATA.resolve()
    path = Path(configured)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    return path.resolve()


@pytest.fixture(scope="session")
def data_path() -> Path:
    path = subset_path()
    if not path.is_file():
        pytest.fail(f"the CIFAR-10 subset is missing: looked for {path} ($NASBENCH_DATA, else "
                    f"../shared/data/cifar10_subset.npz relative to the repository root {REPO_ROOT}); "
                    "the suite needs it and does not download data", pytrace=False)
    return path


@pytest.fixture(scope="session")
def dataset(data_path):
    from nasbench.data import load_dataset

    return load_dataset(str(data_path))


@pytest.fixture(scope="session")
def smoke():
    from nasbench.protocol import load_protocol

    return load_protocol("smoke")


def tiny_protocol(smoke, candidates: int = 3):
    """The smoke protocol on fewer images (64 train of which 32 search-val, 40 test)."""
    data = dataclasses.replace(smoke.data, train_images=64, search_val_images=32, test_images=40)
    search = dataclasses.replace(smoke.search, candidates=candidates)
    return dataclasses.replace(smoke, name="tiny", data=data, search=search)


@pytest.fixture(scope="session")
def tiny(smoke):
    return tiny_protocol(smoke)


@pytest.fixture(scope="session")
def tiny_data(dataset, tiny):
    from nasbench.data import SplitData

    return SplitData.for_config(dataset, tiny.data, torch.device("cpu"))


@pytest.fixture(scope="session")
def cell_space():
    from nasbench.spaces import get_space

    return get_space("cell")


# -- the CLI, in-process ---------------------------------------------------------------

@dataclasses.dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def run_cli(*argv: str) -> CliResult:
    """``nasbench.cli.main(argv)`` with its stdout and stderr captured."""
    from nasbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return CliResult(code, out.getvalue(), err.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def store_rows(path: Path, where: str = "1=1") -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM runs WHERE {where} ORDER BY id")]


def store_trials(path: Path, run_id: int) -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM trials WHERE run_id=? ORDER BY idx", (run_id,))]


@dataclasses.dataclass(frozen=True)
class SmokeStore:
    path: Path
    result: CliResult

    def copy_to(self, directory: Path) -> Path:
        target = Path(directory) / "copy.sqlite"
        shutil.copyfile(self.path, target)
        return target


@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory, data_path) -> SmokeStore:
    """``nasbench run --all --protocol smoke --seeds 0,1``: every method, two seeds, for real."""
    path = tmp_path_factory.mktemp("smoke-store") / "results.sqlite"
    result = run_cli("run", "--all", "--protocol", "smoke", "--seeds", "0,1", "--store", path, "--json",
                     "--data", data_path, "--no-progress")
    assert result.code == 0, result.err
    return SmokeStore(path, result)
