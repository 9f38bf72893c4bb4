"""Analytic counts of a built network: parameters and FLOPs.

FLOPs follow fvcore's convention: one multiply-add counts as one FLOP (so the numbers
are MACs); convolutions, linear layers and batch norm are counted, element-wise
activations, pooling and additions are not. Parameters exclude the auxiliary head,
which exists only during training (the convention of every NAS paper's tables).
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Sequence

import torch
from torch import nn

AUXILIARY_PREFIX = "auxiliary_head."


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith(AUXILIARY_PREFIX))


def count_flops(model: nn.Module, inputs: Sequence[torch.Tensor] | None = None) -> int:
    """fvcore's FLOP count (1 multiply-add = 1 FLOP) of one eval-mode forward pass on
    ``inputs`` (default: one 32x32 RGB image on the model's device)."""
    if inputs is None:
        device = next(model.parameters()).device
        inputs = (torch.zeros(1, 3, 32, 32, device=device),)
    logging.getLogger("fvcore").setLevel(logging.ERROR)  # it warns about every uncounted op
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():  # fvcore uses torch.jit APIs that torch marks deprecated
            warnings.simplefilter("ignore", FutureWarning)
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(model, tuple(inputs))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return int(analysis.total())
    finally:
        model.train(was_training)


def arch_summary(name: str, arch: Any, space: Any, protocol: Any, entry: Any = None) -> dict[str, Any]:
    """``arch`` of ``space`` (named ``name``) with the params and FLOPs of ``protocol``'s final
    network of it, and the published count, source and notes of its zoo ``entry``, if any."""
    model = space.build(arch, protocol.final.network)
    summary = {"name": name, "protocol": protocol.name, "channels": protocol.final.channels,
               "cells": protocol.final.cells, "params": count_params(model), "flops": count_flops(model),
               "flops_convention": "fvcore, 1 multiply-add = 1 FLOP", "genotype": space.to_dict(arch)}
    return summary | published_fields(entry)


def published_fields(entry: Any) -> dict[str, Any]:
    """A zoo entry's published count, source and notes, for an architecture's summary (none without an entry)."""
    if entry is None:
        return {}
    return {"published_params_m": entry.published_params_m, "source": entry.source, "note": entry.note,
            "params_note": entry.params_note}
