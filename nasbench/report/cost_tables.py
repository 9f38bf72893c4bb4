"""The report's cost-table section: every measured table and how well it predicts whole networks."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from nasbench.hardware.table import CostTable
from nasbench.provenance import device_fingerprint
from nasbench.report.common import fmt
from nasbench.spaces import space_for_table

THIS_MACHINE, ANOTHER_DEVICE = "this machine", "another device"


def this_machine() -> list[str]:
    """The fingerprints of the devices of the machine writing the report: its CPU's, and its
    GPU's where torch sees one (a table of any other was measured elsewhere)."""
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [device_fingerprint(device) for device in devices]


def cost_table_rows(tables: list[CostTable]) -> pd.DataFrame:
    """One row per (cost table, validation predictor), read from the table files, each
    labelled this machine's or another device's."""
    rows = []
    local = this_machine()
    for table in tables:
        path = table.path
        c = table.conditions
        base = {
            "table": str(path), "machine": THIS_MACHINE if table.device_fingerprint in local else ANOTHER_DEVICE,
            "device": c.get("device"), "device_fingerprint": table.device_fingerprint,
            "space": table.space, "protocol": table.protocol, "protocol_hash": table.protocol_hash,
            "network": space_for_table(table).describe_network(table.network_config),
            "backend": f"{c.get('backend')} {c.get('backend_version', '')}".strip(), "threads": c.get("threads"),
            "batch_size": c.get("batch_size"), "entries": len(table.entries), "build_seconds": table.build_seconds,
            "predictor": None if table.predictor is None else table.predictor.describe(),
            "warnings": "\n".join(table.warnings),
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
        later = content.get("later_process")
        if later:
            for name, figures in later["predictors"].items():
                rows.append(base | {"validated_predictor": f"{name} (later process)"} | figures)
            rows.append(base | {"validated_predictor": "(repeatability across processes)"} | later["repeatability"])
    return pd.DataFrame(rows)


def cost_tables_markdown(tables: pd.DataFrame, tables_dir: Path) -> str:
    lines = ["", "## Cost tables", "",
             f"Measured tables under `{tables_dir}` and how well each predicts whole networks it never saw "
             "(random architectures, measured end to end under the table's conditions). `table` is the table's "
             "own predictor; `naive_sum` sums isolated part latencies; `affine_sum`, the FLOPs and FLOPs+MAC lines "
             "are linear baselines fitted on the same calibration architectures. `(repeatability)` compares two independent "
             "halves of the whole-network measurements (odd against even rounds): the noise floor no predictor can "
             "beat. Rows marked `(later process)` compare with the same networks measured again in a separate process "
             "after the build, as a user measures later: `table` restated at that moment's speed of the machine (by the "
             "table's reference workload), `table_unscaled` as stored; `(repeatability across processes)` compares the "
             "build's measurement with that one. Shares within ±5% / ±10% in %, MAPE, p95 absolute error and signed bias in %. Each table is marked "
             f"**{THIS_MACHINE}** (the machine that wrote this report: {', '.join(f'`{f}`' for f in this_machine())}) "
             f"or **{ANOTHER_DEVICE}**, with the fingerprint of the device it was measured on."]
    for table_path, group in tables.groupby("table", sort=False):
        first = group.iloc[0]
        lines += ["", f"### `{table_path}`", "",
                  f"**{first['machine']}** (`{first['device_fingerprint']}`): "
                  f"{first['device']}, {first['backend']}, {first['threads']} thread(s), batch {first['batch_size']}; "
                  f"space `{first['space']}`, protocol `{first['protocol']}` ({first['network']}); "
                  f"{first['entries']} entries, built in {fmt(first['build_seconds'], 0)} s; predictor {first['predictor']}."]
        for warning in (first.get("warnings") or "").splitlines():
            lines += ["", f"**Warning:** {warning}"]
        if "validated_predictor" in group and group["validated_predictor"].notna().any():
            shown = pd.DataFrame({
                "Predictor": group["validated_predictor"], "n": group["n"].astype(int),
                "≤5%": [fmt(100 * v, 1) for v in group["within_5pct"]],
                "≤10%": [fmt(100 * v, 1) for v in group["within_10pct"]],
                "MAPE": [fmt(v) for v in group["mape_pct"]], "p95": [fmt(v) for v in group["p95_abs_error_pct"]],
                "bias": [fmt(v) for v in group["bias_pct"]], "Kendall τ": [fmt(v, 3) for v in group["kendall_tau"]],
                "Spearman ρ": [fmt(v, 3) for v in group["spearman_rho"]],
            })
            lines += ["", shown.to_markdown(index=False, disable_numparse=True)]
    return "\n".join(lines) + "\n"
