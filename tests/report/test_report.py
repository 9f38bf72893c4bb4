"""Reports from a store whose numbers are chosen by hand (written through the Store API)."""
from __future__ import annotations

import json
import math

import matplotlib.image
import pandas as pd
import pytest

from nasbench.report import (
    anytime_trajectories,
    generate,
    load_runs,
    load_trials,
    mean_over_seeds,
)
from nasbench.report.labels import cost_words
from nasbench.store import RunKey, RunOutcome, RunStart, Store
from nasbench.types import Provenance, Trial

HASH_A, HASH_B, DATA = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "npz-000000000000"
NORMAL = [["sep_conv_3x3", 0], ["skip_connect", 1], ["sep_conv_3x3", 0], ["skip_connect", 1],
          ["sep_conv_3x3", 1], ["dil_conv_3x3", 2], ["sep_conv_5x5", 0], ["max_pool_3x3", 3]]
REDUCE = [["max_pool_3x3", 0], ["skip_connect", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
          ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]]
GENOTYPE = {"normal": NORMAL, "normal_concat": [2, 3, 4, 5], "reduce": REDUCE, "reduce_concat": [2, 3, 4, 5]}
"""Skip share 2/8 in the normal cell, 4/8 in the reduction cell."""
COLLAPSED = {**GENOTYPE, "normal": [["skip_connect", i // 4] for i in range(8)],
             "reduce": [["skip_connect", i // 4] for i in range(8)]}
"""Every edge a skip connection: DARTS' failure mode, share 1 in both cells."""


def add(store: Store, method: str, seed: int, test_acc: float, protocol_hash: str = HASH_A, status: str = "finished",
        params: int = 1_000_000, search_seconds: float = 3600.0, val_acc: float | None = 0.5, genotype: dict = GENOTYPE,
        variant: str = "", details: dict | None = None, flops: int = 2_000_000, protocol_json: str = "{}",
        trials: tuple[tuple[float | None, float], ...] = ()) -> int:
    """A run; ``trials`` as (search-validation accuracy or None for a failed candidate, seconds)."""
    key = RunKey(method, seed, protocol_hash, DATA, variant)
    provenance = Provenance(protocol=f"p-{protocol_hash[0]}", protocol_json=protocol_json, device="cpu x",
                            device_fingerprint="cpu-x", software={"torch": "t"}, git_commit=None)
    run_id = store.start(RunStart(key=key, strategy_class="RS", space="cell", provenance=provenance))
    for index, (trial_acc, seconds) in enumerate(trials):
        store.add_trial(run_id, Trial(index, {}, trial_acc, seconds, None if trial_acc is not None else "boom"))
    if status == "finished":
        store.finish(run_id, RunOutcome(search_seconds=search_seconds, eval_seconds=60.0, genotype=genotype,
                                        val_acc=val_acc, test_acc=test_acc, params=params, flops=flops,
                                        details=details or {}))
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
    assert paths[:6] == [out / name for name in ("results.md", "results.csv", "runs.csv", "anytime.csv",
                                                 "supernet_history.csv", "controller_history.csv")]  # no trials, so no anytime figure
    drawings = [p.relative_to(out).as_posix() for p in paths[6:] if p.suffix == ".svg"]
    assert len(drawings) == 6 and all(name.startswith("architectures/random") for name in drawings)  # one per run
    assert [p.relative_to(out).as_posix() for p in paths[6 + len(drawings):]] == [
        "site/index.html", "site/methods/random.html", "site/methods/random-arch.html"]
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


def tables(text: str, starts: str = "| Method") -> list[list[dict[str, str]]]:
    """Every Markdown table in ``text`` whose header starts with ``starts``, as rows of cells by column."""
    found, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(starts):
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            body = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                body.append(dict(zip(header, [c.strip() for c in row.strip().strip("|").split("|")])))
            found.append(body)
    return found


def tradeoff_section(text: str) -> str:
    """The trade-off section of ``results.md``."""
    return text.split("\n## Trade-off")[1].split("\n## ")[0]


def test_markdown(made):
    path, out, _, _ = made
    text = (out / "results.md").read_text()
    assert f"from the store `{path}` (6 finished runs)" in text
    assert "## `p-a` protocol (hash `aaaaaaaaaaaa`), CIFAR-10 from an .npz file" in text
    assert "## `p-b` protocol (hash `bbbbbbbbbbbb`)" in text
    section_a, section_b = text.split("\n## `p-b` protocol")
    main_a, details_a = tables(section_a)[:2]
    assert [row["Method"] for row in main_a] == ["random", "random-arch"]  # sorted by error
    a, b = main_a[0], tables(section_b)[0][0]
    assert (a["Strategy"], a["Space"], a["Test error (%)"], a["95% CI"]) == ("RS", "cell", "20.00 ± 10.00 (3)", "0.0–44.8")
    assert (a["Δ vs random-arch"], a["Told apart"]) == ("-10.00", "no (p 0.29)")  # Welch's t-test, 10,20,30 vs 25,35
    assert main_a[1]["Test error (%)"] == "30.00 ± 7.07 (2)" and main_a[1]["95% CI"] == "0.0–93.5"
    assert main_a[1]["Told apart"] == "reference"
    assert (b["Test error (%)"], b["95% CI"], b["Δ vs random-arch"], b["Told apart"]) == ("50.00 ± – (1)", "–", "–", "–")
    assert "No `random-arch` runs on this space: `nasbench run --method random-arch --space cell`" in section_b
    assert details_a[0]["Seeds"] == "0,1,2"


def test_markdown_keeps_the_documented_number_formats(made):
    """Δ with 2 decimals, params with 3, FLOPs 1, search cost 3, published as given: the same in every table."""
    _, out, _, _ = made
    section_a, section_b = (out / "results.md").read_text().split("\n## `p-b` protocol")
    main_a, details_a = tables(section_a)[:2]
    main_b, details_b = tables(section_b)[:2]
    numbers = ["Params (M)", "FLOPs (M)", "Search (h)", "Published (%)"]
    assert [main_a[0][k] for k in numbers] == ["1.667", "2.0", "1.333", "3.29 (CIFAR-10)"]
    assert [main_a[1][k] for k in numbers] == ["1.000", "2.0", "1.000", "–"]
    assert [main_b[0][k] for k in numbers] == ["1.000", "2.0", "1.000", "3.29 (CIFAR-10)"]
    details = ["Skip share (N / R)", "Final training (h)", "Searched on", "Published params (M)", "Published search (GPU-days)"]
    assert [details_a[0][k] for k in details] == ["0.25 / 0.50", "0.017", "cpu x", "3.2", "4.0"]
    assert [details_b[0][k] for k in details] == ["0.25 / 0.50", "0.017", "cpu x", "3.2", "4.0"]


def test_main_table_fits_a_screen(made):
    text = (made[1] / "results.md").read_text()
    main = [line for line in text.splitlines() if line.startswith("|")]
    assert main and max(map(len, main)) <= 170


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


# -- anytime performance, skip share, constraints, supernet history ----------------------

CONSTRAINED = "params<=5000,weight=0.01"
SEED_0_TRIALS = ((0.3, 10.0), (None, 5.0), (0.5, 20.0), (0.4, 10.0))
SEED_1_TRIALS = ((None, 30.0), (0.6, 10.0), (0.2, 10.0), (0.7, 10.0))
FIGURE = "anytime_p-a_aaaaaaaaaaaa_npz-000000000000.png"


def epoch(number: int, normal: float, reduce: float, accuracy: float, **extra) -> dict:
    return {"epoch": number, "supernet_val_acc": accuracy, "skip_share": {"normal": normal, "reduce": reduce}, **extra}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Random search with trials over two seeds (and a superseded attempt whose trials must not
    count), a plain DARTS run and a constrained SNAS run with per-epoch histories."""
    path = tmp_path_factory.mktemp("searched") / "s.sqlite"
    with Store(path) as store:
        add(store, "random", 0, 0.5, trials=((0.99, 1.0),))
        add(store, "random", 0, 0.6, trials=SEED_0_TRIALS)
        add(store, "random", 1, 0.6, trials=SEED_1_TRIALS, genotype=COLLAPSED)
        add(store, "random-arch", 0, 0.5)
        add(store, "darts", 0, 0.6, val_acc=None, genotype=COLLAPSED,
            details={"epochs": [epoch(1, 0.25, 0.5, 0.3), epoch(2, 1.0, 1.0, 0.4)]})
        add(store, "snas", 0, 0.6, val_acc=None, variant=CONSTRAINED, details={
            "epochs": [epoch(1, 0.5, 0.25, 0.2, expected_cost=6000.5), epoch(2, 0.25, 0.5, 0.35, expected_cost=4800.0)],
            "constraint": {"metric": "params", "target": 5000.0, "weight": 0.01, "table": None, "device": "cpu-x",
                           "achieved": 4321.0}})
    out = path.parent / "out"
    return path, out, generate(path, out)


def test_anytime_csv_has_best_so_far_and_cumulative_seconds(searched):
    _, out, paths = searched
    # the constrained SNAS run has a trade-off row (every constraint has, not only latency) but no latency to plot
    assert paths[3:8] == [out / "anytime.csv", out / FIGURE, out / "tradeoff.csv", out / "supernet_history.csv",
                          out / "controller_history.csv"]
    anytime = pd.read_csv(out / "anytime.csv")
    assert set(anytime["method"]) == {"random"}  # the only method with trials; the superseded run's are gone
    seed_0, seed_1 = (anytime[anytime["seed"] == s] for s in (0, 1))
    assert list(seed_0["candidates"]) == list(seed_1["candidates"]) == [1, 2, 3, 4]
    assert list(seed_0["best_val_acc"]) == [0.3, 0.3, 0.5, 0.5]  # the failed second candidate improves nothing
    assert list(seed_0["cumulative_seconds"]) == [10, 15, 35, 45]  # but its time counts
    assert seed_1["best_val_acc"].isna().tolist() == [True, False, False, False]
    assert list(seed_1["best_val_acc"].iloc[1:]) == [0.6, 0.6, 0.7]
    assert list(seed_1["cumulative_seconds"]) == [30, 40, 50, 60]


def test_mean_over_seeds_starts_when_every_seed_has_a_score(searched):
    path, _, _ = searched
    runs = load_runs(path)
    trajectories = anytime_trajectories(runs, load_trials(path, runs["id"]))
    by_count = mean_over_seeds(trajectories, "candidates")
    assert list(by_count["candidates"]) == [2, 3, 4] and set(by_count["seeds"]) == {2}
    assert list(by_count["mean"]) == pytest.approx([0.45, 0.55, 0.6])
    assert list(by_count["min"]) == pytest.approx([0.3, 0.5, 0.5])
    assert list(by_count["max"]) == pytest.approx([0.6, 0.6, 0.7])
    # seed 0 reaches 0.3 at 10 s and 0.5 at 35 s and then stays there; seed 1 scores first at 40 s
    by_time = mean_over_seeds(trajectories, "cumulative_seconds")
    assert list(by_time["cumulative_seconds"]) == [40, 45, 50, 60]
    assert list(by_time["mean"]) == pytest.approx([0.55, 0.55, 0.55, 0.6])
    assert list(by_time["min"]) == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert list(by_time["max"]) == pytest.approx([0.6, 0.6, 0.6, 0.7])


def test_anytime_figure_is_a_png_regenerated_byte_for_byte(searched, tmp_path):
    path, out, _ = searched
    figure = (out / FIGURE).read_bytes()
    assert figure.startswith(b"\x89PNG\r\n\x1a\n") and b"IHDR" in figure and b"Software" not in figure
    assert matplotlib.image.imread(out / FIGURE).shape == (270, 1100, 4)  # one method: one row of panels
    generate(path, tmp_path)
    assert (tmp_path / FIGURE).read_bytes() == figure
    assert f"![anytime performance, p-a]({FIGURE})" in (out / "results.md").read_text()


def test_skip_share_comes_from_the_genotype(searched):
    _, out, _ = searched
    table = pd.read_csv(out / "results.csv").set_index("method")
    assert table.loc["random", ["skip_normal", "skip_reduce"]].tolist() == [(0.25 + 1) / 2, (0.5 + 1) / 2]
    assert table.loc["darts", ["skip_normal", "skip_reduce"]].tolist() == [1.0, 1.0]
    assert table.loc["snas", ["skip_normal", "skip_reduce"]].tolist() == [0.25, 0.5]


def test_constrained_row_has_a_short_label_expanded_in_the_legend(searched):
    """The constrained SNAS run has no unconstrained one to sit under, so its row names its method."""
    _, out, _ = searched
    text = (out / "results.md").read_text()
    main, details = tables(text)[:2]
    assert "snas: params ≤ 0.005M, λ 0.01" in [row["Method"] for row in main]
    assert f"- snas `snas: params ≤ 0.005M, λ 0.01`: `{CONSTRAINED}` (table of `cpu-x`)" in text
    row = next(row for row in details if row["Method"].startswith("snas:"))
    assert row["Constraint achieved"] == "0.00432M (target 0.005M)"
    assert row["Skip share (N / R)"] == "0.25 / 0.50"
    assert next(row for row in details if row["Method"] == "darts")["Constraint achieved"] == "–"
    (traded,) = tables(tradeoff_section(text))
    assert [(r["Method"], r["Constraint"], r["Params (M)"], r["MAC (M)"]) for r in traded] == [
        ("snas", "params ≤ 0.005M, λ 0.01", "1.000", "–")]  # no unconstrained SNAS run; "{}" is no protocol to count


def test_supernet_history_per_epoch(searched):
    _, out, _ = searched
    history = pd.read_csv(out / "supernet_history.csv")
    assert list(history["method"]) == ["darts", "darts", "snas", "snas"]
    assert list(history["variant"].fillna("")) == ["", "", CONSTRAINED, CONSTRAINED]
    assert list(history["epoch"]) == [1, 2, 1, 2]
    assert list(history["skip_normal"]) == [0.25, 1.0, 0.5, 0.25]
    assert list(history["skip_reduce"]) == [0.5, 1.0, 0.25, 0.5]
    assert list(history["supernet_val_acc"]) == [0.3, 0.4, 0.2, 0.35]
    assert history["expected_cost"].isna().tolist() == [True, True, False, False]
    assert list(history["expected_cost"].iloc[2:]) == [6000.5, 4800.0]


def test_smoke_store_report_ties_history_to_genotypes(smoke_store, tmp_path):
    """On a real store: the anytime rows are the stored trials, the last epoch's skip share is
    that of the run's genotype, and the figure regenerates to the same bytes."""
    paths = generate(smoke_store.path, tmp_path / "a")
    runs = pd.read_csv(tmp_path / "a" / "runs.csv").set_index("id")
    anytime = pd.read_csv(tmp_path / "a" / "anytime.csv")
    with Store(smoke_store.path) as store:
        expected = sorted((run_id, t.index + 1) for run_id in runs.index for t in store.trials(run_id))
    assert expected and sorted(zip(anytime["run_id"], anytime["candidates"])) == expected
    history = pd.read_csv(tmp_path / "a" / "supernet_history.csv")
    last = history.sort_values("epoch").groupby("run_id").last()
    assert set(runs.loc[last.index, "method"]) >= {"darts", "snas"}
    for column in ("skip_normal", "skip_reduce"):
        assert last[column].tolist() == pytest.approx(runs.loc[last.index, column].tolist(), nan_ok=True)
    controller = pd.read_csv(tmp_path / "a" / "controller_history.csv")
    assert set(controller["method"]) == {"eas", "enas", "nas-rl", "nasnet"} and set(controller["seed"]) == {0, 1}
    for run_id, curve in controller.groupby("run_id"):
        epochs = json.loads(runs.loc[run_id, "details_json"])["controller_epochs"]
        assert curve["reward"].tolist() == pytest.approx([r for e in epochs for r in e["rewards"]], rel=1e-5)
    figures = [p for p in paths if p.suffix == ".png"]
    assert len(figures) == 1
    generate(smoke_store.path, tmp_path / "b")
    assert (tmp_path / "b" / figures[0].name).read_bytes() == figures[0].read_bytes()


# -- SNAS' per-edge-log constraint: labels without a target, the published setting, the trade-off ---

HEAVY = {**GENOTYPE, "normal": [["sep_conv_5x5", i // 4] for i in range(8)],
         "reduce": [["sep_conv_5x5", i // 4] for i in range(8)]}
"""Every edge a 5x5 separable convolution: the costliest cell of the three."""
CHEAP = {**GENOTYPE, "normal": [["skip_connect", i // 4] for i in range(8)],
         "reduce": [["max_pool_3x3", i // 4] for i in range(8)]}
"""Identities and pooling only: the cheapest."""
MILD, STRONG, PARAMS = ("resources,weight=0.01,form=per-edge-log", "resources,weight=0.1,form=per-edge-log",
                        "params,weight=0.01,form=per-edge-log")


@pytest.fixture(scope="module")
def swept(tmp_path_factory, smoke, cell_space):
    """SNAS unconstrained and under its per-edge-log penalty (a λ sweep of ``resources``, and
    ``params``), each with the costs its constraint describes, on the smoke protocol's network."""
    from nasbench.hardware.constraint import build_constraint
    from nasbench.strategies.snas import Snas

    def constraint(name: str, weight: float):
        return build_constraint(name, None, weight=weight, methods=[Snas], spaces=[cell_space], protocol=smoke,
                                registry={"snas": Snas})

    mild, strong, params = constraint("resources", 0.01), constraint("resources", 0.1), constraint("params", 0.01)
    assert (mild.variant(), strong.variant(), params.variant()) == (MILD, STRONG, PARAMS)
    path = tmp_path_factory.mktemp("swept") / "s.sqlite"
    described = {}
    with Store(path) as store:
        for variant, genotype, used, accuracy in (("", HEAVY, None, 0.7), (MILD, GENOTYPE, mild, 0.72),
                                                 (STRONG, CHEAP, strong, 0.6), (PARAMS, GENOTYPE, params, 0.71)):
            costs = described[variant] = mild.describe(cell_space.from_dict(genotype))["costs"]
            details = {} if used is None else {"constraint": used.describe(cell_space.from_dict(genotype))}
            add(store, "snas", 0, accuracy, variant=variant, genotype=genotype, details=details, params=int(costs["params"]),
                flops=int(costs["flops"]), protocol_json=smoke.to_json())
    out = path.parent / "out"
    return out, generate(path, out), described


def test_a_per_edge_log_row_is_labelled_without_a_target_and_shows_its_costs(swept):
    out, _, costs = swept
    text = (out / "results.md").read_text()
    main, details = tables(text)[:2]
    labels = ["↳ params+FLOPs+MAC, λ 0.01, per-edge-log", "↳ params, λ 0.01, per-edge-log",
              "↳ params+FLOPs+MAC, λ 0.1, per-edge-log"]
    assert [row["Method"] for row in main] == ["snas", *labels]  # the variants by test error
    assert f"- snas `{labels[0]}`: `{MILD}`" in text
    achieved = {row["Method"]: row["Constraint achieved"] for row in details}
    mild = costs[MILD]
    assert achieved[labels[0]] == (f"params {cost_words('params', mild['params'])}, FLOPs {cost_words('flops', mild['flops'])}, "
                                   f"MAC {cost_words('mac_elements', mild['mac_elements'])}")
    assert achieved[labels[1]] == cost_words("params", costs[PARAMS]["params"]) and achieved["snas"] == "–"
    site = (out / "site" / "index.html").read_text()
    assert f">{achieved[labels[0]]}</td>" in site and "Constraint: achieved / target" not in site


def test_the_published_mild_figure_sits_beside_the_mild_run_only(swept):
    """SNAS' published CIFAR-10 error is of its mild constraint (resources, λ 0.01, per-edge-log),
    not of an unconstrained search, nor of another weight or metric."""
    out, _, _ = swept
    text = (out / "results.md").read_text()
    main, details = tables(text)[:2]
    published = {row["Method"]: row["Published (%)"] for row in main}
    assert published == {"snas": "–", "↳ params+FLOPs+MAC, λ 0.01, per-edge-log": "2.98 (CIFAR-10)",
                         "↳ params, λ 0.01, per-edge-log": "–", "↳ params+FLOPs+MAC, λ 0.1, per-edge-log": "–"}
    assert [row["Published params (M)"] for row in details] == ["–", "2.9", "–", "–"]
    summary = pd.read_csv(out / "results.csv").fillna({"variant": ""}).set_index("variant")
    assert summary.loc[MILD, "published_test_error"] == 2.98 and summary["published_test_error"].count() == 1


def test_the_tradeoff_table_reads_a_weight_sweep_in_order_with_exact_costs(swept):
    out, paths, costs = swept
    text = (out / "results.md").read_text()
    (rows,) = tables(tradeoff_section(text))
    assert [r["Constraint"] for r in rows] == ["unconstrained", "params, λ 0.01, per-edge-log",
                                               "params+FLOPs+MAC, λ 0.01, per-edge-log",
                                               "params+FLOPs+MAC, λ 0.1, per-edge-log"]
    traded = pd.read_csv(out / "tradeoff.csv").fillna({"variant": ""})
    assert list(traded["variant"]) == ["", PARAMS, MILD, STRONG] and list(traded["weight"].fillna(0)) == [0, 0.01, 0.01, 0.1]
    # MAC is counted on the stored protocol's network, as the constraint costs it
    assert list(traded["mac_elements"]) == pytest.approx([costs[v]["mac_elements"] for v in traded["variant"]])
    assert list(traded["params"]) == [int(costs[v]["params"]) for v in traded["variant"]]
    sweep = traded[traded["variant"].isin(["", MILD, STRONG])]  # λ 0, 0.01, 0.1: ever cheaper cells
    assert sweep["mac_elements"].is_monotonic_decreasing and sweep["params"].is_monotonic_decreasing
    assert rows[2]["MAC (M)"] == f"{costs[MILD]['mac_elements'] / 1e6:.2f}" and rows[2]["Test error (%)"] == "28.00"
    assert traded["target"].isna().all() and traded["predicted_ms"].isna().all()  # no target; no cost table given
    assert not [p for p in paths if p.name.startswith("tradeoff_")]  # nothing to plot without a latency
