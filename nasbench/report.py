"""Comparison reports, regenerated from the store (never edited by hand).

Writes ``results.md`` (one table per protocol and data set, like the survey's tables:
method, strategy class, test error, params, FLOPs, search cost, beside the published
figures), ``results.csv`` (the same, machine-readable) and ``runs.csv`` (every finished
run with its provenance, so any row can be traced and reproduced).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from nasbench.baselines_data import published_row
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.table import CostTable
from nasbench.spaces import get_space
from nasbench.store import iter_finished
from nasbench.strategies import STRATEGIES

REFERENCE_METHOD = "random-arch"

CONVENTIONS = (
    "Test error: % on the protocol's test split, mean ± sample standard deviation over seeds (n). "
    "Params: millions, auxiliary head excluded. FLOPs: millions, fvcore's count, one multiply-add = one FLOP. "
    "Search cost: hours of wall time of the search alone on the device named (final training excluded). "
    f"Δ vs random: mean test error minus that of `{REFERENCE_METHOD}` (architectures drawn at random and "
    "final-trained identically); negative is better. Published columns: the papers' own figures "
    "(full CIFAR-10, their hardware, GPU-days) from baselines/published_results.csv. "
    "Latency (ms) <device> <backend> t<threads> b<batch>: the found networks' latency predicted by the measured "
    "cost table of that device and the run's protocol (its final network, without the auxiliary head), mean over seeds."
)


def load_runs(store_path: Path) -> pd.DataFrame:
    rows = [{**dict(row), **_constraint_columns(row["details_json"])} for row in iter_finished(store_path)]
    return pd.DataFrame(rows)


def _constraint_columns(details_json: str | None) -> dict[str, object]:
    """A constrained run's target and the exact cost its architecture achieves."""
    constraint = json.loads(details_json or "{}").get("constraint")
    if constraint is None:
        return {"constraint_target": None, "constraint_achieved": None}
    return {"constraint_target": constraint["target"], "constraint_achieved": constraint["achieved"]}


def _published(method: str) -> dict[str, object]:
    cls = STRATEGIES.get(method)
    if cls is None or not cls.published:
        return {"published_test_error": None, "published_params_m": None,
                "published_search_cost_gpu_days": None, "published_source": None}
    row = published_row(*cls.published[0])
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
    return f"latency_ms {table.device_fingerprint} {c['backend']} t{c['threads']} b{c['batch_size']}"


