"""``nasbench rank``: how well a method's trained supernet ranks random architectures
against training them alone."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from nasbench.cli.args import (
    add_data,
    add_device,
    add_protocol,
    add_store,
    integer,
    load_checked_protocol,
    print_json,
    seed,
)


def register(commands: Any) -> None:
    ranking = commands.add_parser("rank", help="how well a method's trained supernet ranks random architectures "
                                               "against training them alone")
    ranking.add_argument("--supernet", required=True, metavar="METHOD", help="a supernet method, e.g. random-ws, darts")
    ranking.add_argument("--samples", required=True, type=samples, metavar="K", help="random architectures (>= 2)")
    add_protocol(ranking)
    ranking.add_argument("--seed", type=seed, help="seed of the supernet and the architectures "
                                                      "(default: the protocol's first)")
    add_data(ranking)
    add_device(ranking)
    add_store(ranking)
    ranking.add_argument("--json", action="store_true", help="print the ranking with every pair as JSON")
    ranking.add_argument("--no-progress", action="store_true", help="no progress bars")


def samples(text: str) -> int:
    """``--samples``: a ranking orders at least two architectures."""
    value = integer(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (a ranking orders architectures), got {value}")
    return value


def execute(args: argparse.Namespace) -> int:
    from nasbench.images import load_dataset
    from nasbench.store import check_store_path
    from nasbench.strategies import check_supernet_method

    # names, the store and the data first: their errors need no torch
    check_supernet_method(args.supernet, "--supernet")
    protocol = load_checked_protocol(args.protocol)
    check_store_path(args.store, write=True)
    dataset = load_dataset(args.data, args.data_dir)

    from nasbench.provenance import resolve_device
    from nasbench.ranking import RankRequest, rank

    device = resolve_device(args.device)
    request = RankRequest(method=args.supernet, samples=args.samples, protocol=protocol,
                          seed=protocol.seeds[0] if args.seed is None else args.seed,
                          dataset=dataset, device=device,
                          store_path=args.store, show_progress=not args.no_progress)
    record = rank(request)
    if args.json:
        print_json(record)
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
