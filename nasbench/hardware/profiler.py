"""Building cost tables: enumerate a space's parts, count and time each, fit the
whole-network predictor on calibration architectures, and validate it on others.

Parts, calibration networks and validation networks are measured interleaved in one
:class:`~nasbench.hardware.drift.Session`: every round visits all of them in a fresh random
order, with a reference workload measured between them, so every latency is stated at one speed
of the machine, and rounds go on until the whole-network figures reach the stated precision
or the time limit passes. A separate process measures some networks again after the build:
what a user's later measurement will see.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import torch
from scipy import optimize, stats

from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.counting import count_flops, count_params
from nasbench.hardware.drift import Item, Session, Watch
from nasbench.hardware.later import (
    measure_in_another_process,
    measure_networks,
    table_backend,
)
from nasbench.hardware.mac import DTYPE_BYTES, count_mac
from nasbench.hardware.measure import Backend, MeasureSettings
from nasbench.hardware.table import (
    CostTable,
    LatencyPredictor,
    LatencyStats,
    TableEntry,
)
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
    """Params, FLOPs and MAC of every part at batch size 1 (counts are per image; a recurrent
    cell's per token in a one-step table, per sequence of a window's tokens in a window table)."""
    counts = {}
    for key in parts:
        inputs = [torch.zeros(shape) for shape in space.part_inputs(key, 1)]
        counts[key] = count_module(space.build_part(key).eval(), inputs)
    return counts


def counts_table(space: SearchSpace, protocol: Protocol) -> CostTable:
    """A table of parameter, FLOP and MAC counts without latencies (device-independent)."""
    config = table_network(space, protocol)
    counts = count_parts(space, space.all_cost_parts(config))
    entries = {k: TableEntry(k, c.params, c.flops, c.mac_elements, BYTES * c.mac_elements, None) for k, c in counts.items()}
    return CostTable(space.name, protocol.name, protocol.hash, space.network_record(config), {"dtype": "float32"}, entries)


def final_network(protocol: Protocol) -> NetworkConfig:
    """The network costs are about: the protocol's final (deployed) network, without
    the auxiliary head, which inference does not run."""
    return NetworkConfig(channels=protocol.final.channels, cells=protocol.final.cells)


def table_network(space: SearchSpace, protocol: Protocol, window: bool = False) -> NetworkConfig:
    """The network ``space``'s table decomposes: its own (a recurrent cell over one time step
    or a BPTT ``window``) or the protocol's final network."""
    return space.cost_network_config(protocol, window) or final_network(protocol)


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
    ranked = np.ptp(p) > 0 and np.ptp(m) > 0  # a constant prediction (FLOPs of equal-sized cells) ranks nothing
    return {
        "n": len(m),
        "within_5pct": float(np.mean(np.abs(error) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(error) <= 0.10)),
        "mape_pct": float(100 * np.mean(np.abs(error))),
        "p95_abs_error_pct": float(100 * np.percentile(np.abs(error), 95)),
        "bias_pct": float(100 * np.mean(error)),
        "kendall_tau": float(stats.kendalltau(p, m).statistic) if ranked else math.nan,
        "spearman_rho": float(stats.spearmanr(p, m).statistic) if ranked else math.nan,
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


def repeatability(measured: list[ArchMeasurement]) -> dict[str, float] | None:
    """The noise floor across rounds: the odd rounds' measurement taken as a prediction of the
    even rounds'. No predictor can be expected to agree with the measurements much better."""
    halves = [a.halves_p50_ms for a in measured if a.halves_p50_ms is not None]
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
    later: int = 0
    """Networks re-measured in a separate process after the build (validation networks, else
    calibration ones): the noise across processes and, validating, the temporal validation."""
    tolerance: float = 0.10
    """The prediction error the table is meant to hold; noise beyond it is a warning in the table."""
    seed: int = 0
    progress: bool = True
    window: bool = False
    """A recurrent cell over the protocol's BPTT window rather than one time step."""


def _watches(space: SearchSpace, config: NetworkConfig, networks: list[tuple[Hashable, Counts, Item]],
             items: dict[str, Item]) -> list[Watch]:
    """What the precision is judged on: every whole network and the sum of its parts (each
    less the harness overhead, plus it once); the parts themselves where there are no networks."""
    watches: list[Watch] = []
    for arch, _, item in networks:
        parts = Counter(space.cost_parts(arch, config))
        watches.append([(item, 1.0)])
        watches.append([(items[key.id], float(n)) for key, n in parts.items()]
                       + [(items["harness"], 1.0 - sum(parts.values()))])
    return watches or [[(item, 1.0)] for name, item in items.items() if name != "harness"]


def profile(request: ProfileRequest, out_dir: Path, log: Callable[[str], None] = lambda s: None) -> tuple[CostTable, Path, Path | None]:
    """Build, calibrate, validate and save a table; returns it with its file and the
    validation file (None without ``validate``)."""
    space, backend, protocol = request.space, request.backend, request.protocol
    started = backend.seconds()
    config = table_network(space, protocol, request.window)
    parts = space.all_cost_parts(config)
    log(f"{len(parts)} parts of the {space.name} space under protocol {protocol.name}, batch {backend.batch_size}")
    counts = count_parts(space, parts)

    items = {"harness": Item("harness", backend.harness())}
    for key in parts:
        module = space.build_part(key).eval()
        items[key.id] = Item(key.id, backend.prepare(module, backend.inputs(space.part_inputs(key, backend.batch_size))))
    log(f"prepared {len(parts)} parts for {backend.name}")
    rng = random.Random(request.seed)
    archs = {"calibration": [space.profile_sample(rng) for _ in range(request.calibrate)],
             "validation": [space.profile_sample(rng) for _ in range(request.validate)]}
    networks: dict[str, list[tuple[Hashable, Counts, Item]]] = {}
    inputs = backend.inputs(space.cost_network_inputs(config, backend.batch_size))
    for group, group_archs in archs.items():
        networks[group] = []
        for i, arch in enumerate(group_archs):
            torch.manual_seed(i)
            net = space.build_cost_network(arch, config).eval()
            network_counts = count_module(net, [torch.zeros(shape) for shape in space.cost_network_inputs(config, 1)])
            networks[group].append((arch, network_counts, Item(f"{group}-{i}", backend.prepare(net, inputs))))
    all_networks = networks["calibration"] + networks["validation"]
    s = backend.settings
    log(f"measuring {len(parts)} parts and {len(all_networks)} whole networks interleaved: at least {s.rounds} rounds, "
        f"then until ±{100 * s.precision:g}% or {s.max_time_s:g} s, "
        + ("the reference workload measured between them" if s.drift_correction else "without drift correction"))
    session = Session(backend, request.seed, request.progress, desc="profile")
    stop = session.run(list(items.values()) + [item for _, _, item in all_networks],
                       _watches(space, config, all_networks, items))
    log(stop.describe())

    harness = items["harness"].stats().p50_ms
    entries = {}
    for key in parts:
        c = counts[key]
        entries[key] = TableEntry(key, c.params, c.flops, c.mac_elements, BYTES * c.mac_elements, items[key.id].stats())
    table = CostTable(space.name, protocol.name, protocol.hash, space.network_record(config), backend.conditions(),
                      entries, harness_ms=harness, reference_speed=session.reference_record(), drift=session.drift(),
                      measurement_stop=stop.to_dict())

    def measurement(arch: Hashable, network_counts: Counts, item: Item) -> ArchMeasurement:
        parts = space.cost_parts(arch, config)
        op_sums: dict[str, float] = {}
        for key in parts:
            if key.kind == "op":
                op_sums[key.name] = op_sums.get(key.name, 0.0) + entries[key].latency.p50_ms - harness
        naive_sum = sum(entries[k].latency.p50_ms for k in parts)
        part_sum = naive_sum - harness * (len(parts) - 1)
        return ArchMeasurement(space.to_dict(arch), item.stats(), item.halves(), part_sum, naive_sum,
                               op_sums, part_sum - harness - sum(op_sums.values()),
                               network_counts.flops, network_counts.mac_elements)

    calibration = [measurement(*n) for n in networks["calibration"]]
    validation = [measurement(*n) for n in networks["validation"]]
    table.predictor = fit_predictor(calibration, harness)
    path = table.save(out_dir)  # the separate process reads it
    later = _later_process(request, table, validation or calibration, bool(validation), log)
    table.noise = {"tolerance": request.tolerance, "precision": stop.precision,
                   "across_rounds": repeatability(calibration + validation),
                   "across_processes": None if later is None else later["repeatability"]}
    table.warnings = noise_warnings(table.noise)
    for warning in table.warnings:
        log(f"warning: {warning}")
    table.build_seconds = backend.seconds() - started
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
            "repeatability": table.noise["across_rounds"],
            "later_process": later,
            "warnings": table.warnings,
            "predictor_descriptions": PREDICTORS,
            "architectures": [asdict(a) for a in validation],
            "calibration_architectures": [asdict(a) for a in calibration],
        }, indent=1) + "\n")
    return table, path, validation_path


