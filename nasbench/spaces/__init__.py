"""The registry of search spaces; a space is imported when it is used."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasbench.registry import Registry

if TYPE_CHECKING:
    from nasbench.spaces.base import SearchSpace

SPACES = Registry("space", "nasbench.spaces", (
    "cell.space:CellSpace", "fbnet.space:FbnetSpace", "nasrl_macro.space:NasRlSpace", "nasnet.space:NasnetSpace",
    "metaqnn.space:MetaqnnSpace", "enas_macro.space:EnasMacroSpace", "plain_cnn.space:PlainCnnSpace",
    "recurrent_cell.space:EnasRnnSpace", "nasrl_rnn.space:NasRlRnnSpace",
), listed=("description", "protocol_section", "task"))
"""Every space by name (one line each: where its class lives), imported when used."""


def space_task(name: str) -> str:
    """What space ``name`` is for (``image`` or ``language-model``), read from its source:
    commands choose their data before torch or the space is imported."""
    return SPACES.cards()[SPACES.check(name)]["task"]


def space_class(name: str) -> type[SearchSpace]:
    return SPACES[SPACES.check(name)]


def get_space(name: str, protocol: Any = None) -> SearchSpace:
    """The space ``name`` as ``protocol`` lays it out (the cell space needs no protocol)."""
    cls = space_class(name)
    return cls() if protocol is None and cls.protocol_section is None else cls.for_protocol(protocol)


def space_for_table(table: Any) -> SearchSpace:
    """The space a cost table was measured for, laid out as the table records."""
    return space_class(table.space).for_network(table.network)
