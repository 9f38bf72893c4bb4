"""The epoch checkpoints of a run's trainings: kept per (run, stage), a candidate's dropped
with the search checkpoint that holds its trial, all of them dropped (and their pages given
back) when the run finishes; stores older than the table open and get it."""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import torch

from nasbench.executor.inprocess import LocalMailbox
from nasbench.runner.task import MailedEpochs, Said, StageSaved
from nasbench.store import RunKey, RunOutcome, RunStart, Store
from nasbench.types import Provenance

KEY = RunKey("random", 0, "abc123abc123", "npz-0123456789ab")
OUTCOME = RunOutcome(search_seconds=1.0, eval_seconds=2.0, genotype={"g": 1}, val_acc=0.5, test_acc=0.5, params=24,
                     flops=100, details={})


def start(store: Store) -> int:
    provenance = Provenance(protocol="smoke", protocol_json="{}", device="cpu test", device_fingerprint="cpu-test",
                            software={}, git_commit=None)
    return store.start(RunStart(key=KEY, strategy_class="RS", space="cell", provenance=provenance))


def state(epochs: int) -> dict:
    return {"epochs": epochs, "model": {"w": torch.full((256, 256), float(epochs))}, "genotype": "{}"}


def test_stage_checkpoints_live_until_their_trial_or_result_is_kept(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        run_id = start(store)
        assert store.stage_state(run_id, "candidate 0") is None and store.stage_epochs(run_id) == {}
        store.save_stage(run_id, "candidate 0", state(1))
        store.save_stage(run_id, "candidate 0", state(2))
        assert store.stage_epochs(run_id) == {"candidate 0": 2}
        assert torch.equal(store.stage_state(run_id, "candidate 0")["model"]["w"], torch.full((256, 256), 2.0))
        store.checkpoint(run_id, {"trials": [{}]}, 1.0)  # the search checkpoint holding candidate 0's trial
        assert store.stage_epochs(run_id) == {}
        store.save_stage(run_id, "final", state(3))
        store.checkpoint(run_id, {"trials": [{}]}, 1.0)
        assert store.stage_epochs(run_id) == {"final": 3}
        full = path.stat().st_size
        store.finish(run_id, OUTCOME)
        assert store.stage_epochs(run_id) == {} and path.stat().st_size < full - 200_000  # vacuumed


def test_a_store_from_before_the_table_opens_and_gets_it(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as store:
        run_id = start(store)
        store.conn.execute("DROP TABLE stage_checkpoints")
        store.conn.commit()
    with Store(path) as store:
        store.save_stage(run_id, "final", state(1))
        store.finish(run_id, OUTCOME)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM stage_checkpoints").fetchone() == (0,)


def test_a_training_resumes_only_the_checkpoint_of_its_own_architecture(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        run_id, said = start(store), []

        def handle(message):  # as the driver stores a task's messages
            if isinstance(message, StageSaved):
                store.save_stage(message.run_id, message.label, message.state)
            elif isinstance(message, Said):
                said.append(message.text)

        def kept(genotype):
            return MailedEpochs(LocalMailbox(handle), run_id, "random seed 0", "candidate 3", json.dumps(genotype),
                                store.stage_state(run_id, "candidate 3"), epochs=5)

        kept({"normal": [1]}).save(state(2))
        assert kept({"normal": [2]}).load() is None and said == []
        assert kept({"normal": [1]}).load()["epochs"] == 2
        assert said == [f"random seed 0 (run {run_id}): candidate 3 resumes from epoch 2 of 5"]
