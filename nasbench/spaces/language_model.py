"""What the recurrent-cell spaces share: the protocol's ``[language_model]`` section and the
description of a space of cells for language modelling; the modules it builds (the language
model around a cell) are in :mod:`nasbench.spaces.language_model_network`, which needs torch.

Both recurrent spaces (``enas-rnn``, ``nasrl-rnn``) own the one ``[language_model]``
section: they read it with the same settings class, so ``check_protocol``, which keeps one
reader per label, checks it the same whichever owner it calls. ``full`` holds DARTS'
settings (Liu et al., ICLR 2019, Sect. 4.2; rnn/train_search.py and rnn/train.py defaults);
where ENAS' official scripts differ, the field's docstring says so.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasbench.errors import NasbenchError
from nasbench.settings import require
from nasbench.spaces.base import SearchSpace
from nasbench.types import NetworkConfig, PartKey

if TYPE_CHECKING:
    from torch import nn

    from nasbench.spaces.language_model_network import LanguageModel, RecurrentCell

ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
"""The four activations of ENAS' and DARTS' recurrent spaces (ENAS ptb_enas_child.py:310-319,
DARTS rnn/genotypes.py:5-11 without ``none``) and of NAS-RL's tree nodes."""
STAGES = ("search", "candidate", "final")
CELL_AVERAGES = ("loose-ends", "intermediate")


@dataclass(frozen=True)
class Dropouts:
    """AWD-LSTM's dropouts (DARTS rnn/model.py), each the probability of dropping."""

    output: float
    """Locked dropout on the cell's outputs before the decoder (``dropout``)."""
    hidden: float
    """Variational dropout on h_{t-1} and on every node's input inside the cell (``dropouth``)."""
    x: float
    """Variational dropout on the cell's input x_t (``dropoutx``)."""
    input: float
    """Locked dropout on the embedded words (``dropouti``)."""
    embedding: float
    """Whole words dropped from the embedding matrix (``dropoute``)."""


@dataclass(frozen=True)
class LanguageModelStage:
    """What one training stage (search or final) needs: sizes, recipe, dropouts."""

    hidden_size: int
    batch_size: int
    lr: float
    weight_decay: float
    epochs: int
    dropouts: Dropouts
    bptt: int
    grad_clip: float
    slowness: float
    eval_batch_size: int
    asgd_nonmono: int
    """Switch SGD to averaged SGD once the validation loss is worse than the best of all but
    the last ``asgd_nonmono`` epochs; 0 never switches."""


