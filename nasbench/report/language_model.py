"""The language models' results (runs on the recurrent-cell spaces): judged by word-level
perplexity, so they get tables of their own, never a column beside accuracy. The summary is the
image table's (:func:`seed_summary`: seeds, spread, interval, Δ vs random-arch, published
figure), the Markdown its style; a stand-in corpus' section says that its perplexities are not
comparable with published ones."""
from __future__ import annotations

import json
from typing import Any, Mapping

import pandas as pd

from nasbench.corpus import STAND_IN_TRAIN_SHARE
from nasbench.report.common import (
    REFERENCE_METHOD,
    SECTION_KEYS,
    fmt,
    markdown_table,
    section_title,
)
from nasbench.report.labels import is_stand_in, same_data_set
from nasbench.report.results import seed_summary
from nasbench.report.tables import (
    MISSING_REFERENCE,
    legend,
    ordered,
    published_sources,
    row_names,
    told_apart,
)

VALUE = "test_perplexity"
"""What the language models' tables are about (lower is better)."""
LANGUAGE_CSV = "results_language_model.csv"
CONVENTIONS = (
    "Runs on the recurrent-cell spaces (`enas-rnn`, `nasrl-rnn`), judged by word-level perplexity (lower is better) "
    "and never mixed into the image tables. Per protocol, corpus and search space, sorted by test perplexity (a "
    "method's variants right under it). **Test perplexity**: on the corpus' test split after the protocol's shared "
    "final training, mean ± sample standard deviation over seeds (n), and the 95% interval of the mean (Student's t; "
    f"none for one seed). **Δ vs random-arch**: mean test perplexity minus that of `{REFERENCE_METHOD}` on the same "
    "space, protocol and corpus (perplexity, negative is better); **told apart**: whether Welch's t-test over the "
    "seeds separates the two at p < 0.05. **Val perplexity**: the search-validation perplexity the method chose "
    "its cell by (– where it chose none, as random-arch). **Params**: millions, the whole language model. "
    "**FLOPs/word**: millions per predicted word. **Search**: hours of wall time of the search alone (final "
    "training excluded). **Published**: the paper's test perplexity and params on PTB, with its full-size training "
    "and hardware, from baselines/published_results.csv, paired by baselines/comparisons.csv; † marks one beside "
    "a stand-in corpus, where it is not comparable. Per row: " + LANGUAGE_CSV + "."
)
STAND_IN_NOTE = (
    "**Stand-in corpus: these perplexities are not comparable with published ones.** PTB's training split was "
    f"missing, so these models trained on the first {STAND_IN_TRAIN_SHARE:.0%} of the lines of PTB's validation "
    "split (validating on the rest): far fewer words than PTB's training split, so their test perplexity, though "
    "measured on PTB's test split, is far higher than a paper's. Published figures beside them (†) are for "
    "reference only."
)


