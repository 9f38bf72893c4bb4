"""``nasbench list``: methods, spaces, protocols or genotypes."""
from __future__ import annotations

import argparse
from typing import Any

from nasbench.cli.args import add_protocol, load_checked_protocol, millions, print_json


def register(commands: Any) -> None:
    listing = commands.add_parser("list", help="list methods, spaces, protocols or genotypes")
    listing.add_argument("what", choices=("methods", "spaces", "protocols", "genotypes"))
    add_protocol(listing, "for genotypes: the protocol whose final network is counted")
    listing.add_argument("--json", action="store_true")


def execute(args: argparse.Namespace) -> int:
    from nasbench.hardware.counting import arch_summary
    from nasbench.protocol import builtin_protocols, load_protocol
    from nasbench.spaces import SPACES, get_space
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
        space, protocol = get_space("cell"), load_checked_protocol(args.protocol)
        rows = [arch_summary(entry.name, entry.arch, space, protocol, entry) for entry in space.zoo().values()]
        text = [f"{'name':26s} {'params (M)':>10s} {'published (M)':>13s} {'FLOPs (M, MAC=1)':>17s}  "
                f"[final network of protocol {args.protocol}]"]
        text += [f"{r['name']:26s} {r['params'] / 1e6:10.3f} {millions(r['published_params_m']):>13s} "
                 f"{r['flops'] / 1e6:17.1f}  {_zoo_check(r)}" for r in rows]
    if args.json:
        print_json(rows)
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
