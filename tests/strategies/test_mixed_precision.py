"""The supernet methods under bf16 (the protocol's ``precision``): their architecture
gradients agree with fp32's, and second-order DARTS' Hessian-vector product, the recorded
fp32 fallback, is fp32's exactly."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import context, random_batch, with_supernet

from nasbench.strategies.darts import Darts, DartsSecondOrder
from nasbench.strategies.gdas import Gdas
from nasbench.strategies.snas import Snas

MIN_COSINE = {Darts: 0.95, DartsSecondOrder: 0.85, Snas: 0.99, Gdas: 0.99}
"""Least cosine similarity of one batch's bf16 architecture gradient to fp32's on the tiny
2-channel supernet, measured on the batches of seeds 0-2: darts 0.969, darts-2nd 0.887,
snas 0.995, gdas 0.995 (over seeds 0-7: 0.969, 0.43, 0.955, 0.917). bf16 keeps 8 bits of
mantissa; second order compounds the error through the unrolled weights."""


def strategies(cls, cell_space, tiny, tiny_data):
    """A fresh ``cls`` under fp32 and under bf16, their supernets and generators identical."""
    protocol = with_supernet(tiny, channels=2)
    return [cls(context(cell_space, dataclasses.replace(protocol, precision=p), tiny_data)) for p in ("fp32", "bf16")]


def cosine(a, b) -> float:
    a, b = torch.cat([x.flatten() for x in a]), torch.cat([x.flatten() for x in b])
    return (a @ b / (a.norm() * b.norm())).item()


def mixed_operation_gradients(strategy, val):
    """The gradient in the architecture parameters of the validation loss through the
    method's mixed operations, under its search weights (softmax, Gumbel samples)."""
    weights = strategy.search_weights()
    assert all(w.dtype == torch.float32 for w in weights.values())  # computed outside autocast
    loss = strategy.loss(val, weights)
    return torch.autograd.grad(loss, strategy.supernet.arch_parameters(), materialize_grads=True)


@pytest.mark.parametrize("cls", [Darts, DartsSecondOrder, Snas, Gdas])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bf16_architecture_gradients_agree_with_fp32(cls, seed, cell_space, tiny, tiny_data):
    fp32, bf16 = strategies(cls, cell_space, tiny, tiny_data)
    generator = torch.Generator().manual_seed(seed)
    train, val = random_batch(generator, n=8), random_batch(generator, n=8)
    if issubclass(cls, Darts):
        exact, mixed = (s.architecture_gradients(train, val, lr=0.025)[1] for s in (fp32, bf16))
    else:
        exact, mixed = (mixed_operation_gradients(s, val) for s in (fp32, bf16))
    assert not all(torch.equal(a, b) for a, b in zip(exact, mixed))  # bf16 did compute in bf16
    assert cosine(mixed, exact) >= MIN_COSINE[cls]


def test_the_hessian_vector_product_stays_fp32_under_bf16(cell_space, tiny, tiny_data):
    """Under bf16 autocast the central differences lose the perturbation (the product's
    cosine to fp32's measured about -0.1, 77-92% of the weights' shifts rounding away); the
    fallback computes fp32's product exactly."""
    fp32, bf16 = strategies(DartsSecondOrder, cell_space, tiny, tiny_data)
    train = random_batch(torch.Generator().manual_seed(3), n=8)
    generator = torch.Generator().manual_seed(4)
    vector = [torch.randn(w.shape, generator=generator) for w in fp32.supernet.weight_parameters()]
    exact, fallback = (s.hessian_vector_product(vector, train) for s in (fp32, bf16))
    assert all(torch.equal(a, b) for a, b in zip(exact, fallback))
    with bf16.precision.autocast(bf16.context.device):
        assert bf16.loss(train, bf16.search_weights()).dtype == torch.float32  # the loss itself stays fp32
