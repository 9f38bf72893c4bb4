"""Do default cost tables hold in another process, later? Builds N tables in a row with the
default ``nasbench profile`` command before and after drift correction, alternating, and after
each build measures a fixed set of zoo networks none of them saw, in a separate process
(``python -m nasbench.hardware.later``: one process measuring all of them, interleaved, to a
precision), then prints Markdown tables: per build its time, how it stopped, the drift it saw,
and the share of networks predicted within ±10% and the median absolute error; per mode the
same pooled, and how far the N tables' predictions of a network disagree.

"before" is the code path as it was: ``--no-drift-correction --max-time 0 --later 0`` (9
rounds, no reference workload, no separate-process check). "after" is the default command. A
table's error is its prediction restated at the later process's speed against that process's
measurement (a table without a reference speed: as stored, against the raw timings); for
"after" tables the error as stored is shown too.

Run on a quiet machine (about 40 minutes for 5+5 builds at batch 1; batch 32 takes longer):

    .venv/bin/python tools/drift_campaign.py --builds 5 --batch-sizes 1 --out /tmp/drift-campaign
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.later import measure_in_another_process
from nasbench.hardware.table import CostTable
from nasbench.spaces import space_for_table

NETWORKS = ("NASNet", "AmoebaNet", "DARTS_V1", "DARTS_V2", "ENAS", "PC_DARTS", "PDARTS", "GDAS")
MODES = {"before": ["--no-drift-correction", "--max-time", "0", "--later", "0"], "after": []}
PROFILE = ["profile", "--space", "cell", "--device", "cpu", "--backend", "torch", "--threads", "1"]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def build(mode: str, batch: int, out: Path, protocol: str, extra: list[str]) -> dict:
    """One default build (as the mode has it), timed from outside."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nasbench", *PROFILE, "--protocol", protocol, "--batch-size", str(batch),
                           "--out", str(out), "--no-progress", "--json", *MODES[mode], *extra], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"profile failed ({mode}, batch {batch}): {done.stderr.strip()[-2000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    return record | {"wall_seconds": time.perf_counter() - started}


def check_later(table_path: Path, later_time: float) -> dict:
    """The zoo networks measured in a separate process; the table's predictions and errors."""
    table = CostTable.load(table_path)
    space = space_for_table(table)
    archs = [space.zoo()[name].arch for name in NETWORKS]
    later = measure_in_another_process(table_path, space, [space.to_dict(a) for a in archs], 9, 0.02, later_time)
    model = CostModel(table, space, "latency_ms")
    predicted = np.array([model.cost(arch) for arch in archs])
    measured = np.array([s.p50_ms for s in later.latencies])
    raw = np.array([s.p50_ms for s in later.raw])
    reference = None if table.reference_speed is None else table.reference_speed["ms"]
    return {"predicted_ms": predicted.tolist(), "measured_ms": measured.tolist(), "measured_raw_ms": raw.tolist(),
            "speed_factor": later.speed_factor, "table_reference_ms": reference, "later_stop": later.stop.to_dict(),
            "errors": ((predicted * later.speed_factor - measured) / measured).tolist(),
            "errors_unscaled": ((predicted - raw) / raw).tolist()}


def share_and_median(errors: list[float]) -> str:
    e = np.abs(np.asarray(errors))
    return f"{int(np.sum(e <= 0.10))}/{len(e)} | {100 * np.median(e):.1f}"


def markdown(runs: list[dict]) -> str:
    lines = ["| batch | mode | build | build time (s) | rounds | stopped by | drift seen (%) | within ±10% | "
             "median abs error (%) | as stored: within ±10% | as stored: median (%) |", "|" + "---|" * 11]
    for r in runs:
        stop = r["measurement_stop"]
        drift = "–" if r["drift"] is None else f"{r['drift']['round_range_pct']:.1f}"
        unscaled = share_and_median(r["errors_unscaled"]) if r["mode"] == "after" else "– | –"
        lines.append(f"| {r['batch']} | {r['mode']} | {r['index']} | {r['build_seconds']:.0f} | {stop['rounds']} | "
                     f"{stop['reason']} | {drift} | {share_and_median(r['errors'])} | {unscaled} |")
    lines += ["", "| batch | mode | builds | mean build time (s) | within ±10% (all) | median abs error (%) (all) | "
              "median of per-build medians (%) | tables disagree on a network by (median, max %) |", "|" + "---|" * 8]
    for key in sorted({(r["batch"], r["mode"]) for r in runs}, key=lambda k: (k[0], k[1] != "before")):
        group = [r for r in runs if (r["batch"], r["mode"]) == key]
        errors = [e for r in group for e in r["errors"]]
        medians = [100 * np.median(np.abs(r["errors"])) for r in group]
        # each table's predictions at one common speed (its reference speed's, where it has one) before comparing
        scale = [r["table_reference_ms"] or 1.0 for r in group]
        at_common = np.array([np.array(r["predicted_ms"]) / s for r, s in zip(group, scale)])
        spread = 100 * (at_common.max(axis=0) / at_common.min(axis=0) - 1)
        lines.append(f"| {key[0]} | {key[1]} | {len(group)} | {np.mean([r['build_seconds'] for r in group]):.0f} | "
                     f"{share_and_median(errors)} | {np.median(medians):.1f} | {np.median(spread):.1f}, {spread.max():.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=5, help="builds per mode and batch size (default: 5)")
    parser.add_argument("--batch-sizes", default="1", help="comma-separated (default: 1)")
    parser.add_argument("--modes", default="before,after", help="before, after or both (default: both, alternating)")
    parser.add_argument("--later-time", type=float, default=40.0,
                        help="seconds the separate process measures the networks for, at most (default: 40)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/drift-campaign"))
    parser.add_argument("--protocol", default="proxy", help="the tables' protocol (default: proxy)")
    parser.add_argument("--extra", default="", help="more `nasbench profile` options for every build, e.g. for a dry "
                                                    "run: --extra='--min-time 0.01 --max-time 10'")
    args = parser.parse_args()
    runs = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for index in range(1, args.builds + 1):
            for mode in args.modes.split(","):
                out = args.out / f"b{batch}" / f"{mode}-{index}"
                say(f"batch {batch}, {mode} build {index}/{args.builds}")
                record = build(mode, batch, out, args.protocol, args.extra.split())
                say(f"  built in {record['build_seconds']:.0f} s; measuring {len(NETWORKS)} unseen networks in a "
                    "separate process")
                record |= check_later(Path(record["table"]), args.later_time) | {"batch": batch, "mode": mode,
                                                                                  "index": index}
                say(f"  within ±10%, median abs error %: {share_and_median(record['errors'])}")
                runs.append(record)
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "results.json").write_text(json.dumps(runs, indent=1) + "\n")
    print(markdown(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
