"""`nasbench rank`: the ranking figures against hand-computed values, scoring a fixed
architecture with the supernet against a direct computation, the command end to end on the
smoke protocol (stored rows, figures, report), resuming after a crash without redoing a
measurement, reusing stand-alone trainings across methods and a run's stored supernet, and
bad input."""
from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import socket
import sqlite3

import pytest
import torch
from helpers import context, run_cli, with_supernet

from nasbench.data import Augmentation
from nasbench.errors import NasbenchError
from nasbench.ranking import (
    check_ranking,
    ranking_architectures,
    ranking_figures,
    supernet_accuracy,
)
from nasbench.spaces.cell.supernet import path_weights
from nasbench.store import (
    RankingKey,
    RunKey,
    RunOutcome,
    RunStart,
    Store,
    tensors_to_bytes,
)
from nasbench.strategies import STRATEGIES
from nasbench.strategies.context import SearchContext
from nasbench.strategies.random_ws import RandomWeightSharing
from nasbench.strategies.supernet_search import SupernetSearch
from nasbench.types import Provenance


def table(path, name: str) -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM {name}")]


# -- the figures ------------------------------------------------------------------------

def test_figures_by_hand():
    # supernet ranks 1 4 3 2 8 5 7 6, stand-alone ranks 2 1 3 4 7 8 5 6 (1 = worst).
    supernet = [0.1, 0.4, 0.3, 0.2, 0.8, 0.5, 0.7, 0.6]
    standalone = [0.2, 0.1, 0.3, 0.4, 0.7, 0.8, 0.5, 0.6]
    figures = ranking_figures(supernet, standalone)
    # 28 pairs, discordant: (0,1) (1,2) (1,3) (2,3) (4,5) (5,6) (5,7) (6,7) -> (20 - 8) / 28
    assert figures.kendall_tau == pytest.approx(12 / 28)
    # rank differences -1 3 0 -2 1 -3 2 0, squares sum to 28 -> 1 - 6 * 28 / (8 * 63)
    assert figures.spearman_rho == pytest.approx(1 - 6 * 28 / (8 * 63))
    # k = 8 // 4 = 2: supernet's best {4, 6}, stand-alone's best {5, 4}
    assert (figures.top_k, figures.top_k_overlap) == (2, 0.5)
    perfect = ranking_figures([0.3, 0.1, 0.2, 0.4], [0.6, 0.2, 0.5, 0.9])
    assert (perfect.kendall_tau, perfect.spearman_rho, perfect.top_k, perfect.top_k_overlap) == (1.0, 1.0, 1, 1.0)
    reversed_ = ranking_figures([0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4])
    assert (reversed_.kendall_tau, reversed_.spearman_rho, reversed_.top_k_overlap) == (-1.0, -1.0, 0.0)
    flat = ranking_figures([0.1, 0.1, 0.1], [0.2, 0.5, 0.4])  # the supernet tells nothing apart
    assert (flat.kendall_tau, flat.spearman_rho, flat.top_k, flat.top_k_overlap) == (None, None, 1, 0.0)


# -- scoring with the supernet ----------------------------------------------------------

