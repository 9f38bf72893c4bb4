"""ENAS (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018)
on either of its search spaces: the micro search on the shared cell space, the macro search
on the enas-macro space (Sect. 2.3-2.4). What differs between them, the controller, the
supernet and how an architecture becomes a path of it, is an :class:`EnasSpace`
(:data:`ENAS_SPACES`); the search itself is one.

Every epoch has two phases (Sect. 2.2). First the shared weights: one pass over
search-train, each batch training the single path of an architecture the controller
samples. Then the controller (:class:`~nasbench.strategies.controller.CellController`,
:class:`~nasbench.strategies.macro_controller.MacroController`): ``controller_steps``
REINFORCE updates, each over ``controller_aggregate`` sampled architectures, rewarded by
their accuracy on one search-validation batch under the shared weights (batch norm as the
official code scores each space's samples, :attr:`EnasSpace.batch_statistics`) plus an
entropy bonus, against an exponential moving average of the rewards
(:class:`~nasbench.strategies.controller.PolicyGradient`; in the macro search also the KL
penalty on the skip connections). At the end, ``derive_samples`` architectures are sampled
and the one with the highest accuracy on a search-validation batch is the result (Sect. 2.2:
"sample several models ... take only the model with the highest reward").

Settings (Sect. 3.2), the paper's for both searches: shared weights by SGD with Nesterov
momentum, learning rate by cosine annealing with warm restarts from 0.05 to 0.001 (T0 = 10,
Tmul = 2), l2 1e-4 (weight decay 2e-4 as the official code applies it, unclipped:
:data:`ENAS_WEIGHTS`); the controller by Adam at 3.5e-4, its logits on the cell space squashed
and biased as the official micro search's (:data:`~nasbench.strategies.controller.MICRO_SQUASH`). The official macro search script
departs from them (minimum learning rate 5e-4, weight decay 2.5e-4, controller Adam at 1e-3,
50 updates of 20 samples per epoch); the protocol's ``[search.enas]`` section sets the
controller phase for both spaces, and the supernet's size comes from ``[search.supernet]``
(on enas-macro: its channels, at the ``[enas_macro]`` layout's depth).
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nasbench.data import endless_batches
from nasbench.protocol import SupernetBudget
from nasbench.settings import require
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.cell.supernet import Supernet, path_weights
from nasbench.spaces.enas_macro import supernet as macro_supernet
from nasbench.strategies.context import SearchContext
from nasbench.strategies.controller import (
    MICRO_SQUASH,
    CellController,
    HoldsController,
    PolicyGradient,
)
from nasbench.strategies.macro_controller import MacroController, skip_penalty
from nasbench.strategies.supernet_search import Batch, SupernetSearch, WeightRecipe
from nasbench.training import cosine_annealing
from nasbench.types import SearchResult, TensorState, derive_seed

ENAS_WEIGHTS = WeightRecipe(lr=0.05, lr_min=0.001, momentum=0.9, weight_decay=2e-4, grad_clip=0.0, nesterov=True)
"""The paper's l2 of 1e-4 as the official code applies it, ``1e-4 * sum(w ** 2)`` added to the
loss (src/utils.py:117-123), a gradient of 2e-4 * w: SGD's weight decay 2e-4. No clipping: the
scripts ask for each tensor's norm clipped at 5 (``--child_grad_bound``, ``clip_mode="norm"``),
but the code keeps the unclipped gradient (src/utils.py:141-150), so its searches ran unclipped."""
RESTART_PERIOD = 10
RESTART_MULTIPLIER = 2
CONTROLLER_LR = 3.5e-4


def cosine_with_restarts(lr: float, lr_min: float, epoch: int, period: int, multiplier: int) -> float:
    """SGDR's learning rate at ``epoch``: cosine annealing over periods of ``period`` epochs,
    each ``multiplier`` times longer than the one before."""
    while epoch >= period:
        epoch -= period
        period *= multiplier
    return cosine_annealing(lr, lr_min, epoch, period)


@contextmanager
def scoring_mode(module: nn.Module, norms: Sequence[_BatchNorm] | None) -> Iterator[None]:
    """``module`` as ENAS scores a path, its mode restored after: with ``norms`` None in eval
    mode (running statistics); else in training mode with the batch norms ``norms``
    normalising each batch by its own statistics, their running statistics neither read nor
    updated (a training-mode batch norm with ``track_running_stats`` off does neither, nor
    counts the batch), so that scoring leaves the shared weights' buffers as training left them."""
    training = module.training
    module.train(norms is not None)
    norms = norms or ()
    tracking = [norm.track_running_stats for norm in norms]
    for norm in norms:
        norm.track_running_stats = False
    try:
        yield
    finally:
        for norm, track in zip(norms, tracking):
            norm.track_running_stats = track
        module.train(training)


