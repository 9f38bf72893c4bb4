"""The process-wide numeric set-up every entry point shares (the CLI, the API and the tests),
so that they all compute alike."""
from __future__ import annotations

import torch


def configure_numerics() -> None:
    """Set torch's process-wide numerics as nasbench computes: subnormal floats (below
    1.2e-38) are flushed to zero on the CPU."""
    # A low-temperature Gumbel-softmax (SNAS) weighs operations by subnormal floats, and
    # arithmetic on them made a SNAS search step 3.8x slower (nasbench bench search-step
    # --method snas: 14.4 s, 3.8 s flushed).
    torch.set_flush_denormal(True)
