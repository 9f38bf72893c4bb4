"""Timing a method's inner loop.

``nasbench bench search-step``: one search step is what a supernet method does per
training batch, an architecture update on a validation batch and a weight update on a
training batch. It is timed on random images of the requested size, after warm-up, so the
figure isolates the method's arithmetic from data loading and augmentation. Timed as a
protocol's search takes it, it projects that search's hours from its steps.

``nasbench bench candidates``: what the child-training methods (NAS-RL, NASNet, random
search) spend most of their search on, training candidates by the protocol's candidate
stage on the real data, on an executor (in-process, or Ray tasks ``--workers`` at once),
so that the speed-up of parallel children (``nasbench run --workers``) is measured, not
assumed.

``nasbench bench final-training``: the protocol's final-training step (what every run
ends with, the same :class:`~nasbench.training.TrainStep` its training takes) on the
protocol's final network, per precision and compiled or not, as images per second and the
hours the protocol's final training would take at that speed.

``nasbench bench executor``: what an executor adds to every task (submitting it, taking
its result), on no-op tasks, so that it can be weighed against a candidate's training.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import random
import re
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from nasbench.data import (
    DeviceSplit,
    SplitData,
    chosen_memory_format,
    memory_format_name,
)
from nasbench.errors import NasbenchError
from nasbench.executor import Executor, Resources, make_executor
from nasbench.images import NUM_CLASSES, Dataset
from nasbench.numerics import configure_numerics
from nasbench.protocol import Protocol, SupernetBudget, load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.cell.plan import reduction_positions
from nasbench.strategies import check_supernet_method, get_strategy, method_space
from nasbench.strategies.context import SearchContext
from nasbench.strategies.supernet_search import Batch, SupernetSearch
from nasbench.training import TrainStep, build_model

WARMUP_STEPS = 2
PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")
CPU = torch.device("cpu")


def bench_search_step(method: str, budget: SupernetBudget, *, device: torch.device, repeats: int,
                      space: SearchSpace | None = None, precision: str = "fp32",
                      protocol: Protocol | None = None, memory_format: str = "auto") -> dict[str, Any]:
    """One search step of ``method`` on ``budget``'s supernet timed by :func:`time_steps`,
    under ``precision``, on batches in ``memory_format``, with the methods' settings of
    ``protocol`` (default: smoke)."""
    configure_numerics()
    cls = get_strategy(check_supernet_method(method, "--method"))
    space = get_space("cell") if space is None else space
    method_space(cls.name, cls.spaces, space.name)
    budget.check("bench search-step")  # the sizes a protocol's [search.supernet] may have
    base = dataclasses.replace(load_protocol("smoke") if protocol is None else protocol, precision=precision)
    timing = time_search_step(cls(search_context(budget, device, space, base)), repeats=repeats,
                              memory_format=memory_format)
    return {"method": method, "space": space.name, "cells": budget.cells, "channels": budget.channels,
            "precision": precision, **timing}


def search_projection(protocol: Protocol, step_s: float) -> dict[str, Any]:
    """The hours of ``protocol``'s supernet search at ``step_s`` a step: its epochs of
    ceil(search-train images / batch) steps (the steps only: each epoch's validation record
    and a method's later phase are ``nasbench run``'s estimate's to count)."""
    supernet = protocol.search.supernet
    steps = math.ceil(protocol.data.search_train_images / supernet.batch_size)
    return {"protocol": protocol.name, "epochs": supernet.epochs, "steps_per_epoch": steps,
            "projected_hours": supernet.epochs * steps * step_s / 3600}


def bench_final_training(protocol: Protocol, *, precision: str, device: torch.device, repeats: int,
                         compile: bool = False, arch: str = "DARTS_V2", space: SearchSpace | None = None,
                         warmup: int = WARMUP_STEPS, memory_format: str = "auto") -> dict[str, Any]:
    """The protocol's final-training step on its final network of the zoo's ``arch`` at its
    final batch size, timed by :func:`time_steps` on random batches in ``memory_format``
    (the compilation falls in the warm-up: ``first_s``), in the middle of the recipe (drop
    path on); with ``images_per_s`` and ``projected_hours`` = final epochs * train_images /
    images_per_s / 3600 (the evaluation and data loading not counted)."""
    configure_numerics()
    space = get_space("cell") if space is None else space
    if arch not in space.zoo():
        raise NasbenchError(f"the {space.name} space's zoo has no {arch} (it has: {', '.join(space.zoo())})")
    stage = protocol.final
    model = build_model(space, space.zoo()[arch].arch, stage, device, seed=0)
    model.train()
    step = TrainStep.build(model, stage, device, precision, compile)
    step.start_epoch(stage.epochs // 2)
    timing = time_steps(lambda train, _val: step(train.images, train.labels), batch_size=stage.batch_size,
                        device=device, repeats=repeats, warmup=warmup, precision=precision,
                        memory_format=memory_format)
    images_per_s = stage.batch_size / timing["median_s"]
    return {"protocol": protocol.name, "space": space.name, "arch": arch, "precision": precision,
            "compile": bool(compile), "channels": stage.channels, "cells": stage.cells, "epochs": stage.epochs,
            "train_images": protocol.data.train_images, "images_per_s": images_per_s,
            "projected_hours": stage.epochs * protocol.data.train_images / images_per_s / 3600, **timing}


def time_search_step(strategy: SupernetSearch, **timing: Any) -> dict[str, Any]:
    """:func:`time_steps` of ``strategy``'s search step at its protocol's supernet batch
    size, under its first epoch's learning rate (``timing``: time_steps' options)."""
    lr = strategy.learning_rate(0)
    strategy.supernet.train()
    return time_steps(lambda train, val: strategy.search_step(train, val, lr),
                      batch_size=strategy.context.protocol.search.supernet.batch_size,
                      device=strategy.context.device, precision=strategy.precision.name, **timing)


def time_steps(step: Callable[[Batch, Batch], object], *, batch_size: int, device: torch.device,
               repeats: int, warmup: int = WARMUP_STEPS, budget_s: float | None = None,
               precision: str = "fp32", memory_format: str = "auto") -> dict[str, Any]:
    """Median (and mean) wall time of ``step(train, val)`` over ``repeats`` calls on fresh random
    batches in ``memory_format`` (``auto``: the one a run under ``precision`` trains in;
    after ``warmup`` calls, synchronised on a GPU) and the peak memory over all calls:
    allocated CUDA memory on a GPU, the process's peak RSS on a CPU;
    ``memory_before_bytes`` is what was in use before the first step (the network, the
    framework), so the difference is the step's working memory. Any implementation's
    step can be timed by it, so that ours and a reference one are measured alike. With
    ``budget_s``, timing stops early once the timed calls took that long (after at least
    one), for slow steps measured in passing (``nasbench run``'s estimate). ``first_s`` is the
    first call's time (a compiled step compiles in it)."""
    generator = torch.Generator(device=device).manual_seed(0)
    seconds: list[float] = []
    baseline = _reset_peak_memory(device)
    for _ in range(warmup + repeats):
        train, val = (random_batch(batch_size, generator, precision, memory_format) for _ in range(2))
        seconds.append(wall_seconds(functools.partial(step, train, val), device))
        if budget_s is not None and len(seconds) > warmup and sum(seconds[warmup:]) >= budget_s:
            break
    timed = seconds[warmup:]
    peak, measure = _peak_memory(device)
    if baseline is not None:
        peak = max(peak, baseline)  # Linux updates VmHWM lazily: a later read can fall below the RSS at the reset
    return {
        "device": str(device), "threads": torch.get_num_threads(), "batch_size": batch_size,
        "memory_format": memory_format_name(chosen_memory_format(memory_format, device, precision)),
        "warmup": warmup, "repeats": len(timed), "first_s": seconds[0],
        "median_s": statistics.median(timed), "mean_s": statistics.mean(timed), "min_s": min(timed),
        "max_s": max(timed),
        "peak_memory_bytes": peak, "memory_before_bytes": baseline, "peak_memory_measure": measure,
    }


PT_DARTS_URL = "https://github.com/khanrc/pt.darts"
PT_DARTS_ORDERS = {"darts": 1, "darts-2nd": 2}


def bench_pt_darts_step(checkout: Path, method: str, *, batch_size: int, cells: int, channels: int,
                        device: torch.device, repeats: int) -> dict[str, Any]:
    """pt.darts' search step (a widely used straightforward PyTorch port of DARTS), timed
    by :func:`time_steps` like ours, so that the two compare on one machine. pt.darts
    implements only the second order (its ``Architect``); for ``darts`` the first-order
    step is written with its network: the validation loss's gradient at the current
    weights, then its weight step unchanged. Its optimisers take its ``config.py``
    defaults (DARTS' values), written out here because they are pt.darts', not ours."""
    if method not in PT_DARTS_ORDERS:
        raise NasbenchError(f"--pt-darts times pt.darts' DARTS step: give --method darts (first order) or "
                            f"darts-2nd, not {method}")
    # pt.darts places its reduction cells as DARTS does: below 3 cells, every cell is one
    if PT_DARTS_ORDERS[method] == 2 and set(range(cells)) <= set(reduction_positions(cells)):
        raise NasbenchError(f"pt.darts' network of {cells} cells has no normal cell, so its unrolled step fails on "
                            f"the normal cells' unused weights: give --cells 3 or more")
    if not ((checkout / "models" / "search_cnn.py").is_file() and (checkout / "architect.py").is_file()):
        raise NasbenchError(f"no pt.darts checkout at {checkout} (it needs models/search_cnn.py and architect.py): "
                            f"git clone {PT_DARTS_URL}")
    sys.path.insert(0, str(checkout.resolve()))  # pt.darts imports its modules by their top-level names
    from architect import Architect
    from models.search_cnn import SearchCNNController

    w_lr, w_momentum, w_weight_decay, w_grad_clip = 0.025, 0.9, 3e-4, 5.0
    model = SearchCNNController(3, channels, NUM_CLASSES, cells, torch.nn.CrossEntropyLoss(),
                                device_ids=[0]).to(device)  # one device: its plain forward
    w_optim = torch.optim.SGD(model.weights(), w_lr, momentum=w_momentum, weight_decay=w_weight_decay)
    alpha_optim = torch.optim.Adam(model.alphas(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    architect = Architect(model, w_momentum, w_weight_decay)
    second_order = PT_DARTS_ORDERS[method] == 2

    def step(train: Batch, val: Batch) -> None:
        alpha_optim.zero_grad()
        if second_order:
            architect.unrolled_backward(train.images, train.labels, val.images, val.labels, w_lr, w_optim)
        else:
            model.loss(val.images, val.labels).backward()
        alpha_optim.step()
        w_optim.zero_grad()
        model.loss(train.images, train.labels).backward()
        torch.nn.utils.clip_grad_norm_(model.weights(), w_grad_clip)
        w_optim.step()

    model.train()
    timing = time_steps(step, batch_size=batch_size, device=device, repeats=repeats,
                        memory_format="nchw")  # as its loader gives them
    return {"method": f"pt.darts {method}", "space": "cell", "cells": cells, "channels": channels, **timing}


def wall_seconds(call: Callable[[], object], device: torch.device) -> float:
    """Wall time of ``call()``, synchronised on a GPU so that the work it queued counts."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    call()
    if cuda:
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _reset_peak_memory(device: torch.device) -> int | None:
    """Measure the peak from here on; returns the memory in use now (None if unknown)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    if PROC_CLEAR_REFS.exists():
        PROC_CLEAR_REFS.write_text("5")  # Linux: reset the process's peak RSS (VmHWM) to its RSS
        return _proc_status_bytes("VmRSS")
    return None


def _peak_memory(device: torch.device) -> tuple[int, str]:
    """Peak memory since :func:`_reset_peak_memory` in bytes, and what was measured."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "torch.cuda.max_memory_allocated"
    if PROC_CLEAR_REFS.exists():
        return _proc_status_bytes("VmHWM"), "peak RSS of the process during the steps (VmHWM, /proc/self/status)"
    # no /proc (macOS, where ru_maxrss is in bytes): the peak since the process started
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "peak RSS of the process since it started (getrusage)"


def _proc_status_bytes(field: str) -> int:
    return 1024 * int(re.search(rf"{field}:\s+(\d+) kB", PROC_STATUS.read_text()).group(1))


def search_context(supernet: SupernetBudget, device: torch.device, space: SearchSpace,
                   base: Protocol | None = None) -> SearchContext:
    """A search context with the given supernet on ``base`` (default: smoke), whose own
    sections the methods read (a search step reads no data of its own: two blank images
    stand in for every split)."""
    base = load_protocol("smoke") if base is None else base
    protocol = dataclasses.replace(base, search=dataclasses.replace(base.search, supernet=supernet))
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8, device=device)
    split = DeviceSplit(images, torch.zeros(2, dtype=torch.int64, device=device))
    return SearchContext(space=space, protocol=protocol, seed=0, data=SplitData(split, split, split, split),
                         device=device, show_progress=False)


def random_batch(batch_size: int, generator: torch.Generator, precision: str = "fp32",
                 memory_format: str = "auto") -> Batch:
    """Normal noise images of CIFAR-10's size in ``memory_format`` (``auto``: the one
    augmentation gives a search or training under ``precision``), and random labels, on the
    generator's device."""
    device = generator.device
    images = torch.randn(batch_size, 3, 32, 32, device=device, generator=generator)
    return Batch(images.contiguous(memory_format=chosen_memory_format(memory_format, device, precision)),
                 torch.randint(0, NUM_CLASSES, (batch_size,), device=device, generator=generator))


def bench_candidates(space: SearchSpace, protocol: Protocol, dataset: Dataset, *, candidates: int,
                     device: torch.device, executor: str | None = None, workers: int = 1,
                     resources: Resources | None = None, seed: int = 0) -> dict[str, Any]:
    """Wall time to train ``candidates`` architectures drawn at random from ``space`` by the
    protocol's candidate stage on the executor :func:`make_executor` gives for ``executor``,
    ``workers`` and ``resources``, in batches of as many as it runs at once, as a
    child-training method hands them over; with the sum of the candidates' own training
    times, so that what parallelism saves and what it costs (sharing the cores, the tasks'
    overhead) both show. Starting the executor is timed apart (:func:`start_executor`): a
    run pays it once, not per candidate."""
    configure_numerics()
    executor, startup = start_executor(executor, workers=workers, resources=resources)
    try:
        # as the runner does: Ray tasks take the splits from the CPU onto their own device
        data = SplitData.for_config(dataset, protocol.data, torch.device("cpu") if executor.remote else device)
        context = SearchContext(space=space, protocol=protocol, seed=seed, data=data, device=device,
                                show_progress=False, executor=executor)
        rng = random.Random(seed)
        archs = [space.sample(rng) for _ in range(candidates)]
        outcomes = []
        start = time.perf_counter()
        for first in range(0, candidates, context.workers):
            outcomes += context.train_candidates(list(enumerate(archs[first:first + context.workers], start=first)))
        seconds = time.perf_counter() - start
    finally:
        executor.close()
    return {
        "space": space.name, "protocol": protocol.name, "device": str(device), "candidates": candidates,
        "executor": executor.name, "workers": context.workers, "threads_per_task": _task_threads(executor),
        "epochs": protocol.candidate.epochs, **startup, "seconds": seconds,
        "candidates_per_s": candidates / seconds, "seconds_per_candidate": seconds / candidates,
        "candidate_seconds_sum": sum(o.seconds for o in outcomes),
        "failed": sum(o.error is not None for o in outcomes),
        "val_acc": [o.val_acc for o in outcomes],
    }


def _task_threads(executor: Executor) -> int:
    """torch's threads in a task: its resources' in a remote worker, this process's inline."""
    return executor.resources.threads() if executor.remote else torch.get_num_threads()


def echo(value: Any) -> Any:
    """The no-op task :func:`bench_executor` times: all it costs is the executor's."""
    return value


def start_executor(name: str | None, **options: Any) -> tuple[Executor, dict[str, float]]:
    """:func:`make_executor` (``options``: its own), then a warm-up of as many :func:`echo`
    tasks at once as it runs (Ray: its workers start and import torch); with how long each
    took (``startup_s``, ``warmup_s``), costs a command pays once, kept out of the timed work."""
    started = time.perf_counter()
    executor = make_executor(name, **options)
    startup_s = time.perf_counter() - started
    try:
        warmup_s = wall_seconds(lambda: executor.map(echo, [(i,) for i in range(executor.capacity)]), CPU)
    except BaseException:
        executor.close()
        raise
    return executor, {"startup_s": startup_s, "warmup_s": warmup_s}


def bench_executor(name: str, *, workers: int, tasks: int, round_trips: int) -> dict[str, Any]:
    """The executor's overhead per task, on :func:`echo` tasks, once it is started
    (:func:`start_executor`): ``tasks`` submitted at once, then their results taken (ms per
    task: the batch's mean); and ``round_trips`` tasks one at a time, each submitted once
    the previous one's result came (their median and slowest)."""
    executor, startup = start_executor(name, workers=workers)
    try:
        batch_s = wall_seconds(lambda: executor.map(echo, [(i,) for i in range(tasks)]), CPU)
        trips = [wall_seconds(lambda: executor.result(executor.submit(echo, i)), CPU) for i in range(round_trips)]
    finally:
        executor.close()
    return {
        "executor": executor.name, "workers": executor.capacity, **startup,
        "tasks": tasks, "batch_s": batch_s, "ms_per_task": 1e3 * batch_s / tasks,
        "round_trips": round_trips, "round_trip_p50_ms": 1e3 * statistics.median(trips),
        "round_trip_max_ms": 1e3 * max(trips),
    }
