"""The shared loop of the supernet methods (DARTS and its successors on the cell space).

A step is one epoch over search-train: per batch an architecture update (the method's,
with Adam under its :class:`ArchRecipe`, on a search-validation batch) and then a weight
update of the supernet (SGD under its :class:`WeightRecipe`) on the training batch. Batch
order and augmentation come from one device generator, so the whole state at an epoch
boundary is the supernet, both optimisers, that generator and the per-epoch history;
:meth:`SupernetSearch.tensor_state` hands the tensors to the store, which keeps them with
the JSON state in one transaction.

Under the protocol's ``precision`` the supernet's forward and loss run under autocast
(:meth:`SupernetSearch.loss`), while the architecture weights (softmax, Gumbel samples)
are computed before it, in fp32 (:data:`nasbench.precision.FP32_OPERATIONS`); fp16's
gradient scaler serves the shared weight step.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Hashable, Iterator, Sequence

import torch
from torch import nn

from nasbench.data import Augmentation, DeviceSplit, endless_batches, shuffled_batches
from nasbench.precision import Precision, full_precision
from nasbench.protocol import SupernetBudget
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS
from nasbench.spaces.cell.supernet import (
    EdgeWeights,
    Supernet,
    WeightedSupernet,
    derive_genotype,
)
from nasbench.strategies.base import Strategy, require_tensors
from nasbench.strategies.context import SearchContext
from nasbench.training import TrainingDiverged, cosine_annealing, evaluate
from nasbench.types import SearchResult, TensorState, derive_seed

WEIGHTS_DIGITS = 6
"""Significant digits of the architecture weights kept in the per-epoch history."""


@dataclass(frozen=True)
class WeightRecipe:
    """How a method trains the supernet's weights: SGD with momentum, per-epoch cosine
    annealing from ``lr`` to ``lr_min`` over the protocol's supernet epochs, gradient clipping."""

    lr: float
    lr_min: float
    momentum: float
    weight_decay: float
    grad_clip: float
    """Maximum gradient norm; 0 disables clipping (no norm is computed), as in the protocol's stages."""
    nesterov: bool = False

    def clip(self, parameters: list[nn.Parameter]) -> None:
        """Clip the gradients of ``parameters`` to the recipe's norm, if it sets one."""
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(parameters, self.grad_clip)


@dataclass(frozen=True)
class ArchRecipe:
    """How a method updates the architecture parameters: Adam."""

    lr: float
    betas: tuple[float, float]
    weight_decay: float


@dataclass(frozen=True)
class Batch:
    """Augmented, normalised images and their labels, on the device."""

    images: torch.Tensor
    labels: torch.Tensor


