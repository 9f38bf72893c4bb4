"""The report's section on the ranking quality of weight sharing (``nasbench rank``'s stored
rankings) and rankings.csv."""
from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import pandas as pd

from nasbench.report.common import markdown_table
from nasbench.store import TOP_FRACTION, Store, ranking_record


def load_rankings(store_path: Path) -> pd.DataFrame:
    """One row per finished ranking: figures, provenance and both accuracy lists."""
    with closing(Store(store_path, readonly=True)) as store:
        rows = []
        for row in store.rankings("finished"):
            record = ranking_record(store, row)
            pairs = record.pop("pairs")
            record["software"] = " ".join(f"{k}={v}" for k, v in record["software"].items())
            rows.append({**record, "supernet_accs": json.dumps([p["supernet_acc"] for p in pairs]),
                         "standalone_accs": json.dumps([p["standalone_acc"] for p in pairs])})
    return pd.DataFrame(rows)


def rankings_markdown(rankings: pd.DataFrame) -> str:
    """The report's section on the ranking quality of weight sharing."""
    def figure(value: float | None) -> str:
        return "–" if value is None or pd.isna(value) else f"{value:.3f}"

    table = pd.DataFrame({
        "Protocol": [f"{p} (`{h}`)" for p, h in zip(rankings["protocol"], rankings["protocol_hash"])],
        "Data": rankings["data"],
        "Method": rankings["method"],
        "Seed": rankings["seed"],
        "K": rankings["samples"],
        "Kendall τ": [figure(v) for v in rankings["kendall_tau"]],
        "Spearman ρ": [figure(v) for v in rankings["spearman_rho"]],
        "Top-k overlap (k)": [f"{figure(v)} ({k})" for v, k in zip(rankings["top_k_overlap"], rankings["top_k"])],
        "Supernet from": rankings["supernet"],
        "Time (h)": [f"{s / 3600:.3f}" for s in rankings["seconds"]],
        "Device": rankings["device"],
    })
    return "\n".join([
        "", "## Ranking quality of weight sharing", "",
        "`nasbench rank`: K architectures drawn at random from the cell space, each scored on search-validation "
        "twice: under a method's trained supernet (its single path, batch-norm statistics recomputed on "
        "search-train for that path) and after the protocol's candidate training alone. Kendall τ (tau-b) and "
        f"Spearman ρ between the two orders; top-k overlap: the share of the stand-alone best k (k = K // "
        f"{TOP_FRACTION}, at least 1) among the supernet's best k. 1 is a perfect ranking, 0 none; – where one "
        "side scores every architecture the same. `rankings.csv` has both accuracy lists.",
        "", markdown_table(table),
    ]) + "\n"
