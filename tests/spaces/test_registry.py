"""The registry of search spaces."""
from __future__ import annotations

import pytest

from nasbench.errors import UnknownNameError
from nasbench.spaces import SPACES, get_space
from nasbench.spaces.cell.space import CellSpace


def test_registry():
    assert sorted(SPACES) == ["cell", "enas-macro", "fbnet", "metaqnn", "nasnet", "nasrl-macro", "plain-cnn"]
    assert isinstance(get_space("cell"), CellSpace)
    with pytest.raises(UnknownNameError) as info:
        get_space("nope")
    assert str(info.value) == ("unknown space 'nope'; known: cell, enas-macro, fbnet, metaqnn, nasnet, nasrl-macro, "
                               "plain-cnn")
    assert info.value.known == ["cell", "enas-macro", "fbnet", "metaqnn", "nasnet", "nasrl-macro", "plain-cnn"]
