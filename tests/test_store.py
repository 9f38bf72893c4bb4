"""The SQLite results store: lifecycle of a run, superseding, trials, bad files."""
from __future__ import annotations

import json
import sqlite3

import pytest
import torch
from helpers import sha256

from nasbench.errors import NasbenchError
from nasbench.store import RunKey, RunOutcome, RunStart, Store, iter_finished
from nasbench.types import Provenance, Trial

KEY = RunKey("random", 0, "abc123abc123", "npz-0123456789ab")
OTHER_SEED = RunKey("random", 1, "abc123abc123", "npz-0123456789ab")


def start(store: Store, key: RunKey = KEY) -> int:
    provenance = Provenance(protocol="smoke", protocol_json="{}", device="cpu test", device_fingerprint="cpu-test",
                            software={"torch": "x"}, git_commit="deadbeef")
    return store.start(RunStart(key=key, strategy_class="RS", space="cell", provenance=provenance))


def outcome(test_acc: float) -> RunOutcome:
    return RunOutcome(search_seconds=1.5, eval_seconds=2.5, genotype={"g": test_acc}, val_acc=0.25,
                      test_acc=test_acc, params=1234, flops=5678, details={"note": "n"})


def statuses(store: Store) -> dict[int, str]:
    return {row["id"]: row["status"] for row in store.conn.execute("SELECT id, status FROM runs")}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "sub" / "s.sqlite") as s:
        yield s


def test_start_checkpoint_finish_find(store):
    run_id = start(store)
    assert store.find(KEY, ("finished",)) is None
    row = store.find(KEY, ("running",))
    assert row["id"] == run_id and row["status"] == "running" and row["started_at"]
    assert (row["method"], row["seed"], row["protocol_hash"], row["data"]) == ("random", 0, KEY.protocol_hash, KEY.data)
    assert json.loads(row["software_json"]) == {"torch": "x"} and row["git_commit"] == "deadbeef"
    assert store.find(OTHER_SEED, ("running",)) is None

    store.checkpoint(run_id, {"trials": [1, 2]}, 3.25)
    row = store.find(KEY, ("running",))
    assert json.loads(row["state_json"]) == {"trials": [1, 2]} and row["search_seconds"] == 3.25

    store.finish(run_id, outcome(0.75))
    assert store.find(KEY, ("running", "interrupted", "failed")) is None
    row = store.find(KEY, ("finished",))
    assert row["id"] == run_id and row["state_json"] is None and row["finished_at"]
    assert (row["search_seconds"], row["eval_seconds"], row["val_acc"], row["test_acc"], row["params"],
            row["flops"]) == (1.5, 2.5, 0.25, 0.75, 1234, 5678)
    assert json.loads(row["genotype_json"]) == {"g": 0.75} and json.loads(row["details_json"]) == {"note": "n"}
    assert [r["id"] for r in store.runs()] == [run_id]


def test_finish_supersedes_only_when_the_new_run_finishes(store):
    old = start(store)
    store.finish(old, outcome(0.5))
    neighbour = start(store, OTHER_SEED)
    store.finish(neighbour, outcome(0.6))

    failing = start(store)
    assert statuses(store)[old] == "finished"  # starting a new attempt does not touch the result
    store.fail(failing, "ValueError: boom")
    assert statuses(store) == {old: "finished", neighbour: "finished", failing: "failed"}
    assert store.find(KEY, ("finished",))["test_acc"] == 0.5
    assert store.find(KEY, ("failed",))["error"] == "ValueError: boom"

    interrupted = start(store)
    store.fail(interrupted, "interrupted by the user", status="interrupted")
    assert store.find(KEY, ("finished",))["id"] == old

    newer = start(store)
    store.finish(newer, outcome(0.9))
    assert statuses(store) == {old: "superseded", neighbour: "finished", failing: "failed",
                               interrupted: "interrupted", newer: "finished"}
    assert store.find(KEY, ("finished",))["test_acc"] == 0.9
    assert [r["id"] for r in store.runs()] == [neighbour, newer]
    assert [r["id"] for r in store.runs("superseded")] == [old]


def test_variants_are_runs_of_their_own(store):
    constrained = RunKey(*KEY.values()[:4], variant="flops<=1e+06,weight=0.01")
    plain_id, constrained_id = start(store), start(store, constrained)
    store.finish(constrained_id, outcome(0.4))
    store.finish(plain_id, outcome(0.5))  # supersedes nothing: the other variant is another experiment
    assert statuses(store) == {plain_id: "finished", constrained_id: "finished"}
    assert store.find(KEY, ("finished",))["id"] == plain_id
    assert store.find(constrained, ("finished",))["id"] == constrained_id
    again = start(store, constrained)
    store.finish(again, outcome(0.6))
    assert statuses(store) == {plain_id: "finished", constrained_id: "superseded", again: "finished"}


