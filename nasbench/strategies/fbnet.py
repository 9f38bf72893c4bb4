"""FBNet (Wu, Dai, Zhang, Wang, Sun, Wu, Tian, Vajda, Jia & Keutzer, "FBNet: Hardware-Aware
Efficient ConvNet Design via Differentiable Neural Architecture Search", CVPR 2019).

DNAS on the layer-wise space (or on the cell space, every edge in place of a layer): every
layer's output is the sum of its 9 candidate blocks weighted by a Gumbel-softmax sample of
its architecture parameters, ``softmax((theta + G) / t)``,
with the temperature t starting at 5.0 and multiplied by exp(-0.045) every epoch. Each
epoch first trains the weights on search-train, then the architecture parameters on
search-validation (the paper's per-epoch alternation, on the protocol's split instead of
its 80/20), after a warm-up of weights alone. Under a latency constraint the architecture
descends ``CE * alpha * (log max(LAT, T) / log T) ** beta``, LAT the expected latency of the
sample from the table, alpha 0.2 and beta 0.6 as published: FBNet's loss, divided by the
constant ``log(T) ** beta``, with LAT floored at the target T (``mul-log-hinge``; the
published form without the floor is ``--constraint-form mul-log``, in which a target is
only a constant factor; see :meth:`~nasbench.hardware.constraint.Constraint.apply`, also for
LAT in microseconds). The final architecture is sampled from the learned distribution:
six samples (fewer if the protocol's candidate budget is smaller) are trained with the
candidate recipe and the best on search-validation is kept (on cells a sample is an
operation per edge, each node keeping the two edges whose drawn operation is most probable).

Settings the paper does not state are those of a widely used re-implementation
(github.com/AnnaAraslanova/FBNet, supernet_functions/config_for_supernet.py): weights by
SGD, lr 0.1, momentum 0.9, weight decay 1e-4 (cosine-annealed here to 0 over the search);
architecture by Adam, lr 0.01, weight decay 5e-4; the first 10 of 90 epochs train the
weights only (here round(epochs / 9)).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from nasbench.strategies.hardware_aware import HardwareAwareSearch
from nasbench.strategies.snas import gumbel_softmax
from nasbench.strategies.supernet_search import ArchRecipe, Batch, WeightRecipe
from nasbench.types import SearchResult

FBNET_WEIGHTS = WeightRecipe(lr=0.1, lr_min=0.0, momentum=0.9, weight_decay=1e-4, grad_clip=0.0)
FBNET_ARCHITECTURE = ArchRecipe(lr=0.01, betas=(0.9, 0.999), weight_decay=5e-4)
TEMPERATURE_START = 5.0
TEMPERATURE_DECAY = 0.045
SAMPLED_ARCHITECTURES = 6


class Fbnet(HardwareAwareSearch):
    name = "fbnet"
    strategy_class = "GO"
    summary = "FBNet: Gumbel-softmax DNAS over per-layer blocks, latency-aware loss from a cost table"
    constraint_forms = {"mul-log-hinge": (0.2, 0.6), "mul-log": (0.2, 0.6)}
    weight_recipe = FBNET_WEIGHTS
    arch_recipe = FBNET_ARCHITECTURE
    warmup_share = 1 / 9

    def temperature(self) -> float:
        return TEMPERATURE_START * math.exp(-TEMPERATURE_DECAY * self.epochs_done)

    def samples(self) -> int:
        return min(SAMPLED_ARCHITECTURES, self.context.protocol.search.candidates)

    def budget(self) -> int:
        return self.supernet_epochs() + self.samples()

    def steps_done(self) -> int:
        return self.epochs_done + len(self.trials)

    def step(self) -> None:
        """A search epoch, or, once they are done, one sampled architecture trained."""
        if self.epochs_done < self.supernet_epochs():
            super().step()
        else:
            self.evaluate(self.sample_architecture())

    def search_weights(self) -> dict[str, torch.Tensor]:
        """A Gumbel-softmax sample per layer (per edge on cells), differentiable in theta."""
        t = self.temperature()
        return {group: gumbel_softmax(alpha, t, self.generator) for group, alpha in self.supernet.alphas.items()}

    def search_epoch(self, lr: float) -> tuple[float, float]:
        """The weights over search-train, then the architecture over search-validation
        (during warm-up the validation batches are only scored)."""
        data, device = self.context.data, self.context.device
        train_sum, val_sum = torch.zeros((), device=device), torch.zeros((), device=device)
        for batch in self.batches(data.search_train):
            train_sum += self.weight_step(batch) * len(batch.labels)
        for batch in self.batches(data.search_val):
            val_sum += self.architecture_step(batch) * len(batch.labels)
        return (val_sum / len(data.search_val)).item(), (train_sum / len(data.search_train)).item()

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The work of one batch pair, as ``nasbench bench search-step`` times it: an
        architecture update on ``val`` and a weight update on ``train`` (a search epoch
        does the same updates, grouped by kind)."""
        return self.architecture_step(val), self.weight_step(train)

    def architecture_step(self, batch: Batch) -> torch.Tensor:
        """One Adam step of theta on a Gumbel-softmax sample (past the warm-up); returns the
        batch's cross-entropy."""
        weights = self.search_weights()
        if self.epochs_done < self.warmup_epochs():
            with torch.no_grad():
                return self.loss(batch, weights)
        loss = self.loss(batch, weights)
        objective = self.constrained(loss, weights)
        thetas = self.supernet.arch_parameters()
        for theta, grad in zip(thetas, torch.autograd.grad(objective, thetas, allow_unused=True), strict=True):
            theta.grad = torch.zeros_like(theta) if grad is None else grad
        self.arch_optimizer.step()
        return loss.detach()

    def result(self) -> SearchResult:
        """The best of the sampled architectures on search-validation."""
        best = self.best_trial()
        return SearchResult(self.context.space.from_dict(best.arch), best.val_acc,
                            details={"operations": list(self.operation_names), "epochs": self.history,
                                     "temperature_final": self.temperature()})

    def _record(self, lr: float, train_loss: float, val_loss: float) -> dict[str, Any]:
        return {**super()._record(lr, train_loss, val_loss), "temperature": self.temperature()}
