"""Claims: which process is doing a run, so that two never do the same one.

A process claims a run's key in the store before it starts or resumes the run and keeps
the claim alive with a heartbeat (a thread with its own connection) until the run ends.
Another process finds the claim and leaves the run alone; a claim whose heartbeat is
older than :data:`LEASE_SECONDS`, or whose process is gone from this host, is stale and
taken over, and the run resumes from its checkpoint.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from nasbench.errors import NasbenchError

LEASE_SECONDS = 60.0
"""A claim whose heartbeat is older than this is stale (its process hung or died elsewhere)."""
HEARTBEAT_SECONDS = 5.0

CLAIMS_SQL = """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""


class ClaimHeld(NasbenchError):
    """A live process holds the claim this one asked for."""

    exit_status = 3

    def __init__(self, key: str, holder: "Holder"):
        super().__init__(f"{key} is being run by {holder.describe()}")
        self.holder = holder


class ClaimLost(NasbenchError):
    """Another process took over a claim this one held (its heartbeat stopped for longer
    than the lease)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a claim, as another process sees it."""

    host: str
    pid: int
    heartbeat_age_s: float
    stale: bool

    def describe(self) -> str:
        return f"process {self.pid} on {self.host} (heartbeat {self.heartbeat_age_s:.0f} s ago)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_of(row: sqlite3.Row | tuple, now: float | None = None) -> Holder:
    """The holder of a ``claims`` row (host, pid, heartbeat_at)."""
    host, pid, heartbeat_at = row[0], row[1], row[2]
    age = (time.time() if now is None else now) - heartbeat_at
    gone = host == socket.gethostname() and not _pid_alive(pid)
    return Holder(host, pid, age, stale=gone or age > LEASE_SECONDS)


class Claim:
    """This process's claim on ``key`` in the store at ``path``, kept alive while held."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = Path(path), key
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def acquire(self, conn: sqlite3.Connection) -> Holder | None:
        """Take the claim (None) unless a live process holds it (its :class:`Holder`)."""
        conn.execute("BEGIN IMMEDIATE")  # the check and the take are one step for every process
        try:
            row = conn.execute("SELECT host, pid, heartbeat_at FROM claims WHERE key=?", (self.key,)).fetchone()
            if row is not None and not holder_of(row).stale:
                conn.execute("ROLLBACK")
                return holder_of(row)
            now = time.time()
            conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                         (self.key, self.owner, socket.gethostname(), os.getpid(), now, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._thread = threading.Thread(target=self._beat, name=f"claim {self.key}", daemon=True)
        self._thread.start()
        return None

    def _beat(self) -> None:
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                with conn:
                    kept = conn.execute("UPDATE claims SET heartbeat_at=? WHERE key=? AND owner=?",
                                        (time.time(), self.key, self.owner)).rowcount
                if not kept:
                    self.lost = True
                    return

    def check(self) -> None:
        """Refuse to write on as the run's owner once another process took the claim over."""
        if self.lost:
            raise ClaimLost(f"another process took over {self.key} while this one was not heard from for "
                            f"{LEASE_SECONDS:.0f} s; it continues the run from its checkpoint")

    def release(self, conn: sqlite3.Connection) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with conn:
            conn.execute("DELETE FROM claims WHERE key=? AND owner=?", (self.key, self.owner))
