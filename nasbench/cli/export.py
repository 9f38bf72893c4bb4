"""``nasbench export``: write a found network (a stored run's, or a genotype's) as ONNX."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from nasbench.cli.args import (
    DEFAULT_PROTOCOL,
    add_store,
    load_checked_protocol,
    print_json,
)
from nasbench.errors import NasbenchError

FORMATS = ("onnx",)


def register(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="write a found network (a stored run's, or a genotype's) as ONNX",
        description="Write the final network as the protocol's final stage builds it, for inference (eval mode, "
                    "without the auxiliary head), with the run's trained weights where the store keeps them (`nasbench "
                    "run` keeps them unless --no-keep-weights). A genotype, or a run stored without weights, is "
                    "exported with freshly initialised weights: stderr and the model's metadata say so.")
    export.add_argument("source", metavar="RUN_ID|GENOTYPE",
                        help="a run id of --store (digits only; `nasbench list runs` shows them), or a zoo name, an "
                             "architecture JSON file or a `nasbench describe --json` record")
    export.add_argument("--format", default="onnx", choices=FORMATS, help="the file format (default: onnx)")
    export.add_argument("--out", type=Path, required=True, help="the file to write (replaced whole if it exists)")
    export.add_argument("--protocol",
                        help=f"a GENOTYPE's protocol, whose final stage sizes its network (default: {DEFAULT_PROTOCOL}); "
                             "a RUN_ID is exported under its own stored protocol: one given must agree with it")
    export.add_argument("--space", help="a GENOTYPE's space (default: a record file's own, else cell); for a RUN_ID "
                                        "it must be the run's")
    add_store(export, "results database holding RUN_ID")
    export.add_argument("--json", action="store_true", help="print what was written as one JSON object")


def execute(args: argparse.Namespace) -> int:
    from nasbench.spaces import SPACES, get_space
    from nasbench.spaces.resolve import record_space, resolve_arch
    from nasbench.stored_run import find_stored_run

    # names, paths, the protocol, the stored run or the architecture first: their errors need no torch
    if args.space is not None:
        SPACES.check(args.space)
    check_out_path(args.out)
    protocol = load_checked_protocol(args.protocol) if args.protocol is not None else None
    if args.source.isdecimal():
        found = find_stored_run(args.store, int(args.source), protocol, args.space)
    else:
        protocol = protocol or load_checked_protocol(DEFAULT_PROTOCOL)
        space = get_space(SPACES.check(args.space or record_space(args.source)), protocol)
        arch, _ = resolve_arch(args.source, space)

    from nasbench.export import (
        PARITY_BATCH,
        ExportSource,
        final_network,
        onnx_model,
        parity,
        stored_run,
        write_file,
    )
    from nasbench.hardware.counting import count_params

    source = stored_run(found) if args.source.isdecimal() else ExportSource(args.source, space, arch, protocol)
    if source.weights is None:
        why = ("has no stored final weights (stored before they were kept, or run with --no-keep-weights)"
               if source.run_id is not None else "is an architecture, with no trained weights")
        print(f"nasbench: {source.name} {why}: exporting freshly initialised weights", file=sys.stderr)
    network = final_network(source)
    size = source.space.input_size
    model = onnx_model(source, network)
    difference = parity(model, network, size)
    write_file(args.out, model)
    record = {"out": str(args.out), "format": args.format, "source": source.name, "run_id": source.run_id,
              "space": source.space.name, "protocol": source.protocol.name, "protocol_hash": source.protocol.hash,
              "weights": "untrained" if source.weights is None else "trained", "params": count_params(network),
              "input_shape": ["N", 3, size, size], "parity_max_abs_diff": difference, "parity_batch": PARITY_BATCH}
    if args.json:
        print_json(record)
    else:
        print(f"wrote {args.out}: {source.name}, {source.space.name} space, final network of protocol "
              f"{source.protocol.name} ({source.protocol.hash}), {record['weights']} weights, {record['params']} "
              f"params, input (N, 3, {size}, {size}); onnxruntime's logits within {difference:.1e} of torch's "
              f"(batch of {PARITY_BATCH})")
    return 0


def check_out_path(path: Path) -> None:
    """Refuse an ``--out`` that cannot be written, writing nothing: its nearest existing folder
    must accept a new entry (a folder made there and removed, as for a store)."""
    if path.is_dir():
        raise NasbenchError(f"--out {path} is a directory; give a file path such as {path / 'network.onnx'}")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NasbenchError(f"--out {path} cannot be created: {parent} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".nasbench-probe-", dir=parent))
    except OSError as err:
        raise NasbenchError(f"--out {path} cannot be written: {parent} does not accept new files "
                            f"({err.strerror})") from None
