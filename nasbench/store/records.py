"""What the store is given and keys its rows by: the identity of a run or a ranking, what
starts one (with its provenance) and what it ends with."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nasbench.types import Checkpoint, Provenance

UNFINISHED = ("running", "interrupted", "failed")
"""The statuses of a run that the same command resumes."""
ABANDONED = "its process stopped without a word (killed?); the same command resumes it"
"""The error of a run found ``running`` by the process that takes over its claim."""


@dataclass(frozen=True)
class SharedStage:
    """A run's completed shared stage (``Strategy.shared_stage``): the run that computed it,
    the search seconds it took, and its checkpoint."""

    run_id: int
    seconds: float
    checkpoint: Checkpoint


def shared_stage_key(stage: str, space: str, protocol_hash: str, data: str, seed: int) -> str:
    """What makes two runs' shared stages the same computation."""
    return json.dumps([stage, space, protocol_hash, data, seed])


@dataclass(frozen=True)
class RunKey:
    """What makes two runs the same experiment."""

    method: str
    seed: int
    protocol_hash: str
    data: str
    variant: str = ""
    """Run parameters outside the protocol that change the search, e.g. a resource
    constraint; empty for the plain run."""

    def values(self) -> tuple[str, int, str, str, str]:
        return self.method, self.seed, self.protocol_hash, self.data, self.variant

    def claim_id(self) -> str:
        """The key as the ``claims`` table names it."""
        return "run:" + json.dumps(self.values())

    def describe(self) -> str:
        variant = f" [{self.variant}]" if self.variant else ""
        return f"{self.method}{variant} seed {self.seed} (protocol {self.protocol_hash}, data {self.data})"


@dataclass(frozen=True)
class RunStart:
    key: RunKey
    strategy_class: str
    space: str
    provenance: Provenance


@dataclass(frozen=True)
class RunOutcome:
    search_seconds: float
    eval_seconds: float
    genotype: dict[str, Any]
    val_acc: float | None
    test_acc: float | None
    """Image networks: top-1 test accuracy; None for a language model."""
    params: int
    flops: int
    """fvcore's count, 1 multiply-add = 1 FLOP: of one 32x32 image, or of one predicted word."""
    details: dict[str, Any]
    val_perplexity: float | None = None
    test_perplexity: float | None = None
    """Language models: the perplexity on the corpus' test split; None for an image network."""


@dataclass(frozen=True)
class RankingKey:
    """What makes two rankings the same experiment."""

    method: str
    seed: int
    protocol_hash: str
    data: str
    samples: int

    def values(self) -> tuple[str, int, str, str, int]:
        return self.method, self.seed, self.protocol_hash, self.data, self.samples

    def claim_id(self) -> str:
        return "ranking:" + json.dumps(self.values())

    def describe(self) -> str:
        return f"the {self.method} ranking of {self.samples} architectures, seed {self.seed} (protocol " \
               f"{self.protocol_hash}, data {self.data})"


TOP_FRACTION = 4
"""k of a ranking's top-k overlap is K // TOP_FRACTION (at least 1): the best quarter."""


@dataclass(frozen=True)
class RankingStart:
    key: RankingKey
    top_k: int
    provenance: Provenance


@dataclass(frozen=True)
class RankingOutcome:
    seconds: float
    kendall_tau: float | None
    spearman_rho: float | None
    top_k_overlap: float


MEASURES = ("supernet", "standalone")
"""The two accuracies of a ranking's architecture: under the supernet, trained alone."""
