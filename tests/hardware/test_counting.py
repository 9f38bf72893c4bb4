"""FLOP counting (fvcore's convention: one multiply-add is one FLOP), and counting leaves a
network's training mode as it was."""
from __future__ import annotations

import torch
from torch import nn

from nasbench.hardware.counting import count_flops


def test_flops_of_a_convolution():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # every output element (8 x 32 x 32) needs 3 * 3 * 3 multiply-adds
    assert count_flops(conv) == 8 * 32 * 32 * 3 * 3 * 3
    strided = nn.Conv2d(3, 6, 5, stride=2, padding=2, bias=False)
    assert count_flops(strided, [torch.zeros(2, 3, 32, 32)]) == 2 * 6 * 16 * 16 * 5 * 5 * 3
    grouped = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
    assert count_flops(grouped, [torch.zeros(1, 4, 10, 10)]) == 4 * 10 * 10 * 3 * 3


def test_flops_of_a_linear_layer_and_a_sum():
    assert count_flops(nn.Linear(20, 7), [torch.zeros(1, 20)]) == 20 * 7
    assert count_flops(nn.Linear(20, 7), [torch.zeros(4, 20)]) == 4 * 20 * 7
    model = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 5))
    assert count_flops(model, [torch.zeros(1, 3, 4, 4)]) == 2 * 4 * 4 * 3 + 2 * 4 * 4 * 5


def test_count_flops_restores_training_mode():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2))
    model.train()
    count_flops(model)
    assert model.training
    model.eval()
    count_flops(model)
    assert not model.training
