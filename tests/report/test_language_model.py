"""The language models' results: real runs on the PTB stand-in (random and random-arch on the
enas-rnn space, two seeds of the smoke protocol), summarised by perplexity in tables of their
own, and image tables that the language models leave as they were."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import statistics
from contextlib import closing

import pandas as pd
import pytest
from helpers import run_cli, store_rows

from nasbench.report import generate
from nasbench.report.language_model import LANGUAGE_CSV, STAND_IN_NOTE
from nasbench.spaces import get_space
from nasbench.store import RunKey, RunOutcome, RunStart, Store
from nasbench.types import Provenance, Trial

IMAGE_DATA = "npz-000000000000"


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``text`` that starts with a Method column, as rows of cells by column."""
    found, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| Method"):
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            body = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                body.append(dict(zip(header, [c.strip() for c in row.strip().strip("|").split("|")])))
            found.append(body)
    return found


def language_section(out) -> str:
    """The language models' section of results.md."""
    return (out / "results.md").read_text().split("\n## Language models")[1].split("\n## ")[0]


@pytest.fixture(scope="module")
def lm_store(tmp_path_factory, ptb_path):
    """``nasbench run --method random,random-arch --space enas-rnn --ptb-stand-in``, two seeds, for real."""
    path = tmp_path_factory.mktemp("language-models") / "lm.sqlite"
    result = run_cli("run", "--method", "random,random-arch", "--space", "enas-rnn", "--protocol", "smoke",
                     "--seeds", "0,1", "--data", ptb_path, "--ptb-stand-in", "--store", path, "--json",
                     "--no-progress", "--no-estimate")
    assert result.code == 0, result.err
    return path


@pytest.fixture(scope="module")
def reported(lm_store):
    out = lm_store.parent / "out"
    return out, generate(lm_store, out)


def stored(path) -> dict[str, list[dict]]:
    """The store's runs by method."""
    runs: dict[str, list[dict]] = {}
    for row in store_rows(path):
        runs.setdefault(row["method"], []).append(row)
    return runs


