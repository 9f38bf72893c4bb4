"""``nasbench profile``: measure a cost table for a space, protocol and device (one per batch size)."""
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
    bounded,
    load_checked_protocol,
    non_negative,
    positive,
    print_json,
)

PRECISION, MAX_TIME_S, LATER, TOLERANCE = 0.02, 240.0, 8, 0.10
"""Defaults: whole-network figures to ±2% (a fifth of the ±10% tolerance), measured for at most
4 minutes (about 34 rounds of the proxy network's parts at batch 1 on a 2-core VM), then 8 networks
measured again in a separate process (with a minute at most): a table in about 5 minutes."""


def batch_sizes(text: str) -> tuple[int, ...]:
    """``1`` or ``1,32``: one table per batch size."""
    values = tuple(positive(part.strip()) for part in text.split(","))
    if len(set(values)) < len(values):
        raise argparse.ArgumentTypeError(f"a batch size is given twice in {text!r}")
    return values


share = bounded(0, strict=True, meaning="a share ", example=" (0.02 = ±2%)")
"""A precision or tolerance."""
seconds = bounded(0, strict=False, meaning="a number of seconds ")


def add_stopping(parser: argparse.ArgumentParser, rounds: int, max_time_s: float) -> None:
    """How long a measurement goes on: the minimum rounds, then until a precision or a time limit."""
    parser.add_argument("--rounds", type=positive, default=rounds,
                        help=f"interleaved measurement rounds, at least (default: {rounds})")
    parser.add_argument("--precision", type=share, default=PRECISION,
                        help="then more rounds until whole-network latencies are known to this share, 95%% confidence "
                             f"(default: {PRECISION}, ±{100 * PRECISION:g}%%)")
    parser.add_argument("--max-time", type=seconds, default=max_time_s, metavar="SECONDS",
                        help="... or until the next round would end later than this after the first began; the "
                             f"minimum rounds always run (default: {max_time_s:g})")


def register(commands: Any) -> None:
    profile = commands.add_parser("profile", help="measure a cost table for a space, protocol and device")
    profile.add_argument("--space", default="cell", help="search space (default: cell)")
    add_protocol(profile, "the protocol whose final network is profiled")
    add_device(profile)
    profile.add_argument("--backend", required=True, choices=("torch", "onnxruntime"))
    profile.add_argument("--batch-size", type=batch_sizes, metavar="B[,B...]",
                         help="images per call; several (1,32) build one table each (default: 1; a recurrent cell's "
                              "tables: the protocol's eval_batch_size)")
    profile.add_argument("--window", action="store_true",
                         help="a recurrent cell's table over the protocol's BPTT window (bptt time steps), not one step")
    profile.add_argument("--threads", type=positive, default=1, help="intra-op threads (default: 1)")
    profile.add_argument("--out", type=Path, default=DEFAULT_TABLES, help=f"tables folder (default: {DEFAULT_TABLES})")
    profile.add_argument("--validate", type=non_negative, default=0, metavar="N",
                         help="also measure N random whole networks and compare them with the table")
    profile.add_argument("--calibrate", type=non_negative, default=30, metavar="K",
                         help="random whole networks the predictor is fitted on (default: 30)")
    add_stopping(profile, 9, MAX_TIME_S)
    profile.add_argument("--later", type=non_negative, default=LATER, metavar="K",
                         help="after the build, measure K of its validation (else calibration) networks again in a "
                              "separate process, with a quarter of --max-time: the noise across processes and the temporal "
                              f"validation (default: {LATER})")
    profile.add_argument("--tolerance", type=share, default=TOLERANCE,
                         help="the prediction error the table is meant to hold: noise beyond it is a warning in the "
                              f"table (default: {TOLERANCE})")
    profile.add_argument("--no-drift-correction", action="store_true",
                         help="time no reference workload: latencies at whatever speed the machine had (as before)")
    profile.add_argument("--min-time", type=float, default=0.05,
                         help="seconds of timed calls per item and round, at least (default: 0.05)")
    profile.add_argument("--min-reps", type=positive, default=5,
                         help="timed calls per item and round, at least (default: 5)")
    profile.add_argument("--seed", type=int, default=0, help="seed of the random architectures (default: 0)")
    profile.add_argument("--json", action="store_true",
                         help="print each table's path and figures as one JSON object per line")
    profile.add_argument("--no-progress", action="store_true")


