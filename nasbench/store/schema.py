"""The store's SQLite schema: runs and rankings with the same provenance columns, their
key columns, and the migrations of older stores, which keep the schema version: run variants
(a column added in place), final weights, stage checkpoints and shared stages (tables created
where they are missing; a store opened read-only without them has none)."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from nasbench.types import Provenance

SCHEMA_VERSION = 1

PROVENANCE_COLUMNS = ("protocol", "protocol_json", "device", "device_fingerprint", "software_json", "git_commit")
"""Where a stored run or ranking comes from (:class:`~nasbench.types.Provenance`), the same columns in both."""
PROVENANCE_SQL = """protocol TEXT NOT NULL,
    protocol_json TEXT NOT NULL,
    device TEXT NOT NULL,
    device_fingerprint TEXT NOT NULL,
    software_json TEXT NOT NULL,
    git_commit TEXT,"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    method TEXT NOT NULL,
    strategy_class TEXT NOT NULL,
    space TEXT NOT NULL,
    protocol_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    data TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('running', 'interrupted', 'failed', 'finished', 'superseded')),
    error TEXT,
{provenance}
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
    state_json TEXT,
    val_perplexity REAL,
    test_perplexity REAL
);
CREATE TABLE IF NOT EXISTS trials (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    idx INTEGER NOT NULL,
    arch_json TEXT NOT NULL,
    val_acc REAL,
    seconds REAL NOT NULL,
    error TEXT,
    val_perplexity REAL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS checkpoint_tensors (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS final_weights (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    data BLOB NOT NULL,
    format TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stage_checkpoints (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    stage TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, stage)
);
CREATE TABLE IF NOT EXISTS shared_stages (
    stage_key TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seconds REAL NOT NULL,
    state_json TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rankings (
    id INTEGER PRIMARY KEY,
    method TEXT NOT NULL,
    samples INTEGER NOT NULL,
    top_k INTEGER NOT NULL,
    protocol_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'interrupted', 'failed', 'finished')),
    error TEXT,
{provenance}
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seconds REAL NOT NULL DEFAULT 0,
    supernet_run_id INTEGER REFERENCES runs(id),
    kendall_tau REAL,
    spearman_rho REAL,
    top_k_overlap REAL,
    UNIQUE (method, seed, protocol_hash, data, samples)
);
CREATE TABLE IF NOT EXISTS ranking_pairs (
    ranking_id INTEGER NOT NULL REFERENCES rankings(id),
    idx INTEGER NOT NULL,
    arch_json TEXT NOT NULL,
    supernet_acc REAL,
    standalone_acc REAL,
    supernet_seconds REAL,
    standalone_seconds REAL,
    PRIMARY KEY (ranking_id, idx)
);
CREATE TABLE IF NOT EXISTS ranking_supernets (
    ranking_id INTEGER PRIMARY KEY REFERENCES rankings(id),
    state_json TEXT NOT NULL,
    data BLOB NOT NULL
);
""".format(provenance="    " + PROVENANCE_SQL)
WEIGHTS_FORMAT = "torch.save state_dict, CPU, no auxiliary head"
"""What a ``final_weights`` blob holds: the deployed final network's state (the auxiliary head
trains only), as ``Store.final_weights`` reads it back."""
def show_missing_perplexities(conn: sqlite3.Connection) -> None:
    """A store from before language models, opened read-only (so not migrated), read as if
    it had the perplexity columns, all empty: temporary views shadow its tables for this
    connection alone, and the file is not touched."""
    for table, names in PERPLEXITY_COLUMNS.items():
        present = {row["name"] for row in conn.execute(f"PRAGMA main.table_info({table})")}
        missing = [name for name in names if name not in present]
        if present and missing:
            empty = ", ".join(f"NULL AS {name}" for name in missing)
            conn.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {empty} FROM main.{table}")


PERPLEXITY_COLUMNS = {"runs": ("val_perplexity", "test_perplexity"), "trials": ("val_perplexity",)}
"""The language models' metric columns, added in place to older stores."""
KEY_INDEX = "CREATE INDEX IF NOT EXISTS runs_key ON runs (method, seed, protocol_hash, data, variant, status)"
KEY_FIELDS = ("method", "seed", "protocol_hash", "data", "variant")
KEY_COLUMNS = " AND ".join(f"{name}=?" for name in KEY_FIELDS)
RANKING_KEY_FIELDS = ("method", "seed", "protocol_hash", "data", "samples")
RANKING_KEY_COLUMNS = " AND ".join(f"{name}=?" for name in RANKING_KEY_FIELDS)


def provenance_values(provenance: Provenance) -> tuple[Any, ...]:
    """A provenance record as the values of :data:`PROVENANCE_COLUMNS`."""
    return (provenance.protocol, provenance.protocol_json, provenance.device, provenance.device_fingerprint,
            json.dumps(provenance.software), provenance.git_commit)


def add_variant_column(conn: sqlite3.Connection) -> None:
    """Stores written before run variants existed: every run in them is a plain one. Stores
    written before language models: none of their runs or trials has a perplexity."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(runs)")}
    if "variant" not in columns:
        conn.execute("DROP INDEX IF EXISTS runs_key")
        conn.execute("ALTER TABLE runs ADD COLUMN variant TEXT NOT NULL DEFAULT ''")
    for table, names in PERPLEXITY_COLUMNS.items():
        present = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name in names:
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} REAL")
