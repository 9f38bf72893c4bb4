"""``nasbench bench``: time a part of a method (a supernet search step, candidates' training)
or of the machinery under it (an executor's overhead per task)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench.cli.args import (
    add_data,
    add_device,
    add_executor,
    check_executor_options,
    load_checked_protocol,
    positive,
    print_json,
    task_resources,
)
from nasbench.errors import NasbenchError
from nasbench.executor import EXECUTORS
from nasbench.protocol import Protocol, SupernetBudget

MEMORY_FORMATS = ("auto", "channels-last", "nchw")

SEARCH_STEP_SIZE = {"batch_size": 32, "cells": 8, "channels": 16}
"""What ``bench search-step`` times without --protocol: DARTS' supernet (8 cells, 16
channels) at half its batch."""
LAYOUT_PROTOCOL = "proxy"
"""Whose layout ``bench search-step --space fbnet|enas-macro`` times without --protocol."""


def register(commands: Any) -> None:
    bench = commands.add_parser("bench", help="time a part of a method")
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    step = benchmarks.add_parser("search-step", help="one supernet search step (architecture and weight update) "
                                                     "on random data")
    step.add_argument("--method", required=True, help="a supernet method (see `nasbench list methods`)")
    step.add_argument("--batch-size", type=positive,
                      help=f"images per batch (default: {SEARCH_STEP_SIZE['batch_size']})")
    step.add_argument("--cells", type=positive, help=f"supernet cells (default: {SEARCH_STEP_SIZE['cells']})")
    step.add_argument("--channels", type=positive, help=f"supernet channels (default: {SEARCH_STEP_SIZE['channels']})")
    step.add_argument("--space", default="cell", help="cell (sized by --cells and --channels), fbnet (the layout of "
                                                       "--layout-protocol) or enas-macro (the depth of --layout-protocol's "
                                                       "[enas_macro], --channels wide)")
    step.add_argument("--layout-protocol", metavar="NAME|FILE",
                      help="for --space fbnet or enas-macro: the protocol whose [fbnet] or [enas_macro] layout is timed "
                           f"(default: {LAYOUT_PROTOCOL})")
    step.add_argument("--protocol", metavar="NAME|FILE",
                      help="time the step as this protocol's search takes it (its [search.supernet] sizes it instead "
                           "of --batch-size, --cells and --channels; its layout and method settings) and project its "
                           "search: projected_hours = supernet epochs x ceil(search-train images / batch size) x the "
                           "median step / 3600 (steps only: each epoch's validation record and a method's later "
                           "phase are not counted; `nasbench run` estimates them)")
    add_device(step)
    step.add_argument("--precision", type=precisions, default=("fp32",), metavar="P[,P...]",
                      help="time the step under each of fp32, bf16, fp16 (autocast; default: fp32)")
    add_memory_format(step)
    step.add_argument("--repeats", type=positive, default=5, help="timed steps after 2 warm-up steps (default: 5)")
    step.add_argument("--pt-darts", metavar="PATH", type=Path,
                      help="time pt.darts' step instead of ours, from its checkout at PATH (--method darts: its "
                           "network's first-order step; darts-2nd: its own unrolled step), to compare on this machine")
    step.add_argument("--json", action="store_true", help="print the timing as one JSON object per line")
    children = benchmarks.add_parser("candidates", help="candidates trained by the protocol's candidate stage on an "
                                                        "executor (the child-training methods' search)")
    children.add_argument("--space", default="cell", help="the space the candidates are drawn from (default: cell)")
    children.add_argument("--protocol", default="proxy", metavar="NAME|FILE",
                          help="whose candidate stage, data splits and space layout (default: proxy)")
    children.add_argument("--candidates", type=positive, default=4, help="architectures to train (default: 4)")
    add_executor(children, cluster=False)
    add_device(children)
    children.add_argument("--json", action="store_true", help="print the timing as one JSON object per line")
    add_data(children)
    final = benchmarks.add_parser(
        "final-training", help="the protocol's final-training step on its final network, on random data: images/s "
                               "and the projected hours of the final training",
        description="projected_hours = final epochs x train_images / images_per_s / 3600 (training steps only: "
                    "evaluation and data loading are not counted)")
    final.add_argument("--protocol", default="proxy", metavar="NAME|FILE",
                       help="whose final stage (network, batch size, epochs) and train_images (default: proxy)")
    final.add_argument("--arch", default="DARTS_V2", help="a genotype of the cell space's zoo (default: DARTS_V2)")
    final.add_argument("--precision", type=precisions, default=("fp32",), metavar="P[,P...]",
                       help="time the step under each of fp32, bf16, fp16 (default: fp32)")
    final.add_argument("--compile", action="store_true",
                       help="torch.compile the forward, as `nasbench run --compile` does (compiling falls in the "
                            "warm-up: its time is printed apart)")
    add_memory_format(final)
    add_device(final)
    final.add_argument("--repeats", type=positive, default=5, help="timed steps after 2 warm-up steps (default: 5)")
    final.add_argument("--json", action="store_true", help="print the timing as one JSON object per line, one per precision")
    overhead = benchmarks.add_parser("executor", help="an executor's overhead per task, on no-op tasks, with its "
                                                      "start-up time")
    overhead.add_argument("--executor", choices=EXECUTORS, metavar="NAME",
                          help=f"one of {', '.join(EXECUTORS)} (default: each in turn)")
    overhead.add_argument("--workers", type=positive,
                          help="tasks at once on the local Ray instance (default: 2)")
    overhead.add_argument("--tasks", type=positive, default=200,
                          help="no-op tasks submitted at once, then their results taken (default: 200)")
    overhead.add_argument("--round-trips", type=positive, default=50,
                          help="no-op tasks submitted one at a time, each after the previous one's result "
                               "(default: 50)")
    overhead.add_argument("--json", action="store_true", help="print the timing as one JSON object per line, one "
                                                              "per executor")


def execute(args: argparse.Namespace) -> int:
    return {"search-step": _search_step, "candidates": _candidates, "executor": _executor,
            "final-training": _final_training}[args.benchmark](args)


def add_memory_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-format", choices=MEMORY_FORMATS, default="auto", metavar="FORMAT",
                        help="the batches' memory format: auto (what `run` trains in: channels-last on a CPU in fp32, "
                             "NCHW otherwise), channels-last or nchw, to time the other choice (default: auto)")


def precisions(text: str) -> tuple[str, ...]:
    """``--precision``: precisions, comma-separated."""
    from nasbench.precision import PRECISIONS

    chosen = tuple(p.strip() for p in text.split(","))
    unknown = [p for p in chosen if p not in PRECISIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{unknown[0]!r} is not a precision (one of {', '.join(PRECISIONS)})")
    return chosen


def _final_training(args: argparse.Namespace) -> int:
    from nasbench.bench import bench_final_training
    from nasbench.provenance import resolve_device

    protocol, device = load_checked_protocol(args.protocol), resolve_device(args.device)
    for precision in args.precision:
        result = bench_final_training(protocol, precision=precision, device=device, repeats=args.repeats,
                                      compile=args.compile, arch=args.arch, memory_format=args.memory_format)
        if args.json:
            print_json(result)
            continue
        compiled = f", compiled (first step {result['first_s']:.1f} s)" if result["compile"] else ""
        print(f"{result['arch']} final-training step of {result['protocol']} ({result['cells']} cells, "
              f"{result['channels']} channels, batch {result['batch_size']}), {precision}{compiled}, "
              f"{result['device']} ({result['threads']} thread(s), {result['memory_format']}): median "
              f"{1e3 * result['median_s']:.1f} ms over "
              f"{result['repeats']} steps, {result['images_per_s']:.1f} images/s; {result['epochs']} epochs of "
              f"{result['train_images']} images: {_hours(result['projected_hours'])}", flush=True)
    return 0


def _candidates(args: argparse.Namespace) -> int:
    from nasbench.images import load_dataset
    from nasbench.spaces import SPACES

    # names, options, the protocol and the data first: their errors need no torch
    SPACES.check(args.space)
    check_executor_options(args)
    protocol = load_checked_protocol(args.protocol)
    dataset = load_dataset(args.data, args.data_dir)

    from nasbench.bench import bench_candidates
    from nasbench.provenance import resolve_device
    from nasbench.spaces import get_space

    space = get_space(args.space, protocol)
    device = resolve_device(args.device)
    result = bench_candidates(space, protocol, dataset, candidates=args.candidates,
                              device=device, executor=args.executor, workers=args.workers,
                              resources=task_resources(args, device))
    if args.json:
        print_json(result)
        return 0
    print(f"{result['candidates']} candidates of the {result['space']} space, {result['protocol']} candidate stage "
          f"({result['epochs']} epochs), {result['executor']} executor, {result['workers']} at once, "
          f"{result['device']} ({result['threads_per_task']} thread(s) each): {result['seconds']:.1f} s, "
          f"{result['candidates_per_s']:.3f} candidates/s, {result['seconds_per_candidate']:.1f} s per candidate "
          f"(their own training times sum to {result['candidate_seconds_sum']:.1f} s; {result['failed']} failed); "
          f"the executor started in {result['startup_s']:.1f} s, its workers in {result['warmup_s']:.1f} s")
    return 0


def _executor(args: argparse.Namespace) -> int:
    from nasbench.bench import bench_executor

    if args.executor == "inprocess" and args.workers not in (None, 1):
        raise NasbenchError("--workers sizes the local Ray instance: the in-process executor runs one task at a "
                            "time (give --executor ray, or drop --workers)")
    for name in [args.executor] if args.executor else EXECUTORS:
        workers = (args.workers or 2) if name == "ray" else 1
        result = bench_executor(name, workers=workers, tasks=args.tasks, round_trips=args.round_trips)
        if args.json:
            print_json(result)
            continue
        print(f"{result['executor']} executor, {result['workers']} task(s) at once: {result['ms_per_task']:.3f} ms "
              f"per task over {result['tasks']} submitted at once; one at a time, median "
              f"{result['round_trip_p50_ms']:.3f} ms (slowest {result['round_trip_max_ms']:.3f}) over "
              f"{result['round_trips']}; started in {result['startup_s']:.2f} s, its workers in "
              f"{result['warmup_s']:.2f} s", flush=True)
    return 0


def _search_step(args: argparse.Namespace) -> int:
    from nasbench.spaces import SPACES
    from nasbench.strategies import check_supernet_method

    # names and sizes first: their errors need no torch
    check_supernet_method(args.method, "--method")
    SPACES.check(args.space)
    protocol, budget = _search_step_size(args)
    layout = protocol
    if layout is None and args.space != "cell":
        layout = load_checked_protocol(args.layout_protocol or LAYOUT_PROTOCOL)

    from nasbench.bench import bench_pt_darts_step, bench_search_step, search_projection
    from nasbench.provenance import resolve_device
    from nasbench.spaces import get_space

    space = get_space(args.space, layout)
    device = resolve_device(args.device)
    if args.pt_darts is not None and space.name != "cell":
        raise NasbenchError("--pt-darts times pt.darts' cell supernet: leave --space at cell")
    if args.pt_darts is not None and args.precision != ("fp32",):
        raise NasbenchError("--pt-darts times pt.darts' own fp32 step: leave --precision at fp32")
    if args.pt_darts is not None and args.memory_format != "auto":
        raise NasbenchError("--pt-darts times pt.darts' step on NCHW batches, as its loader gives them: leave "
                            "--memory-format at auto")
    for precision in args.precision:
        if args.pt_darts is None:
            result = bench_search_step(args.method, budget, space=space, precision=precision, device=device,
                                       repeats=args.repeats, protocol=protocol, memory_format=args.memory_format)
        else:
            result = bench_pt_darts_step(args.pt_darts, args.method, batch_size=budget.batch_size, cells=budget.cells,
                                         channels=budget.channels, device=device, repeats=args.repeats)
        if protocol is not None:
            result |= search_projection(protocol, result["median_s"])
        _print_search_step(args, space, result)
    return 0


def _search_step_size(args: argparse.Namespace) -> tuple[Protocol | None, SupernetBudget]:
    """The protocol a step is timed under (None without --protocol) and its supernet's size."""
    if args.protocol is None:
        size = {key: getattr(args, key) or default for key, default in SEARCH_STEP_SIZE.items()}
        budget = SupernetBudget(size["channels"], size["cells"], epochs=1, batch_size=size["batch_size"])
        budget.check("bench search-step")
        return None, budget
    given = [flag for flag, value in (("--batch-size", args.batch_size), ("--cells", args.cells),
                                      ("--channels", args.channels), ("--layout-protocol", args.layout_protocol))
             if value is not None]
    if given:
        raise NasbenchError(f"--protocol sizes the step by its [search.supernet] and lays out its space: "
                            f"drop {given[0]}")
    protocol = load_checked_protocol(args.protocol)
    return protocol, protocol.search.supernet


