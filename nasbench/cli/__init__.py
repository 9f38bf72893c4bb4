"""The ``nasbench`` command line: run, rank, list, describe, report, profile, cost, bench, export.

Each command is a module of this package holding its parsing and printing only: its
``register`` adds its sub-parser, its ``execute`` runs it. Bad input ends with one line on
stderr (``nasbench: error: ...``) and exit status 2, before the store is opened for
writing, so stored results are never touched by it.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from nasbench.cli import (
    bench,
    cost,
    describe,
    export,
    listing,
    profile,
    rank,
    report,
    run,
)
from nasbench.cli.args import Parser
from nasbench.errors import NasbenchError

COMMANDS = {"run": run, "list": listing, "describe": describe, "report": report, "profile": profile, "cost": cost,
            "rank": rank, "bench": bench, "export": export}
"""Each command's module, in the order ``nasbench --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nasbench", description="Benchmark NAS methods under one shared protocol.",
                    epilog="exit status: 0 done; 1 a run failed (stored with its error); 2 bad input (nothing "
                           "written); 3 another process is doing the work (run again later); 130 interrupted; "
                           "141 the reader of the output went away (e.g. `| head`)")
    parser.add_argument("--version", action=_Version, nargs=0, help="print nasbench's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.register(commands)
    return parser


class _Version(argparse.Action):
    """``--version``, reading the installed version only when asked."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("nasbench")
        except PackageNotFoundError:  # run from a checkout that was never installed
            found = "(not installed)"
        print(f"nasbench {found}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Torch and the plugins are imported by the commands that use them,
    after the input is checked, so that help, lists and errors answer at once."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version or a bad option (one line, exit 2): as a status, not an exception
        return int(stop.code or 0)
    try:
        return COMMANDS[args.command].execute(args)
    except NasbenchError as err:
        print(f"nasbench: error: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("nasbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `nasbench list ... | head`: the reader is gone. Point stdout at /dev/null so that the
        # interpreter's final flush does not fail again, and end as a process killed by SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
