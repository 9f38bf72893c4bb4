"""Trainings killed with SIGKILL in real processes resume from their last epoch: the final
training (random-arch, whose search trains nothing) and a candidate's training (random
search); the resumed run equals an uninterrupted one and redoes at most one epoch."""
from __future__ import annotations

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

LONG_TRAININGS = ('base = "smoke"\n[search]\ncandidates = 2\n[candidate]\nepochs = 4\n[final]\nepochs = 6\n'
                  '[language_model]\ncandidate_epochs = 4\nfinal_epochs = 4\n')
"""Trainings of several epochs of about a second each: time to kill one between two epochs."""
RESULT = ("genotype_json", "val_acc", "test_acc", "val_perplexity", "test_perplexity", "params", "flops")


@pytest.fixture(scope="module")
def protocol(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("protocol") / "long-trainings.toml"
    path.write_text(LONG_TRAININGS)
    return path


def arguments(method: str, store: Path, protocol: Path, data: tuple) -> tuple:
    return ("run", "--method", method, "--protocol", protocol, "--seeds", "0", "--store", store, *data,
            "--no-progress", "--no-estimate", "--json")


@pytest.fixture
def data(task, data_path, ptb_path) -> tuple:
    """The run's data arguments: CIFAR-10's subset, or PTB's stand-in on the enas-rnn space
    (the language model's own training loop and checkpoint)."""
    if task == "image":
        return ("--data", data_path)
    return ("--space", "enas-rnn", "--data", ptb_path, "--ptb-stand-in")


def stage_epochs(store: Path) -> dict[str, int]:
    """The store's epoch checkpoints, by stage (none before the store has its tables)."""
    with closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True, timeout=30)) as conn:
        try:
            return dict(conn.execute("SELECT stage, epochs FROM stage_checkpoints").fetchall())
        except sqlite3.OperationalError:  # the schema is being created
            return {}


def kill_in(method: str, stage: str, store: Path, protocol: Path, data: tuple) -> int:
    """Start a run and SIGKILL it once ``stage``'s training has saved an epoch and has one
    more to go; the epochs its checkpoint holds after the kill."""
    process = subprocess.Popen([sys.executable, "-m", "nasbench", *map(str, arguments(method, store, protocol, data))],
                               cwd=REPO_ROOT, env={**os.environ, **SUBPROCESS_ENV}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not 1 <= (store.exists() and stage_epochs(store).get(stage, 0)) <= 2:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return stage_epochs(store)[stage]


@pytest.mark.parametrize(("method", "stage", "epochs", "task"), [
    ("random-arch", "final", 6, "image"), ("random", "candidate 0", 4, "image"),
    ("random-arch", "final", 4, "language-model"),  # a language model's candidate saves by the same checkpoint
])
def test_a_training_killed_between_epochs_resumes_from_its_last(tmp_path, protocol, data, method, stage, epochs):
    reference = tmp_path / "uninterrupted.sqlite"
    assert run_cli(*arguments(method, reference, protocol, data)).code == 0
    store = tmp_path / "killed.sqlite"
    saved = kill_in(method, stage, store, protocol, data)
    resumed = run_cli(*arguments(method, store, protocol, data))
    assert resumed.code == 0, resumed.err
    said = re.search(rf"{'the final training' if stage == 'final' else stage} resumes from epoch (\d+) of {epochs}",
                     resumed.err)
    assert said is not None, resumed.err
    assert int(said.group(1)) == saved  # only the epoch in flight at the kill is trained again
    (row,), (expected,) = store_rows(store), store_rows(reference)
    assert row["status"] == "finished" and {k: row[k] for k in RESULT} == {k: expected[k] for k in RESULT}
    assert stage_epochs(store) == {}  # a finished run keeps no checkpoint
