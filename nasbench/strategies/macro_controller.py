"""ENAS' macro controller over the enas-macro space: an LSTM that writes a whole network layer
by layer (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML
2018, Sect. 2.3 and Fig. 3; the official code's ``GeneralController`` with
``--controller_search_whole_channels``, github.com/melodyguan/enas,
src/cifar10/general_controller.py).

Per layer: one LSTM step chooses the operation; its embedding feeds a second step, whose
output is the layer's anchor and the query of its skip decisions. Layer i decides about
each earlier state j < i independently, with probability sigmoid of the attention score of
anchor j (NAS-RL's anchor points, Zoph & Le 2017, Sect. 3.3; anchor j belongs to the layer
that reads state j). The next layer's input is the mean of the chosen anchors, summed and
divided by one more than their count (the official code), or the start input after the
first layer. The paper's settings (Sect. 2.1, 3.2), as for the micro controller: 100 LSTM
units, logits divided by temperature 5.0 and squashed by ``2.5 * tanh``, parameters uniform
in [-0.1, 0.1], entropy bonus and baseline of :class:`~nasbench.strategies.controller.PolicyGradient`.

The KL penalty (Sect. 3.2): per layer the KL divergence from each skip decision's Bernoulli
to one of probability ``SKIP_TARGET`` = 0.4, summed over the layer's decisions and averaged
over the layers that decide; weighted by ``SKIP_WEIGHT`` = 0.8 it is added to the policy's
loss (:func:`skip_penalty`; the paper says "to the reward", the official code descends it as
a loss term, differentiable in the controller's parameters, which is what pulls the skip
density towards the target).

Deviations from the official macro search script (``scripts/cifar10_macro_search.sh`` and
``main.py``), which departs from the paper: it runs a 64-unit LSTM, tanh constant 1.5 and no
temperature; this controller keeps the paper's values. The official code samples a skip
from the softmax of (-a, a), i.e. with probability sigmoid(2a), while its KL reads sigmoid(a);
here both are sigmoid(a), the sampled probability itself, as the paper describes. The
entropy is the exact one of each decision's distribution (the official code's is the
sampled choice's ``-p log p``), as in the micro controller.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from nasbench.spaces.enas_macro.plan import OPERATIONS
from nasbench.spaces.enas_macro.space import MacroArch
from nasbench.strategies.controller import (
    HIDDEN,
    TANH_CONSTANT,
    TEMPERATURE,
    AnchorController,
    Decisions,
    Sample,
)

SKIP_TARGET = 0.4
"""The prior belief that a skip connection is formed (Sect. 3.2; ``controller_skip_target``)."""
SKIP_WEIGHT = 0.8
"""The KL penalty's weight (Sect. 3.2; ``controller_skip_weight``)."""


@dataclass(frozen=True)
class MacroSample(Sample):
    """A :class:`~nasbench.strategies.controller.Sample` of the macro space, with the mean
    KL divergence of its skip decisions from the target (in the controller's graph when it
    was not run under no_grad)."""

    skip_kl: torch.Tensor


def skip_penalty(sample: MacroSample) -> torch.Tensor:
    """What :class:`~nasbench.strategies.controller.PolicyGradient` adds to a sample's loss:
    the KL penalty, weighted."""
    return SKIP_WEIGHT * sample.skip_kl


def bernoulli_kl(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Per entry, KL(Bernoulli(sigmoid(logit)) || Bernoulli(target))."""
    p = torch.sigmoid(logits)
    return p * (F.logsigmoid(logits) - math.log(target)) + (1 - p) * (F.logsigmoid(-logits) - math.log(1 - target))


class MacroController(AnchorController):
    """ENAS' macro-search controller, writing architectures of ``layers`` layers."""

    def __init__(self, layers: int, hidden: int = HIDDEN, temperature: float = TEMPERATURE,
                 tanh_constant: float = TANH_CONSTANT, skip_target: float = SKIP_TARGET):
        super().__init__(len(OPERATIONS), hidden, temperature, tanh_constant)
        self.layers, self.skip_target = layers, skip_target

    def forward(self, generator: torch.Generator | None = None,
                decisions: tuple[int, ...] | None = None) -> MacroSample:
        """Sample an architecture from ``generator``, or score the given ``decisions`` (what
        an earlier sample returned): per layer the operation, then one 0/1 per earlier state."""
        decide = Decisions(generator, decisions, self.start)
        state = None
        inputs = self.start
        anchors, keys, kls = [], [], []
        operations, skips = [], []
        for layer in range(self.layers):
            state = self.lstm(inputs, state)
            op = decide.categorical(self.squash(self.op_logits(state[0]).view(-1)))
            operations.append(OPERATIONS[op])
            state = self.lstm(self.op_embedding.weight[op].unsqueeze(0), state)
            if layer == 0:
                skips.append(())
                inputs = self.start
            else:
                scores = self.squash(self.attention(keys, state[0]))
                chosen = decide.bernoulli(scores)
                kls.append(bernoulli_kl(scores, self.skip_target).sum())
                skips.append(tuple(j for j, bit in enumerate(chosen.tolist()) if bit))
                inputs = (chosen @ torch.cat(anchors)).unsqueeze(0) / (1 + chosen.sum())
            anchors.append(state[0])
            keys.append(self.attn_anchor(state[0]))
        return MacroSample(MacroArch(tuple(operations), tuple(skips)), tuple(decide.taken), decide.log_prob,
                           decide.entropy, torch.stack(kls).mean())
