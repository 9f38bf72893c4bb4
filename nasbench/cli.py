"""The ``nasbench`` command line: run, list, describe, report.

Bad input ends with one line on stderr (``nasbench: error: ...``) and exit status 2,
before the store is opened for writing, so stored results are never touched by it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from nasbench.errors import NasbenchError

DEFAULT_PROTOCOL = "proxy"
DEFAULT_STORE = Path("results/nasbench.sqlite")
DEFAULT_REPORTS = Path("reports")


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
    run.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    _add_store(run)
    run.add_argument("--force", action="store_true", help="run again even if the store has the run finished")
    run.add_argument("--json", action="store_true", help="print one JSON object per (method, seed)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

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
    return parser


def _add_protocol(parser: argparse.ArgumentParser, help_text: str = "a built-in protocol name or a TOML/YAML file") -> None:
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL, help=f"{help_text} (default: {DEFAULT_PROTOCOL})")


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="cifar10 (torchvision) or PATH.npz (default: $NASBENCH_DATA, else cifar10)")
    parser.add_argument("--data-dir", type=Path, help="where CIFAR-10 is kept or downloaded (default: ~/.cache/nasbench/data)")


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results database (default: {DEFAULT_STORE})")


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from nasbench.data import load_dataset
    from nasbench.protocol import load_protocol
    from nasbench.provenance import resolve_device
    from nasbench.runner import RunRequest, execute
    from nasbench.strategies import STRATEGIES, get_strategy

    methods = tuple(STRATEGIES) if args.all else args.method
    if not methods:
        raise NasbenchError("--method needs at least one method name")
    for name in methods:
        get_strategy(name)
    protocol = load_protocol(args.protocol)
    device = resolve_device(args.device)
    dataset = load_dataset(args.data, args.data_dir)
    request = RunRequest(methods=methods, protocol=protocol, seeds=args.seeds or protocol.seeds, dataset=dataset,
                         device=device, store_path=args.store, force=args.force, show_progress=not args.no_progress)

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
                  f"search {record['search_seconds']:.0f}s, final training {record['eval_seconds']:.0f}s{note}", flush=True)

    failures = execute(request, emit)
    if not args.json:
        print(f"stored in {args.store}; `nasbench report --store {args.store}` regenerates the tables", file=sys.stderr)
    return 1 if failures else 0


def cmd_list(args: argparse.Namespace) -> int:
    from nasbench.protocol import builtin_protocols, load_protocol
    from nasbench.spaces import SPACES
    from nasbench.strategies import STRATEGIES

    if args.what == "methods":
        rows = [{"name": c.name, "strategy": c.strategy_class, "spaces": list(c.spaces), "summary": c.summary}
                for c in STRATEGIES.values()]
        text = [f"{r['name']:14s} {r['strategy']:5s} {r['summary']}" for r in rows]
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


def cmd_describe(args: argparse.Namespace) -> int:
    from nasbench.errors import UnknownNameError
    from nasbench.protocol import load_protocol
    from nasbench.spaces.cell.genotype import Genotype

    zoo = _cell_space().zoo()
    if args.genotype in zoo:
        entry = zoo[args.genotype]
        genotype = entry.arch
    elif args.genotype.endswith(".json"):
        entry, genotype = None, Genotype.from_file(Path(args.genotype))
    else:
        raise UnknownNameError("genotype", args.genotype, list(zoo) + ["<file>.json"])
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

    for path in generate(args.store, args.out):
        print(path)
    return 0


COMMANDS = {"run": cmd_run, "list": cmd_list, "describe": cmd_describe, "report": cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except NasbenchError as err:
        print(f"nasbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
