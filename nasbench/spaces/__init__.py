"""The registry of search spaces."""
from __future__ import annotations

from nasbench.errors import UnknownNameError
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.cell.space import CellSpace

SPACES: dict[str, type[SearchSpace]] = {cls.name: cls for cls in (CellSpace,)}


def get_space(name: str) -> SearchSpace:
    try:
        return SPACES[name]()
    except KeyError:
        raise UnknownNameError("space", name, SPACES) from None
