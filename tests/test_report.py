"""Reports from a store whose numbers are chosen by hand (written through the Store API)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from nasbench.report import generate
from nasbench.store import RunKey, RunOutcome, RunStart, Store

HASH_A, HASH_B, DATA = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "npz-000000000000"


def add(store: Store, method: str, seed: int, test_acc: float, protocol_hash: str = HASH_A, status: str = "finished",
        params: int = 1_000_000, search_seconds: float = 3600.0, val_acc: float | None = 0.5) -> int:
    key = RunKey(method, seed, protocol_hash, DATA)
    run_id = store.start(RunStart(key=key, strategy_class="RS", space="cell", protocol=f"p-{protocol_hash[0]}",
                                  protocol_json="{}", device="cpu x", device_fingerprint="cpu-x",
                                  software={"torch": "t"}, git_commit=None))
    if status == "finished":
        store.finish(run_id, RunOutcome(search_seconds=search_seconds, eval_seconds=60.0, genotype={}, val_acc=val_acc,
                                        test_acc=test_acc, params=params, flops=2_000_000, details={}))
    else:
        store.fail(run_id, "boom", status=status)
    return run_id


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    path = tmp_path_factory.mktemp("handmade") / "s.sqlite"
    with Store(path) as store:
        superseded = add(store, "random", 0, 0.10)
        add(store, "random", 0, 0.90)                       # error 10, supersedes the one above
        add(store, "random", 1, 0.80, params=3_000_000)     # error 20
        add(store, "random", 2, 0.70, search_seconds=7200)  # error 30
        add(store, "random", 3, 0.01, status="failed")      # not reported
        add(store, "random-arch", 0, 0.75, val_acc=None)    # error 25
        add(store, "random-arch", 1, 0.65, val_acc=None)    # error 35
        add(store, "random", 0, 0.50, protocol_hash=HASH_B)  # another protocol, one seed, no reference
    out = path.parent / "out"
    paths = generate(path, out)
    return path, out, paths, superseded


def test_files(made):
    _, out, paths, _ = made
    assert paths == [out / "results.md", out / "results.csv", out / "runs.csv"]
    assert all(p.is_file() for p in paths)


def test_summary_numbers(made):
    _, out, _, _ = made
    table = pd.read_csv(out / "results.csv")
    a = table[table["protocol_hash"] == HASH_A].set_index("method")
    assert a.loc["random", "n"] == 3 and a.loc["random", "seeds"] == "0,1,2"
    assert a.loc["random", "test_error_mean"] == pytest.approx(20.0)
    assert a.loc["random", "test_error_std"] == pytest.approx(10.0)  # sample std of 10, 20, 30
    assert a.loc["random-arch", "test_error_mean"] == pytest.approx(30.0)
    assert a.loc["random-arch", "test_error_std"] == pytest.approx(math.sqrt(50), rel=1e-5)
    assert a.loc["random", "delta_vs_random"] == pytest.approx(-10.0)
    assert a.loc["random-arch", "delta_vs_random"] == pytest.approx(0.0)
    assert a.loc["random", "params_m"] == pytest.approx(5 / 3, rel=1e-5)
    assert a.loc["random", "search_hours"] == pytest.approx(4 / 3, rel=1e-5)
    assert a.loc["random", "eval_hours"] == pytest.approx(1 / 60, rel=1e-5)
    assert a.loc["random", "val_acc_mean"] == pytest.approx(0.5)
    assert a.loc["random", "flops_m"] == pytest.approx(2.0)
    b = table[table["protocol_hash"] == HASH_B].set_index("method")
    assert list(b.index) == ["random"]
    assert b.loc["random", "test_error_mean"] == pytest.approx(50.0)
    assert pd.isna(b.loc["random", "test_error_std"]) and pd.isna(b.loc["random", "delta_vs_random"])


def test_markdown(made):
    path, out, _, _ = made
    text = (out / "results.md").read_text()
    assert f"from the store `{path}` (6 finished runs)" in text
    assert "## Protocol `p-a` (hash `aaaaaaaaaaaa`)" in text and "## Protocol `p-b` (hash `bbbbbbbbbbbb`)" in text
    section_a, section_b = text.split("## Protocol `p-b`")

    def rows(section):
        return {cells[0]: cells for cells in ([c.strip() for c in line.strip().strip("|").split("|")]
                                              for line in section.splitlines() if line.startswith("| random"))}

    a, b = rows(section_a), rows(section_b)
    assert a["random"][:4] == ["random", "RS", "20.00 ± 10.00", "3"]
    assert a["random-arch"][:4] == ["random-arch", "RS", "30.00 ± 7.07", "2"]
    assert b["random"][:5] == ["random", "RS", "50.00 ± –", "1", "–"]


def test_markdown_keeps_the_documented_number_formats(made):
    """Δ with 2 decimals, params with 3, FLOPs 1, search cost 3, published as given: the same in every table."""
    _, out, _, _ = made
    text = (out / "results.md").read_text()
    cells = {}
    for section, part in zip("ab", text.split("## Protocol `p-b`")):
        for line in part.splitlines():
            if line.startswith("| random"):
                row = [c.strip() for c in line.strip().strip("|").split("|")]
                cells[section, row[0]] = row[4:]
    assert cells["a", "random"] == ["-10.00", "1.667", "2.0", "1.333", "cpu x", "3.29", "3.2", "4.0"]
    assert cells["a", "random-arch"] == ["0.00", "1.000", "2.0", "1.000", "cpu x", "–", "–", "–"]
    assert cells["b", "random"] == ["–", "1.000", "2.0", "1.000", "cpu x", "3.29", "3.2", "4.0"]


def test_runs_csv_lists_finished_runs_only(made):
    path, out, _, superseded = made
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6
    assert superseded not in set(runs["id"])
    assert set(runs["status"]) == {"finished"}
    assert sorted(runs.loc[runs["protocol_hash"] == HASH_A, "test_acc"]) == pytest.approx([0.65, 0.7, 0.75, 0.8, 0.9])


def test_empty_store(tmp_path):
    path = tmp_path / "empty.sqlite"
    with Store(path):
        pass
    paths = generate(path, tmp_path / "out")
    assert "holds no finished runs yet" in paths[0].read_text()