class SupernetSearch(Strategy):
    """Base of the supernet methods: subclasses set the recipes and implement
    :meth:`search_step`; :meth:`edge_weights` is DARTS' softmax unless overridden,
    and :meth:`search_weights` (what the search steps train under) is :meth:`edge_weights`
    unless the method samples."""

    weight_recipe: ClassVar[WeightRecipe]
    arch_recipe: ClassVar[ArchRecipe | None] = None
    """None where the method has no architecture parameters to train (random-ws samples paths uniformly)."""
    sparse_weights: ClassVar[bool] = False
    """True where edge weights have exact zeros worth skipping (GDAS' one-hot samples)."""
    operation_names: ClassVar[tuple[str, ...]] = SEARCH_OPERATIONS
    """The columns of the architecture weights."""
    state_fields = ("epochs_done", "history")

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.epochs_done = 0
        self.history: list[dict[str, Any]] = []
        self.build_supernet("supernet")
        self.generator = torch.Generator(device=context.device).manual_seed(derive_seed(context.seed, "batches"))
        self.criterion = nn.CrossEntropyLoss()
        self.precision = Precision(context.protocol.precision)
        self.augment = Augmentation(context.device, precision=self.precision.name)
        self.scaler = self.precision.grad_scaler(context.device)

    def build_supernet(self, seed_label: str) -> None:
        """A new supernet (:meth:`make_supernet`, initialised from a seed named ``seed_label``)
        and new optimisers of its weights and architecture parameters, under the recipes."""
        torch.manual_seed(derive_seed(self.context.seed, seed_label))
        self.supernet = self.make_supernet(self.context.protocol.search.supernet).to(self.context.device)
        recipe, arch = self.weight_recipe, self.arch_recipe
        self.weight_optimizer = torch.optim.SGD(self.supernet.weight_parameters(), lr=recipe.lr,
                                                momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                                                nesterov=recipe.nesterov)
        self.arch_optimizer = None if arch is None else torch.optim.Adam(
            self.supernet.arch_parameters(), lr=arch.lr, betas=arch.betas, weight_decay=arch.weight_decay)

    # -- the method's part ---------------------------------------------------------
    def make_supernet(self, budget: SupernetBudget) -> Supernet:
        """The supernet the method searches on: DARTS' unless overridden (PC-DARTS' partial
        channels and edge parameters)."""
        return Supernet(budget.channels, budget.cells)

    def edge_weights(self) -> dict[str, torch.Tensor]:
        """Per-edge operation weights from the architecture parameters (softmax per edge):
        deterministic, what the records show and the derivation reads."""
        return {group: alpha.softmax(dim=-1) for group, alpha in self.supernet.alphas.items()}

    def search_weights(self) -> dict[str, torch.Tensor]:
        """The edge weights a search step trains under (sampling methods draw them here,
        from :attr:`generator`, so a resumed search draws the same ones)."""
        return self.edge_weights()

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Update the architecture and the weights on one training and one validation
        batch; returns (validation loss, or None where the step did not measure one,
        training loss). ``lr`` is the weights' current learning rate. Methods that keep
        the per-batch :meth:`search_epoch` implement it."""
        raise NotImplementedError(f"{self.name} implements neither search_step nor search_epoch")

    # -- the shared loop -----------------------------------------------------------
    def budget(self) -> int:
        return self.supernet_epochs()

    def supernet_epochs(self) -> int:
        """The protocol's supernet epochs: the weights' schedule spans them, whatever a
        method's search does after them (random-ws' scoring)."""
        return self.context.protocol.search.supernet.epochs

    def steps_done(self) -> int:
        return self.epochs_done

    def loss(self, batch: Batch, weights: EdgeWeights, params: dict[str, torch.Tensor] | None = None,
             fp32: bool = False) -> torch.Tensor:
        """Cross-entropy of the supernet on ``batch``; with ``params``, under those network
        weights instead of its own (the unrolled and perturbed weights of second-order DARTS).
        Under the protocol's precision's autocast (``weights`` come in computed outside it,
        in fp32), unless ``fp32`` asks for a recorded fallback (:data:`nasbench.precision.FP32_OPERATIONS`)."""
        inputs = (batch.images, weights, self.sparse_weights)
        device = self.context.device
        with full_precision(device) if fp32 else self.precision.autocast(device):
            logits = self.supernet(*inputs) if params is None else torch.func.functional_call(self.supernet, params,
                                                                                               inputs)
            return self.criterion(logits, batch.labels)  # autocast computes cross-entropy in fp32

    def constrained(self, loss: torch.Tensor, weights: EdgeWeights) -> torch.Tensor:
        """``loss`` under the run's resource constraint, with the expected cost under
        ``weights``; ``loss`` itself in an unconstrained run."""
        constraint = self.context.constraint
        return loss if constraint is None else constraint.apply(loss, weights)

    def weight_step(self, train: Batch, weights: EdgeWeights | None = None) -> torch.Tensor:
        """One SGD step of the network weights under fixed edge weights: ``weights``, else
        :meth:`search_weights`."""
        weights = {group: w.detach() for group, w in (self.search_weights() if weights is None else weights).items()}
        loss = self.loss(train, weights)
        self.weight_optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.weight_optimizer)  # clip the true gradients (a no-op but under fp16)
        self.weight_recipe.clip(self.supernet.weight_parameters())
        self.scaler.step(self.weight_optimizer)
        self.scaler.update()
        return loss.detach()

    def learning_rate(self, epoch: int) -> float:
        recipe = self.weight_recipe
        return cosine_annealing(recipe.lr, recipe.lr_min, epoch, self.supernet_epochs())

    def step(self) -> None:
        """One epoch of search, then a history record."""
        lr = self.learning_rate(self.epochs_done)
        for group in self.weight_optimizer.param_groups:
            group["lr"] = lr
        self.supernet.train()
        val_loss, train_loss = self.search_epoch(lr)
        if not (math.isfinite(train_loss) and (val_loss is None or math.isfinite(val_loss))):
            raise TrainingDiverged(f"{self.name}: supernet loss became {train_loss} (train), {val_loss} "
                                   f"(validation) in epoch {self.epochs_done + 1}")
        self.history.append(self._record(lr, train_loss, val_loss))
        self.epochs_done += 1

    def batches(self, split: DeviceSplit) -> Iterator[Batch]:
        """One epoch of augmented batches of ``split`` in the generator's order."""
        batch_size = self.context.protocol.search.supernet.batch_size
        for images, labels in shuffled_batches(split, batch_size, self.generator):
            yield Batch(self.augment(images, self.generator), labels)

    def search_epoch(self, lr: float) -> tuple[float | None, float]:
        """One epoch over search-train, each training batch paired with a validation batch
        for :meth:`search_step`; returns the mean (validation, training) losses, the former
        None where no step of the epoch scored its validation batch."""
        data, batch_size = self.context.data, self.context.protocol.search.supernet.batch_size
        val_batches = endless_batches(data.search_val, batch_size, self.generator)
        val_sum, train_sum = torch.zeros((), device=self.context.device), torch.zeros((), device=self.context.device)
        val_seen = train_seen = 0
        for train in self.batches(data.search_train):
            val_images, val_labels = next(val_batches)
            val = Batch(self.augment(val_images, self.generator), val_labels)
            val_loss, train_loss = self.search_step(train, val, lr)
            if val_loss is not None:
                val_sum += val_loss * len(val_labels)
                val_seen += len(val_labels)
            train_sum += train_loss * len(train.labels)
            train_seen += len(train.labels)
        if val_seen == 0:  # every validation step of the method fell in other epochs (ProxylessNAS' every 5th)
            return None, (train_sum / train_seen).item()
        val_loss, train_loss = torch.stack([val_sum / val_seen, train_sum / train_seen]).tolist()  # one host sync
        return val_loss, train_loss

    def _record(self, lr: float, train_loss: float, val_loss: float | None) -> dict[str, Any]:
        with torch.no_grad():
            weights = self.edge_weights()
        genotype = self.derive(weights)
        accuracy = evaluate(WeightedSupernet(self.supernet, self.record_weights(weights), self.sparse_weights),
                            self.context.data.search_val, self.precision.name)
        record = {
            "epoch": self.epochs_done + 1,
            "lr": lr,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "supernet_val_acc": accuracy,
            "weights": {group: rounded(w.tolist()) for group, w in weights.items()},
            "genotype": genotype.to_dict(),
            "skip_share": self.context.space.skip_share(genotype),
        }
        if self.context.constraint is not None:
            record["expected_cost"] = self.context.constraint.cost_model.expected(weights).item()
        return record

    def record_weights(self, weights: EdgeWeights) -> EdgeWeights:
        """The weights the supernet's accuracy in the history is measured under: the
        deterministic edge weights unless overridden."""
        return weights

    def derive(self, weights: EdgeWeights) -> Hashable:
        """The discrete architecture the weights stand for: DARTS' derivation unless overridden."""
        return derive_genotype(weights)

    def result(self) -> SearchResult:
        """The derived architecture; the supernet's accuracy is not what chose it, so no val_acc."""
        with torch.no_grad():
            arch = self.derive(self.edge_weights())
        return SearchResult(arch, None, details={"operations": list(self.operation_names), "epochs": self.history})

    # -- state -----------------------------------------------------------------------
    def tensor_state(self) -> TensorState:
        tensors = {
            "supernet": self.supernet.state_dict(),
            "weight_optimizer": self.weight_optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }
        if self.arch_optimizer is not None:
            tensors["arch_optimizer"] = self.arch_optimizer.state_dict()
        if self.scaler.is_enabled():
            tensors["scaler"] = self.scaler.state_dict()
        return tensors

    def load_tensor_state(self, tensors: TensorState) -> None:
        require_tensors(self.name, tensors)
        self.supernet.load_state_dict(tensors["supernet"])
        self.weight_optimizer.load_state_dict(tensors["weight_optimizer"])
        if self.arch_optimizer is not None:
            self.arch_optimizer.load_state_dict(tensors["arch_optimizer"])
        if self.scaler.is_enabled():
            self.scaler.load_state_dict(tensors["scaler"])
        self.generator.set_state(tensors["generator"])