def test_scoring_equals_a_direct_computation(cell_space, tiny, tiny_data):
    strategy = RandomWeightSharing(context(cell_space, with_supernet(tiny, epochs=1, channels=2, batch_size=8),
                                           tiny_data))
    strategy.step()  # one epoch: the running statistics now mix many paths
    supernet = strategy.supernet
    buffers = {name: b.clone() for name, b in supernet.named_buffers()}
    genotype = ranking_architectures(cell_space, seed=0, count=1)[0]
    accuracy = supernet_accuracy(supernet, genotype, tiny_data)
    assert all(torch.equal(buffers[name], b) for name, b in supernet.named_buffers())  # put back

    # directly: every operation computed (dense), batch norm statistics of search-train in one batch
    direct = copy.deepcopy(supernet)
    weights = path_weights(genotype, torch.device("cpu"))
    normalise = Augmentation(torch.device("cpu")).normalise
    for module in direct.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    direct.train()
    with torch.no_grad():
        direct(normalise(tiny_data.search_train.images), weights, sparse=False)
        direct.eval()
        logits = direct(normalise(tiny_data.search_val.images), weights, sparse=False)
    expected = (logits.argmax(1) == tiny_data.search_val.labels).float().mean().item()
    assert accuracy == pytest.approx(expected, abs=1e-9)
    running = [m for m in direct.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert not torch.allclose(running.running_mean, buffers["stem.1.running_mean"])  # recalibration mattered


def test_ranking_architectures_are_seeded_prefixes(cell_space):
    four, six = ranking_architectures(cell_space, 0, 4), ranking_architectures(cell_space, 0, 6)
    assert six[:4] == four and len(set(map(str, six))) == 6
    assert ranking_architectures(cell_space, 1, 4) != four


# -- the command end to end -------------------------------------------------------------

def rank_cli(store, data_path, *options, method="random-ws", samples=4, protocol="smoke"):
    return run_cli("rank", "--supernet", method, "--samples", samples, "--protocol", protocol, "--store", store,
                   "--data", data_path, "--json", "--no-progress", *options)


@pytest.fixture(scope="module")
def ranked(tmp_path_factory, data_path):
    store = tmp_path_factory.mktemp("rank") / "rank.sqlite"
    result = rank_cli(store, data_path)
    assert result.code == 0, result.err
    return store, result.json_lines()[0]


def test_rank_smoke_end_to_end(ranked, smoke):
    store, record = ranked
    assert record["cached"] is False and record["status"] == "finished" and record["supernet"] == "trained by the ranking"
    assert (record["method"], record["samples"], record["top_k"], record["seed"]) == ("random-ws", 4, 1, 0)
    pairs = record["pairs"]
    assert [p["index"] for p in pairs] == [0, 1, 2, 3]
    assert all(0 <= p["supernet_acc"] <= 1 and 0 <= p["standalone_acc"] <= 1 for p in pairs)
    for name in ("kendall_tau", "spearman_rho"):
        constant = len({p["supernet_acc"] for p in pairs}) == 1 or len({p["standalone_acc"] for p in pairs}) == 1
        assert (record[name] is None) if constant else -1 <= record[name] <= 1
    assert record["top_k_overlap"] in (0.0, 1.0)

    (row,) = table(store, "rankings")
    assert row["status"] == "finished" and row["protocol_hash"] == smoke.hash and row["samples"] == 4
    assert row["seconds"] > 0 and row["device_fingerprint"] and json.loads(row["software_json"])["torch"]
    assert "git_commit" in row and row["supernet_run_id"] is None
    stored_pairs = table(store, "ranking_pairs")
    assert [(p["supernet_acc"], p["standalone_acc"]) for p in stored_pairs] == [
        (p["supernet_acc"], p["standalone_acc"]) for p in pairs]
    assert all(p["supernet_seconds"] > 0 and p["standalone_seconds"] > 0 for p in stored_pairs)
    assert table(store, "ranking_supernets") == []  # dropped once every supernet accuracy was in


def test_a_rerun_returns_the_stored_ranking_without_training(ranked, data_path, monkeypatch):
    store, record = ranked

    def no_training(*args, **kwargs):
        raise AssertionError("nothing may be trained again")

    monkeypatch.setattr(SearchContext, "train_candidate", no_training)
    monkeypatch.setattr(SupernetSearch, "step", no_training)
    again = rank_cli(store, data_path)
    assert again.code == 0, again.err
    assert again.json_lines()[0] == {**record, "cached": True}


def test_human_readable_output(ranked, data_path):
    store, record = ranked
    result = run_cli("rank", "--supernet", "random-ws", "--samples", "4", "--protocol", "smoke", "--store", store,
                     "--data", data_path)
    assert result.code == 0
    (line,) = result.out.splitlines()
    assert line.startswith(f"random-ws supernet, seed 0, protocol smoke ({record['protocol_hash']}), 4 architectures: "
                           "Kendall tau ")
    assert f"top-1 overlap {record['top_k_overlap']:.3f}; supernet trained by the ranking;" in line
    assert line.endswith("(stored earlier)") and f"(ranking {record['ranking_id']})" in result.err


def test_the_report_shows_the_ranking(ranked, tmp_path):
    store, record = ranked
    out = tmp_path / "report"
    assert run_cli("report", "--store", store, "--out", out, "--tables", tmp_path / "no-tables").code == 0
    markdown = (out / "results.md").read_text()
    assert "## Ranking quality of weight sharing" in markdown and "| random-ws" in markdown
    rankings = (out / "rankings.csv").read_text().splitlines()
    assert len(rankings) == 2 and "kendall_tau" in rankings[0] and "random-ws" in rankings[1]


# -- resuming and reuse -----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_protocol_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("protocol") / "tiny-rank.toml"
    path.write_text('base = "smoke"\n[data]\ntrain_images = 64\nsearch_val_images = 32\ntest_images = 40\n'
                    '[search.supernet]\nchannels = 2\nbatch_size = 8\n')
    return path


class Counting:
    """Counts (and optionally fails) calls of a patched method."""

    def __init__(self, real, fail_at: int | None = None):
        self.real, self.fail_at, self.calls = real, fail_at, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("the machine went away")
        return self.real(*args, **kwargs)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, data_path, tiny_protocol_file):
    """A ranking of 4 that crashes in its third stand-alone training, then the same command again."""
    store = tmp_path_factory.mktemp("resume") / "rank.sqlite"
    counts = {}
    real_training, real_epoch = SearchContext.train_candidate, SupernetSearch.step
    with pytest.MonkeyPatch.context() as patch:
        for attempt, fail_at in (("crashed", 3), ("rerun", None)):
            trainings, epochs = Counting(real_training, fail_at), Counting(real_epoch)
            patch.setattr(SearchContext, "train_candidate", lambda self, *a, c=trainings: c(self, *a))
            patch.setattr(SupernetSearch, "step", lambda self, c=epochs: c(self))
            if fail_at is None:
                result = rank_cli(store, data_path, protocol=tiny_protocol_file)
                assert result.code == 0, result.err
            else:
                with pytest.raises(RuntimeError, match="the machine went away"):
                    rank_cli(store, data_path, protocol=tiny_protocol_file)
                (row,) = table(store, "rankings")
                assert row["status"] == "failed" and "the machine went away" in row["error"]
            counts[attempt] = (trainings.calls, epochs.calls)
    return store, counts, result.json_lines()[0]


