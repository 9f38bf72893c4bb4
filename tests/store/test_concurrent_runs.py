"""Two ``nasbench run`` processes on different runs of one store at the same time both
finish with both results stored, and ``nasbench report`` reads the store while they write
to it (every connection waits for the others' transactions: no "database is locked")."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from helpers import REPO_ROOT, SUBPROCESS_ENV, run_cli, store_rows

pytestmark = pytest.mark.slow

PROTOCOL = 'base = "smoke"\n[final]\nepochs = 6\n'
"""Final trainings of several seconds that checkpoint after every epoch: writes while the
other process and the report work."""


def arguments(store: Path, protocol: Path, data_path, seed: int) -> list[str]:
    return [str(a) for a in ("run", "--method", "random-arch", "--protocol", protocol, "--seeds", seed, "--store",
                             store, "--data", data_path, "--no-progress", "--no-estimate", "--json")]


def trainings_in_flight(store: Path) -> int:
    with closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute("SELECT COUNT(*) FROM stage_checkpoints").fetchone()[0]


def test_two_runs_and_a_report_on_one_store_at_once(tmp_path, data_path):
    protocol, store = tmp_path / "p.toml", tmp_path / "s.sqlite"
    protocol.write_text(PROTOCOL)
    assert run_cli(*arguments(store, protocol, data_path, 2)).code == 0  # something finished to report
    writers = [subprocess.Popen([sys.executable, "-m", "nasbench", *arguments(store, protocol, data_path, seed)],
                                cwd=REPO_ROOT, env={**os.environ, **SUBPROCESS_ENV}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
    deadline = time.monotonic() + 120
    while trainings_in_flight(store) < 2:
        assert all(w.poll() is None for w in writers) and time.monotonic() < deadline, "both should be training"
        time.sleep(0.02)
    reports = [run_cli("report", "--store", store, "--out", tmp_path / f"report{i}", "--tables", tmp_path / "none")
               for i in range(2)]
    assert any(w.poll() is None for w in writers), "the report should have read while a run was writing"
    assert [r.code for r in reports] == [0, 0], [r.err for r in reports]
    outputs = [w.communicate(timeout=300) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], [err for _, err in outputs]
    assert not any("locked" in err for _, err in outputs)
    rows = store_rows(store)
    assert sorted((r["seed"], r["status"]) for r in rows) == [(0, "finished"), (1, "finished"), (2, "finished")]
