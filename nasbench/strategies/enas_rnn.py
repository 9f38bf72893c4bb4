"""ENAS' recurrent-cell search on Penn Treebank (Pham et al., ICML 2018, Sect. 2.1-2.2, 3.1;
official code github.com/melodyguan/enas, src/ptb/ and scripts/ptb_search.sh), what
:class:`~nasbench.strategies.enas.Enas` runs on the ``enas-rnn`` space.

Every epoch has ENAS' two phases (Sect. 2.2). First the shared weights
(:mod:`nasbench.spaces.recurrent_cell.shared`): one pass over the training split by the
protocol's search stage of ``[language_model]`` (:func:`~nasbench.language_model.train_epoch`:
sizes, SGD, weight decay, dropouts, windows, clipping), each window training the path of a
cell the controller samples for it. Then the controller: ``controller_steps`` REINFORCE
updates of ``controller_aggregate`` samples each, a sample rewarded by c / ppl, its
perplexity on one window of the validation split under the shared weights, plus the entropy
bonus, against the rewards' moving average (:class:`~nasbench.strategies.controller.PolicyGradient`).
At the end ``derive_samples`` cells are sampled and the one of lowest perplexity on a
validation window is the result (Sect. 2.2, deriving architectures).

Settings: the controller's are the official PTB search's (the constants below, with their
sources). The phase's sizes come from the protocol's ``[search.enas]``, which scales the
controller phase for every ENAS search: the official PTB script trains 100 updates of 10
samples an epoch (ptb_search.sh:34-35, the sync-replicas optimiser averaging the 10), while
the protocol's full and proxy sections hold the micro search's 30 of 10, and smoke and quick
fewer, so that they stay runs of seconds and minutes.

Deviations from the official code: the controller chooses among the paper's 4 activations
(its PTB controller, built without ``num_funcs``, chooses among 2: ptb_enas_controller.py:25,
main.py:143-159); the entropy bonus is each decision's entropy, not the chosen option's
-p log p (ptb_enas_controller.py:138, 161); the shared weights are the paper's, one matrix
per pair of nodes, with the search cell's batch norm on every node but not on the output
(the shared module says why); they train by the protocol's search recipe (DARTS', as every
recurrent search here) rather than ENAS' fixed 35-word windows at learning rate 0.25
decayed from epoch 12 (ptb_search.sh:11, 22-26).
"""
from __future__ import annotations

import math
import random
from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from nasbench.corpus import batchify, window
from nasbench.language_model import train_epoch
from nasbench.spaces.language_model import ACTIVATIONS
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch
from nasbench.spaces.recurrent_cell.shared import shared_language_model
from nasbench.strategies.base import Strategy
from nasbench.strategies.context import SearchContext
from nasbench.strategies.controller import (
    AnchorController,
    Decisions,
    HoldsController,
    PolicyGradient,
    Sample,
)
from nasbench.strategies.enas import Enas, EnasBudget
from nasbench.training import TrainingDiverged
from nasbench.types import SearchResult, TensorState, derive_seed

CONTROLLER_HIDDEN = 100
"""One LSTM layer of 100 units (main.py:145-146; the paper's controller size, Sect. 2.1)."""
TEMPERATURE = 5.0
"""Logits divided by it before the tanh (ptb_search.sh:37)."""
TANH_CONSTANT = 2.5
"""Logits squashed to 2.5 tanh(logits / temperature) (ptb_search.sh:36)."""
CONTROLLER_LR = 1e-3
"""Adam (main.py:156), learning rate 1e-3 never decayed (ptb_search.sh:32, main.py:151-152)."""
ENTROPY_WEIGHT = 1e-3
"""Of the entropy bonus added to the reward (ptb_search.sh:38)."""
BASELINE_DECAY = 0.99
"""Of the rewards' moving average (main.py:72's default; the script leaves it)."""
REWARD_CONSTANT = 80.0
"""The reward is 80 / ppl, ppl = exp(mean NLL of one validation window) (ptb_enas_controller.py:178-181,
ptb_enas_child.py:248-256)."""
DISTANCE_PENALTY = 6.0
"""Node i's logit of reading node j is lowered by (i - j)^2 / 6, favouring near nodes
(ptb_enas_controller.py:126-127; not in the paper)."""
ANCHOR_OFFSET = 0.1
"""The chosen node's anchor enters the next LSTM step divided by 0.1 + (i - j)
(ptb_enas_controller.py:143)."""
FIXED_FIRST = "tanh"
"""Node 0's activation under DARTS' averaging rule, which fixes it (as the space samples)."""


