"""DARTS' recurrent-cell search on Penn Treebank (Liu et al., ICLR 2019, Sect. 2, 3.1.2 and
Appendix A.1.2; official code rnn/train_search.py and rnn/architect.py): what
:class:`~nasbench.strategies.darts.Darts` runs on the ``enas-rnn`` space.

One step is one epoch over the training split, laid out in ``batch_size`` columns and read
in windows with the hidden state carried (detached). Each window first updates alpha on the
window of the search data (the validation split in the same columns, train_search.py:117)
at the same row, modulo its length (train_search.py:191), its own hidden state carried
likewise; then the weights take one SGD step on the training window: NLL plus the slowness
term, gradients clipped, the learning rate scaled by the window's length (train_search.py:
187-240). The search stage of ``[language_model]`` gives sizes, the SGD recipe, dropouts
(train_search.py:23-63). The supernet's validation perplexity closes every epoch.

Randomness: window lengths draw from a ``random.Random`` and dropout masks from torch's
global generator, both seeded per epoch from the run seed, so an epoch computes the same
whether the run was resumed before it or not.
"""
from __future__ import annotations

import math
import random
from typing import Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call

from nasbench.corpus import batchify, window
from nasbench.language_model import LONG_WINDOW_PROB, evaluate_perplexity
from nasbench.spaces.recurrent_cell.supernet import OPERATIONS, RecurrentSupernet
from nasbench.strategies.base import Strategy, require_tensors
from nasbench.strategies.context import SearchContext
from nasbench.strategies.darts import Darts, DartsSecondOrder
from nasbench.strategies.supernet_search import rounded
from nasbench.training import TrainingDiverged
from nasbench.types import SearchResult, TensorState, derive_seed

ARCH_LR = 3e-3
"""Adam's learning rate for alpha (train_search.py:79-80; Appendix A.1.2)."""
ARCH_BETAS = (0.9, 0.999)
"""Adam's defaults: architect.py:30 passes none (the CNN search uses 0.5, 0.999)."""
ARCH_WEIGHT_DECAY = 1e-3
"""train_search.py:77-78; Appendix A.1.2."""
HVP_RADIUS = 1e-2
"""Finite-difference radius r of the Hessian-vector product, epsilon = r / ||v|| (architect.py:70, 98)."""
CLIP_EPSILON = 1e-6
"""The clipping coefficient is max_norm / (norm + 1e-6) (architect.py:17)."""


class Window(NamedTuple):
    """A window of (time, batch) token ids, its next-word targets and the state it starts from."""

    inputs: torch.Tensor
    targets: torch.Tensor
    state: tuple[torch.Tensor, ...]


def search_window_length(bptt: int, rng: random.Random) -> int:
    """The search's window: bptt, or bptt / 2 with probability 0.05, without AWD-LSTM's
    normal noise, which train_search.py:180-185 leaves commented out (train.py keeps it)."""
    return int(bptt if rng.random() < LONG_WINDOW_PROB else bptt / 2)


