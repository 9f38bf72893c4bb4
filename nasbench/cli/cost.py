"""``nasbench cost``: an architecture's latency, FLOPs, params and MAC from a cost table
(this machine's, unless ``--table`` names one)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench.cli.args import (
    DEFAULT_TABLES,
    add_device,
    add_protocol,
    positive,
    print_json,
)
from nasbench.cli.profile import add_stopping
from nasbench.errors import NasbenchError


def register(commands: Any) -> None:
    cost = commands.add_parser("cost", help="a genotype's latency, FLOPs, params and MAC from a cost table")
    cost.add_argument("genotype", help="a zoo name, a genotype JSON file or a `nasbench describe --json` record")
    cost.add_argument("--table", type=Path,
                      help="a cost table file (default: this machine's table under --tables for the genotype's space, "
                           "--protocol, --backend, --threads and --batch-size)")
    cost.add_argument("--tables", type=Path, default=DEFAULT_TABLES,
                      help=f"where this machine's table is looked up without --table (default: {DEFAULT_TABLES})")
    cost.add_argument("--space", help="without --table: the space of the table (default: a record's, else cell)")
    add_device(cost)
    add_protocol(cost, "without --table: the protocol of the table")
    cost.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"),
                      help="without --table: the backend of the table (default: torch)")
    cost.add_argument("--threads", type=positive, default=1, help="without --table: the table's threads (default: 1)")
    cost.add_argument("--batch-size", type=positive,
                      help="without --table: the table's batch size (default: 1; a recurrent cell's: the protocol's "
                           "eval_batch_size)")
    cost.add_argument("--window", action="store_true",
                      help="without --table: a recurrent cell's table over the protocol's BPTT window, not one time step")
    cost.add_argument("--measure", action="store_true",
                      help="also measure the whole network under the table's conditions (on the table's device), "
                           "with the table's reference workload where it has one, so the prediction is restated at "
                           "this moment's speed of the machine")
    add_stopping(cost, 9, 30.0)
    cost.add_argument("--json", action="store_true", help="print the costs as one JSON object per line")


def execute(args: argparse.Namespace) -> int:
    from nasbench.hardware.table import CostTable
    from nasbench.spaces import space_for_table
    from nasbench.spaces.resolve import record_space, resolve_arch

    if args.table is not None:
        table = CostTable.load(args.table)
    else:  # this machine's table: finding it needs torch to name the device
        this_device = _this_device(args.device, None)
        table = CostTable.load(_this_machines_table(args, args.space or record_space(args.genotype), this_device))
    space = space_for_table(table)
    arch, _ = resolve_arch(args.genotype, space)
    table.check_fits(space)  # with --table, a bad table or genotype answers before torch
    if args.table is not None:
        this_device = _this_device(args.device, table.conditions.get("device_type"))
    from nasbench.hardware.cost_model import CostModel

    result: dict[str, Any] = {"genotype": args.genotype, "table": str(table.path), "network": table.network,
                              "table_device": table.device_fingerprint, "this_device": this_device,
                              "same_device": table.device_fingerprint == this_device}
    for metric in ("params", "flops", "mac_elements", "mac_bytes"):
        result[metric] = int(CostModel(table, space, metric).cost(arch))
    latency = CostModel(table, space, "latency_ms") if table.measured else None
    if latency is not None:
        result["latency_ms_predicted"] = latency.cost(arch)
        result["latency_conditions"] = {k: table.conditions[k] for k in ("device", "backend", "threads", "batch_size")}
    if args.measure:
        result |= _measure(args, space, arch, table, result["latency_ms_predicted"])
    if args.json:
        print_json(result)
        return 0
    print(f"{args.genotype} in the {table.space} network of {space.describe_network(table.network_config)} "
          f"(table {table.path}):")
    print(f"  params {result['params'] / 1e6:.3f}M, FLOPs {result['flops'] / 1e6:.1f}M (1 multiply-add = 1 FLOP), "
          f"MAC {result['mac_bytes'] / 2**20:.2f} MiB ({result['mac_elements']} elements)")
    if latency is not None:
        c = table.conditions
        speed = "" if table.reference_speed is None else " at the table's reference speed"
        print(f"  latency predicted {result['latency_ms_predicted']:.3f} ms{speed} ({c['backend']}, {c['threads']} "
              f"thread(s), batch {c['batch_size']}, {c['device']})")
        if not result["same_device"]:
            print(f"  predicted for {table.device_fingerprint}, not this machine ({this_device})")
    if args.measure:
        _print_measurement(result)
    return 0


def _measure(args: argparse.Namespace, space: Any, arch: Any, table: Any, predicted: float) -> dict[str, Any]:
    """The network measured to ``--precision`` (or ``--max-time``), its spread, and the error of
    the prediction restated at this moment's speed (and as stored, against the raw timings)."""
    import numpy as np

    from nasbench.hardware.drift import relative_ci
    from nasbench.hardware.later import measure_networks, table_backend

    later = measure_networks(space, [arch], table, table_backend(table, args.rounds, args.precision, args.max_time))
    measured, raw, rounds = later.latencies[0], later.raw[0], later.round_p50s_ms[0]
    predicted_now = predicted * later.speed_factor
    return {
        "latency_ms_measured_p50": measured.p50_ms, "latency_ms_measured_p10_p90": [measured.p10_ms, measured.p90_ms],
        "latency_ms_measured_raw_p50": raw.p50_ms,
        "measurement": later.stop.to_dict() | {"rounds_p50_p10_p90_ms": np.percentile(rounds, [10, 90]).tolist(),
                                               "network_precision": relative_ci(rounds)},
        "reference_ms_now": later.reference_ms,
        "reference_ms_table": None if table.reference_speed is None else table.reference_speed["ms"],
        "speed_factor": later.speed_factor, "latency_ms_predicted_now": predicted_now,
        "prediction_error_pct": 100 * (predicted_now - measured.p50_ms) / measured.p50_ms,
        "prediction_error_unscaled_pct": 100 * (predicted - raw.p50_ms) / raw.p50_ms,
    }


