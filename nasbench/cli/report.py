"""``nasbench report``: regenerate the comparison tables from the store."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench.cli.args import DEFAULT_REPORTS, DEFAULT_TABLES, add_store


def register(commands: Any) -> None:
    report = commands.add_parser("report", help="regenerate the comparison tables from the store")
    add_store(report)
    report.add_argument("--out", type=Path, default=DEFAULT_REPORTS, help=f"output folder (default: {DEFAULT_REPORTS})")
    report.add_argument("--tables", type=Path, default=DEFAULT_TABLES,
                        help=f"cost tables to summarise (default: {DEFAULT_TABLES})")


def execute(args: argparse.Namespace) -> int:
    from nasbench.report import generate

    for path in generate(args.store, args.out, args.tables):
        print(path)
    return 0