def _later_process(request: ProfileRequest, table: CostTable, measured: list[ArchMeasurement], validating: bool,
                   log: Callable[[str], None]) -> dict[str, Any] | None:
    """The first ``request.later`` of ``measured`` measured again in a separate process after
    the build (with a quarter of the build's time limit): the build's measurements restated at
    that process's speed against its own (the noise across processes) and, ``validating``, the
    table's predictions restated so against it, and as stored against its raw timings."""
    chosen = measured[:request.later]
    if not chosen:
        return None
    s = request.backend.settings
    log(f"measuring {len(chosen)} of its {'validation' if validating else 'calibration'} networks again in a "
        "separate process")
    later = measure_in_another_process(table.path, request.space, [a.arch for a in chosen], s.rounds, s.precision,
                                       s.max_time_s / 4)
    factor, now = later.speed_factor, [stats.p50_ms for stats in later.latencies]
    record: dict[str, Any] = {"n": len(chosen), "networks": "validation" if validating else "calibration",
                              "speed_factor": factor, "reference_ms": later.reference_ms, "stop": later.stop.to_dict(),
                              "repeatability": accuracy_figures([a.latency.p50_ms * factor for a in chosen], now)}
    if validating:
        model = CostModel(table, request.space, "latency_ms")
        predicted = [model.cost(request.space.from_dict(a.arch)) for a in chosen]
        raw = [stats.p50_ms for stats in later.raw]
        record["predictors"] = {"table": accuracy_figures([p * factor for p in predicted], now),
                                "table_unscaled": accuracy_figures(predicted, raw)}
        record["architectures"] = [{"validation_index": i, "predicted_ms": p, "predicted_now_ms": p * factor,
                                    "measured_ms": m, "measured_raw_ms": r, "build_ms": a.latency.p50_ms}
                                   for i, (p, m, r, a) in enumerate(zip(predicted, now, raw, chosen))]
    return record


