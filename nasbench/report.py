"""Comparison reports, regenerated from the store (never edited by hand).

Writes ``results.md`` (one table per protocol and data set, like the survey's tables:
method, strategy class, test error, params, FLOPs, search cost, beside the published
figures), ``results.csv`` (the same, machine-readable) and ``runs.csv`` (every finished
run with its provenance, so any row can be traced and reproduced).

Beside them: ``anytime.csv`` (black-box methods' best search-validation accuracy after each
trained candidate, per seed) with one figure per results section,
``anytime_<protocol>_<hash>_<data>.png`` (named after the section so a second protocol adds a
file instead of renaming one), ``supernet_history.csv`` (the supernet methods' per-epoch
records), ``controller_history.csv`` (the RL controllers' reward curves, per update) and,
once ``nasbench rank`` has stored some, ``rankings.csv`` (the ranking quality of weight
sharing, also a section of ``results.md``). Figures are written without metadata that
changes between runs, so regenerating an unchanged store gives the same bytes.
"""
from __future__ import annotations

import json
import math
from contextlib import closing
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nasbench.baselines_data import published_row
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.table import CostTable, MissingEntryError
from nasbench.ranking import load_rankings, rankings_markdown
from nasbench.spaces import get_space, space_class, space_for_table
from nasbench.store import Store, iter_finished
from nasbench.strategies import STRATEGIES

REFERENCE_METHOD = "random-arch"
SECTION_KEYS = ["protocol", "protocol_hash", "data"]
"""What one results table (and one anytime figure) is about."""
ROW_KEYS = [*SECTION_KEYS, "method", "variant"]
"""What one row of a results table is about: a constrained run is its own row."""

CONVENTIONS = (
    "Test error: % on the protocol's test split, mean ± sample standard deviation over seeds (n). "
    "Params: millions, auxiliary head excluded. FLOPs: millions, fvcore's count, one multiply-add = one FLOP. "
    "Search cost: hours of wall time of the search alone on the device named (final training excluded). "
    f"Δ vs random: mean test error minus that of `{REFERENCE_METHOD}` (architectures drawn at random and "
    "final-trained identically); negative is better. Published columns: the papers' own figures "
    "(full CIFAR-10, their hardware, GPU-days) from baselines/published_results.csv. "
    "Latency (ms) <space> <device> <backend> t<threads> b<batch>: the found networks' latency predicted by the measured "
    "cost table of that device and the run's protocol (its final network, without the auxiliary head), mean over seeds; "
    "empty where the table has no entry for a part of the network (a table holds the parts of 4-node cells, so PNAS' "
    "shorter cells of a small budget have none). "
    "Skip share (N / R): the share of `skip_connect` among the found cells' edges, mean over seeds (a cell "
    "collapsing onto skip connections is DARTS' known failure mode; supernet methods' per-epoch shares are in "
    "supernet_history.csv). Constraint: the metric, the cost the found architecture achieves on the constraint "
    "table's device (mean over seeds) / the target, and that device."
)


def load_runs(store_path: Path) -> pd.DataFrame:
    rows = [{**dict(row), **_constraint_columns(row["details_json"]), **_skip_columns(row["space"], row["genotype_json"])}
            for row in iter_finished(store_path)]
    return pd.DataFrame(rows)


def _constraint_columns(details_json: str | None) -> dict[str, object]:
    """A constrained run's metric, target, the exact cost its architecture achieves, and the
    device of the table that cost comes from."""
    constraint = json.loads(details_json or "{}").get("constraint")
    if constraint is None:
        return {"constraint_metric": None, "constraint_target": None, "constraint_achieved": None,
                "constraint_device": None, "constraint_measured": None}
    return {"constraint_metric": constraint["metric"], "constraint_target": constraint["target"],
            "constraint_achieved": constraint["achieved"], "constraint_device": constraint["device"],
            "constraint_measured": constraint.get("measured_ms_p50")}


def _skip_columns(space: str, genotype_json: str) -> dict[str, float]:
    """The found cells' share of skip connections (identities), read from the stored
    architecture so that every method is measured alike; NaN for a cell the method does not
    search (GDAS-FRC's fixed reduction cell) or a space without normal and reduction cells."""
    shares = {}
    if space_class(space).protocol_section is None:  # the cell spaces need no protocol to be read
        cells = get_space(space)
        shares = cells.skip_share(cells.from_dict(json.loads(genotype_json)))
    return {f"skip_{cell}": shares.get(cell, math.nan) for cell in ("normal", "reduce")}


