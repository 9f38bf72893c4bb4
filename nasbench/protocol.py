"""Protocols: everything a comparison between methods depends on, fixed in one value.

A protocol names the data set and its split sizes, the networks trained for candidates
and for the final evaluation with their training recipes, each method family's search
budget, and the seeds. Built-in protocols live in ``nasbench/protocols/*.toml``; custom
ones are TOML or YAML files of the same shape, optionally starting from a built-in with
``base = "proxy"``. Every stored result carries :attr:`Protocol.hash`.

A method that needs settings of its own (evolution's population, say) reads them from an
optional ``[search.<method>]`` section. These sections are part of every run's stored
protocol but not of the hash, which names what all methods share: adding one leaves the
stored runs and the cost tables of a protocol valid, and the runner refuses to reuse a
run whose own section differs from the current one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nasbench.errors import ConfigError, UnknownNameError
from nasbench.spaces.base import NetworkConfig

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

    def check(self, where: str) -> None:
        _require(self.dataset in DATASETS, where, f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        _require(self.train_images > 0 and self.test_images > 0, where, "train_images and test_images must be positive")
        _require(0 < self.search_val_images < self.train_images, where,
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
        _require(self.channels >= 2 and self.channels % 2 == 0, where, "channels must be an even number >= 2")
        _require(self.cells >= 1 and self.epochs >= 1 and self.batch_size >= 1, where,
                 "cells, epochs and batch_size must be >= 1")
        _require(self.lr > 0 and 0 <= self.lr_min <= self.lr, where, "need lr > 0 and 0 <= lr_min <= lr")
        _require(0 <= self.momentum < 1 and self.weight_decay >= 0 and self.grad_clip >= 0, where,
                 "need 0 <= momentum < 1, weight_decay >= 0, grad_clip >= 0")
        _require(0 <= self.cutout <= 32 and 0 <= self.drop_path < 1 and self.auxiliary_weight >= 0, where,
                 "need 0 <= cutout <= 32, 0 <= drop_path < 1, auxiliary_weight >= 0")


@dataclass(frozen=True)
class SupernetBudget:
    """The weight-sharing supernet shared by the gradient-based and one-shot families."""

    channels: int
    cells: int
    epochs: int
    batch_size: int

    def check(self, where: str) -> None:
        _require(min(self.channels, self.cells, self.epochs, self.batch_size) >= 1, where, "all values must be >= 1")


@dataclass(frozen=True)
class EvolutionBudget:
    """Regularized evolution's population and tournament sample (AmoebaNet)."""

    population: int
    sample: int

    def check(self, where: str) -> None:
        _require(1 <= self.sample <= self.population, where, "need 1 <= sample <= population")


@dataclass(frozen=True)
class RandomWsBudget:
    """Random search with weight sharing (Li & Talwalkar): how many random architectures
    the shared weights score on a few search-validation batches, and how many of the best
    of them they score again on all of search-validation before choosing."""

    samples: int
    finalists: int

    def check(self, where: str) -> None:
        _require(1 <= self.finalists <= self.samples, where, "need 1 <= finalists <= samples")


@dataclass(frozen=True)
class EnasBudget:
    """ENAS' controller phase after each epoch of shared-weight training: ``controller_steps``
    policy updates, each over ``controller_aggregate`` sampled architectures rewarded by their
    accuracy on one search-validation batch; its final choice: the best of
    ``derive_samples`` sampled architectures, each on one search-validation batch."""

    controller_steps: int
    controller_aggregate: int
    derive_samples: int

    def check(self, where: str) -> None:
        _require(min(self.controller_steps, self.controller_aggregate, self.derive_samples) >= 1, where,
                 "all values must be >= 1")


@dataclass(frozen=True)
class NasRlBudget:
    """NAS-RL's controller schedule (Zoph & Le, ICLR 2017, Sect. 4.1): one policy update per
    ``children_per_update`` trained children (the paper's m = 8 per controller replica), and
    child depth starting at ``start_layers`` (the paper: 6) and growing by 2 at even
    intervals of the candidate budget until the space's ``max_layers`` (the paper: every
    1,600 of 12,800 samples, 6 to 20 layers)."""

    children_per_update: int
    start_layers: int

    def check(self, where: str) -> None:
        _require(self.children_per_update >= 1 and self.start_layers >= 1, where,
                 "children_per_update and start_layers must be >= 1")


