"""``nasbench report``: regenerate the comparison tables from the store."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasbench.cli.args import DEFAULT_REPORTS, DEFAULT_TABLES, add_store, print_json

KINDS = {".md": "markdown"}
"""A written file's kind where it is not its suffix (``csv``, ``png``)."""


def register(commands: Any) -> None:
    report = commands.add_parser("report", help="regenerate the comparison tables, figures, drawings and the web "
                                                "report (site/index.html) from the store")
    add_store(report)
    report.add_argument("--out", type=Path, default=DEFAULT_REPORTS, help=f"output folder (default: {DEFAULT_REPORTS})")
    report.add_argument("--tables", type=Path, default=DEFAULT_TABLES,
                        help=f"cost tables to summarise (default: {DEFAULT_TABLES})")
    report.add_argument("--json", action="store_true",
                        help='print one JSON object per line, one per written file: {"path": ..., "kind": "markdown", '
                             '"csv", "png", "svg" (a drawn architecture) or "html" (the web report under site/)}')


def execute(args: argparse.Namespace) -> int:
    from nasbench.store import check_store_path

    check_store_path(args.store, write=False)  # before the report's imports (torch): a wrong path answers at once
    from nasbench.report import generate

    for path in generate(args.store, args.out, args.tables):
        if args.json:
            print_json({"path": str(path), "kind": KINDS.get(path.suffix, path.suffix.lstrip("."))})
        else:
            print(path)
    return 0