def execute(args: argparse.Namespace) -> int:
    from nasbench.hardware.measure import MeasureSettings, make_backend
    from nasbench.hardware.profiler import ProfileRequest, profile
    from nasbench.provenance import resolve_device
    from nasbench.spaces import get_space

    protocol = load_checked_protocol(args.protocol)
    space = get_space(args.space, protocol)
    device = resolve_device(args.device)
    settings = MeasureSettings(min_time_s=args.min_time, min_reps=args.min_reps, rounds=args.rounds,
                               precision=args.precision, max_time_s=args.max_time,
                               drift_correction=not args.no_drift_correction)
    for batch_size in args.batch_size or (space.cost_batch_size(),):
        backend = make_backend(args.backend, device, args.threads, batch_size, settings)
        request = ProfileRequest(space, protocol, backend, calibrate=args.calibrate, validate=args.validate,
                                 later=args.later, tolerance=args.tolerance, seed=args.seed,
                                 progress=not args.no_progress, window=args.window)
        table, path, validation_path = profile(request, args.out, log=lambda line: print(line, file=sys.stderr))
        validation = None if validation_path is None else json.loads(validation_path.read_text())
        if args.json:
            print_json({"table": str(path), "batch_size": batch_size, "entries": len(table.entries),
                        "build_seconds": table.build_seconds, "measurement_stop": table.measurement_stop,
                        "reference_speed": table.reference_speed, "drift": _drift_summary(table.drift),
                        "noise": table.noise, "warnings": table.warnings,
                        "validation": None if validation is None else str(validation_path),
                        "predictors": None if validation is None else validation["predictors"],
                        "repeatability": None if validation is None else validation["repeatability"],
                        "later_process": None if validation is None else validation["later_process"]})
        else:
            _print_table(table, path, validation_path, validation)
    return 0


def _drift_summary(drift: dict[str, Any] | None) -> dict[str, Any] | None:
    """The drift record without its per-round series (those are in the table)."""
    return None if drift is None else {k: v for k, v in drift.items() if not isinstance(v, list)}


def _print_table(table: Any, path: Path, validation_path: Path | None, validation: dict[str, Any] | None) -> None:
    from nasbench.hardware.drift import Stop

    print(f"table: {path} ({len(table.entries)} entries, built in {table.build_seconds:.0f}s)")
    print(f"  measurement: {Stop(**table.measurement_stop).describe()}")
    if table.drift is not None:
        d = table.drift
        print(f"  drift: reference workload {d['reference_ms_p50']:.4f} ms (p10-p90 {d['reference_ms_p10']:.4f}-"
              f"{d['reference_ms_p90']:.4f}); its round medians moved {d['round_range_pct']:.1f}% during the build; "
              "latencies are stated at the median")
    noise = table.noise
    for name, label in (("across_rounds", "across rounds"), ("across_processes", "across processes")):
        if noise[name] is not None:
            print(f"  noise {label}: p95 |difference| {noise[name]['p95_abs_error_pct']:.1f}%, MAPE "
                  f"{noise[name]['mape_pct']:.2f}% (n {noise[name]['n']}; tolerance ±{100 * noise['tolerance']:g}%)")
    for warning in table.warnings:
        print(f"  WARNING: {warning}")
    if validation is None:
        return
    figures = dict(validation["predictors"])
    if validation["repeatability"] is not None:
        figures["(repeatability)"] = validation["repeatability"]
    later = validation["later_process"]
    if later is not None:
        figures |= {f"{name} (later)": f for name, f in later["predictors"].items()}
        figures["(repeat. later)"] = later["repeatability"]
    print(f"validation: {validation_path}" + ("" if later is None else
          f" (later: {later['n']} networks again in a separate process, where the reference workload took "
          f"{later['speed_factor']:.3f}x its time in the build)"))
    print(f"{'predictor':22s} {'n':>4s} {'<=5%':>6s} {'<=10%':>6s} {'MAPE%':>6s} {'p95%':>6s} {'bias%':>6s} {'tau':>6s} {'rho':>6s}")
    for name, f in figures.items():
        print(f"{name:22s} {f['n']:4d} {100 * f['within_5pct']:6.1f} {100 * f['within_10pct']:6.1f} {f['mape_pct']:6.2f} "
              f"{f['p95_abs_error_pct']:6.2f} {f['bias_pct']:6.2f} {f['kendall_tau']:6.3f} {f['spearman_rho']:6.3f}")
