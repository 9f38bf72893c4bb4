"""The interface every search space implements.

A space knows its architectures (immutable, hashable values that round-trip through
JSON), how to draw one uniformly, how to build a network from one, and which published
architectures (the zoo) it holds. Strategies talk to spaces only through this interface.

A space's description (its architectures, zoo and cost parts) imports no torch, so that
commands answer bad input before torch loads; only building networks and parts does.
"""
from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Hashable, Mapping, TypeVar

from nasbench.errors import ConfigError, NasbenchError
from nasbench.protocol import Protocol, read_section
from nasbench.spaces.resolve import is_record, read_json_file, record_arch
from nasbench.types import ArchitectureGraph, CostLayout, NetworkConfig, PartKey

if TYPE_CHECKING:
    import torch
    from torch import nn

Arch = TypeVar("Arch", bound=Hashable)


@dataclass(frozen=True)
class ZooEntry(Generic[Arch]):
    """A published architecture with the parameter count its paper reports."""

    name: str
    arch: Arch
    published_params_m: float | None
    source: str
    note: str
    params_note: str = ""
    """Why our parameter count differs from the published one, where it does."""


class SearchSpace(ABC, Generic[Arch]):
    name: ClassVar[str]
    description: ClassVar[str]
    arch_noun: ClassVar[str] = "architecture"
    """What its architectures are called in messages (the cell space's: genotype)."""
    protocol_section: ClassVar[str | None] = None
    """The protocol section that lays the space out, where one does (``fbnet``)."""
    layout_class: ClassVar[type | None] = None
    """The settings dataclass of that section, defined in the space's own file."""
    input_size: int = 32
    """Side of the square images its networks take."""
    task: ClassVar[str] = "image"
    """What its networks do: ``image`` (classify 32x32 images into ``num_classes``) or
    ``language-model`` (predict the next of ``num_classes`` words from (time, batch) ids)."""

    @classmethod
    def for_protocol(cls, protocol: Protocol) -> "SearchSpace":
        """The space as ``protocol`` lays it out: built from its ``[<protocol_section>]``
        where the space has one."""
        return cls() if cls.protocol_section is None else cls(cls.read_layout(protocol))

    @classmethod
    def read_layout(cls, protocol: Protocol) -> Any:
        """The space's ``[<protocol_section>]`` of ``protocol``, parsed and checked, or an error
        saying how to add it; None for a space without a layout of its own."""
        if cls.protocol_section is None:
            return None
        return read_section(protocol, cls.protocol_section, cls.layout_class)

    @classmethod
    def for_network(cls, network: dict[str, Any]) -> "SearchSpace":
        """The space as a cost table's :meth:`network_record` lays it out."""
        return cls()

    def network_record(self, config: NetworkConfig) -> dict[str, Any]:
        """What identifies the network a cost table's parts come from (stored in the table,
        so that a table is never applied to another layout)."""
        return {"channels": config.channels, "cells": config.cells}

    def describe_network(self, config: NetworkConfig) -> str:
        """The network of ``config`` in words (for reports and ``nasbench cost``)."""
        return f"{config.channels} channels, {config.cells} cells"

    @abstractmethod
    def sample(self, rng: random.Random) -> Arch:
        """Draw an architecture uniformly at random, using only ``rng``."""

    @abstractmethod
    def build(self, arch: Arch, config: NetworkConfig) -> nn.Module:
        """A freshly initialised network for ``arch`` (weights drawn from torch's RNG)."""

    @abstractmethod
    def from_dict(self, data: Any, where: str = "architecture") -> Arch:
        """Parse an architecture from its JSON form, with a clear error when malformed."""

    @abstractmethod
    def to_dict(self, arch: Arch) -> dict[str, Any]:
        """The JSON form of ``arch``."""

    def from_file(self, path: Path) -> Arch:
        """An architecture from a JSON file of its form or of a result record that holds one
        (:func:`record_arch`), with a one-line error when the file cannot be read, is not JSON
        or is malformed."""
        data = read_json_file(path, self.arch_noun)
        if is_record(data):
            return self.from_dict(record_arch(data, self.name, path), where=f"{path}: its genotype field")
        try:
            return self.from_dict(data, where=str(path))
        except ConfigError as err:
            raise ConfigError(f"{err}; or give a record with the {self.arch_noun} in its genotype field, as "
                              "`nasbench describe --json` prints") from None

    def profile_sample(self, rng: random.Random) -> Arch:
        """An architecture for a cost table's calibration and validation networks, which
        should span the costs searches reach: a uniform draw unless overridden."""
        return self.sample(rng)

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """A different architecture one small change away from ``arch`` (evolution's step),
        using only ``rng``."""
        raise NasbenchError(f"the {self.name} space defines no mutation, so evolution cannot search it")

    def skip_share(self, arch: Arch) -> dict[str, float]:
        """Per group of choices, the share that are skip connections (a supernet method
        collapsing onto them is a known failure mode); none where the space has no groups."""
        return {}

    def zoo(self) -> Mapping[str, ZooEntry[Arch]]:
        """Published architectures of this space, by name."""
        return {}

    def graph(self, arch: Arch) -> tuple[ArchitectureGraph, ...]:
        """``arch`` as graphs to draw, one per group (a cell type, or the whole network), in
        the space's natural drawing (the report's architecture figures)."""
        raise NasbenchError(f"the {self.name} space has no drawing of its {self.arch_noun}s")

    # -- hardware cost decomposition (spaces that support cost tables) ---------------
    def cost_parts(self, arch: Arch, config: NetworkConfig) -> list[PartKey]:
        """The parts of ``arch``'s network, one per occurrence; costs add over them."""
        raise self._no_costs()

    def all_cost_parts(self, config: NetworkConfig) -> list[PartKey]:
        """Every distinct part a network of this space (or of its zoo) can contain."""
        raise self._no_costs()

    def build_part(self, key: PartKey) -> nn.Module:
        """A module that computes ``key`` exactly as inside the network."""
        raise self._no_costs()

    def part_inputs(self, key: PartKey, batch_size: int) -> list[tuple[int, ...]]:
        """The shapes of ``key``'s inputs at ``batch_size``: images unless the space's parts take others."""
        return key.input_shapes(batch_size)

    def cost_network_config(self, protocol: Protocol, window: bool = False) -> NetworkConfig | None:
        """The network a cost table decomposes, where it is not the protocol's final network
        (None: it is). ``window`` asks for a recurrent cell over a BPTT window."""
        if window:
            raise NasbenchError(f"the {self.name} space has no time steps: a BPTT window is for recurrent cells")
        return None

    def cost_batch_size(self) -> int:
        """The batch size a cost table is measured at unless one is asked for."""
        return 1

    def build_cost_network(self, arch: Arch, config: NetworkConfig) -> nn.Module:
        """The whole network a table's parts add up to (measured to calibrate and validate it)."""
        return self.build(arch, config)

    def cost_network_inputs(self, config: NetworkConfig, batch_size: int) -> list[tuple[int, ...]]:
        """The shapes of :meth:`build_cost_network`'s inputs at ``batch_size``."""
        return [(batch_size, 3, self.input_size, self.input_size)]

    def cost_layout(self, config: NetworkConfig) -> CostLayout:
        """How architecture weights map onto parts, for expected costs."""
        raise self._no_costs()

    def arch_weights(self, arch: Arch) -> dict[str, torch.Tensor]:
        """``arch`` as (one-hot) architecture weights over :meth:`cost_layout`."""
        raise self._no_costs()

    def _no_costs(self) -> NasbenchError:
        return NasbenchError(f"the {self.name} space has no cost decomposition, so it cannot have cost tables")
