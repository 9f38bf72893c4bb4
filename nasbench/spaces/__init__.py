"""The registry of search spaces."""
from __future__ import annotations

from typing import Any

from nasbench.errors import UnknownNameError
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.cell.space import CellSpace
from nasbench.spaces.enas_macro.space import EnasMacroSpace
from nasbench.spaces.fbnet.space import FbnetSpace
from nasbench.spaces.metaqnn.space import MetaqnnSpace
from nasbench.spaces.nasnet.space import NasnetSpace
from nasbench.spaces.nasrl_macro.space import NasRlSpace

SPACES: dict[str, type[SearchSpace]] = {cls.name: cls for cls in (CellSpace, FbnetSpace, NasRlSpace, NasnetSpace,
                                                                     MetaqnnSpace, EnasMacroSpace)}


def space_class(name: str) -> type[SearchSpace]:
    try:
        return SPACES[name]
    except KeyError:
        raise UnknownNameError("space", name, SPACES) from None


def get_space(name: str, protocol: Any = None) -> SearchSpace:
    """The space ``name`` as ``protocol`` lays it out (the cell space needs no protocol)."""
    cls = space_class(name)
    return cls() if protocol is None and cls.protocol_section is None else cls.for_protocol(protocol)


def space_for_table(table: Any) -> SearchSpace:
    """The space a cost table was measured for, laid out as the table records."""
    return space_class(table.space).for_network(table.network)