def _published(method: str, space: str) -> dict[str, object]:
    """The published row a method's run on ``space`` is compared with: ``published`` lists
    one per space, in the order of ``spaces``; none where it lists fewer."""
    cls = STRATEGIES.get(method)
    index = cls.spaces.index(space) if cls is not None and space in cls.spaces else None
    if index is None or index >= len(cls.published):
        return {"published_test_error": None, "published_params_m": None,
                "published_search_cost_gpu_days": None, "published_source": None}
    row = published_row(*cls.published[index])
    return {
        "published_test_error": row["test_error"],
        "published_params_m": row["params_m"],
        "published_search_cost_gpu_days": row["search_cost_gpu_days"],
        "published_source": f"{row['method']}, {row['variant']}: {row['source']}",
    }


def load_tables(tables_dir: Path | None) -> list[CostTable]:
    if tables_dir is None:
        return []
    return [CostTable.load(p) for p in sorted(Path(tables_dir).glob("*/*.json")) if not p.name.endswith(".validation.json")]


def latency_column(table: CostTable) -> str:
    c = table.conditions
    return f"latency_ms {table.space} {table.device_fingerprint} {c['backend']} t{c['threads']} b{c['batch_size']}"


def with_device_costs(runs: pd.DataFrame, tables: list[CostTable]) -> pd.DataFrame:
    """Each run's predicted latency on every measured table of its space and protocol
    (a column per table; empty where the table is of another protocol or layout)."""
    runs = runs.copy()
    for table in tables if len(runs) else ():
        if not table.measured:
            continue
        space = space_for_table(table)
        model = CostModel(table, space, "latency_ms")
        runs[latency_column(table)] = [
            _predicted(model, space.from_dict(json.loads(genotype)))
            if run_space == table.space and protocol_hash == table.protocol_hash
            and _same_layout(space, table, protocol_json) else None
            for genotype, run_space, protocol_hash, protocol_json
            in zip(runs["genotype_json"], runs["space"], runs["protocol_hash"], runs["protocol_json"])
        ]
    return runs


def _same_layout(space, table: CostTable, protocol_json: str) -> bool:
    """Whether the run's protocol laid the space out as the table's network (a layout
    section is not part of the protocol hash)."""
    section = space.protocol_section
    return section is None or json.loads(protocol_json).get(section) == table.network.get(section)


