"""A page per method: per results section and variant, each seed's found architecture drawn,
its search curves and its provenance, so that any number in the front page's tables can be
traced to the runs behind it."""
from __future__ import annotations

import json
from html import escape
from typing import Any, Mapping

import pandas as pd

from nasbench.errors import NasbenchError
from nasbench.report.common import ROW_KEYS, section_title
from nasbench.report.drawings import graph_svg, group_title, run_graphs, run_label
from nasbench.report.runs import is_language_model
from nasbench.report.site.curves import line_chart
from nasbench.report.site.index import html_title
from nasbench.report.site.page import definition_list, missing, number


def _of_run(frame: pd.DataFrame | None, run_id: int) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame()
    return frame[frame["run_id"] == run_id]


def weight_curves(details: Mapping[str, Any]) -> str:
    """Per group of architecture weights (normal, reduce, layers), each operation's weight
    averaged over the group's edges, per epoch: where a supernet search moves its weight."""
    epochs = [e for e in details.get("epochs", []) if "weights" in e]
    operations = details.get("operations")
    if not epochs or not operations:
        return ""
    charts = []
    for group in epochs[0]["weights"]:
        series = {op: [(e["epoch"], sum(edge[i] for edge in e["weights"][group]) / len(e["weights"][group]))
                       for e in epochs] for i, op in enumerate(operations)}
        charts.append(line_chart(f"Architecture weights, {group_title(group)} (mean over its positions)", series, "epoch",
                                 "weight"))
    return "".join(charts)


def search_curves(run: Mapping[str, Any], histories: Mapping[str, pd.DataFrame]) -> str:
    """Every curve the run's search left: anytime error, the supernet's per-epoch skip share,
    error, expected cost and architecture weights, the controller's reward and entropy."""
    charts = []
    anytime = _of_run(histories.get("anytime"), run["id"])
    if not anytime.empty:
        charts.append(line_chart("Lowest search-validation error so far", {"best": list(zip(
            anytime["candidates"], 100 * (1 - anytime["best_val_acc"])))}, "trained candidates", "error (%)", steps=True))
    supernet = _of_run(histories.get("supernet"), run["id"])
    if not supernet.empty:
        skips = {group: list(zip(supernet["epoch"], supernet[f"skip_{group}"])) for group in ("normal", "reduce", "layers")
                 if f"skip_{group}" in supernet and supernet[f"skip_{group}"].notna().any()}
        charts.append(line_chart("Skip share of the derived architecture", skips, "epoch", "share", (0.0, 1.0)))
        charts.append(line_chart("Supernet search-validation error", {"error": list(zip(
            supernet["epoch"], 100 * (1 - supernet["supernet_val_acc"])))}, "epoch", "error (%)"))
        if supernet["expected_cost"].notna().any():
            charts.append(line_chart("Expected cost under the constraint", {"cost": list(zip(
                supernet["epoch"], supernet["expected_cost"]))}, "epoch", str(run["constraint_metric"])))
    charts.append(weight_curves(json.loads(run["details_json"] or "{}")))
    controller = _of_run(histories.get("controller"), run["id"])
    if not controller.empty:
        charts.append(line_chart("Controller reward (mean per update)", {"reward": list(zip(
            controller.reset_index(drop=True).index + 1, controller["reward"]))}, "update", "reward"))
        charts.append(line_chart("Controller entropy", {"entropy": list(zip(
            controller.reset_index(drop=True).index + 1, controller["entropy"]))}, "update", "entropy"))
    shown = "".join(charts)
    return f'<div class="curves">{shown}</div>' if shown else "<p>This search recorded no curves.</p>"


def drawings(run: Mapping[str, Any]) -> str:
    try:
        graphs = run_graphs(run)
    except NasbenchError as err:
        return f'<p class="note">{escape(str(err))}</p>'
    return '<div class="drawings">' + "".join(
        f'<figure class="drawing"><figcaption>{escape(group_title(g.group))}</figcaption>'
        f'{graph_svg(g, xmlns=False)}</figure>' for g in graphs) + "</div>"