def summarise_language_model(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, corpus, method, variant) of the language-model runs: test
    perplexity as :func:`seed_summary` summarises it, the search-validation perplexity, the
    final training's own validation perplexity, epochs and ASGD switch, and whether the corpus
    is a stand-in."""
    final = [json.loads(details or "{}").get("final_training") or {} for details in runs["details_json"]]
    runs = runs.assign(
        final_valid_perplexity=[f.get("valid_perplexity") for f in final],
        final_epochs=[f.get("epochs") for f in final],
        asgd_from_epoch=["–" if f.get("asgd_from_epoch") is None else str(f["asgd_from_epoch"]) for f in final],
        corpus_stand_in=[bool(f.get("corpus_stand_in")) or is_stand_in(data) for f, data in zip(final, runs["data"])],
    ).astype({"final_valid_perplexity": float, "final_epochs": float, "val_perplexity": float, VALUE: float})
    return seed_summary(runs, VALUE, {"val_perplexity_mean": ("val_perplexity", "mean")}, {
        "final_valid_perplexity_mean": ("final_valid_perplexity", "mean"),
        "final_epochs": ("final_epochs", "max"),
        "asgd_from_epochs": ("asgd_from_epoch", lambda s: ", ".join(sorted(set(s)))),
        "corpus_stand_in": ("corpus_stand_in", "any"),
    })


def published_perplexity(row: Mapping[str, Any]) -> str:
    """A summary row's published test perplexity where it is of the row's data set (PTB), marked †
    beside a stand-in corpus."""
    if pd.isna(row["published_test_perplexity"]) or not same_data_set(row["published_data"], row["data"]):
        return "–"
    return fmt(float(row["published_test_perplexity"]), 1) + ("" if row["published_comparable"] else " †")


def _published_params(row: Mapping[str, Any]) -> str:
    return fmt(float(row["published_params_m"]), 1) if same_data_set(row["published_data"], row["data"]) else "–"


def main_table(rows: pd.DataFrame) -> str:
    return markdown_table(pd.DataFrame({
        "Method": row_names(rows),
        "Strategy": rows["strategy"],
        "Test perplexity": [f"{fmt(m)} ± {fmt(s)} ({n})" for m, s, n in
                            zip(rows[f"{VALUE}_mean"], rows[f"{VALUE}_std"], rows["n"])],
        "95% CI": ["–" if pd.isna(lo) else f"{max(lo, 1.0):.1f}–{hi:.1f}"
                   for lo, hi in zip(rows[f"{VALUE}_ci_low"], rows[f"{VALUE}_ci_high"])],
        "Δ vs random-arch": [fmt(v) for v in rows["delta_vs_random"]],
        "Told apart": [told_apart(row) for row in rows.itertuples()],
        "Val perplexity": [fmt(v) for v in rows["val_perplexity_mean"]],
        "Params (M)": [fmt(v, 3) for v in rows["params_m"]],
        "FLOPs/word (M)": [fmt(v, 3) for v in rows["flops_m"]],
        "Search (h)": [fmt(v, 3) for v in rows["search_hours"]],
        "Published perplexity": [published_perplexity(row) for row in rows.to_dict("records")],
        "Published params (M)": [_published_params(row) for row in rows.to_dict("records")],
    }))


def details_table(rows: pd.DataFrame) -> str:
    """What a reader checks second: seeds, the final training (its own validation perplexity,
    epochs, the epoch it switched to averaged SGD), the device searched on, the published search cost."""
    return markdown_table(pd.DataFrame({
        "Method": row_names(rows),
        "Seeds": rows["seeds"],
        "Final-training val perplexity": [fmt(v) for v in rows["final_valid_perplexity_mean"]],
        "Final epochs": [fmt(v, 0) for v in rows["final_epochs"]],
        "ASGD from epoch": rows["asgd_from_epochs"],
        "Final training (h)": [fmt(v, 3) for v in rows["eval_hours"]],
        "Searched on": rows["devices"],
        "Published search (GPU-days)": [fmt(v, 2) if same_data_set(p, d) else "–" for v, p, d in
                                        zip(rows["published_search_cost_gpu_days"], rows["published_data"], rows["data"])],
    }))


def _sources(rows: pd.DataFrame) -> list[str]:
    shown = pd.Series([same_data_set(p, d) for p, d in zip(rows["published_data"], rows["data"])], index=rows.index)
    return published_sources(rows, shown, lambda r: f"perplexity {fmt(r.published_test_perplexity, 1)}")


def language_model_markdown(summary: pd.DataFrame) -> str:
    """The language models' section of results.md: per protocol and corpus (a stand-in's with its
    note) and per space, the main table, its variants, sources and search details."""
    if summary.empty:
        return ""
    lines = ["", "## Language models", "", CONVENTIONS]
    for (protocol, protocol_hash, data), section in summary.groupby(SECTION_KEYS, sort=False):
        lines += ["", f"### {section_title(protocol, protocol_hash, data)}"]
        if section["corpus_stand_in"].any():
            lines += ["", STAND_IN_NOTE]
        for space, rows in section.groupby("space", sort=False):
            rows = ordered(rows, f"{VALUE}_mean")
            lines += ["", f"#### Space `{space}`", "", main_table(rows)]
            if not (rows["method"].eq(REFERENCE_METHOD) & rows["label"].eq("")).any():
                lines += ["", MISSING_REFERENCE.format(space=space).capitalize() + "."]
            lines += legend(rows) + _sources(rows)
            lines += ["", f"##### Search details, space `{space}`", "", details_table(rows)]
    return "\n".join(lines) + "\n"