class RecurrentController(AnchorController):
    """ENAS' PTB controller (Sect. 2.1, Fig. 1; ptb_enas_controller.py:92-163). Per node an
    LSTM step whose output is the node's anchor and, from node 1 on, the query of the
    attention over the earlier nodes' anchors that picks the node's input; then a step whose
    output gives the activation's logits. An input choice feeds its anchor to the next step,
    an activation its embedding. Under the ``intermediate`` rule node 0's activation is
    fixed (:data:`FIXED_FIRST`) and not decided."""

    def __init__(self, steps: int, average: str, hidden: int = CONTROLLER_HIDDEN, temperature: float = TEMPERATURE,
                 tanh_constant: float = TANH_CONSTANT):
        super().__init__(len(ACTIVATIONS), hidden, temperature, tanh_constant)
        self.steps, self.average = steps, average
        self.fixed_first = None if average == "loose-ends" else FIXED_FIRST

    def decision_count(self) -> int:
        """An input and an activation per node 1..N, and node 0's activation unless fixed."""
        return 2 * self.steps + (self.fixed_first is None)

    def forward(self, generator: torch.Generator | None = None, decisions: tuple[int, ...] | None = None) -> Sample:
        """Sample a cell from ``generator``, or score the given ``decisions`` (an earlier
        sample's) under the current policy."""
        if decisions is not None and len(decisions) != self.decision_count():
            raise ValueError(f"{len(decisions)} decisions; a cell of {self.steps} steps takes {self.decision_count()}")
        decide = Decisions(generator, decisions, self.start)
        state, inputs = None, self.start
        anchors: list[torch.Tensor] = []
        keys: list[torch.Tensor] = []
        sources: list[int] = []
        activations: list[str] = []
        for node in range(self.steps + 1):
            state = self.lstm(inputs, state)
            if node:
                distance = torch.arange(node, 0, -1, dtype=state[0].dtype)  # i - j for j = 0..i-1
                scores = self.squash(self.attention(keys, state[0])) - distance ** 2 / DISTANCE_PENALTY
                sources.append(decide.categorical(scores))
                inputs = anchors[sources[-1]] / (ANCHOR_OFFSET + node - sources[-1])
            anchors.append(state[0])
            keys.append(self.attn_anchor(state[0]))
            if node == 0 and self.fixed_first is not None:
                activation = ACTIVATIONS.index(self.fixed_first)
            else:
                state = self.lstm(inputs, state)
                activation = decide.categorical(self.squash(self.op_logits(state[0]).view(-1)))
            activations.append(ACTIVATIONS[activation])
            inputs = self.op_embedding.weight[activation].unsqueeze(0)
        arch = RecurrentCellArch(activations[0], tuple(zip(activations[1:], sources)), self.average)
        return Sample(arch, tuple(decide.taken), decide.log_prob, decide.entropy)


