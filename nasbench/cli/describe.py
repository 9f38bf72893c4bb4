"""``nasbench describe``: a genotype and its network's params and FLOPs."""
from __future__ import annotations

import argparse
from typing import Any

from nasbench.cli.args import add_protocol, load_checked_protocol, millions, print_json


def register(commands: Any) -> None:
    describe = commands.add_parser("describe", help="show a genotype and its network's params and FLOPs")
    describe.add_argument("genotype", help="a zoo name (`nasbench list genotypes`), a genotype JSON file or what "
                                           "`nasbench describe --json` printed")
    add_protocol(describe, "the protocol whose final network is built")
    describe.add_argument("--json", action="store_true",
                          help="print the summary as one JSON object per line (which describe and cost read back "
                               "as a genotype file)")


def execute(args: argparse.Namespace) -> int:
    from nasbench.hardware.counting import arch_summary
    from nasbench.spaces import get_space
    from nasbench.spaces.resolve import resolve_arch

    space = get_space("cell")
    genotype, entry = resolve_arch(args.genotype, space)
    summary = {"space": space.name} | arch_summary(args.genotype, genotype, space, load_checked_protocol(args.protocol),
                                                   entry)
    if args.json:
        print_json(summary)
        return 0
    print(genotype)
    print(f"final network of protocol {summary['protocol']} ({summary['channels']} channels, {summary['cells']} cells): "
          f"{summary['params'] / 1e6:.3f}M params (auxiliary head excluded), "
          f"{summary['flops'] / 1e6:.1f}M FLOPs (1 multiply-add = 1 FLOP)")
    if entry is not None:
        print(f"published: {millions(entry.published_params_m)}M params; source: {entry.source}")
        if entry.params_note:
            print(f"why the counts differ: {entry.params_note}")
    return 0
