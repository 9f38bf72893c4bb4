"""Whole networks of a table measured on its device after the build: by ``nasbench cost
--measure``, by a run's check of the table it searched with, and in a separate process after
``nasbench profile`` (``python -m nasbench.hardware.later TABLE ARCHS.json OUT.json``), which is
what a user's later measurement is: another process, another moment.

Where the table has a reference speed, the session times the reference workload too, and the
table's predictions are restated at this moment's speed: prediction x ``speed_factor``, the
reference's time now over the table's.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Hashable, Sequence

from nasbench.errors import NasbenchError
from nasbench.hardware.drift import Item, Session, Stop
from nasbench.hardware.measure import (
    Backend,
    MeasureSettings,
    make_backend,
)
from nasbench.hardware.table import CostTable, LatencyStats
from nasbench.spaces.base import SearchSpace


@dataclass(frozen=True)
class LaterMeasurement:
    """Networks measured in one session, in the order given."""

    latencies: list[LatencyStats]
    """At this session's reference speed (as timed, without a reference)."""
    raw: list[LatencyStats]
    """As timed."""
    round_p50s_ms: list[list[float]]
    """Each network's p50 per round (normalised): its spread."""
    reference_ms: float | None
    speed_factor: float
    """This session's reference time over the table's (1 where either has none): a table's
    prediction times this is the prediction at this session's speed."""
    stop: Stop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "LaterMeasurement":
        stats = {name: [LatencyStats(**s) for s in raw[name]] for name in ("latencies", "raw")}
        return cls(**raw | stats | {"stop": Stop(**raw["stop"])})


def table_backend(table: CostTable, rounds: int, precision: float, max_time_s: float) -> Backend:
    """A backend with ``table``'s conditions (backend, threads, batch size, per-item timing) on
    this machine, which must be the table's device; drift correction where the table has a
    reference speed; rounds, precision and time limit as given."""
    from nasbench.provenance import device_fingerprint, resolve_device

    c = table.conditions
    device = resolve_device(c["device_type"])
    table.require(device_fingerprint=device_fingerprint(device))
    known = {k: v for k, v in c["measurement"].items() if k in MeasureSettings.__dataclass_fields__}
    settings = dataclasses.replace(MeasureSettings(**known), rounds=rounds, precision=precision, max_time_s=max_time_s,
                                   drift_correction=table.reference_speed is not None)
    return make_backend(c["backend"], device, c["threads"], c["batch_size"], settings)


def measure_networks(space: SearchSpace, archs: Sequence[Hashable], table: CostTable, backend: Backend,
                     progress: bool = False) -> LaterMeasurement:
    """``archs``' whole networks (of ``table``'s size) measured interleaved, each watched for precision."""
    config = table.network_config
    inputs = backend.inputs(space.cost_network_inputs(config, backend.batch_size))
    items = [Item(f"network-{i}", backend.prepare(space.build_cost_network(arch, config).eval(), inputs))
             for i, arch in enumerate(archs)]
    session = Session(backend, progress=progress)
    stop = session.run(items, [[(item, 1.0)] for item in items])
    factor = 1.0
    if session.reference_ms is not None and table.reference_speed is not None:
        factor = session.reference_ms / table.reference_speed["ms"]
    return LaterMeasurement([item.stats() for item in items], [item.raw_stats() for item in items],
                            [item.round_p50s().tolist() for item in items], session.reference_ms, factor, stop)


def measure_in_another_process(table_path: Path, space: SearchSpace, archs: list[dict[str, Any]], rounds: int,
                               precision: float, max_time_s: float) -> LaterMeasurement:
    """:func:`measure_networks` in a fresh Python process (architectures as ``space``'s dicts; the
    process imports the space's class by name, as hardware knows no concrete space)."""
    with tempfile.TemporaryDirectory(prefix="nasbench-later-") as folder:
        archs_file, out = Path(folder) / "archs.json", Path(folder) / "measured.json"
        archs_file.write_text(json.dumps(archs))
        done = subprocess.run([sys.executable, "-m", "nasbench.hardware.later", str(table_path), str(archs_file),
                               str(out), "--space-class", f"{type(space).__module__}:{type(space).__qualname__}",
                               "--rounds", str(rounds), "--precision", str(precision),
                               "--max-time", str(max_time_s)], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise NasbenchError(f"measuring {len(archs)} networks in another process failed "
                                f"(exit {done.returncode}): {last}")
        return LaterMeasurement.from_dict(json.loads(out.read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nasbench.hardware.later",
                                     description="measure whole networks of a cost table on its device")
    parser.add_argument("table", type=Path)
    parser.add_argument("archs", type=Path, help="a JSON list of architectures (the space's dicts)")
    parser.add_argument("out", type=Path, help="where the measurement is written, as JSON")
    parser.add_argument("--space-class", required=True, metavar="MODULE:CLASS", help="the table's space's class")
    parser.add_argument("--rounds", type=int, default=MeasureSettings.rounds)
    parser.add_argument("--precision", type=float, default=MeasureSettings.precision)
    parser.add_argument("--max-time", type=float, default=60.0)
    args = parser.parse_args(argv)
    table = CostTable.load(args.table)
    module, name = args.space_class.split(":")
    space = getattr(importlib.import_module(module), name).for_network(table.network)
    archs = [space.from_dict(arch) for arch in json.loads(args.archs.read_text())]
    backend = table_backend(table, args.rounds, args.precision, args.max_time)
    args.out.write_text(json.dumps(measure_networks(space, archs, table, backend).to_dict()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
