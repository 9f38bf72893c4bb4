"""The measured cost tables a report reads, each run's latency predicted by them, and a run's
counts (such as MAC, which a run does not store) on its protocol's network."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from nasbench.errors import NasbenchError
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.profiler import counts_table
from nasbench.hardware.table import CostTable, MissingEntryError
from nasbench.protocol import protocol_from_json
from nasbench.spaces import get_space, space_for_table


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


def counted(runs: pd.DataFrame, metric: str) -> list[float]:
    """Each run's found network's exact ``metric`` (a count: params, FLOPs, MAC), counted on its
    stored protocol's network as a constraint costs it (the final network without the
    auxiliary head); NaN where that protocol cannot be read."""
    models: dict[tuple[str, str], CostModel | None] = {}
    values = []
    for space, protocol_json, genotype in zip(runs["space"], runs["protocol_json"], runs["genotype_json"]):
        if (space, protocol_json) not in models:
            models[space, protocol_json] = _counts_model(space, protocol_json, metric)
        model = models[space, protocol_json]
        values.append(math.nan if model is None else model.cost(model.space.from_dict(json.loads(genotype))))
    return values


def _counts_model(space_name: str, protocol_json: str, metric: str) -> CostModel | None:
    try:
        protocol = protocol_from_json(protocol_json, "a stored run's protocol")
        space = get_space(space_name, protocol)
        return CostModel(counts_table(space, protocol), space, metric)
    except NasbenchError:
        return None
