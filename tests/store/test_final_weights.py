"""The final weights a store keeps per run: written with the finished result, read back on the
CPU, absent where a run kept none, and stores older than the table still open."""
from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
import torch

from nasbench.errors import NasbenchError
from nasbench.store import RunKey, RunOutcome, RunStart, Store, iter_finished
from nasbench.store.schema import SCHEMA_VERSION, WEIGHTS_FORMAT
from nasbench.types import Provenance

KEY = RunKey("random", 0, "abc123abc123", "npz-0123456789ab")
WEIGHTS = {"stem.0.weight": torch.arange(24.0).view(2, 3, 2, 2), "stem.1.num_batches_tracked": torch.tensor(7)}
OUTCOME = RunOutcome(search_seconds=1.0, eval_seconds=2.0, genotype={"g": 1}, val_acc=0.5, test_acc=0.5, params=24,
                     flops=100, details={})


def start(store: Store, key: RunKey = KEY) -> int:
    provenance = Provenance(protocol="smoke", protocol_json="{}", device="cpu test", device_fingerprint="cpu-test",
                            software={}, git_commit=None)
    return store.start(RunStart(key=key, strategy_class="RS", space="cell", provenance=provenance))


def test_weights_are_kept_with_the_finished_result(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        kept, without = start(store), start(store, RunKey("random", 1, *KEY.values()[2:]))
        assert store.final_weights(kept) is None
        store.finish(kept, OUTCOME, WEIGHTS)
        store.finish(without, OUTCOME)
        loaded = store.final_weights(kept)
        assert set(loaded) == set(WEIGHTS) and all(torch.equal(loaded[k], v) for k, v in WEIGHTS.items())
        assert store.final_weights(without) is None
        assert [tuple(r) for r in store.conn.execute("SELECT run_id, format FROM final_weights")] == [(kept, WEIGHTS_FORMAT)]
    with Store(tmp_path / "s.sqlite", readonly=True) as store:
        assert torch.equal(store.final_weights(kept)["stem.0.weight"], WEIGHTS["stem.0.weight"])
    listed = list(iter_finished(tmp_path / "s.sqlite"))  # what the report reads: no blob in it
    assert len(listed) == 2 and not any(isinstance(value, bytes) for row in listed for value in tuple(row))


def test_a_store_from_before_the_table_opens_and_gets_it(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as store:
        run_id = start(store)
        store.finish(run_id, OUTCOME)
        store.conn.execute("DROP TABLE final_weights")
        store.conn.commit()
    with Store(path, readonly=True) as store:  # read-only: nothing created, no weights
        assert store.final_weights(run_id) is None
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name='final_weights'").fetchone() is None
    with Store(path) as store:
        store.finish(start(store), OUTCOME, WEIGHTS)
        assert store.final_weights(run_id) is None
        assert store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_weights_of_an_unknown_format_are_refused(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        run_id = start(store)
        store.finish(run_id, OUTCOME, WEIGHTS)
        store.conn.execute("UPDATE final_weights SET format='safetensors'")
        store.conn.commit()
        with pytest.raises(NasbenchError, match="stored as 'safetensors'"):
            store.final_weights(run_id)
