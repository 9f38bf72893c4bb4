"""ENAS' micro controller over the cell space: an LSTM that writes a genotype decision by
decision (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML
2018, Sect. 2.3-2.4 and Fig. 5; Zoph & Le's recurrent controller with anchor-point
attention for the inputs).

Per cell type (normal, then reduction, one LSTM state running through both) and per node:
two inputs, each chosen by attention over the anchors of the earlier states, then an
operation for each input; after the node one more LSTM step makes the node's anchor.
Each decision feeds the next step: an input choice passes on its anchor (zero for the cell
inputs), an operation choice its embedding. Logits are divided by the temperature and
squashed by ``tanh_constant * tanh`` (the paper: 5.0 and 2.5), an operation's by
``tanh_constant / op_tanh_reduce``; parameters start uniform in [-0.1, 0.1] (the paper).
ENAS runs it as its official micro search does (:data:`MICRO_SQUASH`): no temperature, tanh
constant 1.1, operations' reduced 2.5-fold, and operation logits biased towards the
separable convolutions, which the paper does not mention (:data:`ENAS_FAVOURED_OPERATIONS`);
the bias is sized for that squash (under the paper's, the two convolutions would start at 88%
of a normal cell's operations instead of 63%). NASNet's use of this controller on the cell
space has neither bias nor squash.

Deviation, for the shared space: ENAS may pick the same input twice and has its own 5
operations; the cell space's genotypes take two distinct inputs (the second choice masks
the first) and the 7 DARTS operations without ``none``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable

import torch
from torch import nn
from torch.nn import functional as F

from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.space import NODES, SAMPLED_OPERATIONS
from nasbench.types import TensorState, derive_seed

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
task of tests/strategies/test_controller.py the target's probability per decision stays at 0.27 under it
(0.97 under 1e-4) and 64% of the decisions match it (97%)."""
BASELINE_DECAY = 0.99
"""Of the rewards' moving average (ENAS' official code, ``controller_bl_dec``)."""
ENAS_FAVOURED_OPERATIONS = ("sep_conv_3x3", "sep_conv_5x5")
"""The operations ENAS' official micro controller biases its logits towards: its operations 0
and 1, ``_enas_conv`` of filter size 3 and 5, two stacked separable convolutions as DARTS'
``sep_conv`` (github.com/melodyguan/enas, src/cifar10/micro_child.py:567-573). Every other
operation takes the value of the rest: there avg pool, max pool and identity, here also the
dilated convolutions, which ENAS lacks."""
LEARNED_BIAS = (10.0, 0.0)
"""Initial bias of the operation logits, favoured and other operations (``b_soft``, learned,
micro_controller.py:100-104): added before the temperature and tanh, in both cell types."""
MICRO_SQUASH = {"temperature": 1.0, "tanh_constant": 1.10, "op_tanh_reduce": 2.5}
"""The official micro search's controller squash (github.com/melodyguan/enas,
scripts/cifar10_micro_search.sh:36-37 ``--controller_tanh_constant=1.10
--controller_op_tanh_reduce=2.5``; no ``--controller_temperature``, whose default is None:
src/cifar10/main.py:73-75, micro_controller.py:158-163)."""
NORMAL_BIAS = (0.25, -0.25)
"""Fixed bias of the operation logits, favoured and other operations (``b_soft_no_learn``,
micro_controller.py:106-109): added after the tanh, in normal cells only (the sampler built
with ``use_bias=True``, lines 79 and 184-185)."""


@dataclass(frozen=True)
class Sample:
    """An architecture a controller wrote (a cell-space genotype, a NASNet or NAS-RL
    architecture), with its decisions (to score them again) and their summed log-probability
    and entropy (tensors in the controller's graph when it was not run under no_grad)."""

    arch: Hashable
    decisions: tuple[int, ...]
    log_prob: torch.Tensor
    entropy: torch.Tensor