def test_a_rerun_after_a_crash_redoes_no_measurement(resumed):
    store, counts, record = resumed
    assert counts["crashed"] == (3, 1)  # the supernet's epoch, two trainings stored, the third crashed
    assert counts["rerun"] == (2, 0)  # only the two missing trainings; every supernet accuracy was stored
    assert record["status"] == "finished" and len(record["pairs"]) == 4 and record["cached"] is False


def test_another_method_reuses_the_standalone_trainings(resumed, data_path, tiny_protocol_file, tmp_path, monkeypatch):
    store = tmp_path / "copy.sqlite"
    shutil.copyfile(resumed[0], store)
    trainings = Counting(SearchContext.train_candidate)
    monkeypatch.setattr(SearchContext, "train_candidate", lambda self, *a: trainings(self, *a))
    result = rank_cli(store, data_path, method="darts", protocol=tiny_protocol_file)
    assert result.code == 0, result.err
    darts = result.json_lines()[0]
    assert trainings.calls == 0 and darts["method"] == "darts"
    random_ws = resumed[2]
    assert [p["standalone_acc"] for p in darts["pairs"]] == [p["standalone_acc"] for p in random_ws["pairs"]]
    assert [p["arch"] for p in darts["pairs"]] == [p["arch"] for p in random_ws["pairs"]]


