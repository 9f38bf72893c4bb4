"""``nasbench profile``: measure a cost table for a space, protocol and device."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nasbench.cli.args import (
    DEFAULT_TABLES,
    add_device,
    add_protocol,
    load_checked_protocol,
    non_negative,
    positive,
    print_json,
)


def register(commands: Any) -> None:
    profile = commands.add_parser("profile", help="measure a cost table for a space, protocol and device")
    profile.add_argument("--space", default="cell", help="search space (default: cell)")
    add_protocol(profile, "the protocol whose final network is profiled")
    add_device(profile)
    profile.add_argument("--backend", required=True, choices=("torch", "onnxruntime"))
    profile.add_argument("--batch-size", type=positive, default=1, help="images per call (default: 1)")
    profile.add_argument("--threads", type=positive, default=1, help="intra-op threads (default: 1)")
    profile.add_argument("--out", type=Path, default=DEFAULT_TABLES, help=f"tables folder (default: {DEFAULT_TABLES})")
    profile.add_argument("--validate", type=non_negative, default=0, metavar="N",
                         help="also measure N random whole networks and compare them with the table")
    profile.add_argument("--calibrate", type=non_negative, default=30, metavar="K",
                         help="random whole networks the predictor is fitted on (default: 30)")
    profile.add_argument("--rounds", type=positive, default=9, help="interleaved measurement rounds (default: 9)")
    profile.add_argument("--min-time", type=float, default=0.05,
                         help="seconds of timed calls per item and round, at least (default: 0.05)")
    profile.add_argument("--min-reps", type=positive, default=5,
                         help="timed calls per item and round, at least (default: 5)")
    profile.add_argument("--seed", type=int, default=0, help="seed of the random architectures (default: 0)")
    profile.add_argument("--json", action="store_true",
                         help="print the table's path and the validation figures as one JSON object per line")
    profile.add_argument("--no-progress", action="store_true")


def execute(args: argparse.Namespace) -> int:
    from nasbench.hardware.measure import MeasureSettings, make_backend
    from nasbench.hardware.profiler import ProfileRequest, profile
    from nasbench.provenance import resolve_device
    from nasbench.spaces import get_space

    protocol = load_checked_protocol(args.protocol)
    space = get_space(args.space, protocol)
    device = resolve_device(args.device)
    settings = MeasureSettings(min_time_s=args.min_time, min_reps=args.min_reps, rounds=args.rounds)
    backend = make_backend(args.backend, device, args.threads, args.batch_size, settings)
    request = ProfileRequest(space, protocol, backend, calibrate=args.calibrate, validate=args.validate,
                             seed=args.seed, progress=not args.no_progress)
    table, path, validation_path = profile(request, args.out, log=lambda line: print(line, file=sys.stderr))
    validation = None if validation_path is None else json.loads(validation_path.read_text())
    if args.json:
        print_json({"table": str(path), "entries": len(table.entries), "build_seconds": table.build_seconds,
                    "validation": None if validation is None else str(validation_path),
                    "predictors": None if validation is None else validation["predictors"],
                    "repeatability": None if validation is None else validation["repeatability"]})
        return 0
    print(f"table: {path} ({len(table.entries)} entries, built in {table.build_seconds:.0f}s)")
    if validation is None:
        return 0
    figures = dict(validation["predictors"])
    if validation["repeatability"] is not None:
        figures["(repeatability)"] = validation["repeatability"]
    print(f"validation: {validation_path}")
    print(f"{'predictor':18s} {'n':>4s} {'<=5%':>6s} {'<=10%':>6s} {'MAPE%':>6s} {'p95%':>6s} {'bias%':>6s} {'tau':>6s} {'rho':>6s}")
    for name, f in figures.items():
        print(f"{name:18s} {f['n']:4d} {100 * f['within_5pct']:6.1f} {100 * f['within_10pct']:6.1f} {f['mape_pct']:6.2f} "
              f"{f['p95_abs_error_pct']:6.2f} {f['bias_pct']:6.2f} {f['kendall_tau']:6.3f} {f['spearman_rho']:6.3f}")
    return 0