def noise_warnings(noise: dict[str, Any]) -> list[str]:
    """Where the measurements' own noise exceeds the tolerance: a precision wider than it (or
    unknown), or the same networks measured twice (two halves of the build's rounds; the build
    and a separate process) differing by more than it for over 5% of them."""
    tolerance = 100 * noise["tolerance"]
    warnings = []
    if noise["precision"] is None or noise["precision"] > noise["tolerance"]:
        reached = "unknown (fewer than 3 rounds)" if noise["precision"] is None else f"±{100 * noise['precision']:.1f}%"
        warnings.append(f"measurement precision {reached} does not reach the tolerance ±{tolerance:g}%: measure more rounds "
                        "or on a quieter machine")
    for name, how in (("across_rounds", "in two halves of the build's rounds"),
                      ("across_processes", "in the build and in a separate process after it")):
        figures = noise[name]
        if figures is not None and figures["p95_abs_error_pct"] > tolerance:
            warnings.append(f"noise exceeds the tolerance: {figures['n']} networks measured {how} differ by more than "
                            f"±{tolerance:g}% for over 5% of them (p95 |difference| {figures['p95_abs_error_pct']:.1f}%); "
                            f"predictions cannot hold ±{tolerance:g}% on this machine now")
    return warnings


PREDICTORS = {
    "naive_sum": "plain sum of the parts' isolated p50 latencies",
    "part_sum": "sum of the parts' p50 latencies less the harness overhead each, plus the harness once",
    "table": "the table's predictor (see the table's `predictor`): per operation name, a scale of its parts' latencies, "
             "and an offset, fitted by least squares on the calibration architectures; in `later_process`, restated at "
             "that process's speed (x its `speed_factor`)",
    "table_unscaled": "in `later_process` only: the table's prediction as stored against that process's raw timings",
    "affine_sum": "baseline: a * part_sum + b, fitted on the calibration architectures",
    "flops_linear": "baseline: a * FLOPs + b, fitted on the calibration architectures",
    "flops_mac_linear": "baseline: a * FLOPs + b * MAC + c, fitted on the calibration architectures",
}


def measure_on_table_device(space: SearchSpace, arch: Hashable, table: CostTable) -> LatencyStats:
    """Whole-network latency of ``arch`` as timed under ``table``'s conditions on this machine,
    which must be the table's device: the table's minimum rounds, no more (a run's quick check
    of its table; ``nasbench cost --measure`` measures to a precision)."""
    backend = table_backend(table, table.conditions["measurement"]["rounds"], MeasureSettings.precision, 0.0)
    return measure_networks(space, [arch], table, backend).raw[0]