def _scores(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A run's test score and counts: test perplexity and FLOPs per word for a language model."""
    if is_language_model(run["space"]):
        return [("Test perplexity", number(run["test_perplexity"])),
                ("Params, FLOPs per word", f"{number(run['params'] / 1e6, 3)} M, {number(run['flops'] / 1e6, 3)} M")]
    return [("Test error", f"{number(100 * (1 - run['test_acc']))} %"),
            ("Params, FLOPs", f"{number(run['params'] / 1e6, 3)} M, {number(run['flops'] / 1e6, 1)} M")]


def provenance(run: Mapping[str, Any]) -> str:
    software = json.loads(run["software_json"] or "{}")
    return definition_list([
        ("Run", f"{run['id']}, seed {run['seed']}"),
        ("Protocol", f"<code>{escape(run['protocol'])}</code>, hash <code>{escape(run['protocol_hash'])}</code>"),
        ("Data", f"<code>{escape(run['data'])}</code>"),
        ("Device", f"{escape(run['device'])} (<code>{escape(run['device_fingerprint'])}</code>)"),
        ("Software", escape(", ".join(f"{k} {v}" for k, v in software.items()))),
        ("Commit", f"<code>{escape('unknown' if missing(run['git_commit']) or not run['git_commit'] else run['git_commit'])}</code>"),
        ("Started, finished", escape(f"{run['started_at']}, {run['finished_at']}")),
        ("Search, final training", f"{number(run['search_seconds'] / 3600, 3)} h, "
                                   f"{number(run['eval_seconds'] / 3600, 3)} h"),
        *_scores(run),
    ])


def seed_card(run: Mapping[str, Any], histories: Mapping[str, pd.DataFrame]) -> str:
    genotype = json.dumps(json.loads(run["genotype_json"]), indent=1)
    return "\n".join([  # the drawing beside the rest, so that a long chain of layers leaves no gap
        f'<section class="seed" id="run-{run["id"]}"><h3>Seed {run["seed"]}</h3><div class="seed-body">',
        drawings(run), '<div class="seed-side"><h4>Search curves</h4>', search_curves(run, histories),
        "<h4>Provenance</h4>", provenance(run),
        f"<details><summary>Found architecture (JSON)</summary><pre>{escape(genotype)}</pre></details>",
        "</div></div></section>"])


def method_page(method: str, runs: pd.DataFrame, summary: pd.DataFrame,
                histories: Mapping[str, pd.DataFrame], language: pd.DataFrame | None = None) -> str:
    """The body of ``method``'s page: a part per results section and variant, a card per seed
    (a language model's summary row from ``language``, by perplexity)."""
    parts = []
    for key, group in runs[runs["method"] == method].groupby(ROW_KEYS, sort=False):
        perplexity = is_language_model(group["space"].iloc[0])
        table = language if perplexity and language is not None else summary
        rows = table[(table[ROW_KEYS] == pd.Series(key, index=ROW_KEYS)).all(axis=1)] if not table.empty else table
        row = rows.iloc[0] if len(rows) else None
        title = f"{run_label(group.iloc[0].to_dict())} on the {group['space'].iloc[0]} space"
        protocol = json.dumps(json.loads(group["protocol_json"].iloc[0]), indent=1, sort_keys=True)
        parts += [f'<section class="variant"><h2>{escape(title)}</h2><p>{html_title(section_title(*key[:3]))}</p>']
        if row is not None:
            value, unit = ("test_perplexity", "") if perplexity else ("test_error", " %")
            parts.append(definition_list([
                ("Test perplexity" if perplexity else "Test error", f"{number(row[f'{value}_mean'])}"
                 + ("" if missing(row[f"{value}_std"]) else f" ± {number(row[f'{value}_std'])}")
                 + f"{unit} over {row['n']} seed(s)"),
                ("Strategy, space", f"{escape(str(row['strategy']))}, <code>{escape(str(row['space']))}</code>"),
                ("Mean search cost", f"{number(row['search_hours'], 3)} h on {escape(str(row['devices']))}"),
            ]))
        parts.append(f"<details><summary>Protocol (JSON)</summary><pre>{escape(protocol)}</pre></details>")
        parts += [seed_card(run, histories) for run in group.sort_values("seed").to_dict("records")]
        parts.append("</section>")
    return "\n".join(parts)