def _predicted(model: CostModel, arch) -> float | None:
    """The table's cost of ``arch``; None (an empty cell, never a guess) when the table lacks one of its parts."""
    try:
        return model.cost(arch)
    except MissingEntryError:
        return None


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, data, method, variant): a constrained run is its own row."""
    runs = runs.assign(test_error=100.0 * (1.0 - runs["test_acc"]))
    latency_columns = [c for c in runs.columns if c.startswith("latency_ms ")]
    grouped = runs.groupby(ROW_KEYS, sort=False)
    table = grouped.agg(
        strategy=("strategy_class", "first"),
        space=("space", "first"),
        n=("seed", "nunique"),
        seeds=("seed", lambda s: ",".join(str(v) for v in sorted(s))),
        test_error_mean=("test_error", "mean"),
        test_error_std=("test_error", "std"),
        val_acc_mean=("val_acc", "mean"),
        params_m=("params", lambda s: s.mean() / 1e6),
        flops_m=("flops", lambda s: s.mean() / 1e6),
        search_hours=("search_seconds", lambda s: s.mean() / 3600),
        eval_hours=("eval_seconds", lambda s: s.mean() / 3600),
        devices=("device", lambda s: "; ".join(sorted(set(s)))),
        skip_normal=("skip_normal", "mean"),
        skip_reduce=("skip_reduce", "mean"),
        constraint_metric=("constraint_metric", "first"),
        constraint_target=("constraint_target", "first"),
        constraint_achieved=("constraint_achieved", "mean"),
        constraint_device=("constraint_device", lambda s: "; ".join(sorted(set(s.dropna())))),
        **{column: (column, "mean") for column in latency_columns},
    ).reset_index()
    reference = table[(table["method"] == REFERENCE_METHOD) & (table["variant"] == "")].set_index(["protocol_hash", "data"])["test_error_mean"]
    table["delta_vs_random"] = [
        row.test_error_mean - reference[(row.protocol_hash, row.data)] if (row.protocol_hash, row.data) in reference.index else None
        for row in table.itertuples()
    ]
    published = pd.DataFrame([_published(m, space) for m, space in zip(table["method"], table["space"])])
    return pd.concat([table, published], axis=1)


def _fmt(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _label(method: str, variant: str) -> str:
    return method if not variant else f"{method} [{variant}]"


def _section_title(protocol: str, protocol_hash: str, data: str) -> str:
    return f"Protocol `{protocol}` (hash `{protocol_hash}`), data `{data}`"


def to_markdown(summary: pd.DataFrame, store_path: Path, n_runs: int) -> str:
    lines = [
        "# nasbench results",
        "",
        f"Generated by `nasbench report` from the store `{store_path}` ({n_runs} finished runs). "
        "Do not edit by hand: regenerate.",
        "",
        CONVENTIONS,
    ]
    for (protocol, protocol_hash, data), section in summary.groupby(SECTION_KEYS, sort=False):
        lines += ["", f"## {_section_title(protocol, protocol_hash, data)}", ""]
        table = pd.DataFrame({
            "Method": [_label(m, v) for m, v in zip(section["method"], section["variant"])],
            "Strategy": section["strategy"],
            "Test error (%)": [f"{_fmt(m)} ± {_fmt(s)}" for m, s in zip(section["test_error_mean"], section["test_error_std"])],
            "n": section["n"],
            "Δ vs random (pp)": [_fmt(v) for v in section["delta_vs_random"]],
            "Params (M)": [_fmt(v, 3) for v in section["params_m"]],
            "FLOPs (M, MAC=1)": [_fmt(v, 1) for v in section["flops_m"]],
            "Skip share (N / R)": [f"{_fmt(n)} / {_fmt(r)}" for n, r in zip(section["skip_normal"], section["skip_reduce"])],
            "Search cost (h)": [_fmt(v, 3) for v in section["search_hours"]],
            "Device": section["devices"],
            **{f"Latency (ms) {c.removeprefix('latency_ms ')}": [_fmt(v, 2) for v in section[c]]
               for c in section.columns if c.startswith("latency_ms ") and section[c].notna().any()},
            **({"Constraint: achieved / target on the table's device": [
                "–" if pd.isna(t) else f"{metric} {a:.4g} / {t:.4g} on {device}"
                for metric, a, t, device in zip(section["constraint_metric"], section["constraint_achieved"],
                                                section["constraint_target"], section["constraint_device"])]}
               if section["constraint_target"].notna().any() else {}),
            "Published error (%)": [_fmt(v) for v in section["published_test_error"]],
            "Published params (M)": [_fmt(v, 1) for v in section["published_params_m"]],
            "Published search (GPU-days)": [_fmt(v, 1) for v in section["published_search_cost_gpu_days"]],
        })
        lines.append(table.to_markdown(index=False, disable_numparse=True))
        # one mention per method and source, however many variants (constraints, spaces) it has rows for
        sources = section.dropna(subset=["published_source"]).drop_duplicates(["method", "published_source"])
        if len(sources):
            lines += ["", "Published figures: " + "; ".join(f"{m}: {s}" for m, s in zip(sources["method"], sources["published_source"]))]
    return "\n".join(lines) + "\n"


TRADEOFF_COLUMNS = [*SECTION_KEYS, "method", "variant", "seed", "target_ms", "predicted_ms", "measured_ms",
                    "test_acc", "search_seconds", "device"]


def latency_tradeoff(runs: pd.DataFrame, tables: list[CostTable]) -> pd.DataFrame:
    """Every latency-constrained run (target, latency its table predicts for the found
    architecture, latency measured end to end on the table's device, test accuracy, search
    time) and, as the no-target point, the unconstrained runs of the same methods with the
    same table's prediction (no measurement, and none where ``tables`` lacks that table)."""
    constrained = runs[runs["constraint_metric"] == "latency_ms"]
    rows = [{**{k: r[k] for k in TRADEOFF_COLUMNS if k in r}, "target_ms": r["constraint_target"],
             "predicted_ms": r["constraint_achieved"], "measured_ms": r["constraint_measured"],
             "device": r["constraint_device"]} for r in constrained.to_dict("records")]
    for r in constrained.drop_duplicates([*SECTION_KEYS, "method"]).to_dict("records"):
        column = next((latency_column(t) for t in tables if t.measured and f"@{t.reference()}," in r["variant"]), None)
        free = runs[(runs["method"] == r["method"]) & (runs["variant"] == "") & (runs["protocol_hash"] == r["protocol_hash"])
                    & (runs["data"] == r["data"])]
        rows += [{**{k: f[k] for k in TRADEOFF_COLUMNS if k in f}, "target_ms": None, "measured_ms": None,
                  "predicted_ms": f.get(column), "device": r["constraint_device"]}
                 for f in free.to_dict("records")]
    return pd.DataFrame(rows, columns=TRADEOFF_COLUMNS)


