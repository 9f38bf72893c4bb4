"""`nasbench list`: methods, spaces, protocols and the genotype zoo."""
from __future__ import annotations

import os

import pytest
import torch
from helpers import run_cli

from nasbench.hardware.counting import count_params
from nasbench.protocol import builtin_protocols, load_protocol
from nasbench.provenance import stored_provenance
from nasbench.spaces.cell.genotype import Genotype
from nasbench.store import RunKey, RunStart, Store
from nasbench.strategies import STRATEGIES


def test_list_methods():
    result = run_cli("list", "methods", "--json")
    (rows,) = result.json_lines()
    assert [r["name"] for r in rows] == list(STRATEGIES)
    assert all(r["strategy"] == STRATEGIES[r["name"]].strategy_class and r["summary"]
               and r["spaces"] == list(STRATEGIES[r["name"]].spaces) for r in rows)
    assert {r["name"]: r["spaces"] for r in rows if r["spaces"] != ["cell"]} == \
        {"fbnet": ["fbnet", "cell"], "proxylessnas": ["fbnet", "cell"], "random": ["cell", "nasnet", "enas-rnn", "nasrl-rnn"],
         "evolution": ["cell", "nasnet"], "enas": ["cell", "enas-macro", "enas-rnn"], "metaqnn": ["metaqnn"],
         "nas-rl": ["nasrl-macro", "nasrl-rnn"], "nasnet": ["nasnet", "cell"], "spos": ["cell", "fbnet"],
         "eas": ["plain-cnn"], "darts": ["cell", "enas-rnn"], "darts-2nd": ["cell", "enas-rnn"],
         "random-arch": ["cell", "nasnet", "fbnet", "enas-macro", "nasrl-macro", "metaqnn", "plain-cnn", "enas-rnn",
                         "nasrl-rnn"]}
    header, *text = run_cli("list", "methods").out.splitlines()
    assert header.split() == ["method", "strategy", "spaces", "summary"]
    assert [line.split()[0] for line in text] == list(STRATEGIES)
    assert [line.split()[2] for line in text] == [",".join(cls.spaces) for cls in STRATEGIES.values()]
    summary_column = header.index("summary")  # aligned: every summary starts in the header's column
    assert all(line[summary_column:] == STRATEGIES[line.split()[0]].summary for line in text)


def test_list_spaces_and_protocols():
    (spaces,) = run_cli("list", "spaces", "--json").json_lines()
    assert [s["name"] for s in spaces] == ["cell", "fbnet", "nasrl-macro", "nasnet", "metaqnn", "enas-macro",
                                                 "plain-cnn", "enas-rnn", "nasrl-rnn"]
    (protocols,) = run_cli("list", "protocols", "--json").json_lines()
    assert [p["name"] for p in protocols] == builtin_protocols() == ["full", "proxy", "quick", "smoke"]
    assert all(p["hash"] == load_protocol(p["name"]).hash for p in protocols)
    text = run_cli("list", "protocols").out
    assert f"smoke    {load_protocol('smoke').hash} " in text


@pytest.mark.slow
def test_list_genotypes(cell_space, smoke):
    result = run_cli("list", "genotypes", "--protocol", "smoke", "--json")
    assert result.code == 0
    (rows,) = result.json_lines()
    zoo = cell_space.zoo()
    assert [r["name"] for r in rows] == list(zoo)
    for r in rows:
        entry = zoo[r["name"]]
        model = cell_space.build(entry.arch, smoke.final.network)
        assert r["params"] == count_params(model)
        assert r["published_params_m"] == entry.published_params_m
        assert Genotype.from_dict(r["genotype"]) == entry.arch
        assert r["channels"] == 4 and r["cells"] == 3 and r["flops"] > 0


def test_list_runs_shows_what_is_running_stale_or_failed(tmp_path, smoke):
    path = tmp_path / "s.sqlite"
    provenance = stored_provenance(smoke, torch.device("cpu"))
    keys = [RunKey("random", seed, smoke.hash, "npz-1") for seed in range(3)]
    with Store(path) as store, store.claimed(keys[0]):
        # the second run's process was killed: its row stays running, its claim is gone
        running, stale, failed = (store.start(RunStart(key, "RS", "cell", provenance)) for key in keys)
        store.fail(failed, "RuntimeError: out of memory")
        (rows,) = run_cli("list", "runs", "--store", path, "--json").json_lines()
        text = run_cli("list", "runs", "--store", path).out.splitlines()
    assert [(r["run_id"], r["status"]) for r in rows] == [(running, "running"), (stale, "stale"), (failed, "failed")]
    assert rows[0]["state"].startswith(f"by process {os.getpid()} on ")
    assert rows[1]["state"] == "its process is gone; the same command resumes it"
    assert rows[2]["state"] == "RuntimeError: out of memory"
    assert text[0].split() == ["id", "method", "seed", "status", "protocol", "variant", "/", "state"]
    assert text[3].split()[:5] == [str(failed), "random", "2", "failed", "smoke"]


def test_list_runs_of_a_missing_store_is_an_error(tmp_path):
    result = run_cli("list", "runs", "--store", tmp_path / "none.sqlite")
    assert result.code == 2 and result.err.startswith("nasbench: error: no results store at ")
    assert not (tmp_path / "none.sqlite").exists()
