"""Protocols: everything a comparison between methods depends on, fixed in one value.

A protocol names the data set and its split sizes, the networks trained for candidates
and for the final evaluation with their training recipes, each method family's search
budget, and the seeds. Built-in protocols live in ``nasbench/protocols/*.toml``; custom
ones are TOML or YAML files of the same shape, optionally starting from a built-in with
``base = "proxy"``. Every stored result carries :attr:`Protocol.hash`.

A method that needs settings of its own (evolution's population, say) reads them from an
optional ``[search.<method>]`` section, and a space that needs a layout (FBNet's stages)
from a top-level ``[<space>]`` section. This module does not know them: it keeps them as
the file gives them (:attr:`Protocol.sections`), and each method or space declares its
settings class in its own file and parses its section itself (:func:`read_section`;
``nasbench.strategies.check_protocol`` checks every section before any work). These
sections are part of every run's stored protocol but not of the hash, which names what
all methods share: adding one leaves the stored runs and the cost tables of a protocol
valid, and the runner refuses to reuse a run whose own section differs from the current
one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nasbench.errors import ConfigError, UnknownNameError
from nasbench.precision import PRECISIONS
from nasbench.settings import parse_settings, require, settings_fields
from nasbench.types import NetworkConfig, seed_problem

DATASETS = ("cifar10",)


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    train_images: int
    """Training images the protocol uses (a stratified subset of the training set)."""
    search_val_images: int
    """Of ``train_images``, those held out as search-validation for architecture selection."""
    test_images: int
    """Test images (a stratified subset of the test set) for the final test error only."""
    split_seed: int

    @property
    def search_train_images(self) -> int:
        """What a search trains on: ``train_images`` less search-validation's."""
        return self.train_images - self.search_val_images

    def check(self, where: str) -> None:
        require(self.dataset in DATASETS, where, f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        require(self.train_images > 0 and self.test_images > 0, where, "train_images and test_images must be positive")
        require(0 < self.search_val_images < self.train_images, where,
                 "search_val_images must be positive and smaller than train_images")


@dataclass(frozen=True)
class TrainStage:
    """A network size and the recipe that trains it (SGD with a cosine schedule)."""

    channels: int
    cells: int
    epochs: int
    batch_size: int
    lr: float
    lr_min: float
    momentum: float
    nesterov: bool
    weight_decay: float
    grad_clip: float
    """Maximum gradient norm; 0 disables clipping."""
    cutout: int
    """Side of the cutout square in pixels; 0 disables cutout."""
    drop_path: float
    """Final drop-path probability, reached linearly over the epochs; 0 disables it."""
    auxiliary_weight: float
    """Weight of the auxiliary head's loss; 0 builds no auxiliary head."""

    @property
    def network(self) -> NetworkConfig:
        return NetworkConfig(channels=self.channels, cells=self.cells, auxiliary=self.auxiliary_weight > 0)

    def check(self, where: str) -> None:
        require(self.channels >= 2 and self.channels % 2 == 0, where, "channels must be an even number >= 2")
        require(self.cells >= 1 and self.epochs >= 1 and self.batch_size >= 1, where,
                 "cells, epochs and batch_size must be >= 1")
        require(self.lr > 0 and 0 <= self.lr_min <= self.lr, where, "need lr > 0 and 0 <= lr_min <= lr")
        require(0 <= self.momentum < 1 and self.weight_decay >= 0 and self.grad_clip >= 0, where,
                 "need 0 <= momentum < 1, weight_decay >= 0, grad_clip >= 0")
        require(0 <= self.cutout <= 32 and 0 <= self.drop_path < 1 and self.auxiliary_weight >= 0, where,
                 "need 0 <= cutout <= 32, 0 <= drop_path < 1, auxiliary_weight >= 0")


@dataclass(frozen=True)
class SupernetBudget:
    """The weight-sharing supernet shared by the gradient-based and one-shot families."""

    channels: int
    cells: int
    epochs: int
    batch_size: int

    def check(self, where: str) -> None:
        require(min(self.channels, self.cells, self.epochs, self.batch_size) >= 1, where, "all values must be >= 1")
        require(self.channels % 2 == 0, where, "channels must be an even number >= 2")


@dataclass(frozen=True)
class SearchBudget:
    candidates: int
    """Architectures a black-box method (random search, evolution, PNAS, NAS-RL) may
    train with the candidate stage before it must choose."""
    supernet: SupernetBudget

    def check(self, where: str) -> None:
        require(self.candidates >= 1, where, "candidates must be >= 1")


SHARED_KEYS = ("name", "description", "seeds", "data", "candidate", "final", "search", "precision")
"""The top-level keys every protocol has; any other top-level table is a space's own section."""
SHARED_SEARCH_KEYS = ("candidates", "supernet")
"""The ``[search]`` keys every method shares; any other ``[search.<name>]`` is a method's own."""


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    seeds: tuple[int, ...]
    data: DataConfig
    candidate: TrainStage
    """How each candidate of a black-box search is trained (on search-train) and scored (on search-val)."""
    final: TrainStage
    """The final-training recipe shared by every method (on all of ``train_images``, scored on test)."""
    search: SearchBudget
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The methods' and spaces' own sections as the file gives them, by label
    (``search.evolution``, ``fbnet``): each plugin parses its own (:func:`read_section`)."""
    precision: str = field(default_factory=lambda: "fp32")
    """What search and final training compute in (:mod:`nasbench.precision`); a factory
    default, so that a protocol stored before it existed parses as fp32."""

    def check(self, where: str) -> None:
        require(len(self.seeds) >= 1, where, "seeds must list at least one seed")
        require(self.precision in PRECISIONS, where,
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for seed in self.seeds:
            problem = seed_problem(seed)
            require(problem is None, where, f"seeds: {problem}")

    @property
    def hash(self) -> str:
        """Content hash of what every method shares: not the name and description, which
        do not change what is compared, nor the methods' and spaces' own sections."""
        content = {k: v for k, v in self._shared().items() if k not in ("name", "description")}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]

    def _shared(self) -> dict[str, Any]:
        """The shared part as a dict; fp32, the default, left out, so that the hash and the
        stored JSON of every protocol written before precision existed stay as they were."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k != "sections" and not (k == "precision" and v == "fp32")}

    def section(self, label: str) -> dict[str, Any] | None:
        """The raw ``[<label>]`` table, or None where the protocol has none."""
        return self.sections.get(label)

    def with_section(self, label: str, values: Any) -> "Protocol":
        """This protocol with ``[<label>]`` replaced (a settings value or a table; None removes it)."""
        sections = {k: v for k, v in self.sections.items() if k != label}
        if values is not None:
            sections[label] = dataclasses.asdict(values) if dataclasses.is_dataclass(values) else dict(values)
        return dataclasses.replace(self, sections=sections)

    def to_dict(self) -> dict[str, Any]:
        """The protocol as a file would hold it: the sections in their places."""
        shared = self._shared()
        for label, values in self.sections.items():
            parent, _, name = label.rpartition(".")
            (shared[parent] if parent else shared)[name] = _plain(values)
        return shared

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def read_section(protocol: Protocol, label: str, cls: type) -> Any:
    """A method's or space's own ``[<label>]`` as its settings class ``cls``, or an error
    saying how to add it; checked by the settings' ``check(where)`` and, where the class
    has one, against the rest of the protocol by its ``check_protocol(protocol, where)``."""
    raw = protocol.section(label)
    if raw is None:
        raise ConfigError(f"protocol {protocol.name} has no [{label}] section ({settings_fields(cls)}); "
                          f"add one to the protocol file (the built-in protocols have one)")
    settings = parse_settings(cls, raw, f"protocol {protocol.name}", label)
    if hasattr(settings, "check_protocol"):
        settings.check_protocol(protocol, f"protocol {protocol.name}: [{label}]")
    return settings


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """A section's values as JSON holds them (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def builtin_protocols() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("nasbench.protocols").iterdir()
                  if p.name.endswith(".toml"))


def load_protocol(name_or_path: str) -> Protocol:
    """A built-in protocol by name, or a protocol file (``.toml``, ``.yaml``, ``.yml``)."""
    if name_or_path in builtin_protocols():
        text = resources.files("nasbench.protocols").joinpath(f"{name_or_path}.toml").read_text()
        return _from_mapping(tomllib.loads(text), f"built-in protocol {name_or_path}")
    path = Path(name_or_path)
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise UnknownNameError("protocol", name_or_path, builtin_protocols() + ["<file>.toml", "<file>.yaml"])
    return protocol_from_file(path)


def protocol_from_file(path: Path) -> Protocol:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read protocol file {path}: {err.strerror}") from None
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as err:  # tomllib and yaml raise their own parse errors
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a protocol file must hold a table/mapping at the top level")
    if "base" in raw:
        base_name = raw.pop("base")
        if base_name not in builtin_protocols():
            raise ConfigError(f"{path}: base {base_name!r} is not a built-in protocol ({', '.join(builtin_protocols())})")
        base = json.loads(load_protocol(base_name).to_json())  # plain lists, as a file would hold
        base["name"] = path.stem
        raw = _merge(base, raw)
    raw.setdefault("name", path.stem)
    return _from_mapping(raw, str(path))


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def protocol_from_json(text: str, where: str) -> Protocol:
    """A protocol as a stored run keeps it (``protocol_json``), parsed and checked as a file is."""
    return _from_mapping(json.loads(text), where)


def _from_mapping(raw: dict[str, Any], where: str) -> Protocol:
    """The shared part parsed and checked; the other tables kept, by label, for their plugins."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a table")
    shared = {k: v for k, v in raw.items() if k in SHARED_KEYS}
    own = {k: v for k, v in raw.items() if k not in SHARED_KEYS}
    search = raw.get("search")
    if isinstance(search, dict):
        shared["search"] = {k: v for k, v in search.items() if k in SHARED_SEARCH_KEYS}
        own |= {f"search.{k}": v for k, v in search.items() if k not in SHARED_SEARCH_KEYS}
    sections = {}
    for label, values in own.items():
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: unknown key {label!r} (a method's or space's own section must be a table; "
                              f"shared keys: {', '.join(SHARED_KEYS)})")
        sections[label] = values
    protocol = parse_settings(Protocol, shared, where)
    return dataclasses.replace(protocol, sections=sections)
