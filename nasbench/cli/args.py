"""What the commands share: defaults, argument types and option groups, JSON output."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from nasbench.types import seed_problem

DEFAULT_PROTOCOL = "proxy"
RESULTS_VARIABLE = "NASBENCH_RESULTS"
USER_RESULTS = Path(os.environ.get(RESULTS_VARIABLE) or "nasbench-results")
"""A user's own results: ``./nasbench-results`` (or ``$NASBENCH_RESULTS``), never the project's
reference store and reports (``results/``, ``reports/``), which are written only when named."""
DEFAULT_STORE = USER_RESULTS / "results.sqlite"
DEFAULT_REPORTS = USER_RESULTS / "reports"
DEFAULT_TABLES = Path("cost_tables")


class Parser(argparse.ArgumentParser):
    """argparse with the commands' error convention: one line ``nasbench: error: ...`` on
    stderr and exit status 2 (argparse itself prints its usage first)."""

    def error(self, message: str) -> NoReturn:
        print(f"nasbench: error: {message} (`{self.prog} --help` lists the options)", file=sys.stderr)
        sys.exit(2)


def seeds(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one seed")
    if len(set(values)) < len(values):
        raise argparse.ArgumentTypeError(f"a seed is given twice in {text!r}")
    for value in values:
        _check_seed(value)
    return values


def seed(text: str) -> int:
    value = integer(text)
    _check_seed(value)
    return value


def _check_seed(value: int) -> None:
    problem = seed_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)


def finite(text: str) -> float:
    """A finite number (``inf`` and ``nan`` parse as floats but mean nothing as a budget or weight)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def bounded(minimum: float, *, strict: bool, meaning: str = "", example: str = "") -> Callable[[str], float]:
    """A parser of finite numbers above ``minimum`` (``strict``) or from it; ``meaning`` and
    ``example`` say in the error what the number is."""
    def parse(text: str) -> float:
        value = finite(text)
        if value < minimum or strict and value == minimum:
            raise argparse.ArgumentTypeError(f"must be {meaning}{'>' if strict else '>='} {minimum:g}{example}, "
                                             f"got {text}")
        return value

    return parse


positive_fraction = bounded(0, strict=True)
non_negative_fraction = bounded(0, strict=False)


def non_negative(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_protocol(parser: argparse.ArgumentParser, help_text: str = "a built-in protocol name or a TOML/YAML file") -> None:
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL, help=f"{help_text} (default: {DEFAULT_PROTOCOL})")


def add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="cifar10 (torchvision) or PATH.npz (default: $NASBENCH_DATA, else cifar10)")
    parser.add_argument("--data-dir", type=Path, help="where CIFAR-10 is kept or downloaded (default: ~/.cache/nasbench/data)")


DEVICES = ("auto", "cpu", "cuda")


def device_name(text: str) -> str:
    """A device's name, checked before torch is imported (whether CUDA is there is asked later)."""
    if text not in DEVICES:
        raise argparse.ArgumentTypeError(f"must be {', '.join(DEVICES[:-1])} or {DEVICES[-1]}, got {text!r}")
    return text


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu or cuda (default: auto)")


def add_store(parser: argparse.ArgumentParser, help_text: str = "results database") -> None:
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE,
                        help=f"{help_text} (default: {DEFAULT_STORE}, under ${RESULTS_VARIABLE} if set; the project's "
                             "reference results are results/nasbench.sqlite)")


def print_json(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


def millions(value: float | None) -> str:
    """A count in millions to one decimal, or a dash where there is none."""
    return "–" if value is None else f"{value:.1f}"


def load_checked_protocol(name_or_path: str) -> Any:
    """The protocol ``--protocol`` names, with every method's and space's own section
    checked by its owner: a bad value is the command's one-line error, before any work."""
    from nasbench.protocol import load_protocol

    protocol = load_protocol(name_or_path)  # an unknown name or a malformed file: before any plugin is imported
    from nasbench.strategies import check_protocol

    return check_protocol(protocol)


def add_executor(parser: argparse.ArgumentParser, *, cluster: bool) -> None:
    """Where the work runs (``run``, ``bench candidates``): the executor and what each task
    asks for; ``cluster``: also joining a Ray cluster and GPUs per task."""
    from nasbench.executor import EXECUTORS

    group = parser.add_argument_group("where the work runs (the results do not depend on it, at the same threads "
                                      "per task)")
    group.add_argument("--executor", choices=EXECUTORS, metavar="NAME",
                       help=f"one of {', '.join(EXECUTORS)}: in this process, one task at a time; or Ray tasks "
                            "(default: inprocess, or ray with --workers above 1" + (" or --address)" if cluster else ")"))
    if cluster:
        group.add_argument("--address", metavar="auto|HOST:PORT",
                           help="join a running Ray cluster (auto: the one `ray start` began on this machine); "
                                "without it, --executor ray starts a local instance")
    group.add_argument("--workers", type=positive, default=1, help="tasks at once on a local Ray instance (default: 1)")
    group.add_argument("--cpus-per-task", type=positive_fraction, metavar="N",
                       help="CPUs each task asks Ray for; its torch threads are the whole part (default: this "
                            "machine's cores over --workers" + ("; 1 on a cluster)" if cluster else ")"))
    if cluster:
        group.add_argument("--gpus-per-task", type=non_negative_fraction, metavar="N",
                           help="GPUs each task asks Ray for, fractions allowed (default: 1 with --device cuda, else 0)")


def check_executor_options(args: argparse.Namespace) -> None:
    """:func:`add_executor`'s options checked before torch or Ray is imported (the GPUs a task
    gets by default, which depend on ``--device``, are :func:`task_resources`' to settle)."""
    from nasbench.executor import Resources, check_executor

    gpus = getattr(args, "gpus_per_task", None)
    given = None if args.cpus_per_task is None and gpus is None else Resources(cpus=args.cpus_per_task or 1.0,
                                                                             gpus=gpus or 0.0)
    check_executor(args.executor, workers=args.workers, address=getattr(args, "address", None), resources=given)


def task_resources(args: argparse.Namespace, device: Any) -> Any:
    """What each Ray task asks for, from :func:`add_executor`'s options and ``--device``
    (None where the work stays in this process and none was asked for)."""
    from nasbench.errors import NasbenchError
    from nasbench.executor import Resources

    address, gpus = getattr(args, "address", None), getattr(args, "gpus_per_task", None)
    ray = args.executor == "ray" or args.executor is None and (args.workers > 1 or address is not None)
    if not ray and args.cpus_per_task is None and gpus is None:
        return None
    if gpus is None:
        gpus = 1.0 if ray and device.type == "cuda" else 0.0
    if ray and device.type == "cuda" and gpus == 0:
        raise NasbenchError("--device cuda with --gpus-per-task 0: a task would get no GPU (give it one, or use "
                            "--device cpu)")
    cpus = args.cpus_per_task or (1.0 if address is not None else max(1, (os.cpu_count() or 1) // args.workers))
    return Resources(cpus=cpus, gpus=gpus)

