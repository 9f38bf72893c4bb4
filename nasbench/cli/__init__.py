"""The ``nasbench`` command line: run, rank, list, describe, report, profile, cost, bench.

Each command is a module of this package holding its parsing and printing only: its
``register`` adds its sub-parser, its ``execute`` runs it. Bad input ends with one line on
stderr (``nasbench: error: ...``) and exit status 2, before the store is opened for
writing, so stored results are never touched by it.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from nasbench.cli import bench, cost, describe, listing, profile, rank, report, run
from nasbench.cli.args import Parser
from nasbench.errors import NasbenchError

COMMANDS = {"run": run, "list": listing, "describe": describe, "report": report, "profile": profile, "cost": cost,
            "rank": rank, "bench": bench}
"""Each command's module, in the order ``nasbench --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nasbench", description="Benchmark NAS methods under one shared protocol.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version or a bad option (one line, exit 2): as a status, not an exception
        return int(stop.code or 0)
    from nasbench.numerics import configure_numerics

    configure_numerics()
    try:
        return COMMANDS[args.command].execute(args)
    except NasbenchError as err:
        print(f"nasbench: error: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("nasbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