def _detached(state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(s.detach() for s in state)


def _norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


class RecurrentDarts(Strategy):
    """First-order DARTS on a recurrent cell: alpha follows grad_alpha L_val(w, alpha).
    The supernet has ``cell_steps`` nodes and, as DARTS' search always does, averages
    nodes 1..N, whatever ``cell_average`` says; so does the derived cell."""

    name = "darts"
    strategy_class = "GO"
    summary = Darts.summary
    spaces = ("enas-rnn",)
    state_fields = ("epochs_done", "history")

    def __init__(self, context: SearchContext):
        super().__init__(context)
        settings = context.space.settings
        self.stage = settings.stage("search")
        self.epochs_done = 0
        self.history: list[dict[str, Any]] = []
        corpus = context.data
        torch.manual_seed(derive_seed(context.seed, "supernet"))
        self.supernet = RecurrentSupernet(corpus.vocab_size, self.stage, settings.cell_steps).to(context.device)
        # SGD without momentum (train_search.py:268); Adam on alpha (architect.py:30)
        self.weight_optimizer = torch.optim.SGD(self.supernet.weight_parameters(), lr=self.stage.lr,
                                                weight_decay=self.stage.weight_decay)
        self.arch_optimizer = torch.optim.Adam(self.supernet.arch_parameters(), lr=ARCH_LR, betas=ARCH_BETAS,
                                               weight_decay=ARCH_WEIGHT_DECAY)
        self.train_source = batchify(corpus.train.to(context.device), self.stage.batch_size)
        self.search_source = batchify(corpus.valid.to(context.device), self.stage.batch_size)

    # -- losses --------------------------------------------------------------------
    def nll(self, batch: Window, params: dict[str, torch.Tensor] | None = None):
        """Mean NLL per word of ``batch`` (no slowness term: architect.py's _loss), the state
        after it and the cell's raw outputs; with ``params``, under those tensors in place of
        the supernet's own (unrolled or perturbed weights)."""
        args = (batch.inputs, batch.state)
        log_probs, state, raw = (self.supernet(*args) if params is None
                                 else functional_call(self.supernet, params, args))
        return F.nll_loss(log_probs.flatten(0, 1), batch.targets.flatten()), state, raw

    # -- the method's part ---------------------------------------------------------
    def architecture_gradient(self, train: Window, val: Window, lr: float):
        """(validation NLL, its gradient in alpha, the validation state after the window).
        ``lr`` is the window's weight learning rate (second order's xi)."""
        loss, state, _ = self.nll(val)
        (grad,) = torch.autograd.grad(loss, self.supernet.arch_parameters())
        return loss.detach(), grad, _detached(state)

    def architecture_step(self, train: Window, val: Window, lr: float):
        """One Adam step of alpha; returns (validation NLL, validation state)."""
        loss, grad, state = self.architecture_gradient(train, val, lr)
        (alpha,) = self.supernet.arch_parameters()
        alpha.grad = grad
        self.arch_optimizer.step()
        alpha.grad = None
        return loss, state

    def weight_step(self, train: Window, lr: float):
        """One SGD step of the weights at learning rate ``lr``: NLL + slowness * mean squared
        change of the cell's outputs over time (train_search.py:216-237). Returns (NLL, state)."""
        nll, state, raw = self.nll(train)
        loss = nll + self.stage.slowness * (raw[1:] - raw[:-1]).pow(2).mean()
        weights = self.supernet.weight_parameters()
        self.weight_optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=weights)  # alpha's gradient is the architecture step's alone
        if self.stage.grad_clip:
            torch.nn.utils.clip_grad_norm_(weights, self.stage.grad_clip)
        group = self.weight_optimizer.param_groups[0]
        base, group["lr"] = group["lr"], lr
        self.weight_optimizer.step()
        group["lr"] = base
        return nll.detach(), _detached(state)

    # -- the loop ------------------------------------------------------------------
    def budget(self) -> int:
        return self.stage.epochs

    def steps_done(self) -> int:
        return self.epochs_done

    def step(self) -> None:
        epoch = self.epochs_done + 1
        torch.manual_seed(derive_seed(self.context.seed, "dropout", epoch))  # LanguageModel's masks
        rng = random.Random(derive_seed(self.context.seed, "windows", epoch))
        train_nll, search_nll = self.search_epoch(rng)
        if not (math.isfinite(train_nll) and math.isfinite(search_nll)):
            raise TrainingDiverged(f"{self.name}: supernet NLL became {train_nll} (train), {search_nll} "
                                   f"(search data) in epoch {epoch}")
        perplexity = evaluate_perplexity(self.supernet, self.context.data.valid, self.stage.eval_batch_size,
                                         self.stage.bptt)
        weights = self.supernet.edge_weights().detach()
        self.history.append({
            "epoch": epoch, "lr": self.stage.lr, "train_nll": train_nll, "search_nll": search_nll,
            "valid_perplexity": perplexity, "weights": {"recurrent": rounded(weights.tolist())},
            "genotype": self.supernet.genotype().to_dict(),
        })
        self.epochs_done = epoch

    def search_epoch(self, rng: random.Random) -> tuple[float, float]:
        """One pass over the training split; the mean (training, search-data) NLL per word."""
        model, stage = self.supernet, self.stage
        model.train()
        train_source, search_source = self.train_source, self.search_source
        state = val_state = model.init_state(stage.batch_size)
        sums = torch.zeros(2, dtype=torch.float64, device=train_source.device)
        words = [0, 0]
        start = 0
        while start < train_source.shape[0] - 2:
            length = search_window_length(stage.bptt, rng)
            train = Window(*window(train_source, start, length), state)
            val = Window(*window(search_source, start % (search_source.shape[0] - 1), stage.bptt), val_state)
            lr = self.weight_optimizer.param_groups[0]["lr"] * length / stage.bptt  # train_search.py:187-188
            val_nll, val_state = self.architecture_step(train, val, lr)
            train_nll, state = self.weight_step(train, lr)
            sums += torch.stack([train_nll * train.targets.numel(), val_nll * val.targets.numel()]).double()
            words[0] += train.targets.numel()
            words[1] += val.targets.numel()
            start += length
        train_sum, val_sum = sums.tolist()
        return train_sum / words[0], val_sum / words[1]

    def result(self) -> SearchResult:
        """The derived cell. ``val_perplexity`` is the supernet's (the relaxed cell at
        softmax(alpha), batch norm's running statistics) on the validation split after the
        last epoch; it did not choose the cell, and the validation split is also the data
        alpha trained on (train_search.py:117-118)."""
        weights = self.supernet.edge_weights().detach()
        details = {"operations": list(OPERATIONS), "history": self.history,
                   "weights": {"recurrent": rounded(weights.tolist())}}
        perplexity = self.history[-1]["valid_perplexity"] if self.history else None
        return SearchResult(self.supernet.genotype(), None, details=details, val_perplexity=perplexity)

    # -- state ---------------------------------------------------------------------
    def tensor_state(self) -> TensorState:
        return {"supernet": self.supernet.state_dict(), "weight_optimizer": self.weight_optimizer.state_dict(),
                "arch_optimizer": self.arch_optimizer.state_dict()}

    def load_tensor_state(self, tensors: TensorState) -> None:
        require_tensors(self.name, tensors)
        self.supernet.load_state_dict(tensors["supernet"])
        self.weight_optimizer.load_state_dict(tensors["weight_optimizer"])
        self.arch_optimizer.load_state_dict(tensors["arch_optimizer"])


