"""``nasbench run``: search with methods and final-train what they find."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nasbench.cli.args import (
    add_data,
    add_device,
    add_executor,
    add_protocol,
    add_store,
    check_executor_options,
    finite,
    load_checked_protocol,
    names,
    print_json,
    seeds,
    task_resources,
)
from nasbench.errors import NasbenchError

EXIT_FAILED = 1
"""A run failed (its row holds the error); the others went on."""
EXIT_HELD = 3
"""No run failed, but another live process holds some of them: run again once it is done."""


def register(commands: Any) -> None:
    from nasbench.hardware import CONSTRAINT_METRICS, LOSS_FORMS

    run = commands.add_parser("run", help="search with methods and final-train what they find",
                              epilog="exit status: 0 every run stored; 1 a run failed (its row holds the error, the "
                                     "others went on); 2 bad input (nothing written); 3 another process is doing some "
                                     "of the runs (each claimed in the store; run again once it is done); 130 "
                                     "interrupted (the same command resumes)")
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every registered method")
    which.add_argument("--method", type=names, metavar="NAME[,NAME...]", help="methods to run (see `nasbench list methods`)")
    add_protocol(run)
    run.add_argument("--seeds", type=seeds, metavar="0,1,2", help="seeds to run (default: the protocol's)")
    add_data(run)
    add_device(run)
    add_store(run)
    run.add_argument("--space", help="the space every method searches (default: each method's first; "
                                     "`nasbench list methods` shows them)")
    add_executor(run, cluster=True)
    run.add_argument("--ptb-stand-in", action="store_true",
                     help="language-model spaces only: the --data folder lacks ptb.train.txt, so train on 80%% of the "
                          "validation text and validate on the rest (perplexities not comparable with published ones)")
    run.add_argument("--compile", action="store_true",
                     help="torch.compile the final and candidate training's forward (compiles once per network, "
                          "seconds to minutes; not part of a run's identity; `nasbench bench final-training "
                          "--compile` measures whether it pays here)")
    run.add_argument("--force", action="store_true", help="run again even if the store has the run finished")
    run.add_argument("--no-keep-weights", action="store_true",
                     help="do not store the final networks' trained weights (by default kept, for `nasbench export`)")
    run.add_argument("--json", action="store_true", help="print one JSON object per (method, seed)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-estimate", action="store_true",
                     help="start at once, without first measuring this machine to say how long the runs will take")
    constraint = run.add_argument_group("resource constraint (methods that accept one, e.g. snas; stored as its own run)")
    constraint.add_argument("--constraint", metavar="METRIC", help=f"one of {', '.join(CONSTRAINT_METRICS)}")
    constraint.add_argument("--target", type=finite, help="the budget, in the metric's unit (ms for latency; counts "
                                                         "otherwise); none with snas' per-edge-log form")
    constraint.add_argument("--table", type=Path, help="cost table of the run's protocol (cost_tables/...json); needed "
                                                       "for latency, else the protocol's counts are used")
    constraint.add_argument("--constraint-weight", type=finite, metavar="LAMBDA",
                            help="strength of the penalty (default: the method's published one, where it has one)")
    constraint.add_argument("--snas-setting", metavar="NAME", help="SNAS' named strength of its per-edge-log form "
                                                                   "(mild: 1e-2) instead of --constraint-weight")
    constraint.add_argument("--constraint-form", metavar="FORM", choices=LOSS_FORMS,
                            help="how the expected cost enters the loss: per-edge-log (snas' own, no target), hinge "
                                 "(snas), mul-log-hinge (fbnet), mul-log (proxylessnas, fbnet), add-linear "
                                 "(proxylessnas); default: the method's first")


def execute(args: argparse.Namespace) -> int:
    from nasbench.hardware.constraint_options import settle_constraint
    from nasbench.spaces import SPACES, get_space, space_task
    from nasbench.store import check_store_path
    from nasbench.strategies import STRATEGIES, method_space

    # every option, the protocol, the constraint's table and image data first, from the methods'
    # cards (read from their source): their errors need neither torch nor any method's code
    methods = tuple(STRATEGIES) if args.all else args.method
    if not methods:
        raise NasbenchError("--method needs at least one method name")
    for name in methods:
        STRATEGIES.check(name)
    if args.space is not None:
        SPACES.check(args.space)
    cards = STRATEGIES.cards()
    space_names = [method_space(name, cards[name]["spaces"], args.space) for name in methods]
    check_executor_options(args)
    check_store_path(args.store, write=True)
    protocol = load_checked_protocol(args.protocol)
    settled = settle_constraint(args.constraint, args.target, table=args.table, weight=args.constraint_weight,
                                setting=args.snas_setting, form=args.constraint_form,
                                methods=[cards[name] for name in methods], spaces=space_names, protocol=protocol,
                                cards=cards)
    costed = None if settled is None else get_space(settled.space, protocol)
    if settled is not None and settled.table is not None:
        settled.table.check_fits(costed)  # the space's description: its parts need no torch
    tasks = {space_task(name) for name in space_names}
    if args.ptb_stand_in and tasks != {"language-model"}:
        raise NasbenchError("--ptb-stand-in is for language-model spaces (--space enas-rnn or nasrl-rnn)")
    dataset = None
    if "language-model" not in tasks:
        from nasbench.images import check_fits, load_dataset

        dataset = load_dataset(args.data, args.data_dir)
        check_fits(dataset, protocol.data)

    from nasbench.corpus import load_corpus
    from nasbench.hardware.constraint import constraint_for
    from nasbench.provenance import resolve_device
    from nasbench.runner import RunRequest
    from nasbench.runner import execute as execute_run

    constraint = None if settled is None else constraint_for(settled, costed, protocol)
    device = resolve_device(args.device)
    resources = task_resources(args, device)
    if dataset is None:
        dataset = load_corpus(args.data, args.data_dir, stand_in=args.ptb_stand_in)
    request = RunRequest(methods=methods, protocol=protocol, seeds=args.seeds or protocol.seeds, dataset=dataset,
                         device=device, store_path=args.store, force=args.force, show_progress=not args.no_progress,
                         constraint=constraint, space=args.space, workers=args.workers,
                         keep_weights=not args.no_keep_weights, executor=args.executor, address=args.address,
                         resources=resources, compile=args.compile)

    def emit(record: dict[str, Any]) -> None:
        if args.json:
            print_json(record)
        elif record.get("status") == "failed":
            print(f"{record['method']} seed {record['seed']}: FAILED: {record['error']}", flush=True)
        elif record.get("status") == "held":
            print(f"{record['method']} seed {record['seed']}: left to {record['holder']}", flush=True)
        else:
            note = " (stored earlier; --force to rerun)" if record.get("cached") else ""
            print(f"{record['method']} seed {record['seed']}: {_metrics(record)}, params {record['params'] / 1e6:.3f}M, "
                  f"{_flops(record)}, search {record['search_seconds']:.0f}s, final training "
                  f"{record['eval_seconds']:.0f}s{_constraint_note(record)}{note}", flush=True)

    def say(text: str) -> None:
        print(f"nasbench: {text}", file=sys.stderr, flush=True)

    def plan(runs: list[tuple[str, int]]) -> dict[str, tuple[float, float]] | None:
        """Measure this machine and say how long ``runs`` will take (skipped by --no-estimate)."""
        if args.no_estimate:
            return None
        if tasks == {"language-model"}:
            say("no time estimate for language-model runs yet: starting at once")
            return None
        from nasbench.estimate import estimate_runs

        say(f"measuring this machine to estimate {len(runs)} run(s) (--no-estimate skips this)")
        estimate = estimate_runs(runs, protocol, device, space=args.space)
        first, *table = estimate.lines()
        say(first)
        print("\n".join(table), file=sys.stderr, flush=True)
        return estimate.stages()

    tally = execute_run(request, emit, say=say, plan=plan)
    if not args.json:
        print(f"stored in {args.store}; `nasbench report --store {args.store}` regenerates the tables", file=sys.stderr)
    return EXIT_FAILED if tally.failed else EXIT_HELD if tally.held else 0


def _metrics(record: dict[str, Any]) -> str:
    """Test and search-validation metric: accuracy, or a language model's perplexity."""
    if "test_perplexity" in record:
        val = "–" if record["val_perplexity"] is None else f"{record['val_perplexity']:.1f}"
        return f"test perplexity {record['test_perplexity']:.2f}, search-val perplexity {val}"
    val = "–" if record["val_acc"] is None else f"{100 * record['val_acc']:.1f}%"
    return f"test acc {100 * record['test_acc']:.2f}%, search-val acc {val}"


def _flops(record: dict[str, Any]) -> str:
    per_word = " per word" if "test_perplexity" in record else ""
    return f"FLOPs{per_word} {record['flops'] / 1e6:.1f}M"


def _constraint_note(record: dict[str, Any]) -> str:
    """The exact costs the run's architecture achieves in every metric its penalty read (SNAS'
    ``resources``: params, FLOPs and MAC), and its target where it has one."""
    constraint = record.get("details", {}).get("constraint")
    if constraint is None:
        return ""
    costs = constraint.get("costs") or {constraint["metric"]: constraint["achieved"]}
    target = "" if constraint["target"] is None else f" (target {constraint['target']:g})"
    return ", " + ", ".join(f"{metric} {value:g}" for metric, value in costs.items()) + target