def _print_measurement(result: dict[str, Any]) -> None:
    from nasbench.hardware.drift import Stop

    m = result["measurement"]
    low, high = m["rounds_p50_p10_p90_ms"]
    stop = Stop(**{k: v for k, v in m.items() if k in Stop.__dataclass_fields__})
    print(f"  latency measured  {result['latency_ms_measured_p50']:.3f} ms (p50; the rounds' p50s p10-p90 "
          f"{low:.3f}-{high:.3f} ms); {stop.describe()}")
    if result["reference_ms_table"] is None:
        print(f"  prediction error {result['prediction_error_pct']:+.1f}% (the table has no reference speed: how much "
              "faster or slower the machine is now than during its build is not known)")
        return
    print(f"  machine now: the reference workload takes {result['reference_ms_now']:.4f} ms, "
          f"{result['speed_factor']:.3f}x its {result['reference_ms_table']:.4f} ms in the table; prediction at this "
          f"speed {result['latency_ms_predicted_now']:.3f} ms, error {result['prediction_error_pct']:+.1f}% (as "
          f"stored: {result['prediction_error_unscaled_pct']:+.1f}% against the raw {result['latency_ms_measured_raw_p50']:.3f} ms)")


def _this_device(requested: str, table_device_type: str | None) -> str:
    """This machine's fingerprint for ``--device``. Against a CPU table ``auto`` means this
    machine's CPU: where CUDA is available auto would pick it, and call this machine's own CPU
    table another device's."""
    from nasbench.provenance import device_fingerprint, resolve_device

    return device_fingerprint(resolve_device("cpu" if requested == "auto" and table_device_type == "cpu" else requested))


def _this_machines_table(args: argparse.Namespace, space: str, fingerprint: str) -> Path:
    """The table of ``space`` this machine measured under the conditions the options name,
    or a one-line error naming the command that builds it and the tables this machine has."""
    from nasbench.hardware.profiler import table_network
    from nasbench.hardware.table import table_file_name
    from nasbench.protocol import load_protocol
    from nasbench.provenance import resolve_device
    from nasbench.spaces import get_space

    protocol = load_protocol(args.protocol)
    searched = get_space(space, protocol)
    batch_size = args.batch_size or searched.cost_batch_size()
    window = table_network(searched, protocol, window=True).cells if args.window else None
    folder = args.tables / fingerprint
    path = folder / table_file_name(space, protocol.name, args.backend, args.threads, batch_size, window)
    if path.is_file():
        return path
    build = (f"nasbench profile --space {space} --protocol {args.protocol} --device {resolve_device(args.device).type} "
             f"--backend {args.backend} --threads {args.threads} --batch-size {batch_size}"
             + (" --window" if args.window else "") + ("" if args.tables == DEFAULT_TABLES else f" --out {args.tables}"))
    tables = sorted(p.name for p in folder.glob("*.json") if not p.name.endswith(".validation.json"))
    others = sorted(p.name for p in args.tables.glob("*/") if p.name != fingerprint)
    have = (f"this machine's tables: {', '.join(tables)}" if tables else
            f"this machine has none; other devices' under {args.tables}: {', '.join(others) or 'none'}")
    raise NasbenchError(f"no cost table {path} for this machine ({fingerprint}); build it with `{build}`, or give "
                        f"--table FILE ({have})")
