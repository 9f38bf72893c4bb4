"""The registry of search methods. Adding a method: one module with a
:class:`~nasbench.strategies.base.Strategy` subclass (and its settings class, if it has a
protocol section), plus one line here."""
from __future__ import annotations

from typing import Any

from nasbench.errors import ConfigError, UnknownNameError
from nasbench.protocol import Protocol
from nasbench.spaces import SPACES
from nasbench.strategies.base import Strategy
from nasbench.strategies.darts import Darts, DartsSecondOrder
from nasbench.strategies.enas import Enas
from nasbench.strategies.evolution import RegularizedEvolution
from nasbench.strategies.fbnet import Fbnet
from nasbench.strategies.gdas import Gdas
from nasbench.strategies.metaqnn import MetaQnn
from nasbench.strategies.nas_rl import NasRl
from nasbench.strategies.nasnet import Nasnet
from nasbench.strategies.pc_darts import PcDarts
from nasbench.strategies.pnas import Pnas
from nasbench.strategies.proxylessnas import ProxylessNas
from nasbench.strategies.random_search import RandomArchitecture, RandomSearch
from nasbench.strategies.random_ws import RandomWeightSharing
from nasbench.strategies.snas import Snas
from nasbench.strategies.supernet_search import SupernetSearch

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RandomSearch, RandomArchitecture, Darts, DartsSecondOrder, Snas, Gdas, PcDarts,
                                RegularizedEvolution, Pnas, RandomWeightSharing, Fbnet, ProxylessNas, Enas,
                                NasRl, Nasnet, MetaQnn)
}


def supernet_methods() -> list[str]:
    """The methods that train a weight-sharing supernet (what `nasbench rank` and `bench search-step` time)."""
    return [name for name, cls in STRATEGIES.items() if issubclass(cls, SupernetSearch)]


def get_strategy(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownNameError("method", name, STRATEGIES) from None


def own_sections() -> dict[str, Any]:
    """Every protocol section a registered method or space owns, by label, with its reader."""
    methods = {f"search.{cls.protocol_section}": cls.read_settings for cls in STRATEGIES.values() if cls.protocol_section}
    spaces = {cls.protocol_section: cls.read_layout for cls in SPACES.values() if cls.protocol_section}
    return methods | spaces


def check_protocol(protocol: Protocol) -> Protocol:
    """``protocol`` with every method's and space's own section parsed and checked by its
    owner, and no section that nobody owns: bad settings fail here, before any work."""
    readers = own_sections()
    for label in protocol.sections:
        if label not in readers:
            raise ConfigError(f"protocol {protocol.name}: unknown section [{label}] (known: {', '.join(sorted(readers))})")
        readers[label](protocol)
    return protocol
