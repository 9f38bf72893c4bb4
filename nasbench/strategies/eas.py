"""EAS (Cai, Chen, Zhang, Yu & Wang, "Efficient Architecture Search by Network
Transformation", AAAI 2018; official code github.com/han-cai/EAS, cited below by file and
line under ``code/``): a meta-controller grows the current network by function-preserving
Net2Wider and Net2Deeper steps, and every child starts from its parent's trained weights.

The meta-controller (meta_controller/base_controller.py; settings
arch_search/arch_search_convnet_net2net.py L175-208): the network's layer descriptions
(``conv-<filters>-<kernel>``, ``pool``, ``fc-<units>``) embedded in 16 dimensions (uniform
in +-sqrt(3): unit variance, base_controller.py L52-65) are read by a one-layer
bidirectional LSTM of 50 units a direction. The Net2Wider actor decides for every layer
below its widest width, by a sigmoid of a linear map of the encoder's output there, whether
to widen it (L183-204). The Net2Deeper actor is an LSTM cell started from the encoder's
final states that takes three decisions, each fed back as an embedding: the block (the
convolution blocks and the fully connected layers), the place in it (10 outputs, masked to
the block's layers) and, in a convolution block, the kernel size 1, 3 or 5 (L240-279). An
episode is the space's ``wider_actions`` Net2Wider actions, then its ``deeper_actions``
Net2Deeper actions, the network encoded again before each (the official 4 and 5,
arch_search L291-320).

REINFORCE (rl_controller.py L189-239, arch_manager.py L200-223, arch_search L346-357):
reward tan(acc * pi / 2) of the child's validation accuracy, minus a baseline that moves
towards each batch's mean reward by 0.95 (the official update, ``avg += 0.95 * (mean -
avg)`` from 0, before it is subtracted); the log-probability of every decision of an episode
times its advantage, averaged over the batch; entropy bonus 1e-5 (of the mean entropy of a
decision); Adam at 2e-3. ``[search.eas] children_per_update`` networks per update (the
official batch of 10).

Children: the first step trains the start network from scratch; every later step applies an
episode to the start network's trained weights (with Net2Net's noise where ``[search.eas]
noise`` says, as the official code does) and trains the child by the protocol's candidate
stage on search-train, scored on search-validation. Every episode starts from the start
network, as the official convnet search does (``get_start_net(copy=True)`` for each network
of each batch, arch_search L254): the meta-controller learns which transformations of it
pay, and the answer is the best child. (Restarting the search from a better network is a
new search with that network as the start, which the official code leaves to its user.)
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasbench.data import Augmentation
from nasbench.errors import NasbenchError
from nasbench.settings import require
from nasbench.spaces.plain_cnn.arch import (
    KERNELS,
    Deepen,
    LayerRef,
    PlainCnn,
    Transformation,
)
from nasbench.spaces.plain_cnn.morphism import transform
from nasbench.spaces.plain_cnn.network import PlainCnnNetwork
from nasbench.spaces.plain_cnn.space import PlainCnnSpace
from nasbench.strategies.base import Strategy
from nasbench.strategies.context import SearchContext
from nasbench.strategies.controller import Decisions, HoldsController
from nasbench.training import build_model, train_network
from nasbench.types import SearchResult, TensorState, Trial, derive_seed

EMBEDDING = 16
"""Layer-description and decision embeddings (arch_search L181)."""
HIDDEN = 50
"""Encoder LSTM units a direction (arch_search L182-184: ``bi_lstm``, one layer)."""
PLACES = 10
"""The Net2Deeper actor's outputs for the place in a block (arch_search L199)."""
CONTROLLER_LR = 2e-3
"""Adam's learning rate (arch_search L207-208)."""
ENTROPY_WEIGHT = 1e-5
"""arch_search L206."""
BASELINE_STEP = 0.95
"""How far the baseline moves towards a batch's mean reward (arch_search L236, arch_manager.py L222)."""
STATISTICS_IMAGES = 64
"""Training images an inserted layer's batch-norm statistics come from (arch_search L323: one batch of 64)."""


def reward(val_acc: float) -> float:
    """EAS' reward: tan(acc * pi / 2), which weighs a gain more the higher the accuracy (arch_manager.py L205-207)."""
    return math.tan(val_acc * math.pi / 2)


@dataclass(frozen=True)
class Episode:
    """The transformations the meta-controller chose, the child's architecture, and the
    decisions with their summed log-probability and mean entropy."""

    arch: PlainCnn
    steps: tuple[Transformation, ...]
    decisions: tuple[int, ...]
    log_prob: torch.Tensor
    entropy: torch.Tensor


