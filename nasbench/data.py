"""Data on the training device: the protocol's splits as tensors, and batched augmentation.

Images stay uint8 on the training device for the whole run; each batch is gathered,
augmented and normalised there with tensor operations, so no per-image Python runs in
the training loop. Loading and splitting the data set is :mod:`nasbench.images`'.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from nasbench.images import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    Dataset,
    SplitIndices,
    make_splits,
)
from nasbench.protocol import DataConfig

# -- device-side batches ---------------------------------------------------------------

@dataclass(frozen=True)
class DeviceSplit:
    """A split's images (uint8, NCHW) and labels, resident on the training device."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_arrays(cls, x: np.ndarray, y: np.ndarray, device: torch.device) -> "DeviceSplit":
        images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)
        return cls(images, torch.from_numpy(y).to(device))

    def __len__(self) -> int:
        return self.labels.shape[0]

    def to(self, device: torch.device) -> "DeviceSplit":
        return DeviceSplit(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class SplitData:
    """The protocol's splits on the device: what strategies and trainers receive."""

    search_train: DeviceSplit
    search_val: DeviceSplit
    train: DeviceSplit
    test: DeviceSplit

    def to(self, device: torch.device) -> "SplitData":
        """The same splits on ``device`` (where a task trains: the driver shares them on the CPU)."""
        return SplitData(*(split.to(device) for split in (self.search_train, self.search_val, self.train, self.test)))

    @classmethod
    def for_config(cls, dataset: Dataset, config: DataConfig, device: torch.device) -> "SplitData":
        """The splits ``config`` draws from ``dataset`` (:func:`make_splits`), on ``device``."""
        return cls.build(dataset, make_splits(dataset, config), device)

    @classmethod
    def build(cls, dataset: Dataset, splits: SplitIndices, device: torch.device) -> "SplitData":
        def part(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> DeviceSplit:
            return DeviceSplit.from_arrays(x[idx], y[idx], device)

        return cls(
            search_train=part(dataset.x_train, dataset.y_train, splits.search_train),
            search_val=part(dataset.x_train, dataset.y_train, splits.search_val),
            train=part(dataset.x_train, dataset.y_train, splits.train),
            test=part(dataset.x_test, dataset.y_test, splits.test),
        )


def network_memory_format(device: torch.device, precision: str = "fp32") -> torch.memory_format:
    """The memory format networks train and evaluate in: channels-last on a CPU in fp32,
    where oneDNN's depthwise convolutions and pooling run several times faster in it than
    in NCHW (a DARTS search step 1.7x faster, ``nasbench bench search-step``). NCHW on a
    CPU in bf16 and fp16: there channels-last made a DARTS search step 10x slower (88 s
    against 8.3 s, batch 32, 8 cells, 16 channels) and oneDNN's channels-last bf16
    backward of depthwise dilated convolutions is not deterministic, which would break
    exact resumption (a DARTS_V2 final-training step was 1.8x faster in it, but not
    repeatable). NCHW on a GPU, where no gain was measured: NVIDIA's guidance is
    channels-last for fp16/bf16 convolutions on tensor cores, unmeasured here (no GPU:
    ``nasbench bench ... --memory-format channels-last`` times it)."""
    return torch.channels_last if device.type == "cpu" and precision == "fp32" else torch.contiguous_format


MEMORY_FORMATS = {"channels-last": torch.channels_last, "nchw": torch.contiguous_format}
"""The memory formats a benchmark can time a step in, by name (``--memory-format``)."""


def chosen_memory_format(name: str, device: torch.device, precision: str) -> torch.memory_format:
    """``name``'s memory format; ``auto`` is :func:`network_memory_format`'s, what a run trains in."""
    return network_memory_format(device, precision) if name == "auto" else MEMORY_FORMATS[name]


def memory_format_name(memory_format: torch.memory_format) -> str:
    return next(name for name, known in MEMORY_FORMATS.items() if known == memory_format)


class Augmentation:
    """Standard CIFAR augmentation on whole batches: zero-pad 4 and random 32x32 crop,
    horizontal flip, per-channel normalisation, then optional cutout (as in DARTS)."""

    def __init__(self, device: torch.device, crop_padding: int = 4, flip: bool = True, cutout: int = 0,
                 precision: str = "fp32"):
        self.padding, self.flip, self.cutout = crop_padding, flip, cutout
        self.mean = torch.tensor(CIFAR10_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(CIFAR10_STD, device=device).view(1, 3, 1, 1)
        self.memory_format = network_memory_format(torch.device(device), precision)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Float images in the device's and precision's :func:`network_memory_format`, which
        the networks' layers then keep."""
        images = images.contiguous(memory_format=self.memory_format)
        return (images.float().div_(255.0) - self.mean) / self.std

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = images.shape
        device = images.device
        x = images
        if self.padding:
            p = self.padding
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n, 1), device=device, generator=generator)
            dx = torch.randint(0, 2 * p + 1, (n, 1), device=device, generator=generator)
            rows = (dy + torch.arange(h, device=device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * p)
            x = padded.gather(2, rows)
            cols = (dx + torch.arange(w, device=device)).view(n, 1, 1, w).expand(n, c, h, w)
            x = x.gather(3, cols)
        if self.flip:
            flip = torch.rand(n, device=device, generator=generator) < 0.5
            x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        x = self.normalise(x)
        if self.cutout:
            half = self.cutout // 2
            cy = torch.randint(0, h, (n, 1), device=device, generator=generator)
            cx = torch.randint(0, w, (n, 1), device=device, generator=generator)
            ys, xs = torch.arange(h, device=device), torch.arange(w, device=device)
            in_y = (ys >= cy - half) & (ys < cy + half)
            in_x = (xs >= cx - half) & (xs < cx + half)
            hole = in_y.view(n, 1, h, 1) & in_x.view(n, 1, 1, w)
            x.masked_fill_(hole, 0.0)  # in place: keeps the memory format
        return x


def shuffled_batches(split: DeviceSplit, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Raw (uint8) training batches in a fresh random order, the last one possibly
    smaller. A last batch of a single image is dropped: batch norm cannot normalise one
    value per channel (the auxiliary head's 1x1 maps)."""
    order = torch.randperm(len(split), device=split.labels.device, generator=generator)
    for start in range(0, len(split), batch_size):
        idx = order[start:start + batch_size]
        if len(idx) == 1 and len(split) > 1:
            return
        yield split.images[idx], split.labels[idx]


def endless_batches(split: DeviceSplit, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`shuffled_batches` pass after pass, reshuffled each time: batches of a split
    drawn beside the batches of another (a bilevel search's validation batches)."""
    while True:
        yield from shuffled_batches(split, batch_size, generator)


def ordered_batches(split: DeviceSplit, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(split), batch_size):
        yield split.images[start:start + batch_size], split.labels[start:start + batch_size]