def pareto_front(points: pd.DataFrame, latency: str) -> pd.DataFrame:
    """The points no other point beats on both latency (lower) and test accuracy (higher)."""
    ordered = points.dropna(subset=[latency]).sort_values([latency, "test_acc"], ascending=[True, False])
    return ordered[ordered["test_acc"] > ordered["test_acc"].cummax().shift(fill_value=-1.0)]


def plot_tradeoff(section: pd.DataFrame, title: str, path: Path) -> None:
    """Test accuracy against latency (measured where a run measured it, else predicted), a
    marker per method and form, the Pareto front as a line."""
    section = section.assign(latency=section["measured_ms"].fillna(section["predicted_ms"]),
                             setting=[_setting(v) for v in section["variant"]])
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for (method, setting), group in section.groupby(["method", "setting"], sort=False):
        axes.scatter(group["latency"], 100 * group["test_acc"], label=f"{method}, {setting}")
        for row in group.itertuples():
            if pd.notna(row.target_ms):
                axes.annotate(f"{row.target_ms:g} ms", (row.latency, 100 * row.test_acc), fontsize=7,
                              xytext=(3, 3), textcoords="offset points")
    front = pareto_front(section, "latency")
    axes.plot(front["latency"], 100 * front["test_acc"], color="black", linewidth=1, label="Pareto front")
    axes.set_xlabel("latency (ms, measured end to end; predicted where not measured)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})


def _setting(variant: str) -> str:
    """A constrained run's weight and loss form, read from its variant (the target and table
    come before them)."""
    return variant.split(",", 1)[1] if variant else "no target"


def tradeoff_markdown(tradeoff: pd.DataFrame, out_dir: Path) -> tuple[str, list[Path]]:
    if tradeoff.empty:
        return "", []
    lines = ["", "## Latency targets: predicted against measured", "",
             "Every latency-constrained run: the target, the latency the table predicts for the found architecture, "
             "the latency measured end to end on the table's device after the search (a table that misleads a "
             "search shows as a gap), the test accuracy and the search time; unconstrained runs of the same methods "
             "as the no-target point (predicted only). Per run: tradeoff.csv."]
    figures = []
    for section_key, section in tradeoff.groupby(SECTION_KEYS, sort=False):
        figures.append(out_dir / f"tradeoff_{'_'.join(section_key)}.png")
        plot_tradeoff(section, _section_title(*section_key).replace("`", ""), figures[-1])
        table = pd.DataFrame({
            "Method": section["method"], "Form, weight": [_setting(v) for v in section["variant"]],
            "Seed": section["seed"], "Target (ms)": [_fmt(v, 2) for v in section["target_ms"]],
            "Predicted (ms)": [_fmt(v, 3) for v in section["predicted_ms"]],
            "Measured (ms)": [_fmt(v, 3) for v in section["measured_ms"]],
            "Test acc (%)": [_fmt(100 * v, 2) for v in section["test_acc"]],
            "Search (s)": [_fmt(v, 0) for v in section["search_seconds"]], "Device": section["device"]})
        lines += ["", f"### {_section_title(*section_key)}", "", table.to_markdown(index=False, disable_numparse=True),
                  "", f"![accuracy against latency]({figures[-1].name})"]
    return "\n".join(lines) + "\n", figures


def load_trials(store_path: Path, run_ids: pd.Series) -> pd.DataFrame:
    """The stored trials of the given runs, in the order they were trained."""
    with closing(Store(store_path)) as store:
        rows = [{"run_id": run_id, "index": t.index, "val_acc": t.val_acc, "seconds": t.seconds}
                for run_id in run_ids for t in store.trials(run_id)]
    return pd.DataFrame(rows, columns=["run_id", "index", "val_acc", "seconds"]).astype(
        {"run_id": int, "index": int, "val_acc": float, "seconds": float})  # numeric even when empty or all failed


def anytime_trajectories(runs: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Per run with trials, after each trained candidate: the best search-validation accuracy so
    far and the cumulative candidate-training seconds. A failed candidate (no accuracy) counts
    as trained and as time spent but improves nothing; before the first scored one the best is NaN."""
    keys = runs[[*ROW_KEYS, "seed", "id"]].rename(columns={"id": "run_id"})
    trajectories = keys.merge(trials, on="run_id").sort_values(["run_id", "index"], ignore_index=True)
    by_run = trajectories.groupby("run_id")
    trajectories["candidates"] = by_run.cumcount() + 1
    trajectories["best_val_acc"] = by_run["val_acc"].cummax().groupby(trajectories["run_id"]).ffill()
    trajectories["cumulative_seconds"] = by_run["seconds"].cumsum()
    return trajectories[[*ROW_KEYS, "seed", "run_id", "candidates", "val_acc", "best_val_acc", "cumulative_seconds"]]


def mean_over_seeds(trajectories: pd.DataFrame, x: str) -> pd.DataFrame:
    """Per (protocol, data, method, variant), the seeds' best-so-far against ``x`` (``candidates``
    or ``cumulative_seconds``): each seed's step function is read at every x any seed reached (a
    seed whose search has ended keeps its final best), from the first x at which every seed has
    a scored candidate; then mean, min and max across seeds."""
    curves = []
    for key, group in trajectories.groupby(ROW_KEYS, sort=False):
        steps = group.groupby([x, "seed"])["best_val_acc"].max().unstack("seed").sort_index().ffill()
        steps = steps[steps.notna().all(axis=1)]
        curves.append(pd.DataFrame({**dict(zip(ROW_KEYS, key)), x: steps.index, "mean": steps.mean(axis=1).to_numpy(),
                                    "min": steps.min(axis=1).to_numpy(), "max": steps.max(axis=1).to_numpy(),
                                    "seeds": steps.shape[1]}))
    return pd.concat(curves, ignore_index=True)


ANYTIME_AXES = (("candidates", "trained candidates", 1.0),
                ("cumulative_seconds", "cumulative candidate-training time (h)", 1 / 3600))
"""The figure's panels: (trajectory column, axis label, scale from the column to the axis)."""


