"""Shared fixtures: the CIFAR-10 subset, tiny protocols, and one real smoke store.

Everything here trains, stores and reports for real; the expensive results (one
``nasbench run --all`` on the smoke protocol with two seeds) are produced once per
session and shared read-only (tests that write take a copy). Tests that use
``smoke_store`` are marked slow (``pytest -m "not slow"`` is the quick lane). Plain
helper functions live in helpers.py.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from helpers import (
    DEFAULT_DATA,
    REPO_ROOT,
    CliResult,
    SmokeStore,
    built_once,
    run_cli,
    store_rows,
    subset_path,
    tiny_protocol,
    with_supernet,
)

from nasbench.numerics import configure_numerics

# The test machine has 2 cores and other work may run beside the suite: with torch's
# default of one OpenMP thread per core, these tiny networks train up to 20x slower
# under contention (threads spin-waiting for each other). One thread is fast and,
# being the same in every test and in the subprocess tests (helpers.SUBPROCESS_ENV),
# keeps results comparable. The README's `pytest -n 2` runs two such workers, one per core.
torch.set_num_threads(1)
# The numerics the CLI and the API set (nasbench.numerics), so that a strategy stepped
# directly by a test computes as it does in a run.
configure_numerics()


@pytest.fixture(scope="session")
def data_path() -> Path:
    path = subset_path()
    if not path.is_file():
        pytest.fail(f"the CIFAR-10 subset is missing: looked for {path} ($NASBENCH_DATA, else "
                    f"../shared/data/cifar10_subset.npz relative to the repository root {REPO_ROOT}); "
                    "the suite needs it and does not download data", pytrace=False)
    return path


@pytest.fixture(scope="session")
def ptb_path() -> Path:
    """The real PTB validation and test splits (no training split: the corpus' stand-in
    mode), beside the CIFAR-10 subset in ../shared/data."""
    path = DEFAULT_DATA.parent / "ptb"
    if not (path / "ptb.valid.txt").is_file():
        pytest.fail(f"the Penn Treebank stand-in is missing: looked for {path}/ptb.valid.txt and ptb.test.txt; "
                    "the suite needs it and does not download data", pytrace=False)
    return path


@pytest.fixture(scope="session")
def ptb_corpus(ptb_path):
    """The stand-in corpus: trains on 80% of the validation text, validates on the rest."""
    from nasbench.corpus import load_corpus

    return load_corpus(str(ptb_path), stand_in=True)


@pytest.fixture(scope="session")
def dataset(data_path):
    from nasbench.images import load_dataset

    return load_dataset(str(data_path))


@pytest.fixture(scope="session")
def smoke():
    from nasbench.protocol import load_protocol

    return load_protocol("smoke")


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


@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory, data_path) -> SmokeStore:
    """``nasbench run --all --protocol smoke --seeds 0,1``: every method, two seeds, for real."""
    def run_all(directory: Path) -> dict:
        result = run_cli("run", "--all", "--protocol", "smoke", "--seeds", "0,1", "--store",
                         directory / "results.sqlite", "--json", "--data", data_path, "--no-progress", "--no-estimate")
        assert result.code == 0, result.err
        return dataclasses.asdict(result)

    directory, result = built_once(tmp_path_factory, "smoke-store", run_all)
    return SmokeStore(directory / "results.sqlite", CliResult(**result))


@pytest.fixture(scope="session")
def smoke_records(smoke_store) -> list[dict]:
    """The smoke store's run as JSON lines, one per method and seed."""
    return smoke_store.result.json_lines()


@pytest.fixture(scope="session")
def smoke_rows(smoke_store) -> list[dict]:
    """The smoke store's rows."""
    return store_rows(smoke_store.path)


@pytest.fixture(scope="session")
def two_epoch_protocol(tmp_path_factory) -> Path:
    """A protocol file: the smoke protocol on tiny data (64 train images, 32 of them
    search-val, 40 test) with a two-epoch supernet search of 2 channels."""
    path = tmp_path_factory.mktemp("protocol") / "two-epochs.toml"
    path.write_text('base = "smoke"\n[data]\ntrain_images = 64\nsearch_val_images = 32\ntest_images = 40\n'
                    '[search.supernet]\nepochs = 2\nchannels = 2\n')
    return path


@pytest.fixture(scope="session")
def cell_counts(cell_space, smoke):
    """The cell space's counts-only cost table (params, FLOPs, MAC) at the smoke protocol's size."""
    from nasbench.hardware.profiler import counts_table

    return counts_table(cell_space, smoke)


@pytest.fixture(scope="session")
def fbnet_smoke_table(tmp_path_factory) -> Path:
    """The smoke FBNet layout's latency table, profiled for real once per session (torch, one
    thread, 4 calibration networks, a 3-network validation, bounded in time for a noisy CI
    machine) and shared read-only by the slow tests that need a measured table."""
    def profile(out: Path) -> dict:
        result = run_cli("profile", "--space", "fbnet", "--protocol", "smoke", "--device", "cpu", "--backend", "torch",
                         "--threads", "1", "--calibrate", "4", "--validate", "3", "--rounds", "2", "--min-time", "0.001",
                         "--min-reps", "2", "--max-time", "20", "--no-progress", "--out", out)
        assert result.code == 0, result.err
        (table,) = [p for p in out.glob("*/fbnet-smoke-torch-t1-b1.json")]
        return {"table": str(table)}

    return Path(built_once(tmp_path_factory, "fbnet-tables", profile)[1]["table"])


SLOW_FIXTURES = ("smoke_store", "fbnet_smoke_table")
"""Fixtures so expensive that every test using them, directly or through another fixture, is
slow: ``smoke_store`` runs every method for real (about seven minutes on two cores),
``fbnet_smoke_table`` profiles for a minute or two."""


def pytest_collection_modifyitems(items):
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in SLOW_FIXTURES):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def fbnet_searching(tiny):
    """The tiny protocol searching four epochs of four batches of 8 images on the smoke FBNet layout."""
    return with_supernet(tiny, epochs=4, batch_size=8)


@pytest.fixture(scope="module")
def fbnet_space(fbnet_searching):
    from nasbench.spaces import get_space

    return get_space("fbnet", fbnet_searching)


class CountingBackend:
    """A torch.compile backend that counts the graphs dynamo hands it and runs them as they
    are (no C++ compiler needed): what a compiled training's recompilations are counted by."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return graph_module.forward


@pytest.fixture
def counting_backend():
    return CountingBackend()
