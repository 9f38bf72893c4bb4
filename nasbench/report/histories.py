"""Per-epoch histories read from the runs' details: every supernet search's epochs
(supernet_history.csv) and every RL controller's reward curve (controller_history.csv)."""
from __future__ import annotations

import json

import pandas as pd

from nasbench.report.common import ROW_KEYS

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