class RecurrentDartsSecondOrder(RecurrentDarts):
    """Second-order DARTS as rnn/architect.py computes it: the validation NLL at the unrolled
    weights w' = w - xi (clip(grad_w L_train) + wd w), minus xi * coef * the Hessian-vector
    product with its (clipped) weight gradient, by central differences (paper Eq. 7-8).

    Deviations, each stated where it is computed: the implicit term is scaled by
    min(1, coef) (the official scales by the clipping coefficient even when it exceeds 1,
    i.e. when nothing was clipped), and the three training-window forwards (the unrolled
    gradient and the two perturbed ones) share one draw of dropout masks, so the finite
    difference compares one function (the official draws new masks for each)."""

    name = "darts-2nd"
    summary = DartsSecondOrder.summary
    hvp_radius: float = HVP_RADIUS

    def _clip_coefficient(self, grads: Sequence[torch.Tensor]) -> float:
        """min(1, max_norm / (norm + 1e-6)), 1 where clipping is off."""
        clip = self.stage.grad_clip
        return min(1.0, clip / (_norm(grads).item() + CLIP_EPSILON)) if clip else 1.0

    def architecture_gradient(self, train: Window, val: Window, lr: float):
        masks = _RngState(self.context.device)
        unrolled, coef = self.unrolled_weights(train, lr)
        # the unrolled model is a copy (architect.py:82-95): its batch-norm statistics are too
        buffers = {name: b.clone() for name, b in self.supernet.named_buffers()}
        loss, state, _ = self.nll(val, {**unrolled, **buffers})
        alphas = self.supernet.arch_parameters()
        grads = torch.autograd.grad(loss, [*unrolled.values(), *alphas])
        weight_grads, (alpha_grad,) = grads[:len(unrolled)], grads[len(unrolled):]
        vector_coef = self._clip_coefficient(weight_grads)  # the vector is clipped too (architect.py:67-69)
        vector = [g * vector_coef for g in weight_grads]
        after_val = _RngState(self.context.device)
        implicit = self.hessian_vector_product(vector, train, masks)
        after_val.restore()  # the weight step draws on from where the validation forward left off
        return loss.detach(), alpha_grad - lr * coef * implicit, _detached(state)

    def unrolled_weights(self, train: Window, lr: float) -> tuple[dict[str, torch.Tensor], float]:
        """w' = w - lr (coef * grad_w NLL_train + weight_decay * w), a leaf (architect.py:32-39),
        and coef, the clipping coefficient of that gradient."""
        named = self.supernet.named_weight_parameters()
        loss, _, _ = self.nll(train)
        grads = torch.autograd.grad(loss, list(named.values()))
        coef = self._clip_coefficient(grads)
        with torch.no_grad():
            unrolled = {name: (w - lr * (coef * g + self.stage.weight_decay * w)).requires_grad_()
                        for (name, w), g in zip(named.items(), grads, strict=True)}
        return unrolled, coef

    def hessian_vector_product(self, vector: Sequence[torch.Tensor], train: Window,
                               masks: "_RngState") -> torch.Tensor:
        """grad^2_{alpha,w} NLL_train(w, alpha) @ vector by central differences at
        w +- epsilon * vector, epsilon = r / ||vector|| (architect.py:97-112), each forward
        with the dropout masks ``masks`` draws."""
        named = self.supernet.named_weight_parameters()
        epsilon = self.hvp_radius / _norm(vector)
        grads = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                shifted = {name: w + sign * epsilon * v for (name, w), v in zip(named.items(), vector, strict=True)}
            masks.restore()
            loss, _, _ = self.nll(train, shifted)
            grads.append(torch.autograd.grad(loss, self.supernet.arch_parameters())[0])
        return (grads[0] - grads[1]) / (2 * epsilon)


class _RngState:
    """Torch's global generator state on the CPU and, on a GPU, the device's: where dropout
    masks draw from, taken now and restorable."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)