@dataclass(frozen=True)
class NasnetBudget:
    """NASNet's controller schedule (Zoph et al., CVPR 2018, Appendix A.3): one PPO update
    per ``children_per_update`` trained children (the paper: minibatches of 20 architectures)."""

    children_per_update: int

    def check(self, where: str) -> None:
        _require(self.children_per_update >= 1, where, "children_per_update must be >= 1")


@dataclass(frozen=True)
class SearchBudget:
    candidates: int
    """Architectures a black-box method (random search, evolution, PNAS, NAS-RL) may
    train with the candidate stage before it must choose."""
    supernet: SupernetBudget
    evolution: EvolutionBudget | None = None
    random_ws: RandomWsBudget | None = None
    enas: EnasBudget | None = None
    nas_rl: NasRlBudget | None = None
    nasnet: NasnetBudget | None = None

    def check(self, where: str) -> None:
        _require(self.candidates >= 1, where, "candidates must be >= 1")
        if self.evolution is not None:
            _require(self.evolution.population <= self.candidates, where,
                     "evolution.population must not exceed candidates (the population is trained first)")


METHOD_SECTIONS = tuple(f.name for f in dataclasses.fields(SearchBudget) if f.default is None)
"""The optional ``[search.<method>]`` sections: stored with every run, left out of the hash."""


@dataclass(frozen=True)
class FbnetLayout:
    """The FBNet space's fixed macro-architecture (Wu et al., CVPR 2019, Table 1): a stem
    convolution, searchable layers in stages of fixed width and stride (the first layer
    of a stage strides and changes the width), a 1x1 head convolution, pooling and a
    classifier. The paper's ImageNet layout has 224-pixel images, a stride-2 stem of 16
    channels, stages of (1, 4, 4, 4, 4, 4, 1) layers with (16, 24, 32, 64, 112, 184, 352)
    channels and strides (1, 2, 2, 2, 1, 2, 1), and a 1984-channel head; CIFAR-sized
    layouts keep 32-pixel images at stride 1 in the stem and the first two stages."""

    resolution: int
    stem_channels: int
    stem_stride: int
    stage_layers: tuple[int, ...]
    stage_channels: tuple[int, ...]
    stage_strides: tuple[int, ...]
    head_channels: int

    def check(self, where: str) -> None:
        stages = len(self.stage_layers)
        _require(stages >= 1 and len(self.stage_channels) == stages and len(self.stage_strides) == stages, where,
                 "stage_layers, stage_channels and stage_strides must be lists of the same, non-zero length")
        _require(all(n >= 1 for n in self.stage_layers), where, "every stage needs at least one layer")
        _require(all(c >= 2 and c % 2 == 0 for c in (self.stem_channels, *self.stage_channels)), where,
                 "stem_channels and stage_channels must be even numbers >= 2 (blocks with 2 groups split them)")
        _require(all(s in (1, 2) for s in (self.stem_stride, *self.stage_strides)), where, "strides must be 1 or 2")
        _require(self.head_channels >= 1, where, "head_channels must be >= 1")
        total_stride = self.stem_stride * 2 ** sum(s == 2 for s in self.stage_strides)
        _require(self.resolution >= total_stride and self.resolution % total_stride == 0, where,
                 f"resolution must be a multiple of the layout's total stride {total_stride}")


@dataclass(frozen=True)
class NasRlLayout:
    """The NAS-RL space's layer choices (Zoph & Le, ICLR 2017, Sect. 4.1): filter heights and
    widths among 1, 3, 5, 7 (fixed), a filter count among ``filter_counts`` (the paper: 24,
    36, 48, 64), a stride among ``strides`` per direction (the paper's first setting: 1 only;
    its second: 1, 2, 3), and at most ``max_layers`` layers (the paper's depth schedule ends
    at 20 layers on CIFAR-10)."""

    max_layers: int
    filter_counts: tuple[int, ...]
    strides: tuple[int, ...]

    def check(self, where: str) -> None:
        _require(self.max_layers >= 1, where, "max_layers must be >= 1")
        _require(len(self.filter_counts) >= 1 and all(c >= 1 for c in self.filter_counts), where,
                 "filter_counts must list at least one count >= 1")
        _require(len(self.strides) >= 1 and all(s >= 1 for s in self.strides), where,
                 "strides must list at least one stride >= 1")


