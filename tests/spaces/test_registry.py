"""The registry of search spaces."""
from __future__ import annotations

import dataclasses
import json

import pytest

from nasbench.errors import ConfigError, UnknownNameError
from nasbench.spaces import SPACES, get_space, space_class
from nasbench.spaces.cell.space import CellSpace


def test_registry():
    assert sorted(SPACES) == ["cell", "enas-macro", "enas-rnn", "fbnet", "metaqnn", "nasnet", "nasrl-macro",
                              "nasrl-rnn", "plain-cnn"]
    assert isinstance(get_space("cell"), CellSpace)
    with pytest.raises(UnknownNameError) as info:
        get_space("nope")
    assert str(info.value) == ("unknown space 'nope'; known: cell, enas-macro, enas-rnn, fbnet, metaqnn, nasnet, "
                               "nasrl-macro, nasrl-rnn, plain-cnn")
    assert info.value.known == sorted(SPACES)


def test_the_recurrent_spaces_share_one_language_model_section(smoke):
    """Two owners of one label: ``check_protocol`` keeps one reader per label, so both must
    parse it alike, with the same settings class."""
    from nasbench.strategies import check_protocol, own_sections

    owners = [space_class(name) for name in ("enas-rnn", "nasrl-rnn")]
    assert {cls.protocol_section for cls in owners} == {"language_model"}
    assert owners[0].layout_class is owners[1].layout_class
    assert {cls.task for cls in owners} == {"language-model"} and space_class("cell").task == "image"
    parsed = [owners[0].read_layout(smoke), owners[1].read_layout(smoke), own_sections()["language_model"](smoke)]
    assert len({json.dumps(dataclasses.asdict(settings)) for settings in parsed}) == 1
    broken = smoke.with_section("language_model", {**smoke.section("language_model"), "nasrl_base": 3})
    with pytest.raises(ConfigError, match="nasrl_base must be a power of 2"):
        check_protocol(broken)
