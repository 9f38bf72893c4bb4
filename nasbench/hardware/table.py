"""Cost tables: measured per-part costs with the conditions they were measured under.

A table is one JSON file, ``cost_tables/<device fingerprint>/<space>-<protocol>-<backend>-t<threads>-b<batch>.json``,
whose schema ``cost_tables/README.md`` documents. A lookup of a part the table lacks is
an error naming the ``nasbench profile`` command that fills it; nothing is defaulted.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from nasbench.errors import NasbenchError
from nasbench.types import NetworkConfig, PartKey

if TYPE_CHECKING:
    from nasbench.spaces.base import SearchSpace

SCHEMA = "nasbench.cost_table/1"


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of a part's timed calls, in ms (kept with the table, read without torch)."""

    p10_ms: float
    p50_ms: float
    p90_ms: float
    mean_ms: float
    count: int

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> "LatencyStats":
        p10, p50, p90 = np.percentile(np.asarray(samples_ms), [10, 50, 90])
        return cls(float(p10), float(p50), float(p90), float(np.mean(samples_ms)), len(samples_ms))


class MissingEntryError(NasbenchError):
    """The table has no entry for a part the architecture needs."""


@dataclass(frozen=True)
class TableEntry:
    key: PartKey
    params: int
    flops: int
    """fvcore, one multiply-add = one FLOP, per image."""
    mac_elements: int
    """Memory access cost per image (ShuffleNet V2 definition, see nasbench/hardware/mac.py)."""
    mac_bytes: int
    latency: LatencyStats | None
    """None in a counts-only table."""

    def to_dict(self) -> dict[str, Any]:
        row = {"part": self.key.id, "params": self.params, "flops": self.flops,
               "mac_elements": self.mac_elements, "mac_bytes": self.mac_bytes}
        if self.latency is not None:
            row |= {"latency_ms_p50": self.latency.p50_ms, "latency_ms_p10": self.latency.p10_ms,
                    "latency_ms_p90": self.latency.p90_ms, "latency_ms_mean": self.latency.mean_ms,
                    "latency_count": self.latency.count}
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "TableEntry":
        """An entry as a file holds it, each value checked (a count a non-negative integer,
        a latency a finite number >= 0): a table with ``"fast"`` for a latency is refused
        when it is read, not in the middle of a search."""
        part = PartKey.from_id(row["part"])
        counts = [_checked(row, name, int) for name in COUNT_FIELDS]
        latency = None
        if "latency_ms_p50" in row:
            latency = LatencyStats(*(_checked(row, name, float) for name in LATENCY_FIELDS),
                                   _checked(row, "latency_count", int))
        return cls(part, *counts, latency)


COUNT_FIELDS = ("params", "flops", "mac_elements", "mac_bytes")
LATENCY_FIELDS = ("latency_ms_p10", "latency_ms_p50", "latency_ms_p90", "latency_ms_mean")


def _checked(row: dict[str, Any], name: str, kind: type) -> Any:
    """``row[name]`` if it is a finite number >= 0 of ``kind`` (an int for counts)."""
    value = row[name]
    numeric = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, numeric) or not math.isfinite(value) or value < 0:
        noun = "an integer >= 0" if kind is int else "a finite number >= 0"
        raise ValueError(f"entry {row.get('part')}: {name} must be {noun}, got {value!r}")
    return kind(value)


@dataclass(frozen=True)
class LatencyPredictor:
    """Whole-network latency from the parts: ``offset_ms + sum(scale(part) * (p50 - harness))``.

    ``kind`` ``sum``: scale 1, offset = the harness overhead (the plain corrected sum).
    ``affine``: one ``scale`` (at least 0) and the offset fitted by least squares on whole-network
    measurements of ``fitted_on`` random architectures; the offset absorbs the
    per-network overhead the parts cannot see (the cells' Python glue, one top-level call).
    ``per_operation``: as ``affine``, then one scale per operation name
    (``op_scales``) refitted with the offset, because an operation costs a different
    share of its isolated time inside a network (pools and skips, cheap alone, pay for
    the cold caches they meet there); other parts, and operations the calibration
    architectures never chose, keep the pooled ``scale``. The profiler keeps whichever
    of ``affine`` and ``per_operation`` predicts the calibration set better."""

    kind: str
    scale: float
    offset_ms: float
    fitted_on: int = 0
    op_scales: dict[str, float] = field(default_factory=dict)
    loo_mape_pct: dict[str, float] = field(default_factory=dict)
    """Leave-one-out error on the calibration set of each kind considered (the lower one is kept)."""

    def part_scale(self, key: PartKey) -> float:
        return self.op_scales.get(key.name, self.scale) if key.kind == "op" else self.scale

    def describe(self) -> str:
        text = f"{self.kind}: {self.scale:.4f} x sum + {self.offset_ms:.4f} ms"
        if self.op_scales:
            text += " (operations scaled: " + ", ".join(f"{n} {s:.3f}" for n, s in sorted(self.op_scales.items())) + ")"
        return text