@dataclass(frozen=True)
class LanguageModelSettings:
    """``[language_model]``: the language-model protocol of the recurrent-cell spaces."""

    bptt: int
    """Mean window of truncated BPTT (DARTS train.py:38 35; ENAS ptb_final.sh 35)."""
    eval_batch_size: int
    """Columns of the validation split (DARTS train.py:110 10)."""
    test_batch_size: int
    """Columns of the test split (DARTS train.py:111 1)."""
    grad_clip: float
    """Gradient-norm bound (DARTS train.py:32 0.25; ENAS search 10, final 0.25)."""
    slowness: float
    """Temporal activation regularisation beta (DARTS train.py:62 1e-3; ENAS final 1e-3)."""
    dropout_output: float
    dropout_hidden: float
    dropout_x: float
    dropout_input: float
    """DARTS' dropouts of output, hidden, x and input (train.py:40-46: 0.75, 0.25, 0.75, 0.2);
    ENAS drops 0.75, 0.25, 0.75 of output, hidden, x in search (ptb_search.sh: o/h/x_keep
    0.25, 0.75, 0.25) and 0.76, 0.25, 0.75 in final training (ptb_final.sh), no input."""
    search_hidden_size: int
    """Embedding = hidden units in search (DARTS train_search.py:23-26 300; ENAS 720)."""
    search_batch_size: int
    """DARTS train_search.py:35 256; ENAS ptb_search.sh 20."""
    search_lr: float
    """SGD (DARTS train_search.py:29 20; ENAS 0.25 on a loss summed over the window)."""
    search_weight_decay: float
    """DARTS train_search.py:63 5e-7; ENAS l2 1e-7."""
    search_epochs: int
    """DARTS train_search.py:33 50; ENAS ptb_search.sh 100."""
    search_dropout_embedding: float
    """DARTS train_search.py:47 0; ENAS drops 0.25 (e_keep 0.75)."""
    final_hidden_size: int
    """DARTS train.py:24-27 850 (23M parameters); ENAS ptb_final.sh 748."""
    final_batch_size: int
    """DARTS train.py:36 64; ENAS 64."""
    final_lr: float
    """DARTS train.py:30 20; ENAS 20, decayed by 0.9991 an epoch from epoch 14 instead of ASGD."""
    final_weight_decay: float
    """DARTS train.py:64 8e-7; ENAS l2 5e-7."""
    final_epochs: int
    """DARTS train.py:34 8000 (an upper limit); ENAS ptb_final.sh 2000."""
    final_dropout_embedding: float
    """DARTS train.py:48 0.1; ENAS drops 0.21 (e_keep 0.79)."""
    final_asgd_nonmono: int
    """DARTS train.py:52,302: SGD until the validation loss is worse than the best of all but
    the last 5 epochs, then ASGD (AWD-LSTM's NT-ASGD). Search never switches (train_search.py)."""
    candidate_epochs: int
    """Epochs a candidate (a random-search draw, a NAS-RL child) trains by the final recipe
    before its validation perplexity scores it: DARTS selects its cells and its random
    baseline's by 300 epochs of train.py (Liu et al., ICLR 2019, Sect. 3.3 and 4.2)."""
    cell_steps: int
    """``enas-rnn``: nodes after node 0 (DARTS genotypes.py:12 STEPS 8; ENAS rhn_depth 12 - 1 = 11)."""
    cell_average: str
    """``enas-rnn``: the output averages ``intermediate`` nodes (all but node 0, DARTS'
    concat=range(1, 9)) or the ``loose-ends`` no node reads (ENAS ptb_enas_child.py:326-327)."""
    nasrl_base: int
    """``nasrl-rnn``: leaves of the tree (NAS-RL Sect. 4.2: base 8 for PTB; Fig. 5 draws base 2)."""

    def check(self, where: str) -> None:
        sizes = (self.bptt, self.eval_batch_size, self.test_batch_size, self.search_hidden_size,
                 self.search_batch_size, self.search_epochs, self.final_hidden_size, self.final_batch_size,
                 self.final_epochs, self.candidate_epochs, self.cell_steps)
        require(min(sizes) >= 1, where, "sizes, batch sizes, epochs, bptt and cell_steps must be >= 1")
        rates = (self.dropout_output, self.dropout_hidden, self.dropout_x, self.dropout_input,
                 self.search_dropout_embedding, self.final_dropout_embedding)
        require(all(0 <= p < 1 for p in rates), where, "every dropout must lie in [0, 1)")
        require(min(self.search_lr, self.final_lr) > 0 and self.grad_clip >= 0 and self.slowness >= 0
                and min(self.search_weight_decay, self.final_weight_decay) >= 0 and self.final_asgd_nonmono >= 0,
                where, "need lr > 0 and grad_clip, slowness, weight decays, final_asgd_nonmono >= 0")
        require(self.cell_average in CELL_AVERAGES, where,
                f"cell_average must be one of {', '.join(CELL_AVERAGES)}, got {self.cell_average!r}")
        require(self.nasrl_base >= 2 and self.nasrl_base & (self.nasrl_base - 1) == 0, where,
                f"nasrl_base must be a power of 2 >= 2 (a binary tree's leaves), got {self.nasrl_base}")

    def stage(self, name: str) -> LanguageModelStage:
        """The ``search``, ``candidate`` or ``final`` stage: its own fields and the shared
        ones; a candidate trains by the final recipe for ``candidate_epochs``."""
        if name not in STAGES:
            raise ValueError(f"no language-model stage {name!r} ({', '.join(STAGES)})")
        if name == "candidate":
            return dataclasses.replace(self.stage("final"), epochs=self.candidate_epochs)
        own = {f.name.removeprefix(f"{name}_"): getattr(self, f.name)
               for f in dataclasses.fields(self) if f.name.startswith(f"{name}_")}
        dropouts = Dropouts(self.dropout_output, self.dropout_hidden, self.dropout_x, self.dropout_input,
                            own.pop("dropout_embedding"))
        own.setdefault("asgd_nonmono", 0)
        return LanguageModelStage(**own, dropouts=dropouts, bptt=self.bptt, grad_clip=self.grad_clip,
                                  slowness=self.slowness, eval_batch_size=self.eval_batch_size)


