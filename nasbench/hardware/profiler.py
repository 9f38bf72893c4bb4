"""Building cost tables: enumerate a space's parts, count and time each, fit the
whole-network predictor on calibration architectures, and validate it on others.

Parts, calibration networks and validation networks are measured interleaved: every
round visits all of them in a fresh random order, and the samples of all rounds are
pooled, so slow drift of the machine (frequency, other load) affects every item alike.
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import torch
from scipy import optimize, stats

from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.counting import count_flops, count_params
from nasbench.hardware.mac import DTYPE_BYTES, count_mac
from nasbench.hardware.measure import Backend, LatencyStats, Runner, collector_paused
from nasbench.hardware.table import CostTable, LatencyPredictor, TableEntry
from nasbench.progress import progress_bar
from nasbench.protocol import Protocol
from nasbench.spaces.base import SearchSpace
from nasbench.types import NetworkConfig, PartKey

BYTES = DTYPE_BYTES[torch.float32]


@dataclass(frozen=True)
class Counts:
    params: int
    flops: int
    mac_elements: int


def count_module(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> Counts:
    return Counts(count_params(module), count_flops(module, inputs), count_mac(module, inputs))


def count_parts(space: SearchSpace, parts: Sequence[PartKey]) -> dict[PartKey, Counts]:
    """Params, FLOPs and MAC of every part at batch size 1 (counts are per image)."""
    counts = {}
    for key in parts:
        inputs = [torch.zeros(shape) for shape in key.input_shapes(1)]
        counts[key] = count_module(space.build_part(key).eval(), inputs)
    return counts


def counts_table(space: SearchSpace, protocol: Protocol) -> CostTable:
    """A table of parameter, FLOP and MAC counts without latencies (device-independent)."""
    config = final_network(protocol)
    counts = count_parts(space, space.all_cost_parts(config))
    entries = {k: TableEntry(k, c.params, c.flops, c.mac_elements, BYTES * c.mac_elements, None) for k, c in counts.items()}
    return CostTable(space.name, protocol.name, protocol.hash, space.network_record(config), {"dtype": "float32"}, entries)


def final_network(protocol: Protocol) -> NetworkConfig:
    """The network costs are about: the protocol's final (deployed) network, without
    the auxiliary head, which inference does not run."""
    return NetworkConfig(channels=protocol.final.channels, cells=protocol.final.cells)


@dataclass
class _Item:
    name: str
    run: Runner
    rounds: list[list[float]]
    """Samples of each round, in milliseconds."""

    @property
    def samples(self) -> list[float]:
        return [s for samples in self.rounds for s in samples]

    def halves(self) -> tuple[LatencyStats, LatencyStats]:
        """Statistics of the even and of the odd rounds: two independent measurements."""
        return tuple(LatencyStats.of([s for r in self.rounds[start::2] for s in r]) for start in (0, 1))


def measure_interleaved(backend: Backend, items: list[_Item], rounds: int, seed: int, progress: bool) -> None:
    order = random.Random(seed)
    with progress_bar(total=rounds * len(items), desc="profile", unit="item", enabled=progress) as bar:
        for _ in range(rounds):
            with collector_paused():
                for item in order.sample(items, len(items)):
                    item.rounds.append(backend.measure(item.run, warm=bool(item.rounds)))
                    bar.update()


@dataclass(frozen=True)
class ArchMeasurement:
    arch: dict[str, Any]
    latency: LatencyStats
    halves_p50_ms: tuple[float, float] | None
    """p50 of the even and of the odd rounds (with at least two rounds)."""
    part_sum_ms: float
    """Sum of the parts' p50 latencies, each less the harness overhead, plus it once."""
    naive_sum_ms: float
    """Plain sum of the parts' p50 latencies."""
    op_sums_ms: dict[str, float]
    """Per operation name, its parts' p50 latencies less the harness overhead each, summed."""
    other_sum_ms: float
    """The same sum over the parts that are not operations (stem, preprocessing, sums, head)."""
    flops: int
    mac_elements: int