@dataclass(frozen=True)
class MetaqnnLayout:
    """The MetaQNN space's layer sizes (Baker et al., ICLR 2017, Table 1): at most
    ``max_layers`` layers before the termination (the paper's layer-depth limit: 12; the
    official code's CIFAR-10 settings allow 18), convolutions of ``conv_filters`` filters
    (the paper: 64, 128, 256, 512) and fully connected layers of ``fc_neurons`` neurons
    (the paper: 512, 256, 128). Receptive fields, pooling options and representation-size
    bins are the paper's in every layout."""

    max_layers: int
    conv_filters: tuple[int, ...]
    fc_neurons: tuple[int, ...]

    def check(self, where: str) -> None:
        _require(self.max_layers >= 1, where, "max_layers must be >= 1")
        for name in ("conv_filters", "fc_neurons"):
            values = getattr(self, name)
            _require(len(values) >= 1 and all(v >= 1 for v in values) and len(set(values)) == len(values), where,
                     f"{name} must list distinct sizes >= 1")


@dataclass(frozen=True)
class EnasMacroLayout:
    """ENAS' macro space's depth (Pham et al., ICML 2018, Sect. 2.3: "In our experiments,
    L = 12"): ``layers`` layers, with pooling after layers L/3 and 2L/3 (the official
    general_child.py). The width is the network config's channels."""

    layers: int

    def check(self, where: str) -> None:
        _require(self.layers >= 3, where, "layers must be >= 3 (the network pools after layers L/3 and 2L/3)")


SPACE_SECTIONS = ("fbnet", "nasrl_macro", "metaqnn", "enas_macro")
"""Optional top-level sections that lay out a search space other than the cell space:
stored with every run, left out of the hash, like the methods' sections."""


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
    fbnet: FbnetLayout | None = None
    """The FBNet space's layout, for the methods that search it (fbnet, proxylessnas)."""
    nasrl_macro: NasRlLayout | None = None
    """The NAS-RL space's layer choices (nas-rl)."""
    metaqnn: MetaqnnLayout | None = None
    """The MetaQNN space's layer sizes (metaqnn)."""
    enas_macro: EnasMacroLayout | None = None
    """ENAS' macro space's depth (enas on enas-macro)."""

    def check(self, where: str) -> None:
        _require(len(self.seeds) >= 1, where, "seeds must list at least one seed")

    @property
    def hash(self) -> str:
        """Content hash of what every method shares: not the name and description, which
        do not change what is compared, nor the methods' own sections (:data:`METHOD_SECTIONS`)
        and the other spaces' layouts (:data:`SPACE_SECTIONS`)."""
        content = {k: v for k, v in self.to_dict().items() if k not in ("name", "description", *SPACE_SECTIONS)}
        content["search"] = {k: v for k, v in content["search"].items() if k not in METHOD_SECTIONS}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]

    def method_section(self, section: str) -> Any:
        """The ``[search.<section>]`` settings, or an error saying how to add them."""
        return _present(self.search, section, f"search.{section}", self.name)

    def space_section(self, section: str) -> Any:
        """The ``[<section>]`` layout of a space, or an error saying how to add it."""
        return _present(self, section, section, self.name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _present(owner: Any, field: str, label: str, protocol: str) -> Any:
    value = getattr(owner, field)
    if value is None:
        section_type = typing.get_type_hints(type(owner))[field].__args__[0]
        fields = ", ".join(f.name for f in dataclasses.fields(section_type))
        raise ConfigError(f"protocol {protocol} has no [{label}] section ({fields}); "
                          f"add one to the protocol file (the built-in protocols have one)")
    return value


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


def _from_mapping(raw: dict[str, Any], where: str) -> Protocol:
    return _build(Protocol, raw, where, "")


def _build(cls: type, raw: Any, where: str, section: str) -> Any:
    label = f"[{section}]" if section else "the top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {label} must be a table")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    optional = {f.name for f in fields if f.default is None}
    unknown = sorted(set(raw) - set(names))
    missing = [n for n in names if n not in raw and n not in optional]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} in {label} (known: {', '.join(names)})")
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r} in {label}")
    values = {}
    for name in names:
        key = f"{section}.{name}" if section else name
        hint = hints[name]
        if name in optional:
            if raw.get(name) is None:
                values[name] = None
                continue
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw[name], where, key)
        else:
            values[name] = _coerce(hint, raw[name], where, key)
    obj = cls(**values)
    obj.check(f"{where}: {label}")
    return obj


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{where}: {key} must be {expected}, got {value!r}")

    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise wrong("a list of integers")
        return tuple(value)
    raise TypeError(f"unsupported protocol field type {hint!r}")


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{where}: {message}")