def _print_search_step(args: argparse.Namespace, space: Any, result: dict[str, Any]) -> None:
    from nasbench.types import NetworkConfig

    if args.json:
        print_json(result)
        return
    layout = args.protocol or args.layout_protocol or LAYOUT_PROTOCOL
    size = (f"{result['cells']} cells, {result['channels']} channels" if result["space"] == "cell"
            else f"the {result['space']} layout of {layout} "
                 f"({space.describe_network(NetworkConfig(result['channels'], result['cells']))})")
    precision = f", {result['precision']}" if "precision" in result else ""
    print(f"{result['method']} search step, batch {result['batch_size']}, {size}{precision}, {result['device']} "
          f"({result['threads']} thread(s), {result['memory_format']}): "
          f"median {1e3 * result['median_s']:.1f} ms over {result['repeats']} steps "
          f"(min {1e3 * result['min_s']:.1f}, max {1e3 * result['max_s']:.1f}); "
          f"peak memory {result['peak_memory_bytes'] / 2**20:.1f} MiB ({result['peak_memory_measure']}"
          f"{_memory_before(result['memory_before_bytes'])}){_projection(result)}", flush=True)


def _projection(result: dict[str, Any]) -> str:
    if "projected_hours" not in result:
        return ""
    return (f"; {result['protocol']}'s search, {result['epochs']} epochs of {result['steps_per_epoch']} steps: "
            f"{_hours(result['projected_hours'])}")


def _hours(hours: float) -> str:
    """A projection: in hours (``413.2 h``), or under one as a duration (``4m12s``)."""
    from nasbench.progress import duration

    return f"{hours:.1f} h" if hours >= 1 else duration(3600 * hours)


def _memory_before(value: int | None) -> str:
    return "" if value is None else f"; {value / 2**20:.1f} MiB before the first step"