class RecurrentEnas(HoldsController, Strategy):
    """ENAS on the ``enas-rnn`` space: the controller samples paths of the shared recurrent
    weights and learns from their validation perplexity. One step is one epoch; the budget
    is the search stage's epochs."""

    name = "enas"
    strategy_class = "RL"
    summary = Enas.summary
    spaces = ("enas-rnn",)
    protocol_section = "enas"
    settings_class = EnasBudget
    state_fields = ("epochs_done", "history")
    per_activation = False
    """The shared weights' layout: the paper's (False) or the official code's (True)."""

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.settings = self.method_settings()
        layout = context.space.settings
        self.stage = layout.stage("search")
        corpus = context.data
        torch.manual_seed(derive_seed(context.seed, "shared weights"))
        self.model = shared_language_model(self.stage, layout.cell_steps, corpus.vocab_size,
                                           self.per_activation).to(context.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.stage.lr,
                                         weight_decay=self.stage.weight_decay)
        self.init_controller(context.seed, lambda: RecurrentController(layout.cell_steps, layout.cell_average),
                             lambda controller: PolicyGradient(controller, lr=CONTROLLER_LR,
                                                               entropy_weight=ENTROPY_WEIGHT,
                                                               baseline_decay=BASELINE_DECAY))
        self.train_source = batchify(corpus.train.to(context.device), self.stage.batch_size)
        self.valid_source = batchify(corpus.valid.to(context.device), self.stage.batch_size)
        self.epochs_done = 0
        self.history: list[dict[str, Any]] = []

    def budget(self) -> int:
        return self.stage.epochs

    def steps_done(self) -> int:
        return self.epochs_done

    # -- the epoch -------------------------------------------------------------------
    def step(self) -> None:
        """The shared weights over the training split, then the controller's updates."""
        # dropout draws from the global generator: seeded per epoch, so that a search
        # resumed at an epoch boundary draws the same masks
        torch.manual_seed(derive_seed(self.context.seed, "dropout", self.epochs_done))
        with self.sampled_paths():
            train_nll = train_epoch(self.model, self.optimizer, self.train_source, self.stage, self.rng)
        if not math.isfinite(train_nll):
            raise TrainingDiverged(f"the shared weights' training loss became {train_nll} in epoch "
                                   f"{self.epochs_done + 1}")
        updates = [self.controller_update() for _ in range(self.settings.controller_steps)]
        self.history.append({
            "epoch": self.epochs_done + 1, "train_nll": train_nll,
            "rewards": [u["reward"] for u in updates], "entropies": [u["entropy"] for u in updates],
            "valid_perplexities": [u["valid_perplexity"] for u in updates], "baseline": self.policy.baseline})
        self.epochs_done += 1

    @contextmanager
    def sampled_paths(self) -> Iterator[None]:
        """Within the block every training forward pass of the model, one per window of
        :func:`train_epoch`, runs a new cell the controller samples (Sect. 2.2)."""
        def draw(module: torch.nn.Module, args: Any) -> None:
            if module.training:
                with torch.no_grad():
                    self.model.cell.use(self.controller(self.controller_generator).arch)

        handle = self.model.register_forward_pre_hook(draw)
        try:
            yield
        finally:
            handle.remove()

    def controller_update(self) -> dict[str, float]:
        """One policy update over ``controller_aggregate`` samples, each rewarded by
        80 / ppl on its own validation window; the samples' mean reward (entropy bonus
        included), entropy and perplexity."""
        perplexities = []

        def reward(sample: Sample) -> float:
            perplexities.append(self.path_perplexity(sample.arch, self.reward_window(self.rng)))
            return REWARD_CONSTANT / perplexities[-1]

        scored = self.policy.update(self.controller_generator, reward, self.settings.controller_aggregate)
        count = len(scored)
        return {"reward": sum(s["reward"] for s in scored) / count,
                "entropy": sum(s["entropy"] for s in scored) / count,
                "valid_perplexity": sum(perplexities) / count}

    # -- scoring a path ----------------------------------------------------------------
    def reward_window(self, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
        """``bptt`` rows of the validation split's ``batch_size`` columns at a uniformly
        random row, with their targets (ptb_enas_child.py:123-125, data_utils.py:27-34)."""
        rows = self.valid_source.shape[0]
        length = min(self.stage.bptt, rows - 1)
        return window(self.valid_source, rng.randrange(rows - length), length)

    def path_perplexity(self, arch: RecurrentCellArch, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        """exp(mean NLL) of ``arch``'s path on ``batch`` under the shared weights, without
        dropout, from a zero state (ptb_enas_child.py:248-256)."""
        inputs, targets = batch
        self.model.eval()
        self.model.cell.use(arch)
        with torch.no_grad():
            log_probs, _, _ = self.model(inputs, self.model.init_state(inputs.shape[1]))
            nll = F.nll_loss(log_probs.flatten(0, 1), targets.flatten())
        return float(torch.exp(nll.double()))

    # -- the result ------------------------------------------------------------------
    def result(self) -> SearchResult:
        """The lowest-perplexity of ``derive_samples`` sampled cells, each on its own
        validation window (drawn from generators of the run's seed: the same choice on resume)."""
        generator = torch.Generator().manual_seed(derive_seed(self.context.seed, "derive"))
        windows = random.Random(derive_seed(self.context.seed, "derive windows"))
        space, candidates = self.context.space, []
        for index in range(self.settings.derive_samples):
            with torch.no_grad():
                arch = self.controller(generator).arch
            candidates.append({"index": index, "arch": space.to_dict(arch),
                               "val_perplexity": self.path_perplexity(arch, self.reward_window(windows))})
        best = min(candidates, key=lambda c: (c["val_perplexity"], c["index"]))
        return SearchResult(space.from_dict(best["arch"]), None, details={
            "controller_epochs": self.history, "derive_candidates": candidates}, val_perplexity=best["val_perplexity"])

    # -- state -----------------------------------------------------------------------
    def tensor_state(self) -> TensorState:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), **self.controller_tensors()}

    def load_tensor_state(self, tensors: TensorState) -> None:
        self.model.load_state_dict(tensors["model"])
        self.optimizer.load_state_dict(tensors["optimizer"])
        self.load_controller_tensors(tensors)