def test_a_store_from_before_variants_gets_the_column(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as s:
        run_id = start(s)
        s.finish(run_id, outcome(0.5))
        s.conn.execute("DROP INDEX runs_key")
        s.conn.execute("ALTER TABLE runs DROP COLUMN variant")
        s.conn.commit()
    with Store(path) as s:
        assert s.find(KEY, ("finished",))["variant"] == ""
        assert s.find(RunKey(*KEY.values()[:4], variant="x"), ("finished",)) is None


def test_a_store_from_before_language_models_gets_the_perplexity_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as s:
        run_id = start(s)
        s.add_trial(run_id, Trial(0, {}, 0.5, 1.0))
        s.finish(run_id, outcome(0.5))
        for table, column in (("runs", "val_perplexity"), ("runs", "test_perplexity"), ("trials", "val_perplexity")):
            s.conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        s.conn.commit()
    before = path.read_bytes()
    with Store(path, readonly=True) as s:  # read as migrated, the file untouched
        assert s.runs()[0]["test_perplexity"] is None and s.trials(run_id) == [Trial(0, {}, 0.5, 1.0)]
    assert path.read_bytes() == before
    with Store(path) as s:
        row = s.find(KEY, ("finished",))
        assert row["test_acc"] == 0.5 and row["test_perplexity"] is None and row["val_perplexity"] is None
        assert s.trials(run_id) == [Trial(0, {}, 0.5, 1.0)]


def test_a_language_model_run_keeps_its_perplexities(store):
    run_id = start(store)
    store.add_trial(run_id, Trial(0, {"cell": 1}, None, 2.0, val_perplexity=812.5))
    store.finish(run_id, RunOutcome(search_seconds=1.0, eval_seconds=2.0, genotype={"cell": 1}, val_acc=None,
                                    test_acc=None, params=10, flops=20, details={}, val_perplexity=812.5,
                                    test_perplexity=790.25))
    row = store.find(KEY, ("finished",))
    assert (row["val_acc"], row["test_acc"], row["val_perplexity"], row["test_perplexity"]) == (None, None, 812.5, 790.25)
    assert store.trials(run_id) == [Trial(0, {"cell": 1}, None, 2.0, val_perplexity=812.5)]


def test_find_returns_the_newest_match(store):
    first, second = start(store), start(store)
    store.fail(first, "x", status="interrupted")
    store.fail(second, "y", status="interrupted")
    assert store.find(KEY, ("interrupted",))["id"] == second


def test_checkpoint_tensors_go_with_the_state_and_go_when_finished(store):
    run_id, other = start(store), start(store, OTHER_SEED)
    store.checkpoint(run_id, {"epochs_done": 1}, 1.0, {"weights": torch.arange(6.0).view(2, 3),
                                                      "optimiser": {"state": {0: {"step": torch.tensor(3.0)}}}})
    store.checkpoint(other, {"trials": []}, 1.0)  # a black-box method's checkpoint has no tensors
    loaded = store.checkpoint_tensors(run_id)
    assert torch.equal(loaded["weights"], torch.arange(6.0).view(2, 3))
    assert loaded["optimiser"]["state"][0]["step"].item() == 3.0
    assert store.checkpoint_tensors(other) == {}
    store.checkpoint(run_id, {"epochs_done": 2}, 2.0, {"weights": torch.zeros(2)})  # the newest replaces it
    assert set(store.checkpoint_tensors(run_id)) == {"weights"}
    assert torch.equal(store.checkpoint_tensors(run_id)["weights"], torch.zeros(2))
    big = {"weights": torch.zeros(2**20)}  # 4 MiB that finishing must give back to the file system
    store.checkpoint(run_id, {"epochs_done": 3}, 3.0, big)
    size_with_checkpoint = store.path.stat().st_size
    store.finish(run_id, outcome(0.5))
    assert store.checkpoint_tensors(run_id) == {}
    assert store.path.stat().st_size < size_with_checkpoint - 2**21


def test_resume_clears_the_error(store):
    run_id = start(store)
    store.fail(run_id, "interrupted by the user", status="interrupted")
    store.resume(run_id)
    row = store.find(KEY, ("running",))
    assert row["id"] == run_id and row["error"] is None


def test_trials_round_trip(store):
    run_id = start(store)
    trials = [Trial(0, {"normal": [["sep_conv_3x3", 0]]}, 0.125, 1.5),
              Trial(1, {"normal": []}, None, 0.25, "RuntimeError: boom"),
              Trial(2, {"x": [1, 2]}, 1.0, 3.0)]
    for trial in trials:
        store.add_trial(run_id, trial)
    other = start(store, OTHER_SEED)
    store.add_trial(other, Trial(0, {}, 0.5, 1.0))
    assert store.trials(run_id) == trials
    assert store.trials(other) == [Trial(0, {}, 0.5, 1.0)]
    store.add_trial(run_id, Trial(1, {"normal": []}, 0.5, 0.75))  # a re-evaluated step replaces its trial
    assert store.trials(run_id)[1] == Trial(1, {"normal": []}, 0.5, 0.75)
    assert len(store.trials(run_id)) == 3


def test_store_persists_across_connections(tmp_path):
    path = tmp_path / "p.sqlite"
    with Store(path) as first:
        run_id = start(first)
        first.finish(run_id, outcome(0.5))
    with Store(path) as second:
        assert second.find(KEY, ("finished",))["id"] == run_id
    assert [row["id"] for row in iter_finished(path)] == [run_id]


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 50)
    before = sha256(path)
    with pytest.raises(NasbenchError, match=r"--store .*notes\.sqlite is not a nasbench results database"):
        Store(path)
    assert sha256(path) == before


def test_other_schema_version(tmp_path):
    path = tmp_path / "future.sqlite"
    with Store(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.close()
    with pytest.raises(NasbenchError, match="schema version 99"):
        Store(path)


def test_missing_store_is_an_error_for_reading(tmp_path):
    with pytest.raises(NasbenchError, match="no results store at"):
        list(iter_finished(tmp_path / "none.sqlite"))
    assert not (tmp_path / "none.sqlite").exists()
