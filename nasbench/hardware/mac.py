"""Memory access cost (MAC), the ShuffleNet V2 definition: the number of elements every
layer reads and writes, weights included, counted per layer and summed.

The formula of each layer type (``x`` its input, ``y`` its output, ``|t|`` the element
count, per image, i.e. at batch size 1):

- convolution / linear: ``|x| + |y| + |weight| (+ |bias|)``
- batch norm: ``|x| + |y| + 4c`` with affine parameters (scale, shift, running mean and
  variance), ``|x| + |y| + 2c`` without
- ReLU, max / average / adaptive pooling: ``|x| + |y|``
- identity (skip connection) and flatten (a view): 0, they touch no memory
- ``none`` (zero): ``2|y|``, it reads the (strided) input and writes zeros
- node sum of two tensors: ``3|y|``; concatenation: ``2|y|`` (every element read once and
  written once)
- FBNet's inverted residual, beyond its layers: the channel shuffle of grouped blocks
  ``2|h|`` (its hidden tensor read and written once) and the residual sum ``3|y|``
- factorized reduce, beyond its convolutions, ReLU and batch norm: zero padding
  ``|x| + |x_padded|`` and the concatenation of its halves ``2|y|``

A space's own modules state their cost themselves (``functional_mac``: the whole cost of
a leaf such as the cell space's identity and ``none``, only their own functional work for
modules made of others); a leaf module without a formula is an error, so nothing is
silently counted as free.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

DTYPE_BYTES = {torch.float32: 4, torch.float16: 2, torch.bfloat16: 2}


def _numel(t: torch.Tensor) -> int:
    return t[0].numel()  # per image


def leaf_mac(module: nn.Module, inputs: Sequence[torch.Tensor], output: torch.Tensor) -> int:
    x, y = inputs[0], output
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return _numel(x) + _numel(y) + module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
    if isinstance(module, nn.BatchNorm2d):
        return _numel(x) + _numel(y) + (4 if module.affine else 2) * module.num_features
    if isinstance(module, (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        return _numel(x) + _numel(y)
    if isinstance(module, (nn.Identity, nn.Flatten)):
        return 0
    raise TypeError(f"no memory-access formula for {type(module).__name__}; add one to nasbench/hardware/mac.py")


def count_mac(module: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """MAC in elements of one forward pass of ``module`` on ``inputs`` (per image)."""
    total = 0

    def hook(mod: nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if hasattr(mod, "functional_mac"):
            total += mod.functional_mac(args, output)
        elif not any(True for _ in mod.children()):
            total += leaf_mac(mod, args, output)

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return total