class BilevelSearch(SupernetSearch):
    """DARTS' bilevel alternation: per batch pair an architecture step on the validation
    batch (the method's :meth:`architecture_gradients`), then a weight step on the
    training batch."""

    @abstractmethod
    def architecture_gradients(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, Sequence[torch.Tensor]]:
        """The validation loss and its gradients with respect to the architecture parameters
        (in :meth:`Supernet.arch_parameters` order; zeros for a cell type the supernet does
        not have, e.g. normal cells in a 2-cell one). ``lr`` is the weights' current
        learning rate (second-order DARTS' xi)."""

    def architecture_step(self, train: Batch, val: Batch, lr: float) -> torch.Tensor:
        """One Adam step of the architecture parameters; returns the validation loss."""
        val_loss, grads = self.architecture_gradients(train, val, lr)
        for alpha, grad in zip(self.supernet.arch_parameters(), grads, strict=True):
            alpha.grad = grad
        self.arch_optimizer.step()
        return val_loss.detach()

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Architecture update, then weight update: (validation loss, training loss)."""
        return self.architecture_step(train, val, lr), self.weight_step(train)


def rounded(rows: Sequence[Sequence[float]]) -> list[list[float]]:
    """``rows`` of weights to the history's precision (``WEIGHTS_DIGITS``)."""
    return [[float(f"{v:.{WEIGHTS_DIGITS}g}") for v in row] for row in rows]