def anytime_figure_name(protocol: str, protocol_hash: str, data: str) -> str:
    return f"anytime_{protocol}_{protocol_hash}_{data}.png"


def plot_anytime(section: pd.DataFrame, title: str, path: Path) -> None:
    """One results section's trajectories: a panel per :data:`ANYTIME_AXES`, a line per method
    (mean over seeds, steps, a marker where a candidate ends) with its min–max band across seeds. Saved through Agg without
    the Software tag, so the bytes depend on the data and the matplotlib version only."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    panels = figure.subplots(1, 2, sharey=True)
    for axes, (x, label, scale) in zip(panels, ANYTIME_AXES):
        for (method, variant), curve in mean_over_seeds(section, x).groupby(["method", "variant"], sort=False):
            xs = curve[x] * scale
            (line,) = axes.plot(xs, 100 * curve["mean"], drawstyle="steps-post", marker="o", markersize=3,
                                label=f"{_label(method, variant)} (n={curve['seeds'].iloc[0]})")
            axes.fill_between(xs, 100 * curve["min"], 100 * curve["max"], step="post", alpha=0.2, color=line.get_color())
        axes.set_xlabel(label)
        axes.grid(alpha=0.3)
    panels[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    panels[0].set_ylabel("best search-validation accuracy so far (%)")
    panels[0].legend()
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})


def write_anytime_figures(trajectories: pd.DataFrame, out_dir: Path) -> dict[tuple[str, str, str], Path]:
    """One figure per results section that has trajectories, keyed by the section."""
    figures = {}
    for section_key, section in trajectories.groupby(SECTION_KEYS, sort=False):
        figures[section_key] = out_dir / anytime_figure_name(*section_key)
        plot_anytime(section, _section_title(*section_key).replace("`", ""), figures[section_key])
    return figures


def anytime_markdown(figures: dict[tuple[str, str, str], Path]) -> str:
    if not figures:
        return ""
    lines = ["", "## Anytime performance", "",
             "Methods that train candidates (black-box search): the best search-validation accuracy found so far "
             "against the number of trained candidates and against the cumulative time spent training them (the "
             "search's wall time less its own overhead). Line: mean over seeds; band: min–max across seeds. A "
             "failed candidate counts as trained but improves nothing; a seed whose search has ended keeps its final "
             "best. Per seed and candidate: anytime.csv."]
    for section_key, path in figures.items():
        lines += ["", f"### {_section_title(*section_key)}", "", f"![anytime performance, {section_key[0]}]({path.name})"]
    return "\n".join(lines) + "\n"


HISTORY_COLUMNS = [*ROW_KEYS, "seed", "run_id", "epoch", "skip_normal", "skip_reduce", "skip_layers", "supernet_val_acc",
                   "expected_cost"]


def supernet_history(runs: pd.DataFrame) -> pd.DataFrame:
    """Per epoch of every supernet search: the derived cells' skip share, the supernet's
    search-validation accuracy and, under a constraint, the expected cost of the architecture
    distribution (in the constraint's metric)."""
    rows = [{**{k: run[k] for k in ROW_KEYS}, "seed": run["seed"], "run_id": run["id"], "epoch": epoch["epoch"],
             **{f"skip_{cell}": share for cell, share in epoch["skip_share"].items()},
             "supernet_val_acc": epoch["supernet_val_acc"], "expected_cost": epoch.get("expected_cost")}
            for run in runs.to_dict("records") for epoch in json.loads(run["details_json"] or "{}").get("epochs", [])]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


CONTROLLER_COLUMNS = [*ROW_KEYS, "seed", "run_id", "epoch", "update", "reward", "entropy"]


def controller_history(runs: pd.DataFrame) -> pd.DataFrame:
    """The reward curve of every RL search with a controller: per controller update, the
    mean reward (entropy bonus included) and entropy of its samples."""
    rows = [{**{k: run[k] for k in ROW_KEYS}, "seed": run["seed"], "run_id": run["id"], "epoch": epoch["epoch"],
             "update": update, "reward": reward, "entropy": entropy}
            for run in runs.to_dict("records")
            for epoch in json.loads(run["details_json"] or "{}").get("controller_epochs", [])
            for update, (reward, entropy) in enumerate(zip(epoch["rewards"], epoch["entropies"]), start=1)]
    return pd.DataFrame(rows, columns=CONTROLLER_COLUMNS)


def cost_table_rows(tables: list[CostTable]) -> pd.DataFrame:
    """One row per (cost table, validation predictor), read from the table files."""
    rows = []
    for table in tables:
        path = table.path
        c = table.conditions
        base = {
            "table": str(path), "device": c.get("device"), "device_fingerprint": table.device_fingerprint,
            "space": table.space, "protocol": table.protocol, "protocol_hash": table.protocol_hash,
            "network": space_for_table(table).describe_network(table.network_config),
            "backend": f"{c.get('backend')} {c.get('backend_version', '')}".strip(), "threads": c.get("threads"),
            "batch_size": c.get("batch_size"), "entries": len(table.entries), "build_seconds": table.build_seconds,
            "predictor": None if table.predictor is None else table.predictor.describe(),
        }
        validation = path.with_suffix(".validation.json")
        if not validation.is_file():
            rows.append(base)
            continue
        content = json.loads(validation.read_text())
        for name, figures in content["predictors"].items():
            rows.append(base | {"validated_predictor": name} | figures)
        if content.get("repeatability"):
            rows.append(base | {"validated_predictor": "(repeatability)"} | content["repeatability"])
    return pd.DataFrame(rows)


def cost_tables_markdown(tables: pd.DataFrame, tables_dir: Path) -> str:
    lines = ["", "## Cost tables", "",
             f"Measured tables under `{tables_dir}` and how well each predicts whole networks it never saw "
             "(random architectures, measured end to end under the table's conditions). `table` is the table's "
             "own predictor; `naive_sum` sums isolated part latencies; `affine_sum`, the FLOPs and FLOPs+MAC lines "
             "are linear baselines fitted on the same calibration architectures. `(repeatability)` compares two independent "
             "halves of the whole-network measurements (odd against even rounds): the noise floor no predictor can "
             "beat. Shares within ±5% / ±10% in %, MAPE, p95 absolute error and signed bias in %."]
    for table_path, group in tables.groupby("table", sort=False):
        first = group.iloc[0]
        lines += ["", f"### `{table_path}`", "",
                  f"{first['device']}, {first['backend']}, {first['threads']} thread(s), batch {first['batch_size']}; "
                  f"space `{first['space']}`, protocol `{first['protocol']}` ({first['network']}); "
                  f"{first['entries']} entries, built in {_fmt(first['build_seconds'], 0)} s; predictor {first['predictor']}."]
        if "validated_predictor" in group and group["validated_predictor"].notna().any():
            shown = pd.DataFrame({
                "Predictor": group["validated_predictor"], "n": group["n"].astype(int),
                "≤5%": [_fmt(100 * v, 1) for v in group["within_5pct"]],
                "≤10%": [_fmt(100 * v, 1) for v in group["within_10pct"]],
                "MAPE": [_fmt(v) for v in group["mape_pct"]], "p95": [_fmt(v) for v in group["p95_abs_error_pct"]],
                "bias": [_fmt(v) for v in group["bias_pct"]], "Kendall τ": [_fmt(v, 3) for v in group["kendall_tau"]],
                "Spearman ρ": [_fmt(v, 3) for v in group["spearman_rho"]],
            })
            lines += ["", shown.to_markdown(index=False, disable_numparse=True)]
    return "\n".join(lines) + "\n"


def generate(store_path: Path, out_dir: Path, tables_dir: Path | None = None) -> list[Path]:
    cost_tables = load_tables(tables_dir)
    runs = with_device_costs(load_runs(store_path), cost_tables)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.md", out_dir / "results.csv", out_dir / "runs.csv"]
    tables = cost_table_rows(cost_tables)
    tables_md = cost_tables_markdown(tables, tables_dir) if not tables.empty else ""
    if not tables.empty:
        paths.append(out_dir / "cost_tables.csv")
        tables.to_csv(paths[-1], index=False, float_format="%.6g")
    rankings = load_rankings(store_path)
    rankings_md = rankings_markdown(rankings) if not rankings.empty else ""
    if not rankings.empty:
        paths.append(out_dir / "rankings.csv")
        rankings.to_csv(paths[-1], index=False, float_format="%.6g")
    if runs.empty:
        paths[0].write_text(f"# nasbench results\n\nThe store `{store_path}` holds no finished runs yet.\n"
                            + rankings_md + tables_md)
        pd.DataFrame().to_csv(paths[1], index=False)
        pd.DataFrame().to_csv(paths[2], index=False)
        return paths
    summary = summarise(runs)
    trajectories = anytime_trajectories(runs, load_trials(store_path, runs["id"]))
    figures = write_anytime_figures(trajectories, out_dir)
    tradeoff = latency_tradeoff(runs, cost_tables)
    tradeoff_md, tradeoff_figures = tradeoff_markdown(tradeoff, out_dir)
    paths[0].write_text(to_markdown(summary, store_path, len(runs)) + tradeoff_md + anytime_markdown(figures)
                        + rankings_md + tables_md)
    summary.to_csv(paths[1], index=False, float_format="%.6g")
    provenance = runs.drop(columns=["state_json"]).assign(
        software=lambda df: df["software_json"].map(lambda s: " ".join(f"{k}={v}" for k, v in json.loads(s).items()))
    ).drop(columns=["software_json", "protocol_json"])
    provenance.to_csv(paths[2], index=False, float_format="%.6g")
    paths.append(out_dir / "anytime.csv")
    trajectories.to_csv(paths[-1], index=False, float_format="%.6g")
    paths += figures.values()
    if not tradeoff.empty:
        paths.append(out_dir / "tradeoff.csv")
        tradeoff.to_csv(paths[-1], index=False, float_format="%.6g")
        paths += tradeoff_figures
    paths.append(out_dir / "supernet_history.csv")
    supernet_history(runs).to_csv(paths[-1], index=False, float_format="%.6g")
    paths.append(out_dir / "controller_history.csv")
    controller_history(runs).to_csv(paths[-1], index=False, float_format="%.6g")
    return paths
