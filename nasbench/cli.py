"""The ``nasbench`` command line: run, rank, list, describe, report, profile, cost, bench.

Bad input ends with one line on stderr (``nasbench: error: ...``) and exit status 2,
before the store is opened for writing, so stored results are never touched by it.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any, Sequence

from nasbench.errors import NasbenchError

DEFAULT_PROTOCOL = "proxy"
DEFAULT_STORE = Path("results/nasbench.sqlite")
DEFAULT_REPORTS = Path("reports")
DEFAULT_TABLES = Path("cost_tables")
CONSTRAINT_METRICS = {"latency": "latency_ms", "flops": "flops", "params": "params", "mac": "mac_elements"}
"""--constraint names and the cost-model metrics they mean (MAC: memory accesses, in elements)."""


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def _methods(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasbench", description="Benchmark NAS methods under one shared protocol.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="search with methods and final-train what they find")
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every registered method")
    which.add_argument("--method", type=_methods, metavar="NAME[,NAME...]", help="methods to run (see `nasbench list methods`)")
    _add_protocol(run)
    run.add_argument("--seeds", type=_seeds, metavar="0,1,2", help="seeds to run (default: the protocol's)")
    _add_data(run)
    _add_device(run)
    _add_store(run)
    run.add_argument("--space", help="the space every method searches (default: each method's first; "
                                     "`nasbench list methods` shows them)")
    run.add_argument("--workers", type=_positive, default=1,
                     help="candidates trained at once, in processes, by the methods that train them from scratch "
                          "(random, nas-rl, nasnet); the results are those of 1 (default: 1)")
    run.add_argument("--force", action="store_true", help="run again even if the store has the run finished")
    run.add_argument("--json", action="store_true", help="print one JSON object per (method, seed)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    constraint = run.add_argument_group("resource constraint (methods that accept one, e.g. snas; stored as its own run)")
    constraint.add_argument("--constraint", metavar="METRIC", help=f"one of {', '.join(CONSTRAINT_METRICS)}")
    constraint.add_argument("--target", type=float, help="the budget, in the metric's unit (ms for latency; counts otherwise)")
    constraint.add_argument("--table", type=Path, help="cost table of the run's protocol (cost_tables/...json); needed "
                                                       "for latency, else the protocol's counts are used")
    constraint.add_argument("--constraint-weight", type=float, metavar="LAMBDA",
                            help="strength of the penalty (default: the method's published one, where it has one)")
    constraint.add_argument("--snas-setting", metavar="NAME", help="SNAS' named strength instead of --constraint-weight")
    constraint.add_argument("--constraint-form", metavar="FORM", choices=("hinge", "add-linear", "mul-log", "mul-log-hinge"),
                            help="how the expected cost enters the loss: hinge (snas), mul-log-hinge (fbnet), mul-log "
                                 "(proxylessnas, fbnet), add-linear (proxylessnas); default: the method's first")

    listing = commands.add_parser("list", help="list methods, spaces, protocols or genotypes")
    listing.add_argument("what", choices=("methods", "spaces", "protocols", "genotypes"))
    _add_protocol(listing, "for genotypes: the protocol whose final network is counted")
    listing.add_argument("--json", action="store_true")

    describe = commands.add_parser("describe", help="show a genotype and its network's params and FLOPs")
    describe.add_argument("genotype", help="a zoo name (`nasbench list genotypes`) or a genotype JSON file")
    _add_protocol(describe, "the protocol whose final network is built")
    describe.add_argument("--json", action="store_true")

    report = commands.add_parser("report", help="regenerate the comparison tables from the store")
    _add_store(report)
    report.add_argument("--out", type=Path, default=DEFAULT_REPORTS, help=f"output folder (default: {DEFAULT_REPORTS})")
    report.add_argument("--tables", type=Path, default=DEFAULT_TABLES,
                        help=f"cost tables to summarise (default: {DEFAULT_TABLES})")

    profile = commands.add_parser("profile", help="measure a cost table for a space, protocol and device")
    profile.add_argument("--space", default="cell", help="search space (default: cell)")
    _add_protocol(profile, "the protocol whose final network is profiled")
    profile.add_argument("--device", required=True, choices=("cpu", "cuda"))
    profile.add_argument("--backend", required=True, choices=("torch", "onnxruntime"))
    profile.add_argument("--batch-size", type=_positive, default=1, help="images per call (default: 1)")
    profile.add_argument("--threads", type=_positive, default=1, help="intra-op threads (default: 1)")
    profile.add_argument("--out", type=Path, default=DEFAULT_TABLES, help=f"tables folder (default: {DEFAULT_TABLES})")
    profile.add_argument("--validate", type=_non_negative, default=0, metavar="N",
                         help="also measure N random whole networks and compare them with the table")
    profile.add_argument("--calibrate", type=_non_negative, default=30, metavar="K",
                         help="random whole networks the predictor is fitted on (default: 30)")
    profile.add_argument("--rounds", type=_positive, default=9, help="interleaved measurement rounds (default: 9)")
    profile.add_argument("--min-time", type=float, default=0.05,
                         help="seconds of timed calls per item and round, at least (default: 0.05)")
    profile.add_argument("--min-reps", type=_positive, default=5,
                         help="timed calls per item and round, at least (default: 5)")
    profile.add_argument("--seed", type=int, default=0, help="seed of the random architectures (default: 0)")
    profile.add_argument("--json", action="store_true", help="print the validation figures as JSON")
    profile.add_argument("--no-progress", action="store_true")

    cost = commands.add_parser("cost", help="a genotype's latency, FLOPs, params and MAC from a cost table")
    cost.add_argument("genotype", help="a zoo name or a genotype JSON file")
    cost.add_argument("--table", type=Path, required=True, help="a cost table file (cost_tables/...json)")
    cost.add_argument("--measure", action="store_true",
                      help="also measure the whole network under the table's conditions (on the table's device)")
    cost.add_argument("--json", action="store_true")

    ranking = commands.add_parser("rank", help="how well a method's trained supernet ranks random architectures "
                                               "against training them alone")
    ranking.add_argument("--supernet", required=True, metavar="METHOD", help="a supernet method, e.g. random-ws, darts")
    ranking.add_argument("--samples", required=True, type=_integer, metavar="K", help="random architectures (>= 2)")
    _add_protocol(ranking)
    ranking.add_argument("--seed", type=_integer, help="seed of the supernet and the architectures "
                                                       "(default: the protocol's first)")
    _add_data(ranking)
    _add_device(ranking)
    _add_store(ranking)
    ranking.add_argument("--json", action="store_true", help="print the ranking with every pair as JSON")
    ranking.add_argument("--no-progress", action="store_true", help="no progress bars")

    bench = commands.add_parser("bench", help="time a part of a method")
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    step = benchmarks.add_parser("search-step", help="one supernet search step (architecture and weight update) "
                                                     "on random data")
    step.add_argument("--method", required=True, help="a supernet method (see `nasbench list methods`)")
    step.add_argument("--batch-size", type=_positive, default=32, help="images per batch (default: 32)")
    step.add_argument("--cells", type=_positive, default=8, help="supernet cells (default: 8)")
    step.add_argument("--channels", type=_positive, default=16, help="supernet channels (default: 16)")
    step.add_argument("--space", default="cell", help="cell (sized by --cells and --channels), fbnet (the layout of "
                                                       "--layout-protocol) or enas-macro (the depth of --layout-protocol's "
                                                       "[enas_macro], --channels wide)")
    step.add_argument("--layout-protocol", default="proxy", metavar="NAME|FILE",
                      help="for --space fbnet or enas-macro: the protocol whose [fbnet] or [enas_macro] layout is timed "
                           "(default: proxy)")
    step.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default: cpu")
    step.add_argument("--repeats", type=_positive, default=5, help="timed steps after 2 warm-up steps (default: 5)")
    step.add_argument("--pt-darts", metavar="PATH", type=Path,
                      help="time pt.darts' step instead of ours, from its checkout at PATH (--method darts: its "
                           "network's first-order step; darts-2nd: its own unrolled step), to compare on this machine")
    step.add_argument("--json", action="store_true")
    children = benchmarks.add_parser("candidates", help="candidates trained by the protocol's candidate stage, "
                                                        "--workers at once (the child-training methods' search)")
    children.add_argument("--space", default="cell", help="the space the candidates are drawn from (default: cell)")
    children.add_argument("--protocol", default="proxy", metavar="NAME|FILE",
                          help="whose candidate stage, data splits and space layout (default: proxy)")
    children.add_argument("--candidates", type=_positive, default=4, help="architectures to train (default: 4)")
    children.add_argument("--workers", type=_positive, default=1, help="trained at once, each in its own process "
                                                                       "(default: 1)")
    children.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default: cpu")
    children.add_argument("--json", action="store_true")
    _add_data(children)
    return parser


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _add_protocol(parser: argparse.ArgumentParser, help_text: str = "a built-in protocol name or a TOML/YAML file") -> None:
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL, help=f"{help_text} (default: {DEFAULT_PROTOCOL})")


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="cifar10 (torchvision) or PATH.npz (default: $NASBENCH_DATA, else cifar10)")
    parser.add_argument("--data-dir", type=Path, help="where CIFAR-10 is kept or downloaded (default: ~/.cache/nasbench/data)")


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results database (default: {DEFAULT_STORE})")


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from nasbench.data import load_dataset
    from nasbench.protocol import load_protocol
    from nasbench.provenance import resolve_device
    from nasbench.runner import RunRequest, execute, method_space
    from nasbench.spaces import space_class
    from nasbench.strategies import STRATEGIES, get_strategy

    methods = tuple(STRATEGIES) if args.all else args.method
    if not methods:
        raise NasbenchError("--method needs at least one method name")
    if args.space is not None:
        space_class(args.space)
    for name in methods:
        method_space(get_strategy(name), args.space)
    protocol = load_protocol(args.protocol)
    constraint = _constraint(args, protocol, methods)
    device = resolve_device(args.device)
    dataset = load_dataset(args.data, args.data_dir)
    request = RunRequest(methods=methods, protocol=protocol, seeds=args.seeds or protocol.seeds, dataset=dataset,
                         device=device, store_path=args.store, force=args.force, show_progress=not args.no_progress,
                         constraint=constraint, space=args.space, workers=args.workers)

    def emit(record: dict[str, Any]) -> None:
        if args.json:
            _print_json(record)
        elif record.get("status") == "failed":
            print(f"{record['method']} seed {record['seed']}: FAILED: {record['error']}", flush=True)
        else:
            note = " (stored earlier; --force to rerun)" if record.get("cached") else ""
            val = "–" if record["val_acc"] is None else f"{100 * record['val_acc']:.1f}%"
            print(f"{record['method']} seed {record['seed']}: test acc {100 * record['test_acc']:.2f}%, "
                  f"search-val acc {val}, params {record['params'] / 1e6:.3f}M, FLOPs {record['flops'] / 1e6:.1f}M, "
                  f"search {record['search_seconds']:.0f}s, final training {record['eval_seconds']:.0f}s"
                  f"{_constraint_note(record)}{note}", flush=True)

    failures = execute(request, emit)
    if not args.json:
        print(f"stored in {args.store}; `nasbench report --store {args.store}` regenerates the tables", file=sys.stderr)
    return 1 if failures else 0


def _constraint_note(record: dict[str, Any]) -> str:
    constraint = record.get("details", {}).get("constraint")
    if constraint is None:
        return ""
    return f", {constraint['metric']} {constraint['achieved']:g} (target {constraint['target']:g})"


def _constraint(args: argparse.Namespace, protocol, methods: tuple[str, ...]):
    """The run's resource constraint from the --constraint options, or None; every
    inconsistency is a one-line error here, before any data or store is touched."""
    from nasbench.hardware.cost_model import CostModel
    from nasbench.hardware.profiler import counts_table
    from nasbench.hardware.table import CostTable
    from nasbench.runner import method_space
    from nasbench.spaces import get_space
    from nasbench.strategies import get_strategy
    from nasbench.strategies.base import Constraint
    from nasbench.strategies.snas import CONSTRAINT_SETTINGS

    given = [f"--{name.replace('_', '-')}" for name in ("target", "table", "constraint_weight", "snas_setting",
                                                          "constraint_form") if getattr(args, name) is not None]
    if args.constraint is None:
        if given:
            raise NasbenchError(f"{', '.join(given)} only go with --constraint METRIC")
        return None
    if args.constraint not in CONSTRAINT_METRICS:
        raise NasbenchError(f"unknown --constraint {args.constraint!r}; known: {', '.join(CONSTRAINT_METRICS)}")
    metric = CONSTRAINT_METRICS[args.constraint]
    if args.target is None or not args.target > 0:
        raise NasbenchError("--constraint needs a positive --target (ms for latency, counts for the others)")
    classes = [get_strategy(name) for name in methods]
    unable = [cls.name for cls in classes if not cls.constraint_forms]
    if unable:
        raise NasbenchError(f"{', '.join(unable)} cannot search under a resource constraint; methods that can: "
                            f"{', '.join(_constrainable())}")
    form = args.constraint_form or next(iter(classes[0].constraint_forms))
    wrong = [cls.name for cls in classes if form not in cls.constraint_forms]
    if wrong:
        raise NasbenchError(f"{', '.join(wrong)} cannot search under the {form} loss form; forms per method: "
                            f"{', '.join(_constrainable())}")
    if args.constraint_weight is not None and args.snas_setting is not None:
        raise NasbenchError("give at most one of --constraint-weight LAMBDA and --snas-setting NAME")
    if args.snas_setting is not None:
        if set(methods) != {"snas"}:
            raise NasbenchError("--snas-setting is SNAS' own; with other methods give --constraint-weight")
        if args.snas_setting not in CONSTRAINT_SETTINGS:
            raise NasbenchError(f"unknown --snas-setting {args.snas_setting!r}; known: {', '.join(CONSTRAINT_SETTINGS)}")
    published = {cls.constraint_forms[form] for cls in classes}
    if len(published) > 1:
        raise NasbenchError(f"{', '.join(methods)} publish different {form} settings ({sorted(published)}); run them "
                            f"one at a time")
    default_weight, exponent = published.pop()
    weight = (CONSTRAINT_SETTINGS[args.snas_setting] if args.snas_setting is not None
              else args.constraint_weight if args.constraint_weight is not None else default_weight)
    if weight is None:
        raise NasbenchError(f"--constraint with {', '.join(methods)} needs --constraint-weight LAMBDA"
                            + (f" or --snas-setting {{{','.join(CONSTRAINT_SETTINGS)}}}" if set(methods) == {"snas"} else ""))
    if not weight >= 0:
        raise NasbenchError(f"--constraint-weight must be >= 0, got {weight}")
    spaces = {method_space(cls, args.space) for cls in classes}
    if len(spaces) > 1:
        raise NasbenchError(f"a constrained run costs one space; {', '.join(methods)} search {', '.join(sorted(spaces))}")
    space = get_space(spaces.pop(), protocol)
    if args.table is None:
        if metric == "latency_ms":
            raise NasbenchError("--constraint latency needs --table cost_tables/<device>/<table>.json "
                                "(build one with `nasbench profile`)")
        table = counts_table(space, protocol)
    else:
        table = CostTable.load(args.table)
        if table.protocol_hash != protocol.hash or table.space != space.name:
            raise NasbenchError(f"cost table {args.table} is for the {table.space} space under protocol {table.protocol} "
                                f"(hash {table.protocol_hash}), not the {space.name} space under {protocol.name} (hash "
                                f"{protocol.hash}); profile it with `nasbench profile --space {space.name} "
                                f"--protocol {protocol.name} ...`")
    return Constraint(metric, args.target, weight, CostModel(table, space, metric), form, exponent)


def _constrainable() -> list[str]:
    from nasbench.strategies import STRATEGIES

    return [f"{name} ({'/'.join(cls.constraint_forms)})" for name, cls in STRATEGIES.items() if cls.constraint_forms]


def cmd_list(args: argparse.Namespace) -> int:
    from nasbench.protocol import builtin_protocols, load_protocol
    from nasbench.spaces import SPACES
    from nasbench.strategies import STRATEGIES

    if args.what == "methods":
        rows = [{"name": c.name, "strategy": c.strategy_class, "spaces": list(c.spaces), "summary": c.summary}
                for c in STRATEGIES.values()]
        text = [f"{r['name']:14s} {r['strategy']:5s} {','.join(r['spaces']):11s} {r['summary']}" for r in rows]
    elif args.what == "spaces":
        rows = [{"name": c.name, "description": c.description} for c in SPACES.values()]
        text = [f"{r['name']:14s} {r['description']}" for r in rows]
    elif args.what == "protocols":
        rows = [{"name": p.name, "hash": p.hash, "description": p.description}
                for p in map(load_protocol, builtin_protocols())]
        text = [f"{r['name']:8s} {r['hash']}  {r['description']}" for r in rows]
    else:
        rows = [_genotype_summary(entry.name, entry.arch, load_protocol(args.protocol), entry)
                for entry in _cell_space().zoo().values()]
        text = [f"{'name':26s} {'params (M)':>10s} {'published (M)':>13s} {'FLOPs (M, MAC=1)':>17s}  "
                f"[final network of protocol {args.protocol}]"]
        text += [f"{r['name']:26s} {r['params'] / 1e6:10.3f} {_m(r['published_params_m']):>13s} "
                 f"{r['flops'] / 1e6:17.1f}  {_zoo_check(r)}" for r in rows]
    if args.json:
        _print_json(rows)
    else:
        print("\n".join(text))
    return 0


def _zoo_check(row: dict[str, Any]) -> str:
    published = row["published_params_m"]
    if published is None:
        return "no published count"
    if round(row["params"] / 1e6, 1) == published:
        return "matches"
    return f"differs: `nasbench describe {row['name']}` says why" if row["params_note"] else "differs"


def _m(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _cell_space():
    from nasbench.spaces import get_space

    return get_space("cell")


def _genotype_summary(name: str, genotype, protocol, entry=None) -> dict[str, Any]:
    from nasbench.hardware.counting import count_flops, count_params

    model = _cell_space().build(genotype, protocol.final.network)
    summary = {"name": name, "protocol": protocol.name, "channels": protocol.final.channels,
               "cells": protocol.final.cells, "params": count_params(model), "flops": count_flops(model),
               "flops_convention": "fvcore, 1 multiply-add = 1 FLOP", "genotype": genotype.to_dict()}
    if entry is not None:
        summary.update(published_params_m=entry.published_params_m, source=entry.source, note=entry.note,
                       params_note=entry.params_note)
    return summary


def _resolve_genotype(name: str):
    """A zoo genotype by name, or one from a JSON file: (genotype, zoo entry or None)."""
    from nasbench.errors import UnknownNameError
    from nasbench.spaces.cell.genotype import Genotype

    zoo = _cell_space().zoo()
    if name in zoo:
        return zoo[name].arch, zoo[name]
    if name.endswith(".json"):
        return Genotype.from_file(Path(name)), None
    raise UnknownNameError("genotype", name, list(zoo) + ["<file>.json"])


def _resolve_arch(name: str, space):
    """An architecture of ``space``: a zoo name, or a JSON file of its form."""
    if space.name == "cell":
        return _resolve_genotype(name)[0]
    if not name.endswith(".json"):
        raise NasbenchError(f"the {space.name} space has no zoo: give an architecture JSON file, e.g. "
                            f"{json.dumps(space.to_dict(space.sample(random.Random(0))))[:60]}...")
    try:
        data = json.loads(Path(name).read_text())
    except OSError as err:
        raise NasbenchError(f"cannot read architecture file {name}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise NasbenchError(f"{name} is not valid JSON: {err}") from None
    return space.from_dict(data, where=name)


def cmd_describe(args: argparse.Namespace) -> int:
    from nasbench.protocol import load_protocol

    genotype, entry = _resolve_genotype(args.genotype)
    summary = _genotype_summary(args.genotype, genotype, load_protocol(args.protocol), entry)
    if args.json:
        _print_json(summary)
        return 0
    print(genotype)
    print(f"final network of protocol {summary['protocol']} ({summary['channels']} channels, {summary['cells']} cells): "
          f"{summary['params'] / 1e6:.3f}M params (auxiliary head excluded), "
          f"{summary['flops'] / 1e6:.1f}M FLOPs (1 multiply-add = 1 FLOP)")
    if entry is not None:
        print(f"published: {_m(entry.published_params_m)}M params; source: {entry.source}")
        if entry.params_note:
            print(f"why the counts differ: {entry.params_note}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from nasbench.report import generate

    for path in generate(args.store, args.out, args.tables):
        print(path)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from nasbench.hardware.measure import MeasureSettings, make_backend
    from nasbench.hardware.profiler import ProfileRequest, profile
    from nasbench.protocol import load_protocol
    from nasbench.provenance import resolve_device
    from nasbench.spaces import get_space

    protocol = load_protocol(args.protocol)
    space = get_space(args.space, protocol)
    device = resolve_device(args.device)
    settings = MeasureSettings(min_time_s=args.min_time, min_reps=args.min_reps, rounds=args.rounds)
    backend = make_backend(args.backend, device, args.threads, args.batch_size, settings)
    request = ProfileRequest(space, protocol, backend, calibrate=args.calibrate, validate=args.validate,
                             seed=args.seed, progress=not args.no_progress)
    table, path, validation_path = profile(request, args.out, log=lambda line: print(line, file=sys.stderr))
    print(f"table: {path} ({len(table.entries)} entries, built in {table.build_seconds:.0f}s)")
    if validation_path is None:
        return 0
    validation = json.loads(validation_path.read_text())
    figures = dict(validation["predictors"])
    if validation["repeatability"] is not None:
        figures["(repeatability)"] = validation["repeatability"]
    if args.json:
        _print_json({"table": str(path), "validation": str(validation_path), "predictors": validation["predictors"],
                     "repeatability": validation["repeatability"]})
        return 0
    print(f"validation: {validation_path}")
    print(f"{'predictor':18s} {'n':>4s} {'<=5%':>6s} {'<=10%':>6s} {'MAPE%':>6s} {'p95%':>6s} {'bias%':>6s} {'tau':>6s} {'rho':>6s}")
    for name, f in figures.items():
        print(f"{name:18s} {f['n']:4d} {100 * f['within_5pct']:6.1f} {100 * f['within_10pct']:6.1f} {f['mape_pct']:6.2f} "
              f"{f['p95_abs_error_pct']:6.2f} {f['bias_pct']:6.2f} {f['kendall_tau']:6.3f} {f['spearman_rho']:6.3f}")
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from nasbench.hardware.cost_model import CostModel
    from nasbench.hardware.profiler import measure_on_table_device
    from nasbench.hardware.table import CostTable
    from nasbench.spaces import space_for_table

    table = CostTable.load(args.table)
    space = space_for_table(table)
    genotype = _resolve_arch(args.genotype, space)
    result: dict[str, Any] = {"genotype": args.genotype, "table": str(args.table), "network": table.network}
    for metric in ("params", "flops", "mac_elements", "mac_bytes"):
        result[metric] = int(CostModel(table, space, metric).cost(genotype))
    latency = CostModel(table, space, "latency_ms") if table.measured else None
    if latency is not None:
        result["latency_ms_predicted"] = latency.cost(genotype)
        result["latency_conditions"] = {k: table.conditions[k] for k in ("device", "backend", "threads", "batch_size")}
    if args.measure:
        measured = measure_on_table_device(space, genotype, table)
        result["latency_ms_measured_p50"] = measured.p50_ms
        result["latency_ms_measured_p10_p90"] = [measured.p10_ms, measured.p90_ms]
        result["prediction_error_pct"] = 100 * (result["latency_ms_predicted"] - measured.p50_ms) / measured.p50_ms
    if args.json:
        _print_json(result)
        return 0
    print(f"{args.genotype} in the {table.space} network of {space.describe_network(table.network_config)}:")
    print(f"  params {result['params'] / 1e6:.3f}M, FLOPs {result['flops'] / 1e6:.1f}M (1 multiply-add = 1 FLOP), "
          f"MAC {result['mac_bytes'] / 2**20:.2f} MiB ({result['mac_elements']} elements)")
    if latency is not None:
        c = table.conditions
        print(f"  latency predicted {result['latency_ms_predicted']:.3f} ms ({c['backend']}, {c['threads']} thread(s), "
              f"batch {c['batch_size']}, {c['device']})")
    if args.measure:
        print(f"  latency measured  {result['latency_ms_measured_p50']:.3f} ms (p50; p10-p90 "
              f"{measured.p10_ms:.3f}-{measured.p90_ms:.3f}); prediction error {result['prediction_error_pct']:+.1f}%")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    return {"search-step": _bench_search_step, "candidates": _bench_candidates}[args.benchmark](args)


def _bench_candidates(args: argparse.Namespace) -> int:
    from nasbench.bench import bench_candidates
    from nasbench.data import load_dataset
    from nasbench.protocol import load_protocol
    from nasbench.provenance import resolve_device
    from nasbench.spaces import get_space

    protocol = load_protocol(args.protocol)
    space = get_space(args.space, protocol)
    result = bench_candidates(space, protocol, load_dataset(args.data, args.data_dir), candidates=args.candidates,
                              workers=args.workers, device=resolve_device(args.device))
    if args.json:
        _print_json(result)
        return 0
    print(f"{result['candidates']} candidates of the {result['space']} space, {result['protocol']} candidate stage "
          f"({result['epochs']} epochs), {result['workers']} at once, {result['device']} "
          f"({result['threads_per_worker']} thread(s) each): {result['seconds']:.1f} s, "
          f"{result['seconds_per_candidate']:.1f} s per candidate (their own training times sum to {result['candidate_seconds_sum']:.1f} s; {result['failed']} failed)")
    return 0


def _bench_search_step(args: argparse.Namespace) -> int:
    from nasbench.bench import bench_pt_darts_step, bench_search_step
    from nasbench.provenance import resolve_device
    from nasbench.protocol import load_protocol
    from nasbench.spaces import get_space
    from nasbench.spaces.base import NetworkConfig

    space = get_space(args.space, load_protocol(args.layout_protocol)) if args.space != "cell" else get_space("cell")
    size = dict(batch_size=args.batch_size, cells=args.cells, channels=args.channels,
                device=resolve_device(args.device), repeats=args.repeats)
    if args.pt_darts is None:
        result = bench_search_step(args.method, space=space, **size)
    elif space.name != "cell":
        raise NasbenchError("--pt-darts times pt.darts' cell supernet: leave --space at cell")
    else:
        result = bench_pt_darts_step(args.pt_darts, args.method, **size)
    if args.json:
        _print_json(result)
        return 0
    size = (f"{result['cells']} cells, {result['channels']} channels" if result["space"] == "cell"
            else f"the {result['space']} layout of {args.layout_protocol} "
                 f"({space.describe_network(NetworkConfig(args.channels, args.cells))})")
    print(f"{result['method']} search step, batch {result['batch_size']}, {size}, {result['device']} "
          f"({result['threads']} thread(s)): "
          f"median {1e3 * result['median_s']:.1f} ms over {result['repeats']} steps "
          f"(min {1e3 * result['min_s']:.1f}, max {1e3 * result['max_s']:.1f}); "
          f"peak memory {result['peak_memory_bytes'] / 2**20:.1f} MiB ({result['peak_memory_measure']}"
          f"{_memory_before(result['memory_before_bytes'])})")
    return 0


def _memory_before(value: int | None) -> str:
    return "" if value is None else f"; {value / 2**20:.1f} MiB before the first step"


def cmd_rank(args: argparse.Namespace) -> int:
    from nasbench.data import load_dataset
    from nasbench.protocol import load_protocol
    from nasbench.provenance import resolve_device
    from nasbench.ranking import RankRequest, check_ranking, rank

    check_ranking(args.supernet, args.samples)
    protocol = load_protocol(args.protocol)
    request = RankRequest(method=args.supernet, samples=args.samples, protocol=protocol,
                          seed=protocol.seeds[0] if args.seed is None else args.seed,
                          dataset=load_dataset(args.data, args.data_dir), device=resolve_device(args.device),
                          store_path=args.store, show_progress=not args.no_progress)
    record = rank(request)
    if args.json:
        _print_json(record)
        return 0

    def figure(value: float | None) -> str:
        return "undefined (one side scores all alike)" if value is None else f"{value:.3f}"

    note = " (stored earlier)" if record["cached"] else ""
    print(f"{record['method']} supernet, seed {record['seed']}, protocol {record['protocol']} "
          f"({record['protocol_hash']}), {record['samples']} architectures: "
          f"Kendall tau {figure(record['kendall_tau'])}, Spearman rho {figure(record['spearman_rho'])}, "
          f"top-{record['top_k']} overlap {record['top_k_overlap']:.3f}; supernet {record['supernet']}; "
          f"{record['seconds']:.0f}s{note}")
    print(f"stored in {args.store} (ranking {record['ranking_id']}); `nasbench report --store {args.store}` "
          "shows it", file=sys.stderr)
    return 0


COMMANDS = {"run": cmd_run, "rank": cmd_rank, "list": cmd_list, "describe": cmd_describe, "report": cmd_report,
            "profile": cmd_profile, "cost": cmd_cost, "bench": cmd_bench}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    # Subnormal floats (below 1.2e-38) are flushed to zero on the CPU: a low-temperature
    # Gumbel-softmax (SNAS) weighs operations by them, and arithmetic on them made a SNAS
    # search step 3.8x slower (nasbench bench search-step --method snas: 14.4 s, 3.8 s flushed).
    torch.set_flush_denormal(True)
    try:
        return COMMANDS[args.command](args)
    except NasbenchError as err:
        print(f"nasbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