class MetaController(nn.Module):
    """EAS' meta-controller (the module docstring) for the networks of ``space``."""

    def __init__(self, space: PlainCnnSpace):
        super().__init__()
        self.space = space
        self.vocabulary = {token: i for i, token in enumerate(space.vocabulary())}
        self.tokens = nn.Embedding(len(self.vocabulary), EMBEDDING)
        nn.init.uniform_(self.tokens.weight, -math.sqrt(3), math.sqrt(3))
        self.encoder = nn.LSTM(EMBEDDING, HIDDEN, bidirectional=True)
        self.wider = nn.Linear(2 * HIDDEN, 1)
        blocks = space.layout.blocks + 1
        self.deeper = nn.LSTMCell(EMBEDDING, 2 * HIDDEN)
        self.deeper_inputs = nn.ModuleList(nn.Embedding(n, EMBEDDING) for n in (1, blocks, PLACES))
        for embedding in self.deeper_inputs:
            nn.init.uniform_(embedding.weight, -math.sqrt(3), math.sqrt(3))
        self.deeper_heads = nn.ModuleList(nn.Linear(2 * HIDDEN, n) for n in (blocks, PLACES, len(KERNELS)))

    def encode(self, arch: PlainCnn) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The encoder's output at every layer description, and its final (h, c), both directions concatenated."""
        codes = torch.tensor([self.vocabulary[token] for token, _ in arch.tokens()])
        outputs, (h, c) = self.encoder(self.tokens(codes).unsqueeze(1))
        return outputs.squeeze(1), (h.reshape(1, -1), c.reshape(1, -1))

    def forward(self, arch: PlainCnn, generator: torch.Generator | None = None,
                decisions: tuple[int, ...] | None = None) -> Episode:
        """An episode from ``arch``: sampled from ``generator``, or the given ``decisions``
        (an earlier episode's from the same ``arch``) scored under the current policy."""
        decide = Decisions(generator, decisions, self.wider.bias)
        steps: list[Transformation] = []
        layout = self.space.layout
        for _ in range(layout.wider_actions):
            outputs, _ = self.encode(arch)
            sites = [(position, step) for position, (_, ref) in enumerate(arch.tokens())
                     if ref is not None and (step := self.space.wider(arch, ref)) is not None]
            if not sites:
                continue
            chosen = decide.bernoulli(self.wider(outputs[[p for p, _ in sites]]).view(-1))
            for (_, step), bit in zip(sites, chosen.tolist()):
                if bit:
                    steps.append(step)
                    arch = arch.apply(step)
        for _ in range(layout.deeper_actions):
            step = self._deeper(arch, decide)
            steps.append(step)
            arch = arch.apply(step)
        count = max(1, len(decide.taken))
        return Episode(arch, tuple(steps), tuple(decide.taken), decide.log_prob, decide.entropy / count)

    def _deeper(self, arch: PlainCnn, decide: Decisions) -> Deepen:
        """One Net2Deeper action: block, place, kernel (none among fully connected layers)."""
        _, state = self.encode(arch)
        counts = torch.tensor(arch.layer_counts())
        state = self.deeper(self.deeper_inputs[0].weight, state)
        block = decide.categorical(self.deeper_heads[0](state[0]).view(-1).masked_fill(counts == 0, -math.inf))
        state = self.deeper(self.deeper_inputs[1].weight[block].unsqueeze(0), state)
        beyond = torch.arange(PLACES) >= counts[block]
        place = decide.categorical(self.deeper_heads[1](state[0]).view(-1).masked_fill(beyond, -math.inf))
        kernel = None
        if block != arch.fc_block:
            state = self.deeper(self.deeper_inputs[2].weight[place].unsqueeze(0), state)
            kernel = KERNELS[decide.categorical(self.deeper_heads[2](state[0]).view(-1))]
        return Deepen(LayerRef(block, place), kernel)


class EasPolicy:
    """REINFORCE as EAS trains its meta-controller (the module docstring)."""

    def __init__(self, controller: nn.Module, lr: float = CONTROLLER_LR):
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.baseline = 0.0

    def advantages(self, accuracies: list[float]) -> list[float]:
        """Each reward minus the baseline, after the baseline moved towards their mean."""
        rewards = [reward(acc) for acc in accuracies]
        self.baseline += BASELINE_STEP * (sum(rewards) / len(rewards) - self.baseline)
        return [r - self.baseline for r in rewards]

    def update(self, episodes: list[Episode], accuracies: list[float]) -> None:
        advantages = self.advantages(accuracies)
        objective = sum(a * e.log_prob for a, e in zip(advantages, episodes)) / len(episodes)
        entropy = sum(e.entropy for e in episodes) / len(episodes)
        self.optimizer.zero_grad(set_to_none=True)
        (-(objective + ENTROPY_WEIGHT * entropy)).backward()
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = float(state["baseline"])


@dataclass(frozen=True)
class EasSettings:
    """EAS' own settings: ``children_per_update`` networks per meta-controller update (the
    official batch of 10, arch_search L218) and whether the transformations add Net2Net's
    noise (the official code does, L211-214)."""

    children_per_update: int
    noise: bool

    def check(self, where: str) -> None:
        require(self.children_per_update >= 1, where, "children_per_update must be >= 1")


