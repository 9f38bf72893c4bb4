"""Training and evaluation of a network under a protocol stage.

One function serves candidate training (short budget, scored on search-validation) and
the final training shared by every method (scored on test), so every method is
evaluated by exactly the same recipe.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import torch
from torch import nn

from nasbench.data import Augmentation, DeviceSplit, ordered_batches, shuffled_batches
from nasbench.precision import Precision
from nasbench.progress import progress_bar
from nasbench.protocol import TrainStage
from nasbench.spaces.base import SearchSpace

EVAL_BATCH_SIZE = 500


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainResult:
    accuracy: float
    """Top-1 accuracy on the evaluation split, in [0, 1]."""
    train_loss: float
    """Mean training loss of the last epoch."""
    seconds: float
    """This attempt's seconds."""
    resumed_epoch: int = 0
    """Epochs an earlier attempt had done, restored from the checkpoint (0: trained from the start)."""
    earlier_seconds: float = 0.0
    """The training seconds of the earlier attempts."""


class EpochCheckpoint(Protocol):
    """Where :func:`train_network` keeps its whole state after every epoch, so that a
    training stopped at any point (SIGKILL included) resumes losing at most one epoch and
    ends exactly as an uninterrupted one would (at one thread)."""

    def load(self) -> dict[str, Any] | None:
        """The state last saved, on the CPU; None where there is none."""

    def save(self, state: dict[str, Any]) -> None:
        """Keep ``state`` (references to live tensors: serialise before returning)."""


def build_model(space: SearchSpace, arch, stage: TrainStage, device: torch.device, seed: int) -> nn.Module:
    """A freshly initialised network for ``arch`` of ``stage``'s size, its weights drawn from ``seed``."""
    torch.manual_seed(seed)
    return space.build(arch, stage.network).to(device)


def cosine_annealing(lr: float, lr_min: float, epoch: int, epochs: int) -> float:
    """Learning rate of ``epoch`` under per-epoch cosine annealing from ``lr`` to ``lr_min``."""
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs))


def cosine_lr(stage: TrainStage, epoch: int) -> float:
    """Learning rate of ``epoch`` of ``stage``'s recipe."""
    return cosine_annealing(stage.lr, stage.lr_min, epoch, stage.epochs)