class Decisions:
    """A controller's decisions in order: each drawn from ``generator``, or replayed from
    ``replay`` (an earlier sample's decisions, to score them under the current policy), with
    the running sums of their log-probabilities and entropies."""

    def __init__(self, generator: torch.Generator | None, replay: tuple[int, ...] | None, like: torch.Tensor):
        if (generator is None) == (replay is None):
            raise ValueError("give either a generator to sample from or the decisions to score")
        self.generator = generator
        self.replay = None if replay is None else iter(replay)
        self.taken: list[int] = []
        self.log_prob = self.entropy = like.new_zeros(())

    def categorical(self, logits: torch.Tensor, forbidden: int | None = None) -> int:
        """One choice among ``logits`` (softmax), never ``forbidden``."""
        if forbidden is not None:
            logits = logits.index_fill(-1, torch.tensor([forbidden], device=logits.device), float("-inf"))
        log_probs = logits.log_softmax(-1)
        choice = (int(torch.multinomial(log_probs.exp(), 1, generator=self.generator)) if self.replay is None
                  else next(self.replay))
        self.log_prob = self.log_prob + log_probs[choice]
        self.entropy = self.entropy - (log_probs.exp() * log_probs.nan_to_num(neginf=0.0)).sum()
        self.taken.append(choice)
        return choice

    def bernoulli(self, logits: torch.Tensor) -> torch.Tensor:
        """One yes/no choice per entry of ``logits``, yes with probability sigmoid(logit)
        (NAS-RL's skip connections): 1.0 for yes, 0.0 for no."""
        if self.replay is None:
            chosen = torch.bernoulli(torch.sigmoid(logits).detach(), generator=self.generator)
        else:
            chosen = torch.tensor([next(self.replay) for _ in range(len(logits))], dtype=logits.dtype)
        # a Bernoulli's log-likelihood and entropy are (minus) cross-entropies with logits
        self.log_prob = self.log_prob - F.binary_cross_entropy_with_logits(logits, chosen, reduction="sum")
        self.entropy = self.entropy + F.binary_cross_entropy_with_logits(logits, torch.sigmoid(logits),
                                                                         reduction="sum")
        self.taken.extend(int(c) for c in chosen.tolist())
        return chosen


