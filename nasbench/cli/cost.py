"""``nasbench cost``: an architecture's latency, FLOPs, params and MAC from a cost table."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench.cli.args import print_json


def register(commands: Any) -> None:
    cost = commands.add_parser("cost", help="a genotype's latency, FLOPs, params and MAC from a cost table")
    cost.add_argument("genotype", help="a zoo name or a genotype JSON file")
    cost.add_argument("--table", type=Path, required=True, help="a cost table file (cost_tables/...json)")
    cost.add_argument("--measure", action="store_true",
                      help="also measure the whole network under the table's conditions (on the table's device)")
    cost.add_argument("--json", action="store_true")


def execute(args: argparse.Namespace) -> int:
    from nasbench.hardware.cost_model import CostModel
    from nasbench.hardware.profiler import measure_on_table_device
    from nasbench.hardware.table import CostTable
    from nasbench.spaces import space_for_table
    from nasbench.spaces.resolve import resolve_arch

    table = CostTable.load(args.table)
    space = space_for_table(table)
    arch, _ = resolve_arch(args.genotype, space)
    result: dict[str, Any] = {"genotype": args.genotype, "table": str(args.table), "network": table.network}
    for metric in ("params", "flops", "mac_elements", "mac_bytes"):
        result[metric] = int(CostModel(table, space, metric).cost(arch))
    latency = CostModel(table, space, "latency_ms") if table.measured else None
    if latency is not None:
        result["latency_ms_predicted"] = latency.cost(arch)
        result["latency_conditions"] = {k: table.conditions[k] for k in ("device", "backend", "threads", "batch_size")}
    if args.measure:
        measured = measure_on_table_device(space, arch, table)
        result["latency_ms_measured_p50"] = measured.p50_ms
        result["latency_ms_measured_p10_p90"] = [measured.p10_ms, measured.p90_ms]
        result["prediction_error_pct"] = 100 * (result["latency_ms_predicted"] - measured.p50_ms) / measured.p50_ms
    if args.json:
        print_json(result)
        return 0
    print(f"{args.genotype} in the {table.space} network of {space.describe_network(table.network_config)}:")
    print(f"  params {result['params'] / 1e6:.3f}M, FLOPs {result['flops'] / 1e6:.1f}M (1 multiply-add = 1 FLOP), "
          f"MAC {result['mac_bytes'] / 2**20:.2f} MiB ({result['mac_elements']} elements)")
    if latency is not None:
        c = table.conditions
        print(f"  latency predicted {result['latency_ms_predicted']:.3f} ms ({c['backend']}, {c['threads']} thread(s), "
              f"batch {c['batch_size']}, {c['device']})")
    if args.measure:
        print(f"  latency measured  {result['latency_ms_measured_p50']:.3f} ms (p50; p10-p90 "
              f"{measured.p10_ms:.3f}-{measured.p90_ms:.3f}); prediction error {result['prediction_error_pct']:+.1f}%")
    return 0
