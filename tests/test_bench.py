"""`nasbench bench`: timing a search step (DARTS, FBNet and ProxylessNAS on their spaces, pt.darts'
refusals) and parallel candidate training, with the results of serial training."""
from __future__ import annotations

import pytest
from helpers import run_cli

from nasbench.cli import build_parser
from nasbench.strategies import STRATEGIES
from nasbench.strategies.supernet_search import SupernetSearch


@pytest.mark.slow
def test_bench_search_step_prints_its_measurement():
    result = run_cli("bench", "search-step", "--method", "darts", "--batch-size", "2", "--cells", "2",
                     "--channels", "2", "--repeats", "2", "--device", "cpu", "--json")
    assert result.code == 0, result.err
    (record,) = result.json_lines()
    assert {k: record[k] for k in ("method", "device", "batch_size", "cells", "channels", "warmup", "repeats")} == {
        "method": "darts", "device": "cpu", "batch_size": 2, "cells": 2, "channels": 2, "warmup": 2, "repeats": 2}
    assert 0 < record["min_s"] <= record["median_s"] <= record["max_s"]
    assert record["peak_memory_bytes"] >= record["memory_before_bytes"] > 0
    assert "peak RSS" in record["peak_memory_measure"]
    text = run_cli("bench", "search-step", "--method", "darts-2nd", "--batch-size", "2", "--cells", "2",
                   "--channels", "2", "--repeats", "1", "--device", "cpu")
    assert text.code == 0 and text.out.startswith("darts-2nd search step, batch 2, 2 cells, 2 channels, cpu")
    assert "median" in text.out and "peak memory" in text.out


@pytest.mark.parametrize("argv", [
    ["bench", "search-step", "--method", "darts"],
    ["bench", "candidates"],
    ["profile", "--backend", "torch"],
    ["run", "--method", "random"],
    ["rank", "--supernet", "darts", "--samples", "2"],
    ["cost", "DARTS_V2"],
])
def test_every_command_that_runs_on_a_device_defaults_to_auto(argv):
    """`--device auto` (CUDA where available, else the CPU) is every command's default, with one help text."""
    assert build_parser().parse_args(argv).device == "auto"
    command = argv[:2] if argv[0] == "bench" else argv[:1]
    helped = run_cli(*command, "--help")
    assert helped.code == 0 and "--device DEVICE auto, cpu or cuda (default: auto)" in " ".join(helped.out.split())


@pytest.mark.parametrize("command", [["bench", "search-step"], ["bench", "candidates"], ["profile"], ["cost"],
                                     ["describe"], ["report"]])
def test_json_output_says_what_it_prints(command):
    helped = " ".join(run_cli(*command, "--help").out.split())
    assert "--json print " in helped and "one JSON object per line" in helped.split("--json print ", 1)[1]


def test_bench_refuses_a_method_without_a_search_step():
    result = run_cli("bench", "search-step", "--method", "random")
    assert result.code == 2
    methods = [name for name, cls in STRATEGIES.items() if issubclass(cls, SupernetSearch)]  # a growing registry
    assert {"darts", "darts-2nd", "snas", "random-ws"} <= set(methods)
    assert result.err.strip() == ("nasbench: error: method random has no supernet search step; "
                                  f"methods with one: {', '.join(methods)}")


@pytest.mark.parametrize("extra, message", [
    (["--method", "darts", "--pt-darts", "no-such-checkout"],
     "no pt.darts checkout at no-such-checkout (it needs models/search_cnn.py and architect.py): "
     "git clone https://github.com/khanrc/pt.darts"),
    (["--method", "gdas", "--pt-darts", "."],
     "--pt-darts times pt.darts' DARTS step: give --method darts (first order) or darts-2nd, not gdas"),
    (["--method", "darts", "--pt-darts", ".", "--space", "fbnet"],
     "--pt-darts times pt.darts' cell supernet: leave --space at cell"),
])
def test_bench_of_pt_darts_says_what_it_needs(extra, message):
    result = run_cli("bench", "search-step", *extra)
    assert result.code == 2
    assert result.err.strip() == f"nasbench: error: {message}"


@pytest.mark.parametrize("method", ["fbnet", "proxylessnas"])
def test_bench_times_a_search_step_on_the_fbnet_layout(method):
    result = run_cli("bench", "search-step", "--method", method, "--space", "fbnet", "--layout-protocol", "smoke",
                     "--batch-size", "2", "--repeats", "1", "--json")
    assert result.code == 0, result.err
    (record,) = result.json_lines()
    assert record["method"] == method and record["space"] == "fbnet" and 0 < record["median_s"]
    text = run_cli("bench", "search-step", "--method", method, "--space", "fbnet", "--layout-protocol", "smoke",
                   "--batch-size", "2", "--repeats", "1")
    assert text.out.startswith(f"{method} search step, batch 2, the fbnet layout of smoke (7 layers of 4-16 channels")


def test_bench_refuses_a_space_the_method_does_not_search():
    result = run_cli("bench", "search-step", "--method", "darts", "--space", "fbnet", "--layout-protocol", "smoke")
    assert result.code == 2 and "darts does not search the fbnet space" in result.err


@pytest.mark.slow
def test_bench_candidates_times_parallel_children_with_the_results_of_one_at_a_time(data_path):
    """`nasbench bench candidates` trains the same candidates, with the same accuracies, one
    at a time and two at once, and says how long each took."""
    records = []
    for workers in ("1", "2"):
        result = run_cli("bench", "candidates", "--protocol", "smoke", "--candidates", "2", "--workers", workers,
                         "--data", data_path, "--json")
        assert result.code == 0, result.err
        records.extend(result.json_lines())
    one, two = records
    assert (one["workers"], two["workers"]) == (1, 2) and one["candidates"] == two["candidates"] == 2
    assert one["failed"] == two["failed"] == 0 and len(one["val_acc"]) == 2
    assert one["val_acc"] == two["val_acc"]
    assert all(r["seconds"] > 0 and r["candidate_seconds_sum"] > 0 and r["threads_per_worker"] >= 1 for r in records)
    text = run_cli("bench", "candidates", "--space", "no-such-space", "--protocol", "smoke", "--data", data_path)
    assert text.code == 2 and "no-such-space" in text.err and len(text.err.strip().splitlines()) == 1