@dataclass
class TrainStep:
    """One SGD step of a stage's recipe, the step :func:`train_network` takes and
    ``nasbench bench final-training`` times: forward and loss under the precision's
    autocast, backward through its gradient scaler (unscaled before clipping), and the
    per-epoch learning rate and drop path (:meth:`start_epoch`)."""

    model: nn.Module
    stage: TrainStage
    precision: Precision
    device: torch.device
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
    """``model.forward_train``, compiled or not."""
    drop_prob: torch.Tensor | None = None
    """Compiled with drop path: the probability as a tensor (a float attribute changing
    per epoch would recompile the graph every epoch)."""
    criterion: nn.Module = field(default_factory=nn.CrossEntropyLoss)

    @classmethod
    def build(cls, model: nn.Module, stage: TrainStage, device: torch.device, precision: str = "fp32",
              compile: bool | Callable = False) -> "TrainStep":
        """The step for ``model`` (on ``device``); ``compile``: True compiles its training
        forward with torch.compile's default backend (inductor), a callable with that backend.
        Compiling drops the graphs of earlier trainings in the process (each network is
        compiled for itself), so that a search's many candidates never reach dynamo's
        recompile limit, past which it would silently run them uncompiled."""
        optimizer = torch.optim.SGD(model.parameters(), lr=stage.lr, momentum=stage.momentum,
                                    weight_decay=stage.weight_decay, nesterov=stage.nesterov)
        forward = model.forward_train
        if compile:
            torch._dynamo.reset()
            forward = torch.compile(forward, **({} if compile is True else {"backend": compile}))
        drop_prob = torch.zeros((), device=device) if compile and stage.drop_path > 0 else None
        mixed = Precision(precision)
        return cls(model, stage, mixed, device, optimizer, mixed.grad_scaler(device), forward, drop_prob)

    def start_epoch(self, epoch: int) -> None:
        """The learning rate and drop-path probability of ``epoch``."""
        for group in self.optimizer.param_groups:
            group["lr"] = cosine_lr(self.stage, epoch)
        prob = self.stage.drop_path * epoch / self.stage.epochs
        self.model.drop_path_prob = prob if self.drop_prob is None else self.drop_prob.fill_(prob)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One step on augmented ``images``; the batch's mean loss, detached."""
        with self.precision.autocast(self.device):
            logits, aux_logits = self.forward(images)
            loss = self.criterion(logits, labels)  # autocast computes cross-entropy in fp32
            if aux_logits is not None:
                loss = loss + self.stage.auxiliary_weight * self.criterion(aux_logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.stage.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not fp16's scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.stage.grad_clip)
        self.scaler.step(self.optimizer)  # skipped where fp16 overflowed
        self.scaler.update()
        return loss.detach()


def train_network(model: nn.Module, stage: TrainStage, train: DeviceSplit, evaluate_on: DeviceSplit, seed: int,
                  description: str = "train", show_progress: bool = True,
                  checkpoint: EpochCheckpoint | None = None, precision: str = "fp32",
                  compile: bool | Callable = False) -> TrainResult:
    """Train ``model`` with ``stage``'s recipe on ``train`` and return its accuracy on ``evaluate_on``.

    The batch order, augmentation and drop path are drawn from generators seeded by
    ``seed``, so a run is repeatable on the same device and software. With ``checkpoint``
    the training continues from its saved state, if any, and saves after every epoch.
    ``precision``: the protocol's (:mod:`nasbench.precision`); ``compile``: as
    :meth:`TrainStep.build` takes it (opt-in: compiling costs seconds to minutes up front)."""
    start = time.perf_counter()
    device = train.images.device
    torch.manual_seed(seed)  # drop path draws from the global generator
    generator = torch.Generator(device=device).manual_seed(seed)
    augment = Augmentation(device, cutout=stage.cutout, precision=precision)
    step = TrainStep.build(model, stage, device, precision, compile)
    saved = None if checkpoint is None else checkpoint.load()
    first, earlier, epoch_loss = (0, 0.0, math.nan) if saved is None else _restore(saved, step, generator)
    model.train()
    loss_sum = torch.zeros((), device=device)
    with progress_bar(total=stage.epochs, initial=first, desc=description, unit="epoch",
                      enabled=show_progress) as bar:
        for epoch in range(first, stage.epochs):
            step.start_epoch(epoch)
            loss_sum.zero_()
            for images, labels in shuffled_batches(train, stage.batch_size, generator):
                loss_sum += step(augment(images, generator), labels) * labels.shape[0]
            # one host sync per epoch, not per step
            epoch_loss = loss_sum.item() / len(train)
            if not math.isfinite(epoch_loss):
                raise TrainingDiverged(f"training loss became {epoch_loss} in epoch {epoch + 1}")
            if checkpoint is not None:
                checkpoint.save(_state(epoch + 1, epoch_loss, earlier + time.perf_counter() - start, step, generator))
            bar.set_postfix(loss=f"{epoch_loss:.3f}")
            bar.update()
    accuracy = evaluate(model, evaluate_on, precision)
    return TrainResult(accuracy=accuracy, train_loss=epoch_loss, seconds=time.perf_counter() - start,
                       resumed_epoch=first, earlier_seconds=earlier)


def _state(epochs: int, loss: float, seconds: float, step: TrainStep, generator: torch.Generator) -> dict[str, Any]:
    """Everything the next epoch depends on: weights and batch-norm statistics, momentum,
    fp16's loss scale, the batch and augmentation generator, the global generators drop
    path draws from."""
    return {"epochs": epochs, "loss": loss, "seconds": seconds, "model": step.model.state_dict(),
            "optimizer": step.optimizer.state_dict(), "scaler": step.scaler.state_dict(),
            "generator": generator.get_state(), **global_generator_states(generator.device)}


def global_generator_states(device: torch.device) -> dict[str, Any]:
    """torch's global generators a training on ``device`` draws from (dropout, drop path):
    the CPU's and, on a GPU, that GPU's."""
    return {"cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_global_generators(state: dict[str, Any], device: torch.device) -> None:
    """Put back what :func:`global_generator_states` saved."""
    torch.set_rng_state(state["cpu_rng"])
    if state["cuda_rng"] is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def _restore(state: dict[str, Any], step: TrainStep, generator: torch.Generator) -> tuple[int, float, float]:
    """Put a :func:`_state` back; its (epochs done, seconds spent, last epoch's loss). A
    state saved before the scaler was kept has none: it is an fp32 run's, whose scaler
    is disabled and keeps nothing."""
    step.model.load_state_dict(state["model"])
    step.optimizer.load_state_dict(state["optimizer"])
    step.scaler.load_state_dict(state.get("scaler", {}))
    generator.set_state(state["generator"])
    restore_global_generators(state, generator.device)
    return state["epochs"], state["seconds"], state["loss"]


@torch.inference_mode()
def evaluate(model: nn.Module, split: DeviceSplit, precision: str = "fp32") -> float:
    """Top-1 accuracy of ``model`` on ``split`` (no augmentation), its forward under
    ``precision``'s autocast, as it trained."""
    model.eval()
    device = split.images.device
    augment = Augmentation(device, precision=precision)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for images, labels in ordered_batches(split, EVAL_BATCH_SIZE):
        with Precision(precision).autocast(device):
            logits = model(augment.normalise(images))
        correct += (logits.argmax(1) == labels).sum()
    return correct.item() / len(split)


@contextmanager
def recalibrated_batch_norm(model: nn.Module, split: DeviceSplit) -> Iterator[None]:
    """Within the block, every batch norm of ``model`` holds the statistics of ``split``
    (normalised, not augmented, as evaluated) under ``model``'s current forward, instead of
    its running statistics; they are put back after.

    Why: during supernet training a batch norm's running statistics mix the many paths
    that ran through it (and, for an operation, only the batches that sampled it), so they
    do not describe any one path; scoring a path with them measures the mismatch as much
    as the path. Statistics of the path itself, with the weights fixed, are what Bender et
    al. (ICML 2018: batch statistics at evaluation) and Guo et al. (Single Path One-Shot,
    2019: statistics recomputed per path on training images) score with; Li & Talwalkar's
    code has the same step (``evaluate(..., reset_bn=True)``), though its search leaves it off."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, {name: b.clone() for name, b in m.named_buffers()}) for m in norms]
    augment = Augmentation(split.images.device)
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
    model.train()
    try:
        with torch.no_grad():
            for images, _ in ordered_batches(split, EVAL_BATCH_SIZE):
                model(augment.normalise(images))
        yield
    finally:
        for norm, (momentum, buffers) in zip(norms, saved, strict=True):
            norm.momentum = momentum
            for name, buffer in buffers.items():
                getattr(norm, name).copy_(buffer)
