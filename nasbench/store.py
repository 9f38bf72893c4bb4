"""The results store: an embedded SQLite database.

One row per (method, seed, protocol, data) attempt in ``runs`` with everything needed to
reproduce it (the protocol itself, device, software versions, git commit), the search's
trials in ``trials``, and the strategy's checkpoint so an interrupted run resumes: its JSON
part in ``runs.state_json``, its tensors (``torch.save`` bytes) in ``checkpoint_tensors``,
written together. Every write is one transaction; a finished run is superseded only by an
explicit ``--force``.
"""
from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import torch

from nasbench.errors import NasbenchError
from nasbench.strategies.base import TensorState, Trial

SCHEMA_VERSION = 1
UNFINISHED = ("running", "interrupted", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    method TEXT NOT NULL,
    strategy_class TEXT NOT NULL,
    space TEXT NOT NULL,
    protocol TEXT NOT NULL,
    protocol_hash TEXT NOT NULL,
    protocol_json TEXT NOT NULL,
    seed INTEGER NOT NULL,
    data TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('running', 'interrupted', 'failed', 'finished', 'superseded')),
    error TEXT,
    device TEXT NOT NULL,
    device_fingerprint TEXT NOT NULL,
    software_json TEXT NOT NULL,
    git_commit TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    search_seconds REAL,
    eval_seconds REAL,
    genotype_json TEXT,
    val_acc REAL,
    test_acc REAL,
    params INTEGER,
    flops INTEGER,
    details_json TEXT,
    state_json TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    idx INTEGER NOT NULL,
    arch_json TEXT NOT NULL,
    val_acc REAL,
    seconds REAL NOT NULL,
    error TEXT,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS checkpoint_tensors (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    data BLOB NOT NULL
);
"""
_KEY_INDEX = "CREATE INDEX IF NOT EXISTS runs_key ON runs (method, seed, protocol_hash, data, variant, status)"
_KEY_COLUMNS = "method=? AND seed=? AND protocol_hash=? AND data=? AND variant=?"


@dataclass(frozen=True)
class RunKey:
    """What makes two runs the same experiment."""

    method: str
    seed: int
    protocol_hash: str
    data: str
    variant: str = ""
    """Run parameters outside the protocol that change the search, e.g. a resource
    constraint; empty for the plain run."""

    def values(self) -> tuple[str, int, str, str, str]:
        return self.method, self.seed, self.protocol_hash, self.data, self.variant


@dataclass(frozen=True)
class RunStart:
    key: RunKey
    strategy_class: str
    space: str
    protocol: str
    protocol_json: str
    device: str
    device_fingerprint: str
    software: dict[str, str]
    git_commit: str | None


@dataclass(frozen=True)
class RunOutcome:
    search_seconds: float
    eval_seconds: float
    genotype: dict[str, Any]
    val_acc: float | None
    test_acc: float
    params: int
    flops: int
    details: dict[str, Any]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.row_factory = sqlite3.Row
            with self.conn:
                self.conn.executescript(_SCHEMA)
                _add_variant_column(self.conn)
                self.conn.execute(_KEY_INDEX)
                found = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if found is None:
                    self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(found[0]) != SCHEMA_VERSION:
                    raise NasbenchError(f"store {self.path} has schema version {found[0]}, this nasbench reads "
                                        f"{SCHEMA_VERSION}; use another --store")
        except sqlite3.DatabaseError as err:
            raise NasbenchError(f"--store {self.path} is not a nasbench results database ({err})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------
    def find(self, key: RunKey, statuses: tuple[str, ...]) -> sqlite3.Row | None:
        """The newest run of ``key`` whose status is one of ``statuses``."""
        marks = ",".join("?" * len(statuses))
        return self.conn.execute(
            f"SELECT * FROM runs WHERE {_KEY_COLUMNS} AND status IN ({marks}) ORDER BY id DESC LIMIT 1",
            (*key.values(), *statuses),
        ).fetchone()

    def runs(self, status: str = "finished") -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM runs WHERE status=? ORDER BY id", (status,)).fetchall()

    def trials(self, run_id: int) -> list[Trial]:
        rows = self.conn.execute("SELECT * FROM trials WHERE run_id=? ORDER BY idx", (run_id,))
        return [Trial(r["idx"], json.loads(r["arch_json"]), r["val_acc"], r["seconds"], r["error"]) for r in rows]

    # -- writes, each one transaction ----------------------------------------------
    def start(self, run: RunStart) -> int:
        with self.conn:
            cursor = self.conn.execute(
                "INSERT INTO runs (method, strategy_class, space, protocol, protocol_hash, protocol_json, seed, data, "
                "variant, status, device, device_fingerprint, software_json, git_commit, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (run.key.method, run.strategy_class, run.space, run.protocol, run.key.protocol_hash, run.protocol_json,
                 run.key.seed, run.key.data, run.key.variant, run.device, run.device_fingerprint, json.dumps(run.software),
                 run.git_commit, _now()),
            )
        return int(cursor.lastrowid)

    def resume(self, run_id: int) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET status='running', error=NULL WHERE id=?", (run_id,))

    def add_trial(self, run_id: int, trial: Trial) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, trial.index, json.dumps(trial.arch), trial.val_acc, trial.seconds, trial.error),
            )

    def checkpoint(self, run_id: int, state: dict[str, Any], search_seconds: float,
                   tensors: TensorState | None = None) -> None:
        """Keep a strategy's state; its tensors, if any, in the same transaction."""
        with self.conn:
            self.conn.execute("UPDATE runs SET state_json=?, search_seconds=? WHERE id=?",
                              (json.dumps(state), search_seconds, run_id))
            if tensors:
                self.conn.execute("INSERT OR REPLACE INTO checkpoint_tensors VALUES (?, ?)",
                                  (run_id, tensors_to_bytes(tensors)))

    def checkpoint_tensors(self, run_id: int) -> TensorState:
        """The tensors of the run's last checkpoint, on the CPU; {} if it has none."""
        row = self.conn.execute("SELECT data FROM checkpoint_tensors WHERE run_id=?", (run_id,)).fetchone()
        return {} if row is None else tensors_from_bytes(row["data"])

    def finish(self, run_id: int, outcome: RunOutcome) -> None:
        """Record the result and supersede older finished runs of the same key, atomically."""
        with self.conn:
            key = self.conn.execute("SELECT method, seed, protocol_hash, data, variant FROM runs WHERE id=?",
                                    (run_id,)).fetchone()
            self.conn.execute(f"UPDATE runs SET status='superseded' WHERE {_KEY_COLUMNS} AND status='finished' AND id<>?",
                              (*key, run_id))
            self.conn.execute(
                "UPDATE runs SET status='finished', finished_at=?, search_seconds=?, eval_seconds=?, genotype_json=?, "
                "val_acc=?, test_acc=?, params=?, flops=?, details_json=?, state_json=NULL, error=NULL WHERE id=?",
                (_now(), outcome.search_seconds, outcome.eval_seconds, json.dumps(outcome.genotype), outcome.val_acc,
                 outcome.test_acc, outcome.params, outcome.flops, json.dumps(outcome.details), run_id),
            )
            freed = self.conn.execute("DELETE FROM checkpoint_tensors WHERE run_id=?", (run_id,)).rowcount
        if freed:
            self.conn.execute("VACUUM")  # give the checkpoint's pages back: stores are kept in git

    def fail(self, run_id: int, error: str, status: str = "failed") -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET status=?, error=? WHERE id=?", (status, error, run_id))


def _add_variant_column(conn: sqlite3.Connection) -> None:
    """Stores written before run variants existed: every run in them is a plain one."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(runs)")}
    if "variant" not in columns:
        conn.execute("DROP INDEX IF EXISTS runs_key")
        conn.execute("ALTER TABLE runs ADD COLUMN variant TEXT NOT NULL DEFAULT ''")


def tensors_to_bytes(tensors: TensorState) -> bytes:
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getvalue()


def tensors_from_bytes(data: bytes) -> TensorState:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def iter_finished(path: Path) -> Iterator[sqlite3.Row]:
    """Finished runs of the store at ``path``; a missing store is an error, not an empty one."""
    if not Path(path).is_file():
        raise NasbenchError(f"no results store at {path}; run `nasbench run ...` first or pass --store PATH")
    with closing(Store(path)) as store:
        yield from store.runs("finished")
