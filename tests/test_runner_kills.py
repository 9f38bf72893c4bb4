"""Runs killed with SIGKILL and rivals on one run, in real processes: the claim keeps one
process per run, a dead holder's run is taken over and resumed (from its checkpoint, or
from the start where it had none), a killed ``--force`` rerun resumes, and no row is left
``running`` without a process."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from helpers import REPO_ROOT, SUBPROCESS_ENV, run_cli, store_rows

pytestmark = pytest.mark.slow

SLOW_RANDOM = 'base = "smoke"\n[search]\ncandidates = 4\n[candidate]\nepochs = 3\n'
"""Random search over four candidates of three epochs: a search of several seconds with a
checkpoint after each candidate, time enough to kill it between two."""


@pytest.fixture(scope="module")
def slow_protocol(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("protocol") / "slow-random.toml"
    path.write_text(SLOW_RANDOM)
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, slow_protocol, data_path) -> dict:
    store = tmp_path_factory.mktemp("uninterrupted") / "s.sqlite"
    result = run_cli(*arguments(store, slow_protocol, data_path))
    assert result.code == 0, result.err
    (row,) = store_rows(store)
    return row


def arguments(store, protocol, data_path, *extra) -> tuple:
    return ("run", "--method", "random", "--protocol", protocol, "--seeds", "0", "--store", store, "--data", data_path,
            "--no-progress", "--no-estimate", "--json", *extra)


def start(store, protocol, data_path, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nasbench", *map(str, arguments(store, protocol, data_path, *extra))],
                            cwd=REPO_ROOT, env={**os.environ, **SUBPROCESS_ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(store: Path, where: str, process: subprocess.Popen, timeout: float = 120) -> dict:
    """The newest run of ``store`` matching ``where``, polled while ``process`` works."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if store.exists():
            with closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True, timeout=30)) as conn:
                conn.row_factory = sqlite3.Row
                try:
                    row = conn.execute(f"SELECT * FROM runs WHERE {where} ORDER BY id DESC LIMIT 1").fetchone()
                except sqlite3.OperationalError:  # the schema is being created
                    row = None
            if row is not None:
                return dict(row)
        time.sleep(0.02)
    pytest.fail(f"no run with {where} within {timeout} s")


def killed_when(store: Path, where: str, protocol: Path, data_path, *extra) -> dict:
    """Start a run, SIGKILL it as soon as its newest row matches ``where``; that row."""
    process = start(store, protocol, data_path, *extra)
    row = wait_for(store, where, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return row


def same_result(row: dict, reference: dict) -> bool:
    return all(row[k] == reference[k] for k in ("genotype_json", "val_acc", "test_acc", "params", "flops"))


def test_a_second_process_leaves_a_run_to_the_one_doing_it(tmp_path, slow_protocol, data_path, uninterrupted):
    store = tmp_path / "s.sqlite"
    first = start(store, slow_protocol, data_path)
    wait_for(store, "status='running'", first)
    rival = run_cli(*arguments(store, slow_protocol, data_path))
    assert rival.code == 3
    (record,) = rival.json_lines()
    assert record["status"] == "held" and record["holder"].startswith(f"process {first.pid} on ")
    assert rival.err.startswith("nasbench: random seed 0 (protocol ") and "left to it" in rival.err
    assert first.wait(timeout=300) == 0
    (row,) = store_rows(store)  # one row, driven by one process
    assert row["status"] == "finished" and same_result(row, uninterrupted)
    cached = run_cli(*arguments(store, slow_protocol, data_path))
    assert cached.code == 0 and cached.json_lines()[0]["cached"] is True


def test_a_killed_run_is_taken_over_and_resumed_from_its_checkpoint(tmp_path, slow_protocol, data_path,
                                                                     uninterrupted):
    store = tmp_path / "s.sqlite"
    checkpointed = killed_when(store, "state_json IS NOT NULL", slow_protocol, data_path)
    assert run_cli("list", "runs", "--store", store).out.splitlines()[1].split()[3] == "stale"
    steps = len(json.loads(checkpointed["state_json"])["trials"])
    resumed = run_cli(*arguments(store, slow_protocol, data_path))
    assert resumed.code == 0, resumed.err
    (row,) = store_rows(store)
    assert row["id"] == checkpointed["id"] and row["status"] == "finished" and same_result(row, uninterrupted)
    (line,) = [line for line in resumed.err.splitlines() if "resuming" in line]
    said = re.search(rf"^nasbench: resuming random seed 0 .* \(run {row['id']}\) from step (\d) of 4 \(search\)", line)
    assert said is not None and int(said.group(1)) >= steps, line


def test_a_run_killed_before_its_first_checkpoint_starts_over_in_its_row(tmp_path, slow_protocol, data_path,
                                                                        uninterrupted):
    store = tmp_path / "s.sqlite"
    started = killed_when(store, "status='running'", slow_protocol, data_path)
    if started["state_json"] is not None or store_rows(store)[0]["state_json"] is not None:
        pytest.fail("the first candidate finished before the kill: make SLOW_RANDOM slower")
    again = run_cli(*arguments(store, slow_protocol, data_path))
    assert again.code == 0, again.err
    assert f"(run {started['id']}) from step 0 of 4 (search): it stopped before its first checkpoint" in again.err
    (row,) = store_rows(store)  # no orphan row
    assert row["id"] == started["id"] and row["status"] == "finished" and same_result(row, uninterrupted)


def test_a_killed_forced_rerun_resumes_and_replaces_the_result(tmp_path, slow_protocol, data_path, uninterrupted):
    store = tmp_path / "s.sqlite"
    assert run_cli(*arguments(store, slow_protocol, data_path)).code == 0
    attempt = killed_when(store, "status='running' AND state_json IS NOT NULL", slow_protocol, data_path, "--force")
    again = run_cli(*arguments(store, slow_protocol, data_path, "--force"))
    assert again.code == 0, again.err
    assert f"(run {attempt['id']}) from step" in again.err
    rows = store_rows(store)
    assert [(r["id"], r["status"]) for r in rows] == [(1, "superseded"), (attempt["id"], "finished")]
    assert same_result(rows[1], uninterrupted)
