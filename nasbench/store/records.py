"""What the store is given and keys its rows by: the identity of a run or a ranking, what
starts one (with its provenance) and what it ends with."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasbench.types import Provenance

UNFINISHED = ("running", "interrupted", "failed")
"""The statuses of a run that the same command resumes."""


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
    test_acc: float
    params: int
    flops: int
    details: dict[str, Any]


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
