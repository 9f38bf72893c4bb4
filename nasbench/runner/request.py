"""What a ``nasbench run`` asks for, and how its stored runs are named and shown."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasbench.corpus import Corpus
from nasbench.errors import NasbenchError
from nasbench.executor import Resources
from nasbench.hardware.constraint import Constraint
from nasbench.images import Dataset
from nasbench.protocol import Protocol
from nasbench.spaces import space_class


@dataclass(frozen=True)
class RunRequest:
    methods: tuple[str, ...]
    protocol: Protocol
    seeds: tuple[int, ...]
    dataset: Dataset | Corpus
    """Images for image spaces, the corpus for language-model spaces (one task per request)."""
    device: torch.device
    store_path: Path
    force: bool = False
    show_progress: bool = True
    constraint: Constraint | None = None
    """A resource constraint for every method (each must accept one); its runs are stored
    as their own variant."""
    space: str | None = None
    """The space every method searches (each must support it); None: each method's own
    first space. A method on another space than its first is stored as its own variant."""
    workers: int = 1
    """Tasks at once on a local Ray instance (not part of a run's identity: the results do
    not depend on it)."""
    keep_weights: bool = True
    """Store each run's trained final network, so that export and later evaluation need no
    retraining."""
    executor: str | None = None
    """``inprocess`` or ``ray``; None: in-process for one worker, Ray for more."""
    address: str | None = None
    """The Ray cluster to join (``auto`` or HOST:PORT); None: a local instance."""
    resources: Resources | None = None
    """What each task asks for (None: the executor's default)."""
    compile: bool = False
    """torch.compile the final and candidate training (not part of a run's identity, like
    ``workers``: it changes the speed, and the rounding no more than another thread count)."""


def run_variant(cls, space: str, constraint: Constraint | None) -> str:
    """What tells a run apart from the method's default one: another space, a constraint."""
    parts = ([] if space == cls.spaces[0] else [f"space={space}"]) + ([] if constraint is None else [constraint.variant()])
    return ";".join(parts)


def run_record(row: Any) -> dict[str, Any]:
    """The public JSON view of a stored run (what ``nasbench run --json`` prints)."""
    details = json.loads(row["details_json"] or "{}")
    return {
        "run_id": row["id"],
        "method": row["method"],
        "strategy": row["strategy_class"],
        "space": row["space"],
        "protocol": row["protocol"],
        "protocol_hash": row["protocol_hash"],
        "seed": row["seed"],
        "data": row["data"],
        "variant": row["variant"],
        "status": row["status"],
        "genotype": json.loads(row["genotype_json"]) if row["genotype_json"] else None,
        **({"val_perplexity": row["val_perplexity"], "test_perplexity": row["test_perplexity"]}
           if row["test_perplexity"] is not None else {"val_acc": row["val_acc"], "test_acc": row["test_acc"]}),
        "params": row["params"],
        "flops": row["flops"],
        "flops_convention": "fvcore, 1 multiply-add = 1 FLOP" + (", per predicted word" if row["test_perplexity"]
                                                                 is not None else ""),
        "search_seconds": row["search_seconds"],
        "eval_seconds": row["eval_seconds"],
        "device": row["device"],
        "device_fingerprint": row["device_fingerprint"],
        "git_commit": row["git_commit"],
        "error": row["error"],
        **({"details": details} if details else {}),
    }


def check_method_section(cls, row: Any, protocol: Protocol) -> None:
    """Refuse to reuse or resume a stored run made under other settings of the method's
    own protocol section or of its space's layout section (which the protocol hash leaves out)."""
    stored, current = json.loads(row["protocol_json"]), protocol.to_dict()
    own = [f"search.{cls.protocol_section}" if cls.protocol_section else None, space_class(row["space"]).protocol_section]
    for label in filter(None, own):
        old, new = _section_of(stored, label), _section_of(current, label)
        if old != new:
            raise NasbenchError(f"stored run {row['id']} of {cls.name} used [{label}] = {old}, but protocol "
                                f"{protocol.name} now says {new}; use another --store, or --force to replace it")


def _section_of(protocol: dict[str, Any], label: str) -> Any:
    """The ``[<label>]`` table of a protocol as a file holds it (None where it has none)."""
    parent, _, name = label.rpartition(".")
    return (protocol.get(parent, {}) if parent else protocol).get(name)
