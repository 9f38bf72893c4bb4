"""`nasbench run` on the command line: its JSON lines and human-readable output, `python -m
nasbench` matching the in-process run, and bad input answered with one line and exit code 2,
leaving the store untouched.

The session's ``smoke_store`` is one real ``nasbench run --all --protocol smoke --seeds 0,1``;
tests that write to a store work on a copy of it.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from helpers import SUBPROCESS_ENV, by_key, run_cli, store_rows

from nasbench.cli import main
from nasbench.provenance import device_name
from nasbench.spaces import get_space
from nasbench.strategies import STRATEGIES

REQUIRED = {"method", "strategy", "space", "protocol", "seed", "genotype", "val_acc", "test_acc", "params", "flops",
            "search_seconds", "eval_seconds", "device"}


# -- run -------------------------------------------------------------------------------

def test_run_all_runs_every_method_and_seed(smoke_records, smoke_rows):
    expected = [(m, s) for m in STRATEGIES for s in (0, 1)]
    assert [(r["method"], r["seed"]) for r in smoke_records] == expected
    assert sorted((r["method"], r["seed"]) for r in smoke_rows) == sorted(expected)
    assert all(r["status"] == "finished" and r["state_json"] is None and r["error"] is None for r in smoke_rows)
    assert {r["method"] for r in smoke_rows} == set(STRATEGIES)


def test_run_json_lines(smoke_records, smoke_rows, smoke, dataset):
    stored = by_key(smoke_rows)
    for record in smoke_records:
        assert REQUIRED <= set(record)
        row = stored[(record["method"], record["seed"])]
        assert record["run_id"] == row["id"] and record["cached"] is False and record["status"] == "finished"
        assert record["strategy"] == STRATEGIES[record["method"]].strategy_class
        assert record["space"] == STRATEGIES[record["method"]].spaces[0] and record["protocol"] == "smoke"
        assert record["protocol_hash"] == smoke.hash and record["data"] == dataset.identity
        assert record["genotype"] == json.loads(row["genotype_json"])
        space = get_space(record["space"], smoke)
        assert space.to_dict(space.from_dict(record["genotype"])) == record["genotype"]
        assert (record["val_acc"], record["test_acc"], record["params"], record["flops"]) == \
            (row["val_acc"], row["test_acc"], row["params"], row["flops"])
        assert 0 <= record["test_acc"] <= 1
        assert record["test_acc"] * 200 == pytest.approx(round(record["test_acc"] * 200))  # 200 test images
        assert record["search_seconds"] >= 0 and record["eval_seconds"] > 0
        assert record["device"] == device_name(torch.device("cpu"))
        assert record["flops_convention"] == "fvcore, 1 multiply-add = 1 FLOP"


def test_human_readable_output(smoke_store, tmp_path, data_path, smoke_rows):
    store = smoke_store.copy_to(tmp_path)
    result = run_cli("run", "--method", "random", "--protocol", "smoke", "--store", store, "--data", data_path,
                     "--no-progress")  # no --seeds: the protocol's, (0,)
    assert result.code == 0
    row = by_key(smoke_rows)[("random", 0)]
    (line,) = result.out.splitlines()
    assert line.startswith(f"random seed 0: test acc {100 * row['test_acc']:.2f}%, "
                           f"search-val acc {100 * row['val_acc']:.1f}%, params {row['params'] / 1e6:.3f}M, ")
    assert line.endswith("(stored earlier; --force to rerun)")
    assert result.err.splitlines() == [f"stored in {store}; `nasbench report --store {store}` regenerates the tables"]


def test_run_via_subprocess(tmp_path, data_path, smoke_rows):
    """``python -m nasbench``, with the data from $NASBENCH_DATA, matches the in-process run."""
    store = tmp_path / "sub.sqlite"
    env = {**os.environ, **SUBPROCESS_ENV, "NASBENCH_DATA": str(data_path)}
    done = subprocess.run([sys.executable, "-m", "nasbench", "run", "--method", "random-arch", "--protocol", "smoke",
                           "--seeds", "1", "--store", str(store), "--json", "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    expected = by_key(smoke_rows)[("random-arch", 1)]
    assert record["genotype"] == json.loads(expected["genotype_json"])
    assert record["data"] == expected["data"]
    assert (record["test_acc"], record["params"], record["flops"]) == \
        (expected["test_acc"], expected["params"], expected["flops"])
    assert [r["status"] for r in store_rows(store)] == ["finished"]


# -- estimate and overall progress -----------------------------------------------------------

TWO_CHEAP = "random-arch,metaqnn"


def test_run_estimates_first_then_says_where_the_whole_command_is(tmp_path, data_path):
    store = tmp_path / "s.sqlite"
    argv = ("run", "--method", TWO_CHEAP, "--protocol", "smoke", "--store", store, "--data", data_path, "--no-progress",
            "--json")
    result = run_cli(*argv)
    assert result.code == 0, result.err
    assert [r["method"] for r in result.json_lines()] == ["random-arch", "metaqnn"]  # stdout: the records only
    lines = result.err.splitlines()
    assert lines[0] == "nasbench: measuring this machine to estimate 2 run(s) (--no-estimate skips this)"
    assert lines[1].startswith("nasbench: estimated time of 2 run(s), from steps measured here in ")
    assert [line.split()[0] for line in lines[3:5]] == ["random-arch", "metaqnn"]
    assert lines[5].startswith("total ") and " on " in lines[5]
    overall = [line for line in lines if line.startswith("nasbench: [")]
    assert [line.split(" (elapsed ")[0] for line in overall] == [
        "nasbench: [1/2] random-arch seed 0: search", "nasbench: [1/2] random-arch seed 0: final training",
        "nasbench: [2/2] metaqnn seed 0: search", "nasbench: [2/2] metaqnn seed 0: final training"]
    assert all(re.search(r"\(elapsed \w+, about \w+ left\)$", line) for line in overall), overall
    again = run_cli(*argv)  # every run stored: nothing to measure, nothing to count down
    assert again.code == 0 and again.err == ""


def test_no_estimate_starts_at_once(tmp_path, data_path):
    result = run_cli("run", "--method", TWO_CHEAP, "--protocol", "smoke", "--store", tmp_path / "s.sqlite",
                     "--data", data_path, "--no-progress", "--no-estimate")
    assert result.code == 0, result.err
    assert "measuring" not in result.err and "estimated time" not in result.err and "left)" not in result.err
    assert re.search(r"^nasbench: \[2/2\] metaqnn seed 0: final training \(elapsed \w+\)$", result.err, re.MULTILINE)


class NoWidthTerminal(io.StringIO):
    """A stderr that says it is a terminal, on descriptor 2, which reports 0 columns."""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2


@pytest.mark.parametrize("terminal, reason", [(False, "stderr is not a terminal"),
                                              (True, "the terminal reports no width")])
def test_runs_without_bars_say_why_once(tmp_path, data_path, monkeypatch, terminal, reason):
    monkeypatch.delenv("NASBENCH_PROGRESS", raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((0, 0)))
    argv = ["run", "--method", TWO_CHEAP, "--protocol", "smoke", "--store", str(tmp_path / "s.sqlite"),
            "--data", str(data_path), "--no-estimate"]
    err = NoWidthTerminal() if terminal else io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(argv) == 0
    note = f"nasbench: no progress bars: {reason} (NASBENCH_PROGRESS=1 forces them, --no-progress silences this)"
    assert err.getvalue().splitlines().count(note) == 1
    assert "no progress bars" not in run_cli(*argv, "--force", "--no-progress").err