class Eas(HoldsController, Strategy):
    """EAS: the meta-controller grows the trained start network; children inherit its weights."""

    name = "eas"
    strategy_class = "RL"
    summary = ("EAS: a bidirectional-LSTM meta-controller trained by REINFORCE widens and deepens the start network "
               "by function-preserving Net2Net steps; children start from its trained weights")
    spaces = ("plain-cnn",)
    protocol_section = "eas"
    settings_class = EasSettings
    state_fields = ("parent", "pending", "batch", "history")

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.settings = self.method_settings()
        self.space: PlainCnnSpace = context.space
        self.init_controller(context.seed, lambda: MetaController(self.space), EasPolicy)
        self.parent: dict[str, Any] | None = None
        """The network children start from: its trial index, architecture and accuracy."""
        self.pending: list[dict[str, Any]] = []
        """The batch's trained children: their decisions and accuracy."""
        self.batch: list[int] = []
        """The trial indices of the batch's children, failed ones included."""
        self.history: list[dict[str, Any]] = []
        self.weights: dict[str, dict[str, torch.Tensor]] = {}
        """On the CPU: the trained start network's state dict (``parent``)."""

    def budget(self) -> int:
        return self.context.protocol.search.candidates

    def step(self) -> None:
        """Train the start network, or the next child of the batch (then, if the batch is
        complete, update the meta-controller)."""
        index = len(self.trials)
        if self.parent is None:
            arch = self.space.start()
            network = build_model(self.space, arch, self.context.protocol.candidate, self.context.device,
                                  derive_seed(self.context.seed, "candidate", index))
            trial = self._train(network, index)
            if trial.val_acc is not None:
                self.parent = {"trial": index, "arch": trial.arch, "val_acc": trial.val_acc}
                self.weights["parent"] = _cpu(network)
            return
        parent_arch = self.space.from_dict(self.parent["arch"])
        with torch.no_grad():
            episode = self.controller(parent_arch, generator=self.controller_generator)
        network = self.child_network(episode.steps, index)
        trial = self._train(network, index)
        self.batch.append(index)
        if trial.val_acc is not None:  # a child that failed to train gives no reward
            self.pending.append({"decisions": list(episode.decisions), "val_acc": trial.val_acc})
        if len(self.batch) == self.settings.children_per_update or self.finished():
            self._end_batch()

    def child_network(self, steps: tuple[Transformation, ...], index: int) -> PlainCnnNetwork:
        """The parent's trained network after ``steps``, on the device (child ``index``'s
        random mappings and noise drawn from its own seed)."""
        parent = self.space.build(self.space.from_dict(self.parent["arch"]), self.context.protocol.candidate.network)
        parent.load_state_dict(self.weights["parent"])
        device = self.context.device
        images = Augmentation(device).normalise(self.context.data.search_train.images[:STATISTICS_IMAGES])
        generator = torch.Generator().manual_seed(derive_seed(self.context.seed, "morphism", index))
        return transform(parent.to(device), steps, generator, images, noise=self.settings.noise)

    def _train(self, network: nn.Module, index: int) -> Trial:
        """Train ``network`` by the candidate stage and record its trial; a failure (but bad
        input or missing data) becomes a trial with its error."""
        arch = self.space.to_dict(network.arch)
        seed = derive_seed(self.context.seed, "candidate", index)
        start = time.perf_counter()
        try:
            val_acc, error = train_network(
                network, self.context.protocol.candidate, self.context.data.search_train,
                self.context.data.search_val, seed, description=f"child {index}",
                show_progress=self.context.show_progress,
                checkpoint=self.context.epoch_checkpoint(f"candidate {index}", arch),
                precision=self.context.protocol.precision, compile=self.context.compile).accuracy, None
        except NasbenchError:
            raise
        except Exception as err:  # a failed child is data, not the end of the search
            val_acc, error = None, "".join(traceback.format_exception_only(err)).strip()
        trial = Trial(index, arch, val_acc, time.perf_counter() - start, error)
        self.trials.append(trial)
        self.context.on_trial(trial)
        return trial

    def _end_batch(self) -> None:
        """The meta-controller's update on the batch."""
        if self.pending:
            parent = self.space.from_dict(self.parent["arch"])
            episodes = [self.controller(parent, decisions=tuple(c["decisions"])) for c in self.pending]
            accuracies = [c["val_acc"] for c in self.pending]
            self.policy.update(episodes, accuracies)
            self.history.append({"epoch": len(self.history) + 1, "children": len(episodes),
                                 "rewards": [sum(map(reward, accuracies)) / len(accuracies)],
                                 "entropies": [sum(e.entropy.item() for e in episodes) / len(episodes)],
                                 "baseline": self.policy.baseline})
        self.pending, self.batch = [], []

    def result(self) -> SearchResult:
        """The network with the best validation accuracy (the start network, unless a child beat it)."""
        best = self.best_trial()
        return SearchResult(self.space.from_dict(best.arch), best.val_acc, details={
            "controller_epochs": self.history, "child_trainings": len(self.trials)})

    def tensor_state(self) -> TensorState:
        return {**self.controller_tensors(), "weights": self.weights}

    def load_tensor_state(self, tensors: TensorState) -> None:
        self.load_controller_tensors(tensors)
        self.weights = dict(tensors["weights"])


def _cpu(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}
