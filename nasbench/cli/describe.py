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
    describe.add_argument("--space", help="the space of a zoo name or a bare architecture file (default: a record "
                                          "file's space, else cell); enas-rnn and nasrl-rnn are counted as PTB language "
                                          "models (10,000 words)")
    describe.add_argument("--json", action="store_true",
                          help="print the summary as one JSON object per line (which describe and cost read back "
                               "as a genotype file)")


def execute(args: argparse.Namespace) -> int:
    from nasbench.spaces import SPACES, get_space
    from nasbench.spaces.resolve import record_space, resolve_arch

    space_name = args.space or record_space(args.genotype)
    SPACES.check(space_name)
    protocol = load_checked_protocol(args.protocol)
    space = get_space(space_name, protocol)
    genotype, entry = resolve_arch(args.genotype, space)  # a space's description: no torch yet

    from nasbench.hardware.counting import arch_summary
    from nasbench.language_model import language_model_summary

    summarise = language_model_summary if space.task == "language-model" else arch_summary
    summary = {"space": space.name} | summarise(args.genotype, genotype, space, protocol, entry)
    if args.json:
        print_json(summary)
        return 0
    print(genotype)
    if space.task == "language-model":
        print(f"final language model of protocol {summary['protocol']} ({summary['hidden_size']} hidden units, "
              f"{summary['vocab_size']} words): {summary['params'] / 1e6:.3f}M params, "
              f"{summary['flops'] / 1e6:.2f}M FLOPs per word (1 multiply-add = 1 FLOP)")
    else:
        print(f"final network of protocol {summary['protocol']} ({summary['channels']} channels, {summary['cells']} "
              f"cells): {summary['params'] / 1e6:.3f}M params (auxiliary head excluded), "
              f"{summary['flops'] / 1e6:.1f}M FLOPs (1 multiply-add = 1 FLOP)")
    if entry is not None:
        print(f"published: {millions(entry.published_params_m)}M params; source: {entry.source}")
        if entry.params_note:
            print(f"why the counts differ: {entry.params_note}")
    return 0
