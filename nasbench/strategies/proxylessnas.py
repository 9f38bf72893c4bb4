"""ProxylessNAS (Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on Target
Task and Hardware", ICLR 2019), gradient variant (Proxyless-G).

Path-level binarisation on the layer-wise space (or on the cell space, every edge in place
of a layer): every forward pass runs binary gates, not a mixture. A weight step samples one
block per layer from softmax(alpha) and trains that path alone. An architecture step samples
two distinct blocks per layer from softmax(alpha), makes one of them active by their
renormalised probabilities, runs both (the inactive one at gate 0), and turns the gates'
gradients into the architecture gradient ``dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i)``
over the pair (the paper's Eq. 4); after the Adam step the pair's parameters are shifted so
that their summed exp(alpha), and with it every other block's probability, is unchanged.

Under a constraint the architecture loss has the expected cost over the *sampled pairs*,
``E[LAT] = fixed + sum_layers sum_pair q_i LAT_i`` with q the pair-renormalised
probabilities, so its gradient, like the gates', reaches only the two sampled blocks' alphas
(official 'two' mode: search/modules/mix_op.py L179-187 stores the softmax over the pair's
alphas as ``current_prob_over_ops``, zero elsewhere; search/models/super_nets/
super_proxyless.py L221-231 weights each block's latency by it; nas_manager.py L571-577
backpropagates the loss into alpha, then ``set_arch_param_grad`` adds the binarised
gradient, mix_op.py L226). Two forms (nas_manager.py L82-91): ``mul-log``
``CE * alpha * (log E[LAT] / log T) ** beta`` (alpha 0.2, beta 0.3; latency in ms as the
official table and its 80 ms target, imagenet_arch_search.py L21-24, counts as they are) or
``add-linear`` ``CE + lambda * (E[LAT] - T) / T`` (lambda 0.1). The found architecture is
each layer's most probable block.

Settings of the official code (github.com/mit-han-lab/proxylessnas, search/
imagenet_arch_search.py and nas_manager.py): weights by SGD with Nesterov momentum 0.9, lr
0.025 cosine-annealed, weight decay 4e-5, label smoothing 0.1; architecture by Adam, lr 1e-3,
betas (0, 0.999), no weight decay, alpha initialised from N(0, 1e-3); 40 warm-up epochs of
weights alone before 120 of search (here a quarter of the epochs), then one architecture
step after every 5th weight step.
"""
from __future__ import annotations

import torch
from torch import nn

from nasbench.errors import NasbenchError
from nasbench.strategies.hardware_aware import HardwareAwareSearch
from nasbench.strategies.supernet_search import ArchRecipe, Batch, WeightRecipe
from nasbench.training import TrainingDiverged

PROXYLESS_WEIGHTS = WeightRecipe(lr=0.025, lr_min=0.0, momentum=0.9, weight_decay=4e-5, grad_clip=0.0,
                                 nesterov=True)
PROXYLESS_ARCHITECTURE = ArchRecipe(lr=1e-3, betas=(0.0, 0.999), weight_decay=0.0)
LABEL_SMOOTHING = 0.1
ARCH_UPDATE_EVERY = 5


def binarised_gradient(gate_grads: torch.Tensor, pair_probs: torch.Tensor) -> torch.Tensor:
    """``sum_j dL/dg_j p_j (delta_ij - p_i)`` per row: the gradient of the pair's parameters
    from the gates' (both tensors (layers, 2))."""
    return pair_probs * (gate_grads - (gate_grads * pair_probs).sum(dim=-1, keepdim=True))


