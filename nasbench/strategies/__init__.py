"""The registry of search methods. Adding a method: one module with a
:class:`~nasbench.strategies.base.Strategy` subclass (and its settings class, if it has a
protocol section), plus one line here. Nothing here imports a method until it is used."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nasbench.errors import ConfigError, NasbenchError
from nasbench.protocol import Protocol, read_section
from nasbench.registry import Registry
from nasbench.spaces import SPACES

if TYPE_CHECKING:
    from nasbench.strategies.base import Strategy

STRATEGIES = Registry("method", "nasbench.strategies", (
    "random_search:RandomSearch", "random_search:RandomArchitecture", "darts:Darts", "darts:DartsSecondOrder",
    "snas:Snas", "gdas:Gdas", "pc_darts:PcDarts", "pdarts:Pdarts", "evolution:RegularizedEvolution", "pnas:Pnas",
    "random_ws:RandomWeightSharing", "spos:Spos", "fbnet:Fbnet", "proxylessnas:ProxylessNas", "enas:Enas",
    "nas_rl:NasRl", "nasnet:Nasnet", "metaqnn:MetaQnn", "eas:Eas",
), listed=("strategy_class", "spaces", "summary", "protocol_section", "constraint_forms", "constraint_settings"))
"""Every method by name (one line each: where its class lives), imported when used."""


SUPERNET_SEARCH = "nasbench.strategies.supernet_search:SupernetSearch"
"""The base class of the methods that train a weight-sharing supernet."""


def supernet_methods() -> list[str]:
    """The methods that train a weight-sharing supernet (what `nasbench rank` and `bench
    search-step` time), read from their source: none is imported."""
    return [name for name in STRATEGIES if STRATEGIES.derives_from(name, SUPERNET_SEARCH)]


def check_supernet_method(name: str, option: str) -> str:
    """``name`` (given as ``option``) if it is a method that trains a weight-sharing
    supernet, else a one-line error listing those that do; imports no method."""
    known = ", ".join(supernet_methods())
    if name not in STRATEGIES:
        raise NasbenchError(f"{option}: unknown method {name!r}; supernet methods: {known}")
    if not STRATEGIES.derives_from(name, SUPERNET_SEARCH):
        raise NasbenchError(f"{option}: method {name!r} trains no weight-sharing supernet; supernet methods: {known}")
    return name


def method_space(name: str, spaces: Sequence[str], space: str | None) -> str:
    """The space method ``name``, which searches ``spaces`` (its default first), searches in a
    run asking for ``space``; a one-line error where it does not search that one."""
    if space is None:
        return spaces[0]
    if space not in spaces:
        raise NasbenchError(f"method {name} does not search the {space} space (it searches: {', '.join(spaces)})")
    return space


def get_strategy(name: str) -> type[Strategy]:
    return STRATEGIES[STRATEGIES.check(name)]


def own_sections() -> dict[str, Any]:
    """Every protocol section a registered method or space owns, by label, with its reader:
    the section parsed and checked by the owner's settings class as its source defines it
    (:meth:`~nasbench.registry.Registry.source_class`), so that neither the owner nor torch
    is imported."""
    methods = {f"search.{card['protocol_section']}": _reader(STRATEGIES, name, "settings_class",
                                                             f"search.{card['protocol_section']}")
               for name, card in STRATEGIES.cards().items() if card.get("protocol_section")}
    spaces = {card["protocol_section"]: _reader(SPACES, name, "layout_class", card["protocol_section"])
              for name, card in SPACES.cards().items() if card.get("protocol_section")}
    return methods | spaces


def _reader(registry: Any, name: str, attribute: str, label: str) -> Any:
    return lambda protocol: read_section(protocol, label, registry.source_class(name, attribute))


def check_protocol(protocol: Protocol) -> Protocol:
    """``protocol`` with every method's and space's own section parsed and checked by its
    owner, and no section that nobody owns: bad settings fail here, before any work."""
    readers = own_sections()
    for label in protocol.sections:
        if label not in readers:
            raise ConfigError(f"protocol {protocol.name}: unknown section [{label}] (known: {', '.join(sorted(readers))})")
        readers[label](protocol)
    return protocol