@pytest.mark.parametrize("kept", ["finished run", "shared stage"])
def test_a_runs_stored_supernet_is_used(tmp_path, data_path, tiny_protocol_file, dataset, cell_space, monkeypatch,
                                        kept):
    """A finished run's checkpoint (random-ws), or the supernet a constrained run kept as its
    shared stage (spos under a FLOPs filter: another variant than the ranking's)."""
    from nasbench.data import SplitData
    from nasbench.protocol import load_protocol
    from nasbench.store import shared_stage_key
    from nasbench.strategies.spos import Spos

    protocol = load_protocol(str(tiny_protocol_file))
    data = SplitData.for_config(dataset, protocol.data, torch.device("cpu"))
    method, cls = ("random-ws", RandomWeightSharing) if kept == "finished run" else ("spos", Spos)
    strategy = cls(context(cell_space, protocol, data, seed=7))  # any supernet: an untrained one
    store_path = tmp_path / "runs.sqlite"
    with Store(store_path) as store:
        key = RunKey(method, 0, protocol.hash, dataset.identity, "" if kept == "finished run" else "flops<=1e+07")
        provenance = Provenance(protocol.name, protocol.to_json(), "cpu", "cpu-test", {}, None)
        run_id = store.start(RunStart(key, cls.strategy_class, "cell", provenance))
        store.finish(run_id, RunOutcome(1.0, 1.0, {}, None, 0.1, 1, 1, {}))
        if kept == "finished run":
            with store.conn:
                store.conn.execute("INSERT INTO checkpoint_tensors VALUES (?, ?)",
                                   (run_id, tensors_to_bytes(strategy.tensor_state())))
        else:
            strategy.epochs_done = strategy.supernet_epochs()
            store.keep_shared_stage(shared_stage_key(cls.shared_stage, "cell", protocol.hash, dataset.identity, 0),
                                    run_id, 1.0, strategy.stage_checkpoint())

    def no_training(*args, **kwargs):
        raise AssertionError("the run's supernet must be used, not a new one trained")

    monkeypatch.setattr(SupernetSearch, "step", no_training)
    result = rank_cli(store_path, data_path, method=method, samples=2, protocol=tiny_protocol_file)
    assert result.code == 0, result.err
    record = result.json_lines()[0]
    assert record["supernet"] == f"run {run_id}"
    expected = [supernet_accuracy(strategy.supernet, genotype, data)
                for genotype in ranking_architectures(cell_space, 0, 2)]
    assert [p["supernet_acc"] for p in record["pairs"]] == expected


# -- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("method, samples, message", [
    ("amoebanet", 4, "--supernet: unknown method 'amoebanet'; supernet methods: "),
    ("random", 4, "--supernet: method 'random' trains no weight-sharing supernet; supernet methods: "),
    ("random-ws", 1, "argument --samples: must be at least 2 (a ranking orders architectures), got 1"),
    ("random-ws", -3, "argument --samples: must be at least 2 (a ranking orders architectures), got -3"),
])
def test_bad_input_is_one_line_and_touches_no_store(tmp_path, data_path, method, samples, message):
    result = rank_cli(tmp_path / "never.sqlite", data_path, method=method, samples=samples)
    assert result.code == 2 and result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith(f"nasbench: error: {message}")
    assert not (tmp_path / "never.sqlite").exists()


def test_the_api_refuses_what_the_command_line_refuses():
    assert check_ranking("random-ws", 2) is STRATEGIES["random-ws"]
    with pytest.raises(NasbenchError, match=r"^--samples must be at least 2 \(a ranking orders architectures\), got 1$"):
        check_ranking("random-ws", 1)
    with pytest.raises(NasbenchError, match="^--supernet: method 'random' trains no weight-sharing supernet"):
        check_ranking("random", 4)


def test_a_ranking_another_live_process_measures_is_left_to_it(tmp_path, data_path, dataset, smoke):
    store = tmp_path / "s.sqlite"
    key = RankingKey("random-ws", 0, smoke.hash, dataset.identity, 2)
    with Store(store) as opened, opened.claimed(key):  # this process stands for the other one
        result = run_cli("rank", "--supernet", "random-ws", "--samples", "2", "--protocol", "smoke", "--seed", "0",
                         "--store", store, "--data", data_path, "--no-progress")
        assert result.code == 3 and result.out == ""
        assert result.err.splitlines() == [f"nasbench: error: {key.describe()} is being run by process {os.getpid()} "
                                           f"on {socket.gethostname()} (heartbeat 0 s ago)"]
        assert opened.rankings("running") == [] and opened.rankings() == []