def projection_key(name: str, c_in: int, c_out: int, steps: int) -> PartKey:
    """A cell's ``input`` projection (of the window) or NAS-RL's ``recurrent`` one (of h_{t-1})."""
    return PartKey("projection", name, c_in, c_out, steps, 1)


class RecurrentSpace(SearchSpace):
    """A space of recurrent cells for language modelling, laid out by ``[language_model]``.
    ``build`` gives the final stage's model at ``config.channels`` units for
    ``config.num_classes`` words; :meth:`build_language_model` builds for any stage."""

    task = "language-model"
    protocol_section = "language_model"
    layout_class = LanguageModelSettings

    def __init__(self, settings: LanguageModelSettings):
        self.settings = settings

    def cell_class(self) -> type[RecurrentCell]:
        """The class of its cells (what state they carry), imported only to build one."""
        raise NotImplementedError

    def make_cell(self, arch: Any, size: int) -> RecurrentCell:
        """The cell module of ``arch`` with ``size`` inputs and hidden units."""
        arch.check()
        return self.cell_class()(arch, size, size)

    def build_language_model(self, arch: Any, stage: LanguageModelStage, vocab_size: int) -> LanguageModel:
        from nasbench.spaces.language_model_network import LanguageModel

        return LanguageModel(self.make_cell(arch, stage.hidden_size), vocab_size, stage.dropouts)

    def build(self, arch: Any, config: NetworkConfig) -> nn.Module:
        stage = dataclasses.replace(self.settings.stage("final"), hidden_size=config.channels)
        return self.build_language_model(arch, stage, config.num_classes)

    # -- hardware cost decomposition: the cell alone, one time step or a BPTT window ------
    @classmethod
    def for_network(cls, network: dict[str, Any]) -> "RecurrentSpace":
        """The space as a cost table records it: its ``[language_model]`` section."""
        return cls(LanguageModelSettings(**network["language_model"]))

    def network_record(self, config: NetworkConfig) -> dict[str, Any]:
        """Hidden units, time steps and the ``[language_model]`` section (which sizes the
        sampled cells): a table is refused for a network laid out otherwise."""
        return {"hidden_size": config.channels, "steps": config.cells,
                "language_model": dataclasses.asdict(self.settings)}

    def describe_network(self, config: NetworkConfig) -> str:
        steps = "one time step" if config.cells == 1 else f"a window of {config.cells} time steps"
        return f"the cell alone at {config.channels} hidden units over {steps}, no embedding or decoder"

    def cost_network_config(self, protocol: Any, window: bool = False) -> NetworkConfig:
        """The final stage's cell (the deployed model's size, as image tables cost the final
        network) over one time step, or over the protocol's ``bptt`` steps."""
        return NetworkConfig(channels=self.settings.final_hidden_size, cells=self.settings.bptt if window else 1)

    def cost_batch_size(self) -> int:
        """Inference as evaluation runs it: ``eval_batch_size`` columns."""
        return self.settings.eval_batch_size

    def cost_layout(self, config: NetworkConfig) -> Any:
        raise NasbenchError(f"the {self.name} space's cost tables give a cell's exact cost, not an expected cost over "
                            "architecture weights (its parts follow each cell's structure)")

    def part_inputs(self, key: PartKey, batch_size: int) -> list[tuple[int, ...]]:
        """The input projection's over the window (time, batch, units); every other part's
        (batch, units) each, node 0 of a highway cell its projected x_t (twice the units) first."""
        if key.kind == "projection" and key.name == "input":
            return [(key.size, batch_size, key.c_in)]
        if key.kind == "first":
            return [(batch_size, 2 * key.c_in), (batch_size, key.c_in)]
        return [(batch_size, key.c_in)] * key.arity

    def build_cost_network(self, arch: Any, config: NetworkConfig) -> nn.Module:
        from nasbench.spaces.language_model_network import CellWindow

        cell = self.make_cell(arch, config.channels)
        mac = sum(self.build_part(key).mac_elements for key in self.cost_parts(arch, config))
        return CellWindow(cell, config.cells, mac)

    def cost_network_inputs(self, config: NetworkConfig, batch_size: int) -> list[tuple[int, ...]]:
        """x over the window (time, batch, units), then each state tensor (batch, units)."""
        h = config.channels
        return [(config.cells, batch_size, h)] + [(batch_size, h)] * self.cell_class().state_count
