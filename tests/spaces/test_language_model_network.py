"""The recurrent cells' activations: the names a space's description offers (torch-free) are
exactly those the language model can compute, in the same order (a controller's choices)."""
from __future__ import annotations

import torch

from nasbench.spaces.language_model import ACTIVATIONS
from nasbench.spaces.language_model_network import ACTIVATION_FUNCTIONS


def test_every_activation_name_has_its_function():
    assert tuple(ACTIVATION_FUNCTIONS) == ACTIVATIONS
    x = torch.tensor([-1.0, 0.0, 2.0])
    assert torch.equal(ACTIVATION_FUNCTIONS["relu"](x), torch.tensor([0.0, 0.0, 2.0]))
    assert torch.equal(ACTIVATION_FUNCTIONS["identity"](x), x)
