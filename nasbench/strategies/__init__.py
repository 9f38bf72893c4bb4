"""The registry of search methods. Adding a method: one module with a
:class:`~nasbench.strategies.base.Strategy` subclass, plus one line here."""
from __future__ import annotations

from nasbench.errors import UnknownNameError
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
from nasbench.strategies.random_search import RandomArchitecture, RandomSearch
from nasbench.strategies.proxylessnas import ProxylessNas
from nasbench.strategies.random_ws import RandomWeightSharing
from nasbench.strategies.snas import Snas

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RandomSearch, RandomArchitecture, Darts, DartsSecondOrder, Snas, Gdas, PcDarts,
                                RegularizedEvolution, Pnas, RandomWeightSharing, Fbnet, ProxylessNas, Enas,
                                NasRl, Nasnet, MetaQnn)
}


def get_strategy(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownNameError("method", name, STRATEGIES) from None
