"""The results database: every write one transaction, reads as SQLite rows."""
from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from nasbench.errors import NasbenchError
from nasbench.store.access import check_store_path, connect_read_only
from nasbench.store.claims import CLAIMS_SQL, Claim, ClaimHeld, Holder, holder_of
from nasbench.store.records import (
    ABANDONED,
    MEASURES,
    RankingKey,
    RankingOutcome,
    RankingStart,
    RunKey,
    RunOutcome,
    RunStart,
    SharedStage,
)
from nasbench.store.schema import (
    KEY_COLUMNS,
    KEY_FIELDS,
    KEY_INDEX,
    PROVENANCE_COLUMNS,
    RANKING_KEY_COLUMNS,
    RANKING_KEY_FIELDS,
    SCHEMA,
    SCHEMA_VERSION,
    WEIGHTS_FORMAT,
    add_variant_column,
    provenance_values,
    show_missing_perplexities,
)
from nasbench.types import Checkpoint, Provenance, TensorState, Trial


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """A results store opened for writing (the schema created or checked first), or with
    ``readonly`` for reading only: then nothing in the file changes, and a run writing to
    it at the same time is not disturbed."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = Path(path)
        check_store_path(self.path, write=not readonly)
        try:
            if readonly:
                self.conn = connect_read_only(self.path, timeout=30)
                self.conn.row_factory = sqlite3.Row
                show_missing_perplexities(self.conn)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.row_factory = sqlite3.Row
            with self.conn:
                self.conn.executescript(SCHEMA + CLAIMS_SQL)
                add_variant_column(self.conn)
                self.conn.execute(KEY_INDEX)
                if self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() is None:
                    self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as err:
            raise NasbenchError(f"--store {self.path} is not a nasbench results database ({err})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _insert(self, table: str, values: dict[str, Any], provenance: Provenance) -> sqlite3.Cursor:
        """Insert a run or a ranking with its provenance (inside the caller's transaction)."""
        values = {**values, **dict(zip(PROVENANCE_COLUMNS, provenance_values(provenance)))}
        columns = ", ".join(values)
        return self.conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(values))})",
                                 tuple(values.values()))

    # -- reads ---------------------------------------------------------------------
    def find(self, key: RunKey, statuses: tuple[str, ...]) -> sqlite3.Row | None:
        """The newest run of ``key`` whose status is one of ``statuses``."""
        marks = ",".join("?" * len(statuses))
        return self.conn.execute(
            f"SELECT * FROM runs WHERE {KEY_COLUMNS} AND status IN ({marks}) ORDER BY id DESC LIMIT 1",
            (*key.values(), *statuses),
        ).fetchone()

    def runs(self, status: str = "finished") -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM runs WHERE status=? ORDER BY id", (status,)).fetchall()

    def trials(self, run_id: int) -> list[Trial]:
        rows = self.conn.execute("SELECT * FROM trials WHERE run_id=? ORDER BY idx", (run_id,))
        return [Trial(r["idx"], json.loads(r["arch_json"]), r["val_acc"], r["seconds"], r["error"], r["val_perplexity"])
                for r in rows]

    # -- writes, each one transaction ----------------------------------------------
    def start(self, run: RunStart) -> int:
        with self.conn:
            cursor = self._insert("runs", {**dict(zip(KEY_FIELDS, run.key.values())), "strategy_class": run.strategy_class,
                                           "space": run.space, "status": "running", "started_at": _now()},
                                  run.provenance)
        return int(cursor.lastrowid)

    def resume(self, run_id: int) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET status='running', error=NULL WHERE id=?", (run_id,))

    def record_provenance(self, run_id: int, provenance: Provenance) -> None:
        """Where the run was done, as the process that did it saw it (a cluster's worker)."""
        sets = ", ".join(f"{name}=?" for name in PROVENANCE_COLUMNS)
        with self.conn:
            self.conn.execute(f"UPDATE runs SET {sets} WHERE id=?", (*provenance_values(provenance), run_id))

    def restart(self, run_id: int, provenance: Provenance) -> None:
        """Start a run that stopped before its first checkpoint over, in its own row (with
        the provenance of the process that now does it); the epoch checkpoint of its first
        candidates stays, for the same candidates."""
        sets = ", ".join(f"{name}=?" for name in PROVENANCE_COLUMNS)
        with self.conn:
            self.conn.execute("DELETE FROM trials WHERE run_id=?", (run_id,))
            self.conn.execute("DELETE FROM checkpoint_tensors WHERE run_id=?", (run_id,))
            self.conn.execute(f"UPDATE runs SET status='running', error=NULL, state_json=NULL, search_seconds=NULL, "
                              f"started_at=?, {sets} WHERE id=?", (_now(), *provenance_values(provenance), run_id))

    @contextmanager
    def claimed(self, key: RunKey | RankingKey) -> Iterator[Claim]:
        """Hold the claim on a run's or a ranking's ``key`` for the block (:mod:`.claims`):
        :class:`ClaimHeld` where a live process holds it. Taking it marks the key's ``running``
        rows, whose processes are gone, ``interrupted``: none is left ``running`` without one."""
        claim = Claim(self.path, key.claim_id())
        holder = claim.acquire(self.conn)
        if holder is not None:
            raise ClaimHeld(key.describe(), holder)
        table, columns = ("runs", KEY_COLUMNS) if isinstance(key, RunKey) else ("rankings", RANKING_KEY_COLUMNS)
        try:
            with self.conn:
                self.conn.execute(f"UPDATE {table} SET status='interrupted', error=? WHERE {columns} AND "
                                  "status='running'", (ABANDONED, *key.values()))
            yield claim
        finally:
            claim.release(self.conn)

    def holders(self) -> dict[str, Holder]:
        """Who holds each claim now, by claim id (none in a store no claiming nasbench wrote yet)."""
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='claims'").fetchone() is None:
            return {}
        rows = self.conn.execute("SELECT key, host, pid, heartbeat_at FROM claims").fetchall()
        return {row["key"]: holder_of(tuple(row)[1:]) for row in rows}

    def all_runs(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM runs ORDER BY id").fetchall()

    def add_trial(self, run_id: int, trial: Trial) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO trials (run_id, idx, arch_json, val_acc, seconds, error, val_perplexity) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, trial.index, json.dumps(trial.arch), trial.val_acc, trial.seconds, trial.error,
                 trial.val_perplexity),
            )

    def checkpoint(self, run_id: int, state: dict[str, Any], search_seconds: float,
                   tensors: TensorState | None = None) -> None:
        """Keep a strategy's state; its tensors, if any, in the same transaction, which drops
        the epoch checkpoints of the candidates it holds the trials of."""
        with self.conn:
            self.conn.execute("UPDATE runs SET state_json=?, search_seconds=? WHERE id=?",
                              (json.dumps(state), search_seconds, run_id))
            if tensors:
                self.conn.execute("INSERT OR REPLACE INTO checkpoint_tensors VALUES (?, ?)",
                                  (run_id, tensors_to_bytes(tensors)))
            self.conn.execute("DELETE FROM stage_checkpoints WHERE run_id=? AND stage LIKE 'candidate %'", (run_id,))

    def save_stage(self, run_id: int, stage: str, state: dict[str, Any]) -> None:
        """Keep the epoch checkpoint of one of the run's trainings (``final``, ``candidate <index>``)."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO stage_checkpoints VALUES (?, ?, ?, ?)",
                              (run_id, stage, state["epochs"], tensors_to_bytes(state)))

    def stage_state(self, run_id: int, stage: str) -> dict[str, Any] | None:
        """That checkpoint, on the CPU; None where there is none."""
        row = self.conn.execute("SELECT data FROM stage_checkpoints WHERE run_id=? AND stage=?",
                                (run_id, stage)).fetchone()
        return None if row is None else tensors_from_bytes(row["data"])

    def stage_epochs(self, run_id: int) -> dict[str, int]:
        """The epochs each of the run's epoch checkpoints holds, by stage."""
        rows = self.conn.execute("SELECT stage, epochs FROM stage_checkpoints WHERE run_id=? ORDER BY stage", (run_id,))
        return {row["stage"]: row["epochs"] for row in rows}

    def checkpoint_tensors(self, run_id: int) -> TensorState:
        """The tensors of the run's last checkpoint, on the CPU; {} if it has none."""
        row = self.conn.execute("SELECT data FROM checkpoint_tensors WHERE run_id=?", (run_id,)).fetchone()
        return {} if row is None else tensors_from_bytes(row["data"])

    def keep_shared_stage(self, key: str, run_id: int, seconds: float, checkpoint: Checkpoint) -> None:
        """Keep the shared stage ``run_id`` completed, under ``key`` (a newer one replaces it)."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO shared_stages VALUES (?, ?, ?, ?, ?)",
                              (key, run_id, seconds, json.dumps(checkpoint.state), tensors_to_bytes(checkpoint.tensors)))

    def shared_stage(self, key: str) -> SharedStage | None:
        """The shared stage kept under ``key``, its tensors on the CPU; None where there is none."""
        row = self.conn.execute("SELECT run_id, seconds, state_json, data FROM shared_stages WHERE stage_key=?",
                                (key,)).fetchone()
        if row is None:
            return None
        return SharedStage(row["run_id"], row["seconds"],
                           Checkpoint(json.loads(row["state_json"]), tensors_from_bytes(row["data"])))

    def finish(self, run_id: int, outcome: RunOutcome, weights: TensorState | None = None) -> None:
        """Record the result, with the final network's ``weights`` where given, and supersede
        older finished runs of the same key, atomically."""
        blob = None if weights is None else tensors_to_bytes(weights)
        with self.conn:
            if blob is not None:
                self.conn.execute("INSERT OR REPLACE INTO final_weights VALUES (?, ?, ?)", (run_id, blob, WEIGHTS_FORMAT))
            key = self.conn.execute("SELECT method, seed, protocol_hash, data, variant FROM runs WHERE id=?",
                                    (run_id,)).fetchone()
            self.conn.execute(f"UPDATE runs SET status='superseded' WHERE {KEY_COLUMNS} AND status='finished' AND id<>?",
                              (*key, run_id))
            self.conn.execute(
                "UPDATE runs SET status='finished', finished_at=?, search_seconds=?, eval_seconds=?, genotype_json=?, "
                "val_acc=?, test_acc=?, params=?, flops=?, details_json=?, state_json=NULL, error=NULL, "
                "val_perplexity=?, test_perplexity=? WHERE id=?",
                (_now(), outcome.search_seconds, outcome.eval_seconds, json.dumps(outcome.genotype), outcome.val_acc,
                 outcome.test_acc, outcome.params, outcome.flops, json.dumps(outcome.details), outcome.val_perplexity,
                 outcome.test_perplexity, run_id),
            )
            freed = sum(self.conn.execute(f"DELETE FROM {table} WHERE run_id=?", (run_id,)).rowcount
                        for table in ("checkpoint_tensors", "stage_checkpoints"))
        if freed:
            self.conn.execute("VACUUM")  # give the checkpoint's pages back: stores are kept in git

    def final_weights(self, run_id: int) -> TensorState | None:
        """The run's final network's state on the CPU (:data:`WEIGHTS_FORMAT`); None where the
        store has none: a run kept without them, or a store older than the table opened read-only."""
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='final_weights'").fetchone() is None:
            return None
        row = self.conn.execute("SELECT data, format FROM final_weights WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        if row["format"] != WEIGHTS_FORMAT:
            raise NasbenchError(f"the final weights of run {run_id} in {self.path} are stored as {row['format']!r}, "
                                f"this nasbench reads {WEIGHTS_FORMAT!r}")
        return tensors_from_bytes(row["data"])

    def fail(self, run_id: int, error: str, status: str = "failed") -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET status=?, error=? WHERE id=?", (status, error, run_id))


    # -- rankings (`nasbench rank`), each write one transaction ----------------------
    def find_ranking(self, key: RankingKey) -> sqlite3.Row | None:
        return self.conn.execute(f"SELECT * FROM rankings WHERE {RANKING_KEY_COLUMNS}", key.values()).fetchone()

    def rankings(self, status: str = "finished") -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM rankings WHERE status=? ORDER BY id", (status,)).fetchall()

    def ranking_pairs(self, ranking_id: int) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM ranking_pairs WHERE ranking_id=? ORDER BY idx",
                                 (ranking_id,)).fetchall()

    def start_ranking(self, ranking: RankingStart) -> int:
        with self.conn:
            cursor = self._insert("rankings", {**dict(zip(RANKING_KEY_FIELDS, ranking.key.values())),
                                               "top_k": ranking.top_k, "status": "running", "started_at": _now()},
                                  ranking.provenance)
        return int(cursor.lastrowid)

    def resume_ranking(self, ranking_id: int) -> None:
        with self.conn:
            self.conn.execute("UPDATE rankings SET status='running', error=NULL WHERE id=?", (ranking_id,))

    def record_accuracy(self, ranking_id: int, index: int, arch: dict[str, Any], measure: str, accuracy: float,
                        seconds: float, ranking_seconds: float) -> None:
        """Keep one accuracy of a ranking's architecture (``measure``: one of ``MEASURES``)
        as soon as it is measured, with the ranking's time so far."""
        if measure not in MEASURES:
            raise ValueError(f"unknown ranking measure {measure!r}")
        with self.conn:
            self.conn.execute(
                f"INSERT INTO ranking_pairs (ranking_id, idx, arch_json, {measure}_acc, {measure}_seconds) "
                f"VALUES (?, ?, ?, ?, ?) ON CONFLICT (ranking_id, idx) DO UPDATE SET "
                f"{measure}_acc=excluded.{measure}_acc, {measure}_seconds=excluded.{measure}_seconds",
                (ranking_id, index, json.dumps(arch), accuracy, seconds),
            )
            self.conn.execute("UPDATE rankings SET seconds=? WHERE id=?", (ranking_seconds, ranking_id))

    def measured_standalone(self, seed: int, protocol_hash: str, data: str, index: int,
                            arch: dict[str, Any]) -> sqlite3.Row | None:
        """The stand-alone accuracy (and seconds) any ranking measured for ``arch`` as its
        ``index``-th architecture under the same seed, protocol and data: the same candidate
        training, whatever the supernet method."""
        return self.conn.execute(
            "SELECT p.standalone_acc, p.standalone_seconds FROM ranking_pairs p JOIN rankings r ON r.id = p.ranking_id "
            "WHERE r.seed=? AND r.protocol_hash=? AND r.data=? AND p.idx=? AND p.arch_json=? "
            "AND p.standalone_acc IS NOT NULL ORDER BY p.ranking_id LIMIT 1",
            (seed, protocol_hash, data, index, json.dumps(arch)),
        ).fetchone()

    def set_ranking_supernet_run(self, ranking_id: int, run_id: int | None) -> None:
        """The finished run whose stored supernet the ranking scores with (None: its own)."""
        with self.conn:
            self.conn.execute("UPDATE rankings SET supernet_run_id=? WHERE id=?", (run_id, ranking_id))

    def keep_ranking_supernet(self, ranking_id: int, state: dict[str, Any], tensors: TensorState) -> None:
        """The checkpoint of the supernet search a ranking runs itself (to resume it)."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO ranking_supernets VALUES (?, ?, ?)",
                              (ranking_id, json.dumps(state), tensors_to_bytes(tensors)))

    def ranking_supernet(self, ranking_id: int) -> tuple[dict[str, Any], TensorState] | None:
        row = self.conn.execute("SELECT * FROM ranking_supernets WHERE ranking_id=?", (ranking_id,)).fetchone()
        return None if row is None else (json.loads(row["state_json"]), tensors_from_bytes(row["data"]))

    def drop_ranking_supernet(self, ranking_id: int) -> None:
        """Once every architecture has its supernet accuracy: the supernet is not needed again."""
        with self.conn:
            freed = self.conn.execute("DELETE FROM ranking_supernets WHERE ranking_id=?", (ranking_id,)).rowcount
        if freed:
            self.conn.execute("VACUUM")  # as for finished runs: stores are kept in git

    def finish_ranking(self, ranking_id: int, outcome: RankingOutcome) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE rankings SET status='finished', finished_at=?, seconds=?, kendall_tau=?, spearman_rho=?, "
                "top_k_overlap=?, error=NULL WHERE id=?",
                (_now(), outcome.seconds, outcome.kendall_tau, outcome.spearman_rho, outcome.top_k_overlap, ranking_id),
            )

    def fail_ranking(self, ranking_id: int, error: str, status: str = "failed") -> None:
        with self.conn:
            self.conn.execute("UPDATE rankings SET status=?, error=? WHERE id=?", (status, error, ranking_id))


def tensors_to_bytes(tensors: TensorState) -> bytes:
    import torch  # here, not above: opening a store (e.g. to check a path, list its runs) needs no torch

    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getvalue()


def tensors_from_bytes(data: bytes) -> TensorState:
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def ranking_record(store: Store, row: sqlite3.Row) -> dict[str, Any]:
    """The public JSON view of a stored ranking (what ``nasbench rank --json`` prints and
    the report's rankings.csv holds)."""
    pairs = store.ranking_pairs(row["id"])
    return {
        "ranking_id": row["id"],
        "method": row["method"],
        "protocol": row["protocol"],
        "protocol_hash": row["protocol_hash"],
        "seed": row["seed"],
        "data": row["data"],
        "samples": row["samples"],
        "status": row["status"],
        "kendall_tau": row["kendall_tau"],
        "spearman_rho": row["spearman_rho"],
        "top_k": row["top_k"],
        "top_k_overlap": row["top_k_overlap"],
        "supernet": "trained by the ranking" if row["supernet_run_id"] is None else f"run {row['supernet_run_id']}",
        "supernet_scoring": "single path, batch norm recalibrated on search-train, accuracy on search-validation",
        "standalone": "the protocol's candidate training on search-train, accuracy on search-validation",
        "seconds": row["seconds"],
        "device": row["device"],
        "device_fingerprint": row["device_fingerprint"],
        "software": json.loads(row["software_json"]),
        "git_commit": row["git_commit"],
        "pairs": [{"index": p["idx"], "arch": json.loads(p["arch_json"]), "supernet_acc": p["supernet_acc"],
                   "standalone_acc": p["standalone_acc"]} for p in pairs],
    }


def iter_finished(path: Path) -> Iterator[sqlite3.Row]:
    """Finished runs of the store at ``path``; a missing store is an error, not an empty one."""
    with closing(Store(path, readonly=True)) as store:
        yield from store.runs("finished")
