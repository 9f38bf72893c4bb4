"""``nasbench run`` on Ray, for real: a two-node cluster started with ``ray start`` on
loopback addresses runs ``run --all --protocol smoke`` to the in-process results, and a
run whose Ray workers are killed mid-task (a whole run's, a candidate's) completes with
the results of an uninterrupted one."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO_ROOT, SUBPROCESS_ENV

pytestmark = pytest.mark.slow

RAY_ENV = {**SUBPROCESS_ENV, "RAY_AUTH_MODE": "disabled"}
"""Every process of the cluster in one auth mode: a head finding ~/.ray/auth_token turns
token auth on by itself, and then refuses a worker node and a driver that did not."""
SAME = ("genotype", "val_acc", "test_acc", "params", "flops")


def ray_command() -> str:
    return str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """A head (127.0.0.1) and a worker node (127.0.0.2), one CPU each, each a blocking
    ``ray start`` that takes its node's processes down when it is stopped."""
    port, logs = free_port(), tmp_path_factory.mktemp("ray-nodes")
    common = ["--num-cpus=1", "--disable-usage-stats", "--block"]
    nodes = [subprocess.Popen([ray_command(), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                               "--include-dashboard=false", *common], env={**os.environ, **RAY_ENV},
                              stdout=open(logs / "head.log", "w"), stderr=subprocess.STDOUT)]
    try:
        wait_for_port(port, nodes[0])
        nodes.append(subprocess.Popen([ray_command(), "start", f"--address=127.0.0.1:{port}",
                                       "--node-ip-address=127.0.0.2", *common], env={**os.environ, **RAY_ENV},
                                      stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT))
        wait_for_nodes(f"127.0.0.1:{port}", 2)
        yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()


def wait_for_port(port: int, head: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert head.poll() is None, "the head node stopped"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"no Ray head on port {port} within {timeout} s")


def wait_for_nodes(address: str, count: int, timeout: float = 60) -> None:
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR'); "
             "print(sum(node['Alive'] for node in ray.nodes()))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-c", probe, address], env={**os.environ, **RAY_ENV},
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1] == str(count):
            return
        time.sleep(0.5)
    pytest.fail(f"the cluster at {address} did not reach {count} nodes within {timeout} s")


def nasbench(*argv, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nasbench", *map(str, argv)], cwd=REPO_ROOT,
                            env={**os.environ, **RAY_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def records(out: str) -> dict[tuple[str, int], dict]:
    return {(r["method"], r["seed"]): r for r in map(json.loads, out.splitlines())}


def expected(smoke_records, methods=None) -> dict[tuple[str, int], dict]:
    """The in-process results (the session's smoke store, one thread) of seed 0."""
    return {(r["method"], 0): {k: r[k] for k in SAME} for r in smoke_records
            if r["seed"] == 0 and (methods is None or r["method"] in methods)}


EACH_KIND = ("random", "darts", "spos", "enas", "nas-rl", "eas", "fbnet")
"""One method of each way a run works on a task: candidates as nested tasks (random, nas-rl),
a supernet (darts, fbnet on its own space), a shared stage sent back to the driver (spos), a
controller on shared weights (enas), children trained inside the run (eas)."""


def test_a_two_node_cluster_runs_each_kind_of_method_to_the_in_process_results(two_nodes, smoke_records, tmp_path,
                                                                               data_path):
    started = time.perf_counter()
    process = nasbench("run", "--method", ",".join(EACH_KIND), "--protocol", "smoke", "--seeds", "0",
                       "--store", tmp_path / "s.sqlite",
                       "--data", data_path, "--executor", "ray", "--address", two_nodes, "--cpus-per-task", "1",
                       "--json", "--no-progress", "--no-estimate")
    out, err = process.communicate(timeout=900)
    seconds = time.perf_counter() - started
    assert process.returncode == 0, err
    got = records(out)
    assert {key: {k: r[k] for k in SAME} for key, r in got.items()} == expected(smoke_records, EACH_KIND)
    assert {r["status"] for r in got.values()} == {"finished"} and len(got) == len(EACH_KIND)
    print(f"two-node run of {len(got)} methods, protocol smoke: {seconds:.0f} s, each equal to the in-process run")


def test_runs_whose_workers_are_killed_mid_task_complete_with_the_same_results(tmp_path, data_path):
    """One run's worker is killed while it works (the driver resumes the run from the
    store), then a candidate's while it trains (Ray reruns the task from the epoch the
    mailbox kept): both runs end as the in-process ones do."""
    protocol = tmp_path / "slow.toml"
    protocol.write_text('base = "smoke"\n[search]\ncandidates = 4\n[candidate]\nepochs = 3\n')
    common = ("--method", "random,darts", "--protocol", protocol, "--seeds", "0", "--data", data_path, "--json",
              "--no-progress", "--no-estimate")
    reference = nasbench("run", *common, "--store", tmp_path / "in-process.sqlite")
    process = nasbench("run", *common, "--store", tmp_path / "ray.sqlite", "--workers", "2", "--cpus-per-task", "1")
    killed = [kill_worker_running("run_task", process), kill_worker_running("_candidate_task", process)]
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert all(killed), f"a task to kill was not found running: {killed}"
    assert "its worker was lost" in err and "attempt 2 of 3" in err
    reference_out, reference_err = reference.communicate(timeout=600)
    assert reference.returncode == 0, reference_err
    same = {key: {k: r[k] for k in SAME} for key, r in records(reference_out).items()}
    assert {key: {k: r[k] for k in SAME} for key, r in records(out).items()} == same


def kill_worker_running(task: str, driver: subprocess.Popen, timeout: float = 120) -> bool:
    """SIGKILL the Ray worker process running ``task`` once it has run a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        found = subprocess.run(["pgrep", "-f", f"ray::{task}"], capture_output=True, text=True).stdout.split()
        if found:
            time.sleep(0.5)
            try:
                os.kill(int(found[0]), signal.SIGKILL)
            except ProcessLookupError:
                continue
            return True
        time.sleep(0.05)
    return False
