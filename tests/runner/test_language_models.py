"""`nasbench run` on the language-model spaces: every method that searches them searches,
final-trains and is stored with perplexities (never accuracies), the corpus' identity, FLOPs
per word and its own history; bad combinations are one line."""
from __future__ import annotations

import json
import math

import pytest
from helpers import run_cli, store_rows, store_trials

from nasbench.corpus import load_corpus

pytestmark = pytest.mark.slow  # a minute: five searches and final trainings

RUNS = {"enas-rnn": ("random", "darts", "darts-2nd", "enas"), "nasrl-rnn": ("nas-rl",)}
"""random-arch runs through `nasbench run` in tests/report/test_language_model.py and tests/test_resume_final.py."""


@pytest.fixture(scope="module")
def stored(tmp_path_factory, ptb_path):
    """One smoke seed of each method on each language-model space, in one store."""
    store = tmp_path_factory.mktemp("lm") / "runs.sqlite"
    records = {}
    for space, methods in RUNS.items():
        result = run_cli("run", "--method", ",".join(methods), "--space", space, "--protocol", "smoke", "--seeds", "0",
                         "--data", ptb_path, "--ptb-stand-in", "--store", store, "--no-progress", "--json")
        assert result.code == 0, result.err
        records |= {(space, r["method"]): r for r in map(json.loads, result.out.splitlines())}
    return store, records


def test_every_method_is_stored_with_perplexities(stored, ptb_path):
    store, records = stored
    rows = {(r["space"], r["method"]): r for r in store_rows(store)}
    assert set(rows) == {(space, method) for space, methods in RUNS.items() for method in methods}
    identity = load_corpus(str(ptb_path), stand_in=True).identity
    for (space, method), row in rows.items():
        assert row["status"] == "finished" and row["test_acc"] is None and row["val_acc"] is None, method
        assert 1 < row["test_perplexity"] < 10000 and row["data"] == identity  # smoke models are near chance (7596 words)
        assert row["flops"] > 8 * 7596  # at least the decoder's multiply-adds for one word
        details = json.loads(row["details_json"])
        assert details["final_training"]["corpus_stand_in"] is True
        assert details["final_training"]["valid_perplexity"] > 1
        record = records[space, method]
        assert record["test_perplexity"] == row["test_perplexity"] and "test_acc" not in record
        assert record["flops_convention"].endswith("per predicted word")
    searched = {method: json.loads(row["details_json"]) for (_, method), row in rows.items()}
    assert searched["darts"]["history"] and searched["darts-2nd"]["history"]
    assert rows["enas-rnn", "enas"]["val_perplexity"] > 1  # the chosen cell's, under the shared weights


def test_black_box_methods_keep_each_candidates_perplexity(stored):
    store, _ = stored
    for row in store_rows(store, "method IN ('random', 'nas-rl')"):
        trials = store_trials(store, row["id"])
        assert trials and all(t["val_acc"] is None and t["val_perplexity"] > 1 for t in trials)
        assert row["val_perplexity"] == min(t["val_perplexity"] for t in trials)  # chosen by the lowest
    nas_rl = store_rows(store, "method = 'nas-rl'")[0]
    updates = json.loads(nas_rl["details_json"])["controller_epochs"]  # smoke: one child per update
    trials = store_trials(store, nas_rl["id"])
    assert len(updates) == len(trials) == 2
    for update, trial in zip(updates, trials):
        assert math.isclose(update["rewards"][0], 80 / trial["val_perplexity"] ** 2)


@pytest.mark.parametrize(("arguments", "message"), [
    (("--method", "pc-darts", "--space", "enas-rnn"), "method pc-darts does not search the enas-rnn space"),
    (("--method", "random", "--ptb-stand-in"), "--ptb-stand-in is for language-model spaces"),
    (("--method", "random", "--space", "enas-rnn"), "missing ptb.train.txt"),
])
def test_bad_combinations_are_one_line(arguments, message, ptb_path, tmp_path):
    result = run_cli("run", *arguments, "--protocol", "smoke", "--data", ptb_path, "--store", tmp_path / "s.sqlite",
                     "--no-progress")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert not (tmp_path / "s.sqlite").exists()