def with_device_costs(runs: pd.DataFrame, tables: list[CostTable]) -> pd.DataFrame:
    """Each run's predicted latency on every measured table of its space and protocol
    (a column per table; empty where the table is of another protocol)."""
    runs = runs.copy()
    for table in tables if len(runs) else ():
        if not table.measured:
            continue
        space = get_space(table.space)
        model = CostModel(table, space, "latency_ms")
        runs[latency_column(table)] = [
            model.cost(space.from_dict(json.loads(genotype)))
            if run_space == table.space and protocol_hash == table.protocol_hash else None
            for genotype, run_space, protocol_hash in zip(runs["genotype_json"], runs["space"], runs["protocol_hash"])
        ]
    return runs


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, data, method, variant): a constrained run is its own row."""
    runs = runs.assign(test_error=100.0 * (1.0 - runs["test_acc"]))
    latency_columns = [c for c in runs.columns if c.startswith("latency_ms ")]
    grouped = runs.groupby(["protocol", "protocol_hash", "data", "method", "variant"], sort=False)
    table = grouped.agg(
        strategy=("strategy_class", "first"),
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
        constraint_target=("constraint_target", "first"),
        constraint_achieved=("constraint_achieved", "mean"),
        **{column: (column, "mean") for column in latency_columns},
    ).reset_index()
    reference = table[(table["method"] == REFERENCE_METHOD) & (table["variant"] == "")].set_index(["protocol_hash", "data"])["test_error_mean"]
    table["delta_vs_random"] = [
        row.test_error_mean - reference[(row.protocol_hash, row.data)] if (row.protocol_hash, row.data) in reference.index else None
        for row in table.itertuples()
    ]
    published = pd.DataFrame([_published(m) for m in table["method"]])
    return pd.concat([table, published], axis=1)


def _fmt(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(summary: pd.DataFrame, store_path: Path, n_runs: int) -> str:
    lines = [
        "# nasbench results",
        "",
        f"Generated by `nasbench report` from the store `{store_path}` ({n_runs} finished runs). "
        "Do not edit by hand: regenerate.",
        "",
        CONVENTIONS,
    ]
    for (protocol, protocol_hash, data), section in summary.groupby(["protocol", "protocol_hash", "data"], sort=False):
        lines += ["", f"## Protocol `{protocol}` (hash `{protocol_hash}`), data `{data}`", ""]
        table = pd.DataFrame({
            "Method": [m if not v else f"{m} [{v}]" for m, v in zip(section["method"], section["variant"])],
            "Strategy": section["strategy"],
            "Test error (%)": [f"{_fmt(m)} ± {_fmt(s)}" for m, s in zip(section["test_error_mean"], section["test_error_std"])],
            "n": section["n"],
            "Δ vs random (pp)": [_fmt(v) for v in section["delta_vs_random"]],
            "Params (M)": [_fmt(v, 3) for v in section["params_m"]],
            "FLOPs (M, MAC=1)": [_fmt(v, 1) for v in section["flops_m"]],
            "Search cost (h)": [_fmt(v, 3) for v in section["search_hours"]],
            "Device": section["devices"],
            **{f"Latency (ms) {c.removeprefix('latency_ms ')}": [_fmt(v, 2) for v in section[c]]
               for c in section.columns if c.startswith("latency_ms ") and section[c].notna().any()},
            **({"Constraint: achieved / target": [
                "–" if pd.isna(t) else f"{a:.4g} / {t:.4g}"
                for a, t in zip(section["constraint_achieved"], section["constraint_target"])]}
               if section["constraint_target"].notna().any() else {}),
            "Published error (%)": [_fmt(v) for v in section["published_test_error"]],
            "Published params (M)": [_fmt(v, 1) for v in section["published_params_m"]],
            "Published search (GPU-days)": [_fmt(v, 1) for v in section["published_search_cost_gpu_days"]],
        })
        lines.append(table.to_markdown(index=False, disable_numparse=True))
        sources = section.dropna(subset=["published_source"])
        if len(sources):
            lines += ["", "Published figures: " + "; ".join(f"{m}: {s}" for m, s in zip(sources["method"], sources["published_source"]))]
    return "\n".join(lines) + "\n"


def cost_table_rows(tables: list[CostTable]) -> pd.DataFrame:
    """One row per (cost table, validation predictor), read from the table files."""
    rows = []
    for table in tables:
        path = table.path
        c = table.conditions
        base = {
            "table": str(path), "device": c.get("device"), "device_fingerprint": table.device_fingerprint,
            "space": table.space, "protocol": table.protocol, "protocol_hash": table.protocol_hash,
            "network": f"{table.network['channels']} ch, {table.network['cells']} cells",
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
    if runs.empty:
        paths[0].write_text(f"# nasbench results\n\nThe store `{store_path}` holds no finished runs yet.\n" + tables_md)
        pd.DataFrame().to_csv(paths[1], index=False)
        pd.DataFrame().to_csv(paths[2], index=False)
        return paths
    summary = summarise(runs)
    paths[0].write_text(to_markdown(summary, store_path, len(runs)) + tables_md)
    summary.to_csv(paths[1], index=False, float_format="%.6g")
    provenance = runs.drop(columns=["state_json"]).assign(
        software=lambda df: df["software_json"].map(lambda s: " ".join(f"{k}={v}" for k, v in json.loads(s).items()))
    ).drop(columns=["software_json", "protocol_json"])
    provenance.to_csv(paths[2], index=False, float_format="%.6g")
    return paths
