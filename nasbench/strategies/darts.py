"""DARTS (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019).

Bilevel optimisation of the supernet: the architecture parameters alpha descend the
search-validation loss L_val(w*(alpha), alpha), the weights w the search-train loss.
First order approximates w*(alpha) by the current w; second order by one unrolled SGD
step, w' = w - xi * grad_w L_train(w, alpha), whose implicit gradient needs a
Hessian-vector product, taken by central finite differences (paper Sect. 2.3, Eq. 7-8).
"""
from __future__ import annotations

from typing import Sequence

import torch

from nasbench.strategies.supernet_search import (
    ArchRecipe,
    Batch,
    BilevelSearch,
    WeightRecipe,
)

# The paper's settings (Sect. 3.1.1 and Appendix A.1.1) and, where it is silent or differs,
# the official code's defaults (github.com/quark0/darts, cnn/train_search.py): the weights'
# cosine schedule ends at 0.001 there (the paper says zero), and gradients are clipped at 5.
DARTS_WEIGHTS = WeightRecipe(lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=3e-4, grad_clip=5.0)
DARTS_ARCHITECTURE = ArchRecipe(lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
HVP_RADIUS = 0.01
"""The finite-difference step of the Hessian-vector product is HVP_RADIUS / ||grad_w' L_val||
(paper Sect. 2.3: "epsilon = 0.01 / ||.||_2 to be sufficiently accurate in all of our experiments")."""


class Darts(BilevelSearch):
    """First-order DARTS: alpha follows grad_alpha L_val(w, alpha) at the current weights."""

    name = "darts"
    strategy_class = "GO"
    summary = "DARTS, first order: softmax-relaxed supernet, alternating weight and architecture steps"
    spaces = ("cell", "enas-rnn")
    task_implementations = {"language-model": "darts_rnn:RecurrentDarts"}
    weight_recipe = DARTS_WEIGHTS
    arch_recipe = DARTS_ARCHITECTURE

    def architecture_gradients(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, Sequence[torch.Tensor]]:
        loss = self.loss(val, self.search_weights())
        return loss, torch.autograd.grad(loss, self.supernet.arch_parameters(), materialize_grads=True)


class DartsSecondOrder(Darts):
    """Second-order DARTS: alpha follows the gradient of L_val(w', alpha) through the unrolled
    weights w' = w - xi * (the SGD step's direction), xi being the weights' learning rate."""

    name = "darts-2nd"
    summary = "DARTS, second order: the architecture gradient through one unrolled weight step"
    task_implementations = {"language-model": "darts_rnn:RecurrentDartsSecondOrder"}
    hvp_radius: float = HVP_RADIUS

    def architecture_gradients(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, Sequence[torch.Tensor]]:
        alphas = self.supernet.arch_parameters()
        unrolled = self.unrolled_weights(train, lr)
        loss = self.loss(val, self.search_weights(), unrolled)
        grads = torch.autograd.grad(loss, [*unrolled.values(), *alphas], materialize_grads=True)
        weight_grads, alpha_grads = grads[:len(unrolled)], grads[len(unrolled):]
        implicit = self.hessian_vector_product(weight_grads, train)
        return loss, [g - lr * h for g, h in zip(alpha_grads, implicit, strict=True)]

    def unrolled_weights(self, train: Batch, lr: float) -> dict[str, torch.Tensor]:
        """w' = w - lr * (momentum * buffer + grad_w L_train(w, alpha) + weight_decay * w):
        the step the weight optimiser would take next (without clipping), as in the DARTS
        code; a leaf, since DARTS treats the step's dependence on alpha through the Hessian
        term alone."""
        recipe = self.weight_recipe
        named = self.supernet.named_weight_parameters()
        weights = {group: w.detach() for group, w in self.search_weights().items()}
        grads = torch.autograd.grad(self.loss(train, weights), list(named.values()))
        unrolled = {}
        with torch.no_grad():
            for (name, w), g in zip(named.items(), grads, strict=True):
                direction = g + recipe.weight_decay * w
                buffer = self.weight_optimizer.state.get(w, {}).get("momentum_buffer")
                if buffer is not None:
                    direction = direction + recipe.momentum * buffer
                unrolled[name] = (w - lr * direction).requires_grad_()
        return unrolled

    def hessian_vector_product(self, vector: Sequence[torch.Tensor], train: Batch) -> list[torch.Tensor]:
        """grad^2_{alpha,w} L_train(w, alpha) @ vector, by central differences of
        grad_alpha L_train at w +- epsilon * vector (paper Eq. 8), in fp32 whatever the
        precision: bf16 would round most weights' shift epsilon * vector away
        (:data:`nasbench.precision.FP32_OPERATIONS`)."""
        named = self.supernet.named_weight_parameters()
        epsilon = self.hvp_radius / torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in vector]))

        def alpha_gradients(sign: float) -> Sequence[torch.Tensor]:
            with torch.no_grad():
                shifted = {name: w + sign * epsilon * v for (name, w), v in zip(named.items(), vector, strict=True)}
            loss = self.loss(train, self.search_weights(), shifted, fp32=True)
            return torch.autograd.grad(loss, self.supernet.arch_parameters(), materialize_grads=True)

        plus, minus = alpha_gradients(1.0), alpha_gradients(-1.0)
        return [(p - m) / (2 * epsilon) for p, m in zip(plus, minus, strict=True)]
