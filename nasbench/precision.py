"""Mixed precision: the protocol's ``precision`` as autocast and a gradient scaler.

A protocol trains (search and final training) in fp32, bf16 or fp16. Under bf16 and fp16
the forward pass and the loss run under ``torch.autocast`` (convolutions and matrix
products in the low precision, reductions and normalisation in fp32, as autocast decides
per operation); the weights, their gradients and the optimiser state stay fp32. fp16's
5-bit exponent underflows small gradients, so its backward pass goes through a gradient
scaler; bf16 has fp32's exponent and needs none. Every precision steps through the same
code: the scaler is disabled, a no-op, for fp32 and bf16.

torch is imported where it is used: the protocol checks its ``precision`` against
:data:`PRECISIONS`, and commands that only read protocols do not load torch.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, ContextManager

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "bf16", "fp16")
"""What a protocol's ``precision`` may be."""

DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
"""The torch dtype (by name) each low precision computes in."""

FP32_OPERATIONS = (
    "architecture weights: the softmax and Gumbel-softmax of the architecture parameters are computed "
    "outside autocast, in fp32, so that small differences between operations' weights survive",
    "loss: the cross-entropy is computed on fp32 logits (autocast runs it in fp32), so its log-sum-exp "
    "neither overflows nor loses the small losses of a trained network",
    "second-order DARTS' Hessian-vector product: its central differences run with autocast disabled, "
    "since the perturbation epsilon * v (epsilon = 0.01 / ||v||) is below bf16's rounding step of most "
    "weights (8-bit mantissa), so w + epsilon * v and w - epsilon * v round to the same bf16 values",
    "weights, gradients and optimiser state: kept in fp32 (autocast casts copies of the weights per "
    "operation); only activations are low precision",
)
"""What stays fp32 under bf16 and fp16 training, and why: stored with every run that is not fp32."""


@dataclass(frozen=True)
class Precision:
    """One of :data:`PRECISIONS` as the contexts and scaler a training step uses."""

    name: str = "fp32"

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.name!r}")

    @property
    def mixed(self) -> bool:
        """Whether the forward pass runs in a low precision."""
        return self.name != "fp32"

    def autocast(self, device: torch.device) -> ContextManager:
        """The context a forward pass and its loss run in: none for fp32, autocast to the
        precision's dtype on ``device`` otherwise."""
        import torch

        if not self.mixed:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=getattr(torch, DTYPES[self.name]))

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """A gradient scaler enabled only for fp16 (disabled it passes the loss and the
        step through unchanged), so that every precision runs the same step code."""
        import torch

        return torch.amp.GradScaler(device.type, enabled=self.name == "fp16")

    def fallbacks(self) -> list[str]:
        """What stays fp32 in a training under this precision (none to say for fp32)."""
        return list(FP32_OPERATIONS) if self.mixed else []


def full_precision(device: torch.device) -> ContextManager:
    """A block computed in fp32 even inside an autocast region (the recorded fallbacks)."""
    import torch

    return torch.autocast(device.type, enabled=False)
