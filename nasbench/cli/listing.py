"""``nasbench list``: methods, spaces, protocols or genotypes."""
from __future__ import annotations

import argparse
from typing import Any

from nasbench.cli.args import (
    add_store,
    load_checked_protocol,
    millions,
    print_json,
)

PAPERS_PROTOCOL = "full"
"""The protocol whose final network is the papers' (DARTS' 20-cell, 36-channel CIFAR-10
network): the one the published parameter counts of ``list genotypes`` are comparable with."""


def register(commands: Any) -> None:
    listing = commands.add_parser("list", help="list methods, spaces, protocols, genotypes or a store's runs")
    listing.add_argument("what", choices=("methods", "spaces", "protocols", "genotypes", "runs"))
    listing.add_argument("--protocol", default=PAPERS_PROTOCOL,
                         help=f"for genotypes: the protocol whose final network is counted (default: {PAPERS_PROTOCOL}, "
                              "the papers' network, which the published counts are for)")
    add_store(listing, "for runs: the results database whose runs are listed")
    listing.add_argument("--json", action="store_true", help="print the list as one JSON array instead of text")


def execute(args: argparse.Namespace) -> int:
    if args.what == "methods":
        from nasbench.strategies import STRATEGIES

        rows = [{"name": c["name"], "strategy": c["strategy_class"], "spaces": list(c["spaces"]), "summary": c["summary"]}
                for c in STRATEGIES.cards().values()]
        text = _columns(["method", "strategy", "spaces", "summary"],
                        [[r["name"], r["strategy"], ",".join(r["spaces"]), r["summary"]] for r in rows])
    elif args.what == "spaces":
        from nasbench.spaces import SPACES

        rows = [{"name": c["name"], "description": c["description"]} for c in SPACES.cards().values()]
        text = _columns(["space", "description"], [[r["name"], r["description"]] for r in rows])
    elif args.what == "protocols":
        from nasbench.protocol import builtin_protocols, load_protocol

        rows = [{"name": p.name, "hash": p.hash, "description": p.description}
                for p in map(load_protocol, builtin_protocols())]
        text = _columns(["protocol", "hash", "description"], [[r["name"], r["hash"], r["description"]] for r in rows])
    elif args.what == "runs":
        rows = _runs(args.store)
        text = _columns(["id", "method", "seed", "status", "protocol", "variant / state"],
                        [[str(r["run_id"]), r["method"], str(r["seed"]), r["status"], r["protocol"],
                          "; ".join(filter(None, (r["variant"], r["state"])))] for r in rows])
    else:
        rows, text = _genotypes(args.protocol)
    print_json(rows) if args.json else print("\n".join(text))
    return 0


def _columns(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns as wide as their widest cell (the last one as it comes)."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return [" ".join(f"{cell:{width}s}" for cell, width in zip(row[:-1], widths)) + " " + row[-1]
            for row in [header, *rows]]


def _genotypes(protocol_name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The cell zoo counted in the final network of ``protocol_name``, beside the published counts."""
    protocol = load_checked_protocol(protocol_name)  # before torch: a wrong name answers at once
    from nasbench.hardware.counting import arch_summary
    from nasbench.spaces import get_space

    space = get_space("cell")
    rows = [arch_summary(entry.name, entry.arch, space, protocol, entry) for entry in space.zoo().values()]
    text = [f"{'name':26s} {'params (M)':>10s} {'published (M)':>13s} {'FLOPs (M, MAC=1)':>17s}  "
            f"[final network of protocol {protocol_name}]"]
    text += [f"{r['name']:26s} {r['params'] / 1e6:10.3f} {millions(r['published_params_m']):>13s} "
             f"{r['flops'] / 1e6:17.1f}  {_zoo_check(r, protocol_name)}" for r in rows]
    return rows, text


def _zoo_check(row: dict[str, Any], protocol_name: str) -> str:
    published = row["published_params_m"]
    if published is None:
        return "no published count"
    if round(row["params"] / 1e6, 1) == published:
        return "matches"
    if protocol_name != PAPERS_PROTOCOL:
        return f"not comparable: the published count is for the papers' network (--protocol {PAPERS_PROTOCOL})"
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
