"""ENAS' micro controller over the cell space: an LSTM that writes a genotype decision by
decision (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML
2018, Sect. 2.3-2.4 and Fig. 5; Zoph & Le's recurrent controller with anchor-point
attention for the inputs).

Per cell type (normal, then reduction, one LSTM state running through both) and per node:
two inputs, each chosen by attention over the anchors of the earlier states, then an
operation for each input; after the node one more LSTM step makes the node's anchor.
Each decision feeds the next step: an input choice passes on its anchor (zero for the cell
inputs), an operation choice its embedding. Logits are divided by the temperature and
squashed by ``tanh_constant * tanh`` (the paper: 5.0 and 2.5); parameters start uniform in
[-0.1, 0.1] (the paper).

Deviation, for the shared space: ENAS may pick the same input twice and has its own 5
operations; the cell space's genotypes take two distinct inputs (the second choice masks
the first) and the 7 DARTS operations without ``none``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.space import NODES, SAMPLED_OPERATIONS

HIDDEN = 100
"""LSTM units (Pham et al., Sect. 2.1: "an LSTM with 100 hidden units")."""
INIT_RANGE = 0.1
TEMPERATURE = 5.0
TANH_CONSTANT = 2.5
CELL_TYPES = ("normal", "reduce")
ENTROPY_WEIGHT = 1e-4
"""The entropy bonus' weight (ENAS' official code, ``controller_entropy_weight`` of its CIFAR-10
scripts, and NNI's ENAS). The seed document reads 0.1, which with the entropy summed over
a genotype's 32 decisions (about 45 nats for a uniform policy) outweighs the reward: on the
task of tests/test_enas.py the target's probability per decision stays at 0.27 under it
(0.97 under 1e-4) and 64% of the decisions match it (97%)."""
BASELINE_DECAY = 0.99
"""Of the rewards' moving average (ENAS' official code, ``controller_bl_dec``)."""


@dataclass(frozen=True)
class Sample:
    """A genotype the controller wrote, with the summed log-probability and entropy of its
    decisions (tensors in the controller's graph when it was not run under no_grad)."""

    genotype: Genotype
    decisions: tuple[int, ...]
    log_prob: torch.Tensor
    entropy: torch.Tensor


class CellController(nn.Module):
    """ENAS' micro-search controller, writing genotypes of the cell space."""

    def __init__(self, hidden: int = HIDDEN, temperature: float = TEMPERATURE, tanh_constant: float = TANH_CONSTANT):
        super().__init__()
        self.temperature, self.tanh_constant = temperature, tanh_constant
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.op_embedding = nn.Embedding(len(SAMPLED_OPERATIONS), hidden)
        self.op_logits = nn.Linear(hidden, len(SAMPLED_OPERATIONS), bias=False)
        self.attn_anchor = nn.Linear(hidden, hidden, bias=False)
        self.attn_query = nn.Linear(hidden, hidden, bias=False)
        self.attn_score = nn.Linear(hidden, 1, bias=False)
        for p in self.parameters():
            nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)

    def forward(self, generator: torch.Generator | None = None, decisions: tuple[int, ...] | None = None) -> Sample:
        """Sample a genotype from ``generator``, or score the given ``decisions`` (what an
        earlier sample returned): their log-probability and entropy under the current policy."""
        if (generator is None) == (decisions is None):
            raise ValueError("give either a generator to sample from or the decisions to score")
        replay = iter(decisions) if decisions is not None else None
        taken: list[int] = []
        log_prob = entropy = self.start.new_zeros(())
        state = None
        inputs = self.start
        cells = {}

        def decide(logits: torch.Tensor, forbidden: int | None = None) -> int:
            nonlocal log_prob, entropy
            logits = self.tanh_constant * torch.tanh(logits / self.temperature)
            if forbidden is not None:
                logits = logits.index_fill(-1, torch.tensor([forbidden], device=logits.device), float("-inf"))
            log_probs = logits.log_softmax(-1)
            choice = (int(torch.multinomial(log_probs.exp(), 1, generator=generator)) if replay is None
                      else next(replay))
            log_prob = log_prob + log_probs[choice]
            entropy = entropy - (log_probs.exp() * log_probs.nan_to_num(neginf=0.0)).sum()
            taken.append(choice)
            return choice

        for cell_type in CELL_TYPES:
            anchors, keys = [], []
            for _ in range(2):  # the cell inputs: zero anchors, keys from the LSTM
                state = self.lstm(inputs, state)
                anchors.append(torch.zeros_like(state[0]))
                keys.append(self.attn_anchor(state[0]))
            edges = []
            for _ in range(NODES):
                sources = []
                for _ in range(2):
                    state = self.lstm(inputs, state)
                    scores = self.attn_score(torch.tanh(torch.cat(keys) + self.attn_query(state[0]))).view(-1)
                    sources.append(decide(scores, forbidden=sources[0] if sources else None))
                    inputs = anchors[sources[-1]]
                for source in sources:
                    state = self.lstm(inputs, state)
                    op = decide(self.op_logits(state[0]).view(-1))
                    inputs = self.op_embedding.weight[op].unsqueeze(0)
                    edges.append((SAMPLED_OPERATIONS[op], source))
                state = self.lstm(inputs, state)  # the node's anchor
                anchors.append(state[0])
                keys.append(self.attn_anchor(state[0]))
                inputs = self.start
            cells[cell_type] = tuple(edges)
        concat = tuple(range(2, NODES + 2))
        genotype = Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat)
        return Sample(genotype, tuple(taken), log_prob, entropy)


class PolicyGradient:
    """REINFORCE for a controller (as NAS-RL and ENAS train theirs): each sample's
    log-probability times its advantage, reward minus baseline, descended by Adam over the
    mean of ``samples`` samples per update. The reward includes the entropy bonus; the
    baseline is the rewards' exponential moving average, starting at 0 and updated before it
    is subtracted (ENAS' official code)."""

    def __init__(self, controller: CellController, lr: float, entropy_weight: float = ENTROPY_WEIGHT,
                 baseline_decay: float = BASELINE_DECAY):
        self.controller = controller
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.entropy_weight, self.baseline_decay = entropy_weight, baseline_decay
        self.baseline = 0.0

    def update(self, generator: torch.Generator, reward: Callable[[Sample], float], samples: int) -> list[dict[str, float]]:
        """One policy update over ``samples`` samples from ``generator``, each scored by
        ``reward``; per sample its reward (entropy bonus included) and entropy."""
        self.optimizer.zero_grad(set_to_none=True)
        scored = []
        for _ in range(samples):
            sample = self.controller(generator)
            entropy = sample.entropy.item()
            total = reward(sample) + self.entropy_weight * entropy
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * total
            (-(total - self.baseline) * sample.log_prob / samples).backward()
            scored.append({"reward": total, "entropy": entropy})
        self.optimizer.step()
        return scored

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = float(state["baseline"])