def test_the_table_has_a_row_per_method_with_the_stored_perplexities(lm_store, reported):
    out, paths = reported
    assert out / LANGUAGE_CSV in paths
    runs = stored(lm_store)
    ppl = {m: [r["test_perplexity"] for r in rows] for m, rows in runs.items()}
    assert all(r["test_acc"] is None for rows in runs.values() for r in rows)  # nothing to read as accuracy
    delta = statistics.mean(ppl["random"]) - statistics.mean(ppl["random-arch"])

    table = pd.read_csv(out / LANGUAGE_CSV).set_index("method")
    assert list(table.index) == ["random", "random-arch"] and set(table["space"]) == {"enas-rnn"}
    for method, values in ppl.items():
        assert table.loc[method, "n"] == 2 and table.loc[method, "seeds"] == "0,1"
        assert table.loc[method, "test_perplexity_mean"] == pytest.approx(statistics.mean(values), rel=1e-5)
        assert table.loc[method, "test_perplexity_std"] == pytest.approx(statistics.stdev(values), rel=1e-5)
        assert table.loc[method, "params_m"] == pytest.approx(runs[method][0]["params"] / 1e6, rel=1e-5)
        assert table.loc[method, "flops_m"] == pytest.approx(runs[method][0]["flops"] / 1e6, rel=1e-5)
    assert table.loc["random", "delta_vs_random"] == pytest.approx(delta, rel=1e-4)
    assert table.loc["random-arch", "delta_vs_random"] == 0.0
    assert table.loc["random", "val_perplexity_mean"] == pytest.approx(
        statistics.mean(r["val_perplexity"] for r in runs["random"]), rel=1e-5)
    assert pd.isna(table.loc["random-arch", "val_perplexity_mean"])  # random-arch chooses by nothing
    assert table.loc["random", "final_valid_perplexity_mean"] == pytest.approx(statistics.mean(
        json.loads(r["details_json"])["final_training"]["valid_perplexity"] for r in runs["random"]), rel=1e-5)

    main, details = tables(language_section(out))
    by_method = {row["Method"]: row for row in main}
    assert [row["Method"] for row in main] == sorted(ppl, key=lambda m: statistics.mean(ppl[m]))  # by perplexity
    for method, values in ppl.items():
        assert by_method[method]["Test perplexity"] == (
            f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (2)")
        assert by_method[method]["Strategy"] == "RS"
    assert by_method["random"]["Δ vs random-arch"] == f"{delta:.2f}"
    assert by_method["random-arch"]["Told apart"] == "reference"
    assert by_method["random-arch"]["Val perplexity"] == "–"
    assert {row["Seeds"] for row in details} == {"0,1"}


def test_a_stand_in_corpus_carries_its_note_and_marks_the_published_figures(reported):
    out, _ = reported
    section = language_section(out)
    assert "PTB stand-in" in section and "data `ptb-stand-in-" in section
    assert STAND_IN_NOTE in section and "not comparable with published ones" in STAND_IN_NOTE
    main = {row["Method"]: row for row in tables(section)[0]}
    assert (main["random"]["Published perplexity"], main["random"]["Published params (M)"]) == ("59.4 †", "23.0")
    assert main["random-arch"]["Published perplexity"] == "–"  # random architectures have no paper
    assert "Random search baseline (DARTS paper), PTB recurrent cell, best of 8: DARTS paper" in section
    table = pd.read_csv(out / LANGUAGE_CSV).set_index("method")
    assert table.loc["random", "published_test_perplexity"] == 59.4 and not table.loc["random", "published_comparable"]
    assert table["corpus_stand_in"].all()
    index = (out / "site" / "index.html").read_text()
    assert re.search(r'<p class="warning"><strong>Stand-in corpus: these perplexities are not comparable', index)
    assert 'id="language-results-0"' in index and "59.4 †" in index


def test_a_language_model_store_has_no_image_table(reported):
    out, _ = reported
    text = (out / "results.md").read_text()
    assert "Test error" not in text and "## Anytime performance" not in text
    assert (out / "results.csv").read_text().strip() == ""
    assert list(pd.read_csv(out / "anytime.csv")["method"]) == []  # perplexities are no accuracy to plot
    assert "Test perplexity</dt>" in (out / "site" / "methods" / "random.html").read_text()


def test_a_real_ptb_corpus_shows_the_published_figures_as_peers(lm_store, tmp_path):
    path = tmp_path / "ptb.sqlite"
    shutil.copy(lm_store, path)
    with closing(sqlite3.connect(path)) as conn, conn:
        for run_id, details in conn.execute("SELECT id, details_json FROM runs").fetchall():
            details = json.loads(details)
            details["final_training"]["corpus_stand_in"] = False
            conn.execute("UPDATE runs SET data = 'ptb-000000000000', details_json = ? WHERE id = ?",
                         (json.dumps(details), run_id))
    generate(path, tmp_path / "out")
    section = language_section(tmp_path / "out")
    assert "PTB, data `ptb-000000000000`" in section and STAND_IN_NOTE not in section
    main = {row["Method"]: row for row in tables(section)[0]}
    assert (main["random"]["Published perplexity"], main["random"]["Published params (M)"]) == ("59.4", "23.0")
    assert pd.read_csv(tmp_path / "out" / LANGUAGE_CSV).set_index("method").loc["random", "published_comparable"]


# -- a mixed store: the image tables as without the language models ---------------------------

def add_image_runs(path) -> None:
    """Random search with trials over two seeds and a random architecture, on the cell space."""
    space = get_space("cell")
    genotype = space.to_dict(space.zoo()["DARTS_V2"].arch)
    provenance = Provenance(protocol="p-c", protocol_json="{}", device="cpu x", device_fingerprint="cpu-x",
                            software={"torch": "t"}, git_commit=None)
    with Store(path) as store:
        for method, seed, test_acc, trials in (("random", 0, 0.7, (0.3, 0.5)), ("random", 1, 0.6, (0.4, 0.2)),
                                               ("random-arch", 0, 0.5, ())):
            run_id = store.start(RunStart(key=RunKey(method, seed, "cccccccccccc", IMAGE_DATA, ""), strategy_class="RS",
                                          space="cell", provenance=provenance))
            for index, accuracy in enumerate(trials):
                store.add_trial(run_id, Trial(index, {}, accuracy, 10.0))
            store.finish(run_id, RunOutcome(search_seconds=3600.0, eval_seconds=60.0, genotype=genotype, val_acc=0.5,
                                            test_acc=test_acc, params=1_000_000, flops=2_000_000, details={}))


@pytest.fixture(scope="module")
def mixed(lm_store, tmp_path_factory):
    """The same image runs alone and beside the language models, each reported."""
    folder = tmp_path_factory.mktemp("mixed")
    alone, both = folder / "image.sqlite", folder / "mixed.sqlite"
    shutil.copy(lm_store, both)
    add_image_runs(alone)
    add_image_runs(both)
    generate(alone, folder / "image")
    generate(both, folder / "mixed")
    return folder / "image", folder / "mixed"


def image_part(out) -> str:
    """results.md's image tables (from the first section on: the head names the store)."""
    text = (out / "results.md").read_text()
    return text[text.index("\n## "):].split("\n## Language models")[0].split("\n## Anytime")[0]


def test_image_tables_are_unchanged_by_the_language_models(mixed):
    image, both = mixed
    assert (both / "results.csv").read_bytes() == (image / "results.csv").read_bytes()
    for name in ("anytime.csv", "supernet_history.csv"):  # the same but for the runs' ids
        pd.testing.assert_frame_equal(pd.read_csv(both / name).drop(columns="run_id"),
                                      pd.read_csv(image / name).drop(columns="run_id"))
    assert image_part(both) == image_part(image) and "## Language models" not in image_part(both)
    assert "(7 finished runs)" in (both / "results.md").read_text()
    main = tables(image_part(both))[0]
    assert [row["Method"] for row in main] == ["random", "random-arch"] and {row["Space"] for row in main} == {"cell"}
    assert set(pd.read_csv(both / LANGUAGE_CSV)["space"]) == {"enas-rnn"}
    assert len(pd.read_csv(both / "runs.csv")) == 7  # every run keeps its provenance

    def site(out) -> tuple[str, str]:
        index = (out / "site" / "index.html").read_text()
        return (re.search(r'<section class="results" id="section-0">.*?</section>', index, re.S).group(0),
                re.search(r'<script type="application/json" id="site-data">(.*?)</script>', index).group(1))

    (image_section, image_data), (mixed_section, mixed_data) = site(image), site(both)
    assert mixed_section == image_section  # the image table and its charts' points, as without the language models
    assert json.loads(mixed_data)["sections"] == json.loads(image_data)["sections"]


def test_a_method_page_of_a_mixed_store_shows_error_and_perplexity_apart(mixed):
    page = (mixed[1] / "site" / "methods" / "random.html").read_text()
    assert re.search(r"<dt>Test error</dt><dd>[\d.]+ ± [\d.]+ % over 2 seed\(s\)</dd>", page)
    assert re.search(r"<dt>Test perplexity</dt><dd>[\d.]+ ± [\d.]+ over 2 seed\(s\)</dd>", page)
    assert "Params, FLOPs per word" in page