class AnchorController(nn.Module):
    """What ENAS' controllers share: one LSTM, its start input, logits and embeddings of the
    ``operations`` choices, the anchor-point attention over earlier steps, the paper's
    squashing of logits and its initialisation."""

    def __init__(self, operations: int, hidden: int, temperature: float = 1.0, tanh_constant: float | None = None):
        super().__init__()
        self.temperature, self.tanh_constant = temperature, tanh_constant
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.op_embedding = nn.Embedding(operations, hidden)
        self.op_logits = nn.Linear(hidden, operations, bias=False)
        self.attn_anchor = nn.Linear(hidden, hidden, bias=False)
        self.attn_query = nn.Linear(hidden, hidden, bias=False)
        self.attn_score = nn.Linear(hidden, 1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter uniform in [-0.1, 0.1] (ENAS, Sect. 3.2; NASNet, Appendix A.2);
        subclasses that add modules call it again."""
        for p in self.parameters():
            nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)

    def squash(self, logits: torch.Tensor, reduce: float = 1.0) -> torch.Tensor:
        """``tanh_constant / reduce * tanh(logits / temperature)``; the logits unchanged
        without a tanh constant (NASNet's controller has none)."""
        if self.tanh_constant is None:
            return logits
        return self.tanh_constant / reduce * torch.tanh(logits / self.temperature)

    def cell_input_anchors(self, inputs: torch.Tensor, state: Any) -> tuple[list[torch.Tensor], list[torch.Tensor], Any]:
        """A cell's two inputs as anchors to attend to: zero anchors, keys from two LSTM
        steps; with the LSTM state after them."""
        anchors, keys = [], []
        for _ in range(2):
            state = self.lstm(inputs, state)
            anchors.append(torch.zeros_like(state[0]))
            keys.append(self.attn_anchor(state[0]))
        return anchors, keys, state

    def attention(self, keys: list[torch.Tensor], query: torch.Tensor) -> torch.Tensor:
        """One score per earlier anchor, from its key and the current LSTM output."""
        return self.attn_score(torch.tanh(torch.cat(keys) + self.attn_query(query))).view(-1)


class CellController(AnchorController):
    """ENAS' micro-search controller, writing genotypes of the cell space; with
    ``operation_bias``, the official code's biases of the operation logits."""

    def __init__(self, hidden: int = HIDDEN, temperature: float = TEMPERATURE, tanh_constant: float = TANH_CONSTANT,
                 op_tanh_reduce: float = 1.0, operation_bias: bool = False):
        super().__init__(len(SAMPLED_OPERATIONS), hidden, temperature, tanh_constant)
        self.op_tanh_reduce = op_tanh_reduce
        favoured = torch.tensor([op in ENAS_FAVOURED_OPERATIONS for op in SAMPLED_OPERATIONS])
        self.op_bias = nn.Parameter(torch.where(favoured, *LEARNED_BIAS)) if operation_bias else None
        self.register_buffer("normal_op_bias", torch.where(favoured, *NORMAL_BIAS) if operation_bias else None,
                             persistent=False)

    def operation_logits(self, hidden: torch.Tensor, cell_type: str) -> torch.Tensor:
        """The squashed logits of an operation choice from the LSTM output ``hidden``; with
        the bias, as the official code forms them (micro_controller.py:178-185):
        ``squash(logits + learned) + fixed``, the fixed bias in normal cells only."""
        logits = self.op_logits(hidden).view(-1)
        if self.op_bias is None:
            return self.squash(logits, self.op_tanh_reduce)
        squashed = self.squash(logits + self.op_bias, self.op_tanh_reduce)
        return squashed + (self.normal_op_bias if cell_type == "normal" else 0.0)

    def forward(self, generator: torch.Generator | None = None, decisions: tuple[int, ...] | None = None) -> Sample:
        """Sample a genotype from ``generator``, or score the given ``decisions`` (what an
        earlier sample returned): their log-probability and entropy under the current policy."""
        decide = Decisions(generator, decisions, self.start)
        state = None
        inputs = self.start
        cells = {}
        for cell_type in CELL_TYPES:
            anchors, keys, state = self.cell_input_anchors(inputs, state)
            edges = []
            for _ in range(NODES):
                sources = []
                for _ in range(2):
                    state = self.lstm(inputs, state)
                    scores = self.squash(self.attention(keys, state[0]))
                    sources.append(decide.categorical(scores, forbidden=sources[0] if sources else None))
                    inputs = anchors[sources[-1]]
                for source in sources:
                    state = self.lstm(inputs, state)
                    op = decide.categorical(self.operation_logits(state[0], cell_type))
                    inputs = self.op_embedding.weight[op].unsqueeze(0)
                    edges.append((SAMPLED_OPERATIONS[op], source))
                state = self.lstm(inputs, state)  # the node's anchor
                anchors.append(state[0])
                keys.append(self.attn_anchor(state[0]))
                inputs = self.start
            cells[cell_type] = tuple(edges)
        concat = tuple(range(2, NODES + 2))
        genotype = Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat)
        return Sample(genotype, tuple(decide.taken), decide.log_prob, decide.entropy)


class HoldsController:
    """What an RL strategy holds beside its search: the controller, the optimiser of its
    policy and the generator it samples from, all three drawn from the run seed, and their
    share of the strategy's checkpoint."""

    controller: nn.Module
    policy: Any
    controller_generator: torch.Generator

    def init_controller(self, seed: int, controller: Callable[[], nn.Module], policy: Callable[[nn.Module], Any]) -> None:
        """Build the controller (its weights from the run seed) and its policy optimiser."""
        torch.manual_seed(derive_seed(seed, "controller"))
        # a small policy taking one decision at a time: it stays on the CPU
        self.controller = controller()
        self.policy = policy(self.controller)
        self.controller_generator = torch.Generator().manual_seed(derive_seed(seed, "controller samples"))

    def controller_tensors(self) -> TensorState:
        return {"controller": self.controller.state_dict(), "policy": self.policy.state_dict(),
                "controller_generator": self.controller_generator.get_state()}

    def load_controller_tensors(self, tensors: TensorState) -> None:
        self.controller.load_state_dict(tensors["controller"])
        self.policy.load_state_dict(tensors["policy"])
        self.controller_generator.set_state(tensors["controller_generator"])


class PolicyGradient:
    """REINFORCE for a controller (as NAS-RL and ENAS train theirs): each sample's
    log-probability times its advantage, reward minus baseline, descended by Adam over the
    mean of ``samples`` samples per update. The reward includes the entropy bonus; the
    baseline is the rewards' exponential moving average, starting at 0 and updated before it
    is subtracted (ENAS' official code). A ``penalty`` of a sample, differentiable in the
    controller's parameters, is descended along with it (ENAS' skip-connection KL in its macro
    search, :func:`~nasbench.strategies.macro_controller.skip_penalty`)."""

    def __init__(self, controller: nn.Module, lr: float, entropy_weight: float = ENTROPY_WEIGHT,
                 baseline_decay: float = BASELINE_DECAY, penalty: Callable[[Any], torch.Tensor] | None = None):
        self.controller = controller
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.entropy_weight, self.baseline_decay = entropy_weight, baseline_decay
        self.penalty = penalty
        self.baseline = 0.0

    def update(self, generator: torch.Generator, reward: Callable[[Sample], float], samples: int) -> list[dict[str, float]]:
        """One policy update over ``samples`` samples from ``generator``, each scored by
        ``reward``; per sample its reward (entropy bonus included) and entropy."""
        self.optimizer.zero_grad(set_to_none=True)
        scored = []
        for _ in range(samples):
            sample = self.controller(generator)
            scored.append(self._accumulate(sample, reward(sample), samples))
        self.optimizer.step()
        return scored

    def update_scored(self, scored: list[tuple[Any, float]]) -> list[dict[str, float]]:
        """One policy update over samples rewarded earlier, as (the sample's decisions scored
        again by the controller, its reward) pairs: for methods whose rewards take minutes
        (a trained child network each), so that the samples outlive a checkpoint."""
        self.optimizer.zero_grad(set_to_none=True)
        totals = [self._accumulate(sample, reward, len(scored)) for sample, reward in scored]
        self.optimizer.step()
        return totals

    def _accumulate(self, sample: Any, reward: float, samples: int) -> dict[str, float]:
        """Add one sample's REINFORCE gradient, of the mean over ``samples``."""
        entropy = sample.entropy.item()
        total = reward + self.entropy_weight * entropy
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * total
        loss = -(total - self.baseline) * sample.log_prob
        if self.penalty is not None:
            loss = loss + self.penalty(sample)
        (loss / samples).backward()
        return {"reward": total, "entropy": entropy}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = float(state["baseline"])
