"""`nasbench bench`: timing a search step (DARTS, FBNet and ProxylessNAS on their spaces, pt.darts'
refusals; per precision), the final-training step (per precision, compiled), candidate training in-process and on Ray (with the same results), and an executor's
overhead per task."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from helpers import CPU, REPO_ROOT, SUBPROCESS_ENV, CliResult, run_cli

from nasbench.cli import build_parser
from nasbench.strategies import STRATEGIES
from nasbench.strategies.supernet_search import SupernetSearch

RAY_STATE = """
import sys
from nasbench.cli import main
code = main(sys.argv[1:])
import ray
print(f"ray initialized after the command: {ray.is_initialized()}", file=sys.stderr)
sys.exit(code)
"""


def run_on_local_ray(*argv) -> CliResult:
    """``nasbench ARGV`` in a fresh interpreter that says, last, whether Ray is still up: a
    fault in Ray's core worker aborts the process it runs in (as force-cancelling finished
    tasks once did, "Tried to complete task that was not pending"), which must fail this test,
    not end pytest."""
    done = subprocess.run([sys.executable, "-c", RAY_STATE, *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, **SUBPROCESS_ENV}, timeout=600)
    return CliResult(done.returncode, done.stdout, done.stderr)


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
    assert "projected_hours" not in record  # no protocol, no search to project
    text = run_cli("bench", "search-step", "--method", "darts-2nd", "--batch-size", "2", "--cells", "2",
                   "--channels", "2", "--repeats", "1", "--device", "cpu")
    assert text.code == 0 and text.out.startswith("darts-2nd search step, batch 2, 2 cells, 2 channels, fp32, cpu")
    assert "median" in text.out and "peak memory" in text.out


@pytest.mark.parametrize("argv", [
    ["bench", "search-step", "--method", "darts"],
    ["bench", "candidates"],
    ["bench", "final-training"],
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


@pytest.mark.parametrize("command", [["bench", "search-step"], ["bench", "candidates"], ["bench", "executor"],
                                     ["bench", "final-training"],
                                     ["profile"], ["cost"],
                                     ["describe"], ["report"]])
def test_json_output_says_what_it_prints(command):
    helped = " ".join(run_cli(*command, "--help").out.split())
    assert "--json print " in helped and "one JSON object per line" in helped.split("--json print ", 1)[1]


def test_bench_refuses_a_method_without_a_search_step():
    result = run_cli("bench", "search-step", "--method", "random")
    assert result.code == 2
    methods = [name for name, cls in STRATEGIES.items() if issubclass(cls, SupernetSearch)]  # a growing registry
    assert {"darts", "darts-2nd", "snas", "random-ws"} <= set(methods)
    assert result.err.strip() == ("nasbench: error: --method: method 'random' trains no weight-sharing supernet; "
                                  f"supernet methods: {', '.join(methods)}")


@pytest.mark.parametrize("extra, message", [
    (["--method", "darts", "--pt-darts", "no-such-checkout"],
     "no pt.darts checkout at no-such-checkout (it needs models/search_cnn.py and architect.py): "
     "git clone https://github.com/khanrc/pt.darts"),
    (["--method", "gdas", "--pt-darts", "."],
     "--pt-darts times pt.darts' DARTS step: give --method darts (first order) or darts-2nd, not gdas"),
    (["--method", "darts", "--pt-darts", ".", "--space", "fbnet"],
     "--pt-darts times pt.darts' cell supernet: leave --space at cell"),
    (["--method", "darts-2nd", "--pt-darts", ".", "--cells", "2"],
     "pt.darts' network of 2 cells has no normal cell, so its unrolled step fails on the normal cells' unused "
     "weights: give --cells 3 or more"),
    (["--method", "darts", "--pt-darts", ".", "--memory-format", "channels-last"],
     "--pt-darts times pt.darts' step on NCHW batches, as its loader gives them: leave --memory-format at auto"),
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
    text = run_cli("bench", "search-step", "--method", method, "--space", "fbnet", "--protocol", "smoke",
                   "--repeats", "1")  # the protocol lays the space out too
    assert text.out.startswith(f"{method} search step, batch 32, the fbnet layout of smoke (7 layers of 4-16 channels")


def test_bench_refuses_a_space_the_method_does_not_search():
    result = run_cli("bench", "search-step", "--method", "darts", "--space", "fbnet", "--layout-protocol", "smoke")
    assert result.code == 2 and "darts does not search the fbnet space" in result.err


def _sane_candidates(record, executor, workers, candidates=2):
    """A `bench candidates --json` record of ``candidates`` trained on ``executor``, ``workers``
    at once, one thread each (the tests' torch threads; a Ray task's one CPU)."""
    assert {k: record[k] for k in ("executor", "workers", "threads_per_task", "candidates", "failed")} == {
        "executor": executor, "workers": workers, "threads_per_task": 1, "candidates": candidates, "failed": 0}
    assert record["seconds"] > 0 and record["startup_s"] >= 0 and record["warmup_s"] >= 0
    assert record["candidates_per_s"] == pytest.approx(candidates / record["seconds"])
    assert record["seconds_per_candidate"] == pytest.approx(record["seconds"] / candidates)
    assert 0 < record["candidate_seconds_sum"] <= record["seconds"] * workers
    assert len(record["val_acc"]) == candidates and all(0 <= acc <= 1 for acc in record["val_acc"])


@pytest.mark.slow
def test_bench_candidates_on_ray_trains_the_candidates_of_in_process(data_path, two_epoch_protocol):
    """`nasbench bench candidates` trains the same candidates, with the same accuracies, in
    this process and as two Ray tasks at once (one thread each), times Ray's start apart
    from the training, and shuts Ray down at the end."""
    common = ("bench", "candidates", "--protocol", two_epoch_protocol, "--candidates", "2", "--data", data_path,
              "--device", "cpu", "--json")
    here = run_cli(*common)
    assert here.code == 0, here.err
    (one,) = here.json_lines()
    _sane_candidates(one, "inprocess", 1)
    assert one["startup_s"] < 1 and one["warmup_s"] < 1  # nothing to start in-process
    remote = run_on_local_ray(*common, "--workers", "2", "--cpus-per-task", "1")
    assert remote.code == 0, remote.err
    (two,) = remote.json_lines()
    _sane_candidates(two, "ray", 2)
    assert two["startup_s"] > one["startup_s"] and two["warmup_s"] > 0
    assert two["val_acc"] == one["val_acc"]
    assert remote.err.endswith("ray initialized after the command: False\n")


@pytest.mark.slow
def test_bench_candidates_says_what_it_measured(data_path, two_epoch_protocol):
    text = run_cli("bench", "candidates", "--protocol", two_epoch_protocol, "--candidates", "1", "--data", data_path,
                   "--device", "cpu", "--executor", "inprocess")
    assert text.code == 0, text.err
    assert text.out.startswith("1 candidates of the cell space, ")
    assert "inprocess executor, 1 at once, cpu (1 thread(s) each)" in text.out
    assert "candidates/s" in text.out and "the executor started in" in text.out


@pytest.mark.parametrize("extra, message", [
    (["--executor", "inprocess", "--workers", "2"], "--workers, --address, --cpus-per-task and --gpus-per-task need "
                                                    "--executor ray"),
    (["--cpus-per-task", "1"], "--workers, --address, --cpus-per-task and --gpus-per-task need --executor ray"),
    (["--cpus-per-task", "0"], "argument --cpus-per-task: must be > 0, got 0"),
    (["--executor", "dask"], "argument --executor: invalid choice: 'dask'"),
    (["--space", "no-such-space"], "no-such-space"),
])
def test_bench_candidates_refuses_bad_input_in_one_line(data_path, extra, message):
    result = run_cli("bench", "candidates", "--protocol", "smoke", "--data", data_path, "--device", "cpu", *extra)
    assert result.code == 2 and result.out == ""
    (line,) = result.err.strip().splitlines()
    assert line.startswith("nasbench: error: ") and message in line


def _sane_overhead(record, executor, workers, tasks, round_trips):
    assert {k: record[k] for k in ("executor", "workers", "tasks", "round_trips")} == {
        "executor": executor, "workers": workers, "tasks": tasks, "round_trips": round_trips}
    assert record["batch_s"] > 0 and record["ms_per_task"] == pytest.approx(1e3 * record["batch_s"] / tasks)
    assert 0 < record["round_trip_p50_ms"] <= record["round_trip_max_ms"]
    assert record["startup_s"] >= 0 and record["warmup_s"] > 0


def test_bench_executor_times_in_process_tasks():
    result = run_cli("bench", "executor", "--executor", "inprocess", "--tasks", "20", "--round-trips", "5", "--json")
    assert result.code == 0, result.err
    (record,) = result.json_lines()
    _sane_overhead(record, "inprocess", 1, 20, 5)
    assert record["ms_per_task"] < 1 and record["startup_s"] < 1  # a function call, nothing started
    text = run_cli("bench", "executor", "--executor", "inprocess", "--tasks", "3", "--round-trips", "2")
    assert text.code == 0 and text.out.startswith("inprocess executor, 1 task(s) at once: ")
    assert "ms per task over 3 submitted at once; one at a time, median " in text.out
    assert " over 2; started in " in text.out


@pytest.mark.slow
def test_bench_executor_times_each_executor_and_ray_costs_more_per_task():
    """By default both executors, one JSON object each; Ray's local instance runs --workers
    tasks at once (default 2), costs more per task than a call, and is shut down after."""
    result = run_on_local_ray("bench", "executor", "--tasks", "40", "--round-trips", "10", "--json")
    assert result.code == 0, result.err
    inprocess, remote = result.json_lines()
    _sane_overhead(inprocess, "inprocess", 1, 40, 10)
    _sane_overhead(remote, "ray", 2, 40, 10)
    assert remote["ms_per_task"] > inprocess["ms_per_task"]
    assert remote["round_trip_p50_ms"] > inprocess["round_trip_p50_ms"]
    assert remote["startup_s"] > inprocess["startup_s"]
    assert result.err.endswith("ray initialized after the command: False\n")


@pytest.mark.parametrize("extra, message", [
    (["--executor", "inprocess", "--workers", "2"], "--workers sizes the local Ray instance: the in-process executor "
                                                    "runs one task at a time (give --executor ray, or drop --workers)"),
    (["--tasks", "0"], "argument --tasks: must be >= 1, got 0"),
    (["--round-trips", "x"], "argument --round-trips: not an integer: 'x'"),
    (["--executor", "dask"], "argument --executor: invalid choice: 'dask'"),
])
def test_bench_executor_refuses_bad_input_in_one_line(extra, message):
    result = run_cli("bench", "executor", *extra)
    assert result.code == 2 and result.out == ""
    (line,) = result.err.strip().splitlines()
    assert line.startswith("nasbench: error: ") and message in line


# -- precision and the final-training step -------------------------------------------------

def test_bench_search_step_times_each_precision():
    result = run_cli("bench", "search-step", "--method", "darts", "--batch-size", "2", "--cells", "2",
                     "--channels", "2", "--repeats", "1", "--device", "cpu", "--precision", "fp32,bf16", "--json")
    assert result.code == 0, result.err
    assert [r["precision"] for r in result.json_lines()] == ["fp32", "bf16"]
    refused = run_cli("bench", "search-step", "--method", "darts", "--precision", "fp8")
    assert refused.code == 2 and "'fp8' is not a precision (one of fp32, bf16, fp16)" in refused.err


def test_bench_search_step_projects_the_protocols_search(tmp_path):
    """--protocol sizes the step by its [search.supernet] and projects its epochs of
    ceil(search-train images / batch) steps: smoke's 160 search-train images in batches of 7
    are 23 steps, the last one smaller."""
    protocol = tmp_path / "long_search.toml"
    protocol.write_text('base = "smoke"\n[search.supernet]\nchannels = 2\ncells = 2\nepochs = 50\nbatch_size = 7\n')
    result = run_cli("bench", "search-step", "--method", "darts", "--protocol", protocol, "--precision", "fp32,bf16",
                     "--repeats", "2", "--device", "cpu", "--json")
    assert result.code == 0, result.err
    fp32, bf16 = result.json_lines()
    for record, precision in ((fp32, "fp32"), (bf16, "bf16")):
        assert {k: record[k] for k in ("precision", "protocol", "batch_size", "cells", "channels", "epochs",
                                       "steps_per_epoch")} == {
            "precision": precision, "protocol": "long_search", "batch_size": 7, "cells": 2, "channels": 2,
            "epochs": 50, "steps_per_epoch": 23}
        assert record["projected_hours"] == pytest.approx(50 * 23 * record["median_s"] / 3600)
    text = run_cli("bench", "search-step", "--method", "darts", "--protocol", protocol, "--repeats", "1",
                   "--device", "cpu")
    assert text.code == 0 and text.out.startswith("darts search step, batch 7, 2 cells, 2 channels, fp32, cpu")
    assert "; long_search's search, 50 epochs of 23 steps: " in text.out


def test_bench_times_the_memory_format_asked_for(small_final):
    """auto is what a run trains in (channels-last on a CPU in fp32, NCHW in bf16); the other
    format is timed when asked for, and every record says which it timed."""
    def formats(*argv):
        result = run_cli("bench", *argv, "--precision", "fp32,bf16", "--repeats", "1", "--device", "cpu", "--json")
        assert result.code == 0, result.err
        return [record["memory_format"] for record in result.json_lines()]

    assert formats("final-training", "--protocol", small_final) == ["channels-last", "nchw"]
    assert formats("final-training", "--protocol", small_final, "--memory-format", "nchw") == ["nchw", "nchw"]
    step = ("search-step", "--method", "darts", "--batch-size", "2", "--cells", "2", "--channels", "2")
    assert formats(*step, "--memory-format", "channels-last") == ["channels-last", "channels-last"]
    text = run_cli("bench", *step, "--repeats", "1", "--device", "cpu")
    assert text.code == 0 and " thread(s), channels-last): median " in text.out
    refused = run_cli("bench", *step, "--memory-format", "nhwc")
    assert refused.code == 2 and "argument --memory-format: invalid choice: 'nhwc'" in refused.err


@pytest.mark.parametrize("memory_format, precision, channels_last", [
    ("channels-last", "bf16", True), ("nchw", "fp32", False), ("auto", "fp32", True), ("auto", "bf16", False)])
def test_time_steps_hands_the_step_batches_in_the_memory_format(memory_format, precision, channels_last):
    from nasbench.bench import time_steps

    seen = []
    result = time_steps(lambda train, val: seen.extend(b.images.is_contiguous(memory_format=torch.channels_last)
                                                       for b in (train, val)),
                        batch_size=2, device=CPU, repeats=2, warmup=1, precision=precision,
                        memory_format=memory_format)
    assert seen == [channels_last] * 6
    assert result["memory_format"] == ("channels-last" if channels_last else "nchw")


def test_the_command_line_offers_the_memory_formats_benchmarks_know():
    """The command line lists them without torch; the names must be the ones bench resolves."""
    from nasbench.cli.bench import MEMORY_FORMATS
    from nasbench.data import MEMORY_FORMATS as KNOWN

    assert MEMORY_FORMATS == ("auto", *KNOWN)


@pytest.fixture(scope="module")
def small_final(tmp_path_factory):
    """A protocol file: smoke with a final stage of 8-image batches, 600 epochs of its 320 images."""
    path = tmp_path_factory.mktemp("protocol") / "small_final.toml"
    path.write_text('base = "smoke"\n[final]\nbatch_size = 8\nepochs = 600\n')
    return path


def test_bench_final_training_projects_the_protocols_hours(small_final):
    result = run_cli("bench", "final-training", "--protocol", small_final, "--precision", "fp32,bf16",
                     "--repeats", "1", "--device", "cpu", "--json")
    assert result.code == 0, result.err
    fp32, bf16 = result.json_lines()
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    for record in (fp32, bf16):
        assert record["arch"] == "DARTS_V2" and record["batch_size"] == 8 and not record["compile"]
        assert record["images_per_s"] == pytest.approx(8 / record["median_s"])
        assert record["projected_hours"] == pytest.approx(600 * 320 / record["images_per_s"] / 3600)
    text = run_cli("bench", "final-training", "--protocol", small_final, "--repeats", "1", "--device", "cpu")
    assert text.code == 0 and text.out.startswith("DARTS_V2 final-training step of small_final (3 cells, 4 channels, "
                                                  "batch 8), fp32, cpu")
    assert "images/s; 600 epochs of 320 images: " in text.out
    unknown = run_cli("bench", "final-training", "--arch", "NoSuchNet", "--protocol", small_final)
    assert unknown.code == 2 and "zoo has no NoSuchNet" in unknown.err


def test_bench_final_training_compiles_once(small_final, counting_backend):
    """Compiled, the step compiles in the warm-up, and the timed steps compile nothing more."""
    from nasbench.bench import bench_final_training
    from nasbench.protocol import load_protocol

    result = bench_final_training(load_protocol(str(small_final)), precision="bf16", device=CPU, repeats=2,
                                  compile=counting_backend)
    assert result["compile"] and counting_backend.graphs == 1