def table_file_name(space: str, protocol: str, backend: str, threads: int, batch_size: int,
                    window: int | None = None) -> str:
    """The file a table of these conditions is written to, and looked up by (``nasbench cost``)."""
    steps = "" if window is None else f"-w{window}"
    return f"{space}-{protocol}-{backend}-t{threads}-b{batch_size}{steps}.json"


@dataclass
class CostTable:
    space: str
    protocol: str
    protocol_hash: str
    network: dict[str, Any]
    """The network the parts come from: channels and cells of the protocol's final network, or
    a recurrent cell's ``hidden_size`` and time ``steps`` (with its space's layout)."""
    conditions: dict[str, Any]
    entries: dict[PartKey, TableEntry]
    harness_ms: float | None = None
    """Latency of a call that does no work through the same timing path."""
    predictor: LatencyPredictor | None = None
    build_seconds: float | None = None
    reference_speed: dict[str, Any] | None = None
    """The machine's speed the latencies are stated at: ``workload`` (the fixed reference
    workload) and ``ms``, its median time over the build. None in tables built without drift
    correction (all before it existed): latencies at whatever speed the machine had."""
    drift: dict[str, Any] | None = None
    """The machine's speed during the build, as the reference saw it."""
    measurement_stop: dict[str, Any] | None = None
    """Why measuring stopped: the precision reached or the time limit (:class:`~nasbench.hardware.drift.Stop`)."""
    noise: dict[str, Any] | None = None
    """The measurements' own repeatability across rounds and across processes, and the tolerance."""
    warnings: list[str] = field(default_factory=list)
    """Why the table may not hold its tolerance (noise beyond it); empty where nothing was seen."""
    path: Path | None = field(default=None, compare=False)
    content_hash: str | None = field(default=None, compare=False)
    """The first 12 hex digits of the SHA-256 of the file the table was read from (None for
    a table built in memory): part of the identity of a run that uses it."""

    @property
    def measured(self) -> bool:
        return self.harness_ms is not None

    @property
    def network_config(self) -> NetworkConfig:
        """The size of the network the parts come from (a layout section, where the space
        has one, is in :attr:`network` too); a recurrent cell's units and time steps as
        channels and cells."""
        if "hidden_size" in self.network:
            return NetworkConfig(channels=self.network["hidden_size"], cells=self.network["steps"])
        return NetworkConfig(channels=self.network["channels"], cells=self.network["cells"])

    @property
    def window(self) -> int | None:
        """The time steps of a recurrent cell's BPTT-window table (None for one step or images)."""
        steps = self.network.get("steps", 1)
        return steps if steps > 1 else None

    @property
    def backend(self) -> str | None:
        return self.conditions.get("backend")

    @property
    def device_fingerprint(self) -> str | None:
        return self.conditions.get("device_fingerprint")

    def reference(self) -> str:
        """Which table, as runs constrained by it name it (:func:`table_reference`)."""
        return table_reference(self.device_fingerprint, self.file_name())

    def file_name(self) -> str:
        c = self.conditions
        return table_file_name(self.space, self.protocol, c["backend"], c["threads"], c["batch_size"], self.window)

    def profile_command(self) -> str:
        c = self.conditions
        return (f"nasbench profile --space {self.space} --protocol {self.protocol} --device {c.get('device_type', 'cpu')} "
                f"--backend {c.get('backend', 'torch')} --threads {c.get('threads', 1)} --batch-size {c.get('batch_size', 1)}"
                + ("" if self.window is None else " --window"))

    def entry(self, key: PartKey) -> TableEntry:
        try:
            return self.entries[key]
        except KeyError:
            where = self.path or f"the {self.protocol} table"
            raise MissingEntryError(
                f"cost table {where} has no entry for part {key.id} (a network of another size or space?); "
                f"measure one that has it with `{self.profile_command()}` for the protocol whose network you cost"
            ) from None

    def require(self, device_fingerprint: str | None = None, backend: str | None = None) -> None:
        """Refuse a table measured on another device or backend than requested."""
        if not self.measured:
            raise NasbenchError(f"cost table {self.path} holds no latency measurements; build one with "
                                f"`{self.profile_command()}`")
        if device_fingerprint is not None and device_fingerprint != self.device_fingerprint:
            raise NasbenchError(f"cost table {self.path} was measured on {self.device_fingerprint}, not on "
                                f"{device_fingerprint}; profile this device with `{self.profile_command()}`")
        if backend is not None and backend != self.backend:
            raise NasbenchError(f"cost table {self.path} was measured with backend {self.backend}, not {backend}; "
                                f"build a {backend} table with `nasbench profile ... --backend {backend}`")

    def check_fits(self, space: SearchSpace) -> None:
        """Refuse a table that cannot cost ``space``'s networks: one of another space, of
        another network layout, or lacking any part the space (or its zoo) can contain. Needs
        only the space's description, so a bad table is refused before torch loads."""
        if self.space != space.name:
            raise NasbenchError(f"cost table {self.path} is for the {self.space} space, not {space.name}")
        if space.network_record(self.network_config) != self.network:
            raise NasbenchError(f"cost table {self.path or self.file_name() if self.measured else self.path} "
                                f"was measured for another {space.name} network ({self.network}) than the one "
                                f"costed ({space.network_record(self.network_config)}); profile one for this layout")
        missing = [key for key in space.all_cost_parts(self.network_config) if key not in self.entries]
        if missing:
            where = f"cost table {self.path}" if self.path else f"the {self.protocol} table"
            raise MissingEntryError(f"{where} lacks {len(missing)} of the {space.name} space's parts "
                                    f"(e.g. {missing[0].id}); measure a complete one with `{self.profile_command()}`")

    # -- files ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "space": self.space,
            "protocol": self.protocol,
            "protocol_hash": self.protocol_hash,
            "network": self.network,
            "conditions": self.conditions,
            "harness_ms": self.harness_ms,
            "predictor": None if self.predictor is None else asdict(self.predictor),
            "build_seconds": self.build_seconds,
            "reference_speed": self.reference_speed,
            "drift": self.drift,
            "measurement_stop": self.measurement_stop,
            "noise": self.noise,
            "warnings": self.warnings,
            "entries": [e.to_dict() for e in sorted(self.entries.values(), key=lambda e: e.key)],
        }

    def save(self, out_dir: Path) -> Path:
        folder = Path(out_dir) / self.conditions["device_fingerprint"]
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / self.file_name()
        content = (json.dumps(self.to_dict(), indent=1) + "\n").encode()
        self.path.write_bytes(content)
        self.content_hash = hashlib.sha256(content).hexdigest()[:12]
        return self.path

    @classmethod
    def load(cls, path: Path) -> "CostTable":
        path = Path(path)
        try:
            content = path.read_bytes()
            raw = json.loads(content)
        except OSError as err:
            raise NasbenchError(f"cannot read cost table {path}: {err.strerror}; build one with `nasbench profile`") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise NasbenchError(f"{path} is not a cost table (invalid JSON: {err})") from None
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
            raise NasbenchError(f"{path} is not a cost table of schema {SCHEMA} (schema: {raw.get('schema') if isinstance(raw, dict) else None})")
        try:
            entries = [TableEntry.from_dict(row) for row in raw["entries"]]
            predictor = LatencyPredictor(**raw["predictor"]) if raw["predictor"] else None
            harness = None if raw["harness_ms"] is None else _checked(raw, "harness_ms", float)
            measured = [e.latency is not None for e in entries]
            if harness is not None and not all(measured) or harness is None and any(measured):
                raise ValueError("a table has a latency for every entry and harness_ms, or for none")
            table = cls(raw["space"], raw["protocol"], raw["protocol_hash"], raw["network"], raw["conditions"],
                        {e.key: e for e in entries}, harness, predictor, raw.get("build_seconds"),
                        raw.get("reference_speed"), raw.get("drift"), raw.get("measurement_stop"), raw.get("noise"),
                        [str(w) for w in raw.get("warnings") or []], path)
            speed = (table.reference_speed or {"ms": 1.0})["ms"]
            if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0 < speed < math.inf:
                raise ValueError(f"reference_speed.ms must be a finite number > 0, got {speed!r}")
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise NasbenchError(f"{path}: malformed cost table ({type(err).__name__}: {err})") from None
        table.content_hash = hashlib.sha256(content).hexdigest()[:12]
        return table


def table_reference(device_fingerprint: str, file_name: str) -> str:
    """``<device fingerprint>/<file name>``: a cost table as runs and reports name it."""
    return f"{device_fingerprint}/{file_name}"