class ProxylessNas(HardwareAwareSearch):
    name = "proxylessnas"
    strategy_class = "GO"
    summary = "ProxylessNAS: binarised single-path supernet, two-path architecture gradient, latency loss"
    constraint_forms = {"mul-log": (0.2, 0.3), "add-linear": (0.1, 1.0)}
    weight_recipe = PROXYLESS_WEIGHTS
    arch_recipe = PROXYLESS_ARCHITECTURE
    sparse_weights = True
    alpha_std = 1e-3
    warmup_share = 0.25
    state_fields = (*HardwareAwareSearch.state_fields, "weight_steps")

    def __init__(self, context):
        super().__init__(context)
        self.weight_steps = 0
        self.weight_criterion = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
        constraint = context.constraint
        if constraint is not None and constraint.form == "mul-log" and constraint.target <= 1:
            unit = " ms" if constraint.metric == "latency_ms" else ""
            raise NasbenchError(f"proxylessnas' mul-log form takes the cost in its own unit (latency in ms, as the "
                                f"official code): its log(target) is the denominator, so the target must be above "
                                f"1{unit}, got {constraint.target}")

    def search_weights(self) -> dict[str, torch.Tensor]:
        """One block per layer (operation per edge) drawn from softmax(alpha): binary gates."""
        gates = {}
        for group, alpha in self.supernet.alphas.items():
            probs = alpha.detach().softmax(dim=-1)
            gates[group] = torch.zeros_like(probs).scatter_(1, torch.multinomial(probs, 1, generator=self.generator), 1.0)
        return gates

    def record_weights(self, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The supernet is scored as the path of each layer's (edge's) most probable choice."""
        return {group: torch.zeros_like(w).scatter_(1, w.argmax(dim=-1, keepdim=True), 1.0) for group, w in weights.items()}

    def weight_step(self, train: Batch, weights=None) -> torch.Tensor:
        """One SGD step of the sampled path's weights, with label smoothing."""
        gates = self.search_weights()
        logits = self.supernet(train.images, gates, True)
        loss = self.weight_criterion(logits, train.labels)
        self.weight_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.weight_optimizer.step()
        self.weight_steps += 1
        return self.criterion(logits.detach(), train.labels)

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor | None, torch.Tensor]:
        """A weight step; before every 5th, past the warm-up, an architecture step (during
        the warm-up that validation batch is only scored)."""
        val_loss = None
        if self.weight_steps % ARCH_UPDATE_EVERY == 0:
            if self.epochs_done >= self.warmup_epochs():
                val_loss = self.architecture_step(val)
            else:
                with torch.no_grad():
                    val_loss = self.criterion(self.supernet(val.images, self.search_weights(), True), val.labels)
        return val_loss, self.weight_step(train)

    def constrained(self, loss: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """The shared forms, except ``mul-log``, taken here with the cost in the cost
        model's unit (latency in ms), as the official ``mul#log`` takes it (nas_manager.py
        L82-87; its table and 80 ms target are in ms). An expected cost at or below 1 makes
        the log ratio zero or negative, where the form is undefined (NaN in the official
        code): the search stops there as diverged."""
        constraint = self.context.constraint
        if constraint is None or constraint.form != "mul-log":
            return super().constrained(loss, weights)
        expected = constraint.cost_model.expected(weights)
        if expected.item() <= 1:
            unit = " ms" if constraint.metric == "latency_ms" else ""
            raise TrainingDiverged(f"{self.name}: the expected {constraint.metric} fell to {expected.item():.4g}{unit}, "
                                   f"where the mul-log form's log is not positive; use --constraint-form add-linear")
        return constraint.apply(loss, weights, log_scale=1.0)

    def architecture_step(self, batch: Batch) -> torch.Tensor:
        """Two sampled paths per layer (edge), one of them active; the binarised gradient of
        the pairs' parameters plus the expected cost's over the pairs (its gradient through
        the pair-renormalised probabilities only), Adam, then the pairs' rescaling."""
        alphas = dict(self.supernet.alphas.items())
        pairs, pair_probs, gates, weights, pair_weights = {}, {}, {}, {}, {}
        for group, alpha in alphas.items():
            pairs[group] = torch.multinomial(alpha.detach().softmax(dim=-1), 2, replacement=False,
                                             generator=self.generator)
            probs = alpha.gather(1, pairs[group]).softmax(dim=-1)  # differentiable in the pair's alphas alone
            pair_probs[group] = probs.detach()
            active = torch.multinomial(pair_probs[group], 1, generator=self.generator)
            gates[group] = torch.zeros_like(pair_probs[group]).scatter_(1, active, 1.0).requires_grad_()
            weights[group] = torch.zeros_like(alpha).scatter(1, pairs[group], gates[group])
            pair_weights[group] = torch.zeros_like(alpha).scatter(1, pairs[group], probs)
        logits = self.supernet(batch.images, weights, True, {group: pair.tolist() for group, pair in pairs.items()})
        loss = self.criterion(logits, batch.labels)
        objective = self.constrained(loss, pair_weights)
        groups = list(alphas)
        grads = torch.autograd.grad(objective, [gates[g] for g in groups] + [alphas[g] for g in groups],
                                    allow_unused=True)
        before = {}
        for group, gate_grad, cost_grad in zip(groups, grads[:len(groups)], grads[len(groups):]):
            alpha = alphas[group]
            grad = torch.zeros_like(alpha) if cost_grad is None else cost_grad
            gate_grad = torch.zeros_like(gates[group]) if gate_grad is None else gate_grad
            alpha.grad = grad.scatter_add(1, pairs[group], binarised_gradient(gate_grad, pair_probs[group]))
            before[group] = alpha.detach().gather(1, pairs[group])
        self.arch_optimizer.step()
        with torch.no_grad():
            for group, alpha in alphas.items():
                after = alpha.gather(1, pairs[group])
                shift = after.logsumexp(dim=-1, keepdim=True) - before[group].logsumexp(dim=-1, keepdim=True)
                alpha.scatter_(1, pairs[group], after - shift)
        return loss.detach()
