"""``nasbench list``: methods, spaces, protocols or genotypes."""
from __future__ import annotations

import argparse
from typing import Any

from nasbench.cli.args import (
    add_protocol,
    add_store,
    load_checked_protocol,
    millions,
    print_json,
)


def register(commands: Any) -> None:
    listing = commands.add_parser("list", help="list methods, spaces, protocols, genotypes or a store's runs")
    listing.add_argument("what", choices=("methods", "spaces", "protocols", "genotypes", "runs"))
    add_protocol(listing, "for genotypes: the protocol whose final network is counted")
    add_store(listing, "for runs: the results database whose runs are listed")
    listing.add_argument("--json", action="store_true", help="one JSON list instead of text")


def execute(args: argparse.Namespace) -> int:
    if args.what == "runs":
        rows = _runs(args.store)
        text = [f"{'id':>4s}  {'method':14s} {'seed':>4s}  {'status':11s} {'protocol':8s} variant / state"]
        text += [f"{r['run_id']:4d}  {r['method']:14s} {r['seed']:4d}  {r['status']:11s} {r['protocol']:8s} "
                 f"{'; '.join(filter(None, (r['variant'], r['state'])))}" for r in rows]
        print_json(rows) if args.json else print("\n".join(text))
        return 0
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


def _runs(path: Any) -> list[dict[str, Any]]:
    """Every run of the store with what it is doing: a ``running`` run whose claim no live
    process holds is ``stale`` (killed; the same command resumes it)."""
    from contextlib import closing

    from nasbench.store import RunKey, Store

    with closing(Store(path, readonly=True)) as store:
        holders, rows = store.holders(), store.all_runs()
    keys = [RunKey(row["method"], row["seed"], row["protocol_hash"], row["data"], row["variant"]) for row in rows]
    finished = {key: row["id"] for key, row in zip(keys, rows) if row["status"] == "finished"}
    listed = []
    for key, row in zip(keys, rows):
        holder, status, state = holders.get(key.claim_id()), row["status"], row["error"] or ""
        if status == "running":
            alive = holder is not None and not holder.stale
            status = "running" if alive else "stale"
            state = (f"by {holder.describe()}" if alive else
                     f"its process is gone; run {finished[key]} finished the same run" if finished.get(key, 0) > row["id"]
                     else "its process is gone; the same command resumes it")
        listed.append({"run_id": row["id"], "method": row["method"], "seed": row["seed"], "protocol": row["protocol"],
                       "variant": row["variant"], "status": status, "state": state})
    return listed