def _fit(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    design = np.column_stack([features, np.ones(len(target))])
    return np.linalg.lstsq(design, target, rcond=None)[0]


def _fit_scales(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least squares like :func:`_fit`, with every scale at least 0 (the offset free): a part
    cannot make a network faster, and noisy calibration measurements (few rounds, a loaded
    machine) had fitted negative scales that predicted negative latencies. The offset
    minimises the error at any scales, so the scales are fitted on centred data."""
    mean_features, mean_target = features.mean(axis=0), target.mean()
    scales, _ = optimize.nnls(features - mean_features, target - mean_target)
    return np.append(scales, mean_target - mean_features @ scales)


def _loo_mape_pct(features: np.ndarray, target: np.ndarray, measured: np.ndarray) -> float:
    """Leave-one-out mean absolute error, in % of ``measured``, of the least-squares fit
    of ``target`` (the closed form through the hat matrix's diagonal)."""
    design = np.column_stack([features, np.ones(len(target))])
    hat = design @ np.linalg.pinv(design)
    residuals = (target - hat @ target) / np.clip(1.0 - np.diag(hat), 1e-12, None)
    return float(100 * np.mean(np.abs(residuals) / measured))


def fit_predictor(calibration: list[ArchMeasurement], harness_ms: float) -> LatencyPredictor:
    """The table's predictor, fitted on the calibration architectures' whole-network
    latencies, with scales of at least 0 (:func:`_fit_scales`). ``per_operation`` and
    ``affine`` compete on their leave-one-out error on the calibration set (that of the
    unconstrained fit), and the better one is kept: per-operation scales fit an eager
    backend's dispatch and cache effects, but can overfit a fusing backend (onnxruntime)
    whose parts do not add up operation by operation. Fewer than two architectures give
    the plain ``sum``; too few for one scale per operation give ``affine``."""
    if len(calibration) < 2:
        return LatencyPredictor("sum", 1.0, harness_ms)
    measured = np.array([a.latency.p50_ms for a in calibration])
    pooled = np.array([[a.part_sum_ms - harness_ms] for a in calibration])
    scale, offset = _fit_scales(pooled, measured)
    affine = LatencyPredictor("affine", float(scale), float(offset), len(calibration))
    names = sorted({name for a in calibration for name in a.op_sums_ms})
    if len(calibration) < len(names) + 3:
        return affine
    features = np.array([[a.op_sums_ms.get(name, 0.0) for name in names] for a in calibration])
    target = measured - scale * np.array([a.other_sum_ms for a in calibration])
    errors = {"affine": _loo_mape_pct(pooled, measured, measured),
              "per_operation": _loo_mape_pct(features, target, measured)}
    if errors["affine"] <= errors["per_operation"]:
        return dataclasses.replace(affine, loo_mape_pct=errors)
    *op_scales, offset = _fit_scales(features, target)
    return LatencyPredictor("per_operation", float(scale), float(offset), len(calibration),
                            {name: float(value) for name, value in zip(names, op_scales)}, errors)


def accuracy_figures(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """How well ``predicted`` matches ``measured``: shares within +-5% and +-10%, MAPE,
    95th percentile of the absolute error, signed bias (all in %), Kendall tau and
    Spearman rho of the two rankings."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    error = (p - m) / m
    return {
        "n": len(m),
        "within_5pct": float(np.mean(np.abs(error) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(error) <= 0.10)),
        "mape_pct": float(100 * np.mean(np.abs(error))),
        "p95_abs_error_pct": float(100 * np.percentile(np.abs(error), 95)),
        "bias_pct": float(100 * np.mean(error)),
        "kendall_tau": float(stats.kendalltau(p, m).statistic),
        "spearman_rho": float(stats.spearmanr(p, m).statistic),
    }


def evaluate_predictors(calibration: list[ArchMeasurement], validation: list[ArchMeasurement],
                        table: CostTable, space: SearchSpace) -> dict[str, dict[str, float]]:
    """Every predictor's figures on the validation architectures; the baselines are
    fitted on the calibration architectures, like the table's own predictor."""
    measured = [a.latency.p50_ms for a in validation]
    model = CostModel(table, space, "latency_ms")
    predictions = {
        "naive_sum": [a.naive_sum_ms for a in validation],
        "part_sum": [a.part_sum_ms for a in validation],
        "table": [model.cost(space.from_dict(a.arch)) for a in validation],
    }
    if len(calibration) >= 3:
        target = np.array([a.latency.p50_ms for a in calibration])
        w = _fit(np.array([[a.part_sum_ms] for a in calibration]), target)
        predictions["affine_sum"] = [w[0] * a.part_sum_ms + w[1] for a in validation]
        w = _fit(np.array([[a.flops] for a in calibration]), target)
        predictions["flops_linear"] = [w[0] * a.flops + w[1] for a in validation]
        w = _fit(np.array([[a.flops, a.mac_elements] for a in calibration]), target)
        predictions["flops_mac_linear"] = [w[0] * a.flops + w[1] * a.mac_elements + w[2] for a in validation]
    return {name: accuracy_figures(pred, measured) for name, pred in predictions.items()}


def repeatability(validation: list[ArchMeasurement]) -> dict[str, float] | None:
    """The noise floor: the odd rounds' measurement taken as a prediction of the even
    rounds'. No predictor can be expected to agree with the measurements much better."""
    halves = [a.halves_p50_ms for a in validation if a.halves_p50_ms is not None]
    if len(halves) < 2:
        return None
    return accuracy_figures([odd for _, odd in halves], [even for even, _ in halves])


@dataclass(frozen=True)
class ProfileRequest:
    space: SearchSpace
    protocol: Protocol
    backend: Backend
    calibrate: int = 30
    validate: int = 0
    seed: int = 0
    progress: bool = True


def profile(request: ProfileRequest, out_dir: Path, log: Callable[[str], None] = lambda s: None) -> tuple[CostTable, Path, Path | None]:
    """Build, calibrate, validate and save a table; returns it with its file and the
    validation file (None without ``validate``)."""
    started = time.perf_counter()
    space, backend, protocol = request.space, request.backend, request.protocol
    config = final_network(protocol)
    parts = space.all_cost_parts(config)
    log(f"{len(parts)} parts of the {space.name} space under protocol {protocol.name}")
    counts = count_parts(space, parts)

    items = {"harness": _Item("harness", backend.harness(), [])}
    for key in parts:
        module = space.build_part(key).eval()
        items[key.id] = _Item(key.id, backend.prepare(module, backend.inputs(key.input_shapes(backend.batch_size))), [])
    log(f"prepared {len(parts)} parts for {backend.name}")
    rng = random.Random(request.seed)
    archs = {"calibration": [space.profile_sample(rng) for _ in range(request.calibrate)],
             "validation": [space.profile_sample(rng) for _ in range(request.validate)]}
    networks: dict[str, list[tuple[Hashable, Counts, _Item]]] = {}
    image = backend.inputs([(backend.batch_size, 3, space.input_size, space.input_size)])
    for group, group_archs in archs.items():
        networks[group] = []
        for i, arch in enumerate(group_archs):
            torch.manual_seed(i)
            net = space.build(arch, config).eval()
            network_counts = count_module(net, [torch.zeros(1, 3, space.input_size, space.input_size)])
            item = _Item(f"{group}-{i}", backend.prepare(net, image), [])
            networks[group].append((arch, network_counts, item))
    all_items = list(items.values()) + [item for group in networks.values() for _, _, item in group]
    log(f"measuring {len(parts)} parts and {len(all_items) - len(parts) - 1} whole networks, "
        f"{backend.settings.rounds} rounds interleaved")
    measure_interleaved(backend, all_items, backend.settings.rounds, request.seed, request.progress)

    harness = LatencyStats.of(items["harness"].samples).p50_ms
    entries = {}
    for key in parts:
        c = counts[key]
        entries[key] = TableEntry(key, c.params, c.flops, c.mac_elements, BYTES * c.mac_elements,
                                  LatencyStats.of(items[key.id].samples))
    table = CostTable(space.name, protocol.name, protocol.hash, space.network_record(config), backend.conditions(),
                      entries, harness_ms=harness)

    def measurement(arch: Hashable, network_counts: Counts, item: _Item) -> ArchMeasurement:
        parts = space.cost_parts(arch, config)
        op_sums: dict[str, float] = {}
        for key in parts:
            if key.kind == "op":
                op_sums[key.name] = op_sums.get(key.name, 0.0) + entries[key].latency.p50_ms - harness
        naive_sum = sum(entries[k].latency.p50_ms for k in parts)
        part_sum = naive_sum - harness * (len(parts) - 1)
        halves = tuple(h.p50_ms for h in item.halves()) if len(item.rounds) >= 2 else None
        return ArchMeasurement(space.to_dict(arch), LatencyStats.of(item.samples), halves, part_sum, naive_sum,
                               op_sums, part_sum - harness - sum(op_sums.values()),
                               network_counts.flops, network_counts.mac_elements)

    calibration = [measurement(*n) for n in networks["calibration"]]
    validation = [measurement(*n) for n in networks["validation"]]
    table.predictor = fit_predictor(calibration, harness)
    table.build_seconds = time.perf_counter() - started
    path = table.save(out_dir)
    validation_path = None
    if validation:
        figures = evaluate_predictors(calibration, validation, table, space)
        validation_path = path.with_suffix(".validation.json")
        validation_path.write_text(json.dumps({
            "table": path.name,
            "conditions": table.conditions,
            "calibration_archs": len(calibration),
            "validation_archs": len(validation),
            "predictors": figures,
            "repeatability": repeatability(validation),
            "predictor_descriptions": PREDICTORS,
            "architectures": [asdict(a) for a in validation],
            "calibration_architectures": [asdict(a) for a in calibration],
        }, indent=1) + "\n")
    return table, path, validation_path


PREDICTORS = {
    "naive_sum": "plain sum of the parts' isolated p50 latencies",
    "part_sum": "sum of the parts' p50 latencies less the harness overhead each, plus the harness once",
    "table": "the table's predictor (see the table's `predictor`): per operation name, a scale of its parts' latencies, "
             "and an offset, fitted by least squares on the calibration architectures",
    "affine_sum": "baseline: a * part_sum + b, fitted on the calibration architectures",
    "flops_linear": "baseline: a * FLOPs + b, fitted on the calibration architectures",
    "flops_mac_linear": "baseline: a * FLOPs + b * MAC + c, fitted on the calibration architectures",
}


def measure_network(space: SearchSpace, arch: Hashable, config: NetworkConfig, backend: Backend) -> LatencyStats:
    """Whole-network latency of ``arch`` under ``backend``'s settings (all rounds pooled)."""
    net = space.build(arch, config).eval()
    image = backend.inputs([(backend.batch_size, 3, space.input_size, space.input_size)])
    item = _Item("network", backend.prepare(net, image), [])
    measure_interleaved(backend, [item], backend.settings.rounds, 0, progress=False)
    return LatencyStats.of(item.samples)


def measure_on_table_device(space: SearchSpace, arch: Hashable, table: CostTable) -> LatencyStats:
    """Whole-network latency of ``arch`` measured under ``table``'s conditions (backend,
    threads, batch, timing settings) on this machine, which must be the table's device."""
    from nasbench.hardware.measure import MeasureSettings, make_backend
    from nasbench.provenance import device_fingerprint, resolve_device

    c = table.conditions
    device = resolve_device(c["device_type"])
    table.require(device_fingerprint=device_fingerprint(device))
    settings = MeasureSettings(**{k: v for k, v in c["measurement"].items() if k in MeasureSettings.__dataclass_fields__})
    backend = make_backend(c["backend"], device, c["threads"], c["batch_size"], settings)
    return measure_network(space, arch, table.network_config, backend)