@dataclass(frozen=True)
class EnasSpace:
    """What ENAS needs of a space it searches: a controller whose samples (``.arch``, with
    ``log_prob`` and ``entropy``) are architectures of the space, the shared-weight supernet,
    the supernet weights that run one architecture's path, whether a path is scored with
    batch norm on the batch's own statistics, and any penalty of a sample that the policy
    descends besides REINFORCE."""

    controller: Callable[[SearchSpace], nn.Module]
    supernet: Callable[[SearchSpace, SupernetBudget], nn.Module]
    path: Callable[[Hashable, torch.device], dict[str, torch.Tensor]]
    batch_statistics: bool
    """As the official code scores the controller's samples (github.com/melodyguan/enas): the
    micro child always in training mode (src/cifar10/micro_child.py:243-244, and 804:
    ``build_valid_rl`` with ``is_training=True``; there also with dropout before the
    classifier, line 333, which the cell supernet has not), the macro child in inference
    mode (general_child.py:691, ``is_training=False``)."""
    penalty: Callable[[Any], torch.Tensor] | None = None


ENAS_SPACES: dict[str, EnasSpace] = {
    "cell": EnasSpace(controller=lambda space: CellController(**MICRO_SQUASH, operation_bias=True),
                      supernet=lambda space, budget: Supernet(budget.channels, budget.cells),
                      path=path_weights, batch_statistics=True),
    "enas-macro": EnasSpace(controller=lambda space: MacroController(space.layers),
                            supernet=lambda space, budget: macro_supernet.MacroSupernet(space.layers, budget.channels),
                            path=macro_supernet.path_weights, batch_statistics=False, penalty=skip_penalty),
}
"""The spaces ENAS searches, the micro search's first."""


@dataclass(frozen=True)
class EnasBudget:
    """ENAS' controller phase after each epoch of shared-weight training: ``controller_steps``
    policy updates, each over ``controller_aggregate`` sampled architectures rewarded by their
    accuracy on one search-validation batch; its final choice: the best of
    ``derive_samples`` sampled architectures, each on one search-validation batch."""

    controller_steps: int
    controller_aggregate: int
    derive_samples: int

    def check(self, where: str) -> None:
        require(min(self.controller_steps, self.controller_aggregate, self.derive_samples) >= 1, where,
                 "all values must be >= 1")


