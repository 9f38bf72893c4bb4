"""Claims on runs: one process per run, stale claims taken over, lost claims noticed."""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest
import torch
from helpers import store_rows

from nasbench.protocol import load_protocol
from nasbench.provenance import stored_provenance
from nasbench.store import ClaimHeld, ClaimLost, RunKey, RunStart, Store
from nasbench.store import claims as claims_module
from nasbench.store.claims import LEASE_SECONDS, Claim
from nasbench.store.records import ABANDONED

KEY = RunKey("random", 0, "abc", "npz-1")


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.sqlite") as opened:
        yield opened


def dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def plant(store: Store, host: str, pid: int, heartbeat_age_s: float) -> None:
    """A claim on KEY as another process left it."""
    beat = time.time() - heartbeat_age_s
    with store.conn:
        store.conn.execute("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                           (KEY.claim_id(), f"{host}:{pid}:x", host, pid, beat, beat))


def test_a_held_claim_is_refused_to_a_second_claimant(store):
    with store.claimed(KEY):
        with pytest.raises(ClaimHeld) as held:
            with store.claimed(KEY):
                pytest.fail("two claims on one run")
        assert not held.value.holder.stale and held.value.holder.pid == os.getpid()
        assert str(held.value).startswith("random seed 0 (protocol abc, data npz-1) is being run by process ")
    with store.claimed(KEY):  # released at the end of the block
        pass
    assert store.holders() == {}


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over(store):
    plant(store, socket.gethostname(), dead_pid(), heartbeat_age_s=0.0)
    with store.claimed(KEY) as claim:
        (holder,) = store.holders().values()
        assert holder.pid == os.getpid() and claim.owner.startswith(socket.gethostname())


@pytest.mark.parametrize("age, taken", [(LEASE_SECONDS + 5, True), (LEASE_SECONDS - 20, False)])
def test_a_claim_from_another_host_expires_with_its_heartbeat(store, age, taken):
    plant(store, "another-host", 1, heartbeat_age_s=age)
    if taken:
        with store.claimed(KEY):
            assert store.holders()[KEY.claim_id()].host == socket.gethostname()
    else:
        with pytest.raises(ClaimHeld, match="process 1 on another-host"):
            with store.claimed(KEY):
                pass


def test_the_heartbeat_keeps_a_claim_fresh_and_notices_a_takeover(store, monkeypatch):
    monkeypatch.setattr(claims_module, "HEARTBEAT_SECONDS", 0.05)
    with store.claimed(KEY) as claim:
        first = store.conn.execute("SELECT heartbeat_at FROM claims").fetchone()[0]
        time.sleep(0.3)
        assert store.conn.execute("SELECT heartbeat_at FROM claims").fetchone()[0] > first
        claim.check()
        with store.conn:  # another process takes the claim over (this one was silent past the lease)
            store.conn.execute("UPDATE claims SET owner='elsewhere:1:y'")
        time.sleep(0.3)
        with pytest.raises(ClaimLost, match="took over"):
            claim.check()


def test_taking_a_claim_marks_the_runs_left_running_interrupted(store, tmp_path):
    provenance = stored_provenance(load_protocol("smoke"), torch.device("cpu"))
    orphan = store.start(RunStart(KEY, "RS", "cell", provenance))
    other = store.start(RunStart(RunKey("random", 1, "abc", "npz-1"), "RS", "cell", provenance))
    with store.claimed(KEY):
        pass
    rows = {row["id"]: row for row in store_rows(tmp_path / "s.sqlite")}
    assert (rows[orphan]["status"], rows[orphan]["error"]) == ("interrupted", ABANDONED)
    assert rows[other]["status"] == "running"  # another run's row: its own claim decides


def test_claims_of_two_connections_are_one_at_a_time(tmp_path):
    """The check and the take are one transaction: of two claimants one wins."""
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with closing(sqlite3.connect(path, timeout=30)) as first, closing(sqlite3.connect(path, timeout=30)) as second:
        a, b = Claim(path, "k"), Claim(path, "k")
        assert a.acquire(first) is None
        assert b.acquire(second) is not None
        a.release(first)
        assert b.acquire(second) is None
        b.release(second)