class Enas(HoldsController, SupernetSearch):
    """ENAS' micro and macro searches: an LSTM controller samples single paths of the shared
    supernet and learns from their validation accuracy."""

    name = "enas"
    strategy_class = "RL"
    summary = "ENAS: an LSTM controller samples paths of a shared supernet, trained by REINFORCE on their accuracy"
    # ENAS_SPACES' keys, then enas-rnn (task_implementations); a literal: the registry reads it from this source
    spaces = ("cell", "enas-macro", "enas-rnn")
    task_implementations = {"language-model": "enas_rnn:RecurrentEnas"}
    protocol_section = "enas"
    settings_class = EnasBudget
    weight_recipe = ENAS_WEIGHTS
    sparse_weights = True
    state_fields = ("epochs_done", "history")

    def __init__(self, context: SearchContext):
        self.enas_space = ENAS_SPACES[context.space.name]  # make_supernet, called by the base, reads it
        super().__init__(context)
        self.settings = self.method_settings()
        self.init_controller(context.seed, lambda: self.enas_space.controller(context.space),
                             lambda controller: PolicyGradient(controller, lr=CONTROLLER_LR,
                                                               penalty=self.enas_space.penalty))
        self.epoch_updates: list[dict[str, Any]] = []
        self.scoring_norms = ([m for m in self.supernet.modules() if isinstance(m, _BatchNorm)]
                              if self.enas_space.batch_statistics else None)  # found once: a walk of the supernet

    def make_supernet(self, budget: SupernetBudget) -> nn.Module:
        return self.enas_space.supernet(self.context.space, budget)

    def path(self, arch: Hashable) -> dict[str, torch.Tensor]:
        """The supernet weights that run exactly ``arch``."""
        return self.enas_space.path(arch, self.context.device)

    def learning_rate(self, epoch: int) -> float:
        recipe = self.weight_recipe
        return cosine_with_restarts(recipe.lr, recipe.lr_min, epoch, RESTART_PERIOD, RESTART_MULTIPLIER)

    def search_weights(self) -> dict[str, torch.Tensor]:
        """The single path of an architecture the controller samples (no gradient to it)."""
        with torch.no_grad():
            sample = self.controller(self.controller_generator)
        return self.path(sample.arch)

    # -- the controller ----------------------------------------------------------------
    def validation_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """Search-validation batches without augmentation, endlessly, in ``generator``'s order."""
        split = self.context.data.search_val
        for images, labels in endless_batches(split, self.context.protocol.search.supernet.batch_size, generator):
            yield Batch(self.augment.normalise(images), labels)

    def shared_weight_score(self, arch: Hashable, batch: Batch) -> tuple[float, float]:
        """(accuracy, loss) of ``arch``'s path on ``batch``, batch norm as the official code
        scores the space's samples (:func:`scoring_mode`), the shared weights unchanged."""
        with scoring_mode(self.supernet, self.scoring_norms), torch.no_grad():
            logits = self.supernet(batch.images, self.path(arch), True)
            accuracy = (logits.argmax(1) == batch.labels).float().mean()
            scores = torch.stack([accuracy, self.criterion(logits, batch.labels)]).tolist()  # one host sync
        return scores[0], scores[1]

    def controller_step(self, batches: Iterator[Batch], samples: int) -> dict[str, Any]:
        """One policy update over ``samples`` architectures, each rewarded by its accuracy on
        the next of ``batches``; returns the mean reward, entropy, validation loss and, per
        group of the space, share of skip connections of the samples."""
        losses, shares = [], []

        def accuracy(sample: Any) -> float:
            accuracy, loss = self.shared_weight_score(sample.arch, next(batches))
            losses.append(loss)
            shares.append(self.context.space.skip_share(sample.arch))
            return accuracy

        scored = self.policy.update(self.controller_generator, accuracy, samples)
        return {"reward": sum(s["reward"] for s in scored) / samples,
                "entropy": sum(s["entropy"] for s in scored) / samples, "val_loss": sum(losses) / samples,
                "skip_share": {group: sum(s[group] for s in shares) / samples for group in shares[0]}}

    # -- the epoch -------------------------------------------------------------------
    def search_epoch(self, lr: float) -> tuple[float, float]:
        """Shared weights over search-train, then the controller's updates; returns the mean
        validation loss of the controller's samples and the mean training loss."""
        # dropout (the macro networks') draws from the global generator: seeded per epoch,
        # so that a search resumed at an epoch boundary draws the same masks
        torch.manual_seed(derive_seed(self.context.seed, "dropout", self.epochs_done))
        train_sum, train_seen = torch.zeros((), device=self.context.device), 0
        for train in self.batches(self.context.data.search_train):
            train_sum += self.weight_step(train) * len(train.labels)
            train_seen += len(train.labels)
        val_batches = self.validation_batches(self.generator)
        self.epoch_updates = [self.controller_step(val_batches, self.settings.controller_aggregate)
                              for _ in range(self.settings.controller_steps)]
        val_loss = sum(u["val_loss"] for u in self.epoch_updates) / len(self.epoch_updates)
        return val_loss, train_sum.item() / train_seen

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """What ``nasbench bench search-step`` times: a shared-weight step on a sampled path
        and a controller update on one sample rewarded on ``val``."""
        train_loss = self.weight_step(train)
        update = self.controller_step(itertools.repeat(val), samples=1)
        return torch.tensor(update["val_loss"]), train_loss

    def _record(self, lr: float, train_loss: float, val_loss: float) -> dict[str, Any]:
        """The epoch's losses and the controller's reward curve, with the skip share of its
        samples (the KL penalty's target in the macro search), one point per update."""
        updates = self.epoch_updates
        return {"epoch": self.epochs_done + 1, "lr": lr, "train_loss": train_loss, "val_loss": val_loss,
                "rewards": [u["reward"] for u in updates], "entropies": [u["entropy"] for u in updates],
                "skip_shares": [u["skip_share"] for u in updates], "baseline": self.policy.baseline}

    # -- the result ------------------------------------------------------------------
    def result(self) -> SearchResult:
        """The best of ``derive_samples`` sampled architectures on one search-validation
        batch each (drawn from generators of the run's seed: the same choice on resume)."""
        generator = torch.Generator().manual_seed(derive_seed(self.context.seed, "derive"))
        batches = self.validation_batches(torch.Generator(device=self.context.device).manual_seed(
            derive_seed(self.context.seed, "derive batches")))
        candidates = []
        for index in range(self.settings.derive_samples):
            with torch.no_grad():
                arch = self.controller(generator).arch
            accuracy, _ = self.shared_weight_score(arch, next(batches))
            candidates.append({"index": index, "arch": self.context.space.to_dict(arch), "val_acc": accuracy})
        best = max(candidates, key=lambda c: (c["val_acc"], -c["index"]))
        return SearchResult(self.context.space.from_dict(best["arch"]), best["val_acc"], details={
            "controller_epochs": self.history, "derive_candidates": candidates})

    # -- state -----------------------------------------------------------------------
    def tensor_state(self) -> TensorState:
        return {**super().tensor_state(), **self.controller_tensors()}

    def load_tensor_state(self, tensors: TensorState) -> None:
        super().load_tensor_state(tensors)
        self.load_controller_tensors(tensors)
