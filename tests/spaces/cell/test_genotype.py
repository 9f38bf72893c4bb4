"""Genotypes: immutable, hashable values with a strict JSON form."""
from __future__ import annotations

import dataclasses
import json

import pytest

from nasbench.errors import ConfigError
from nasbench.spaces.cell.genotype import Genotype

ZOO_NAMES = ["DARTS_V1", "DARTS_V2", "NASNet", "AmoebaNet", "ENAS", "ENAS_official_script_arc", "PC_DARTS",
             "PC_DARTS_image", "PDARTS", "GDAS", "GDAS_FRC", "SNAS", "SNAS_mild", "SNAS_moderate", "SNAS_aggressive"]

SMALL = {
    "normal": [["sep_conv_3x3", 1], ["skip_connect", 0], ["dil_conv_5x5", 2], ["avg_pool_3x3", 1]],
    "normal_concat": [2, 3],
    "reduce": [["max_pool_3x3", 0], ["sep_conv_5x5", 1], ["skip_connect", 2], ["max_pool_3x3", 0]],
    "reduce_concat": [3],
}


def small() -> Genotype:
    return Genotype.from_dict(json.loads(json.dumps(SMALL)))


def with_(**changes) -> dict:
    return {**json.loads(json.dumps(SMALL)), **changes}


@pytest.fixture(scope="module")
def zoo(cell_space):
    return cell_space.zoo()


def test_zoo_holds_the_expected_entries(zoo):
    assert sorted(zoo) == sorted(ZOO_NAMES)
    assert zoo["GDAS_FRC"].arch.reduce is None
    assert all(zoo[n].arch.reduce is not None for n in ZOO_NAMES if n != "GDAS_FRC")


def test_fields_hold_tuples_in_the_given_order():
    g = small()
    assert g.normal == (("sep_conv_3x3", 1), ("skip_connect", 0), ("dil_conv_5x5", 2), ("avg_pool_3x3", 1))
    assert g.normal_concat == (2, 3)
    assert g.reduce == (("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("skip_connect", 2), ("max_pool_3x3", 0))
    assert g.reduce_concat == (3,)
    assert g.nodes == 2


@pytest.mark.parametrize("field", ["normal", "normal_concat", "reduce", "reduce_concat"])
def test_frozen(field):
    g = small()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(g, field, None)
    assert g == small()


def test_equality_and_hashing():
    a, b = small(), small()
    assert a is not b and a == b and hash(a) == hash(b)
    other = Genotype.from_dict(with_(reduce_concat=[2, 3]))
    assert a != other
    table = {a: "first"}
    assert table[b] == "first"  # an equal, distinct object finds the entry
    assert other not in table
    assert len({a, b, other}) == 2


def test_zoo_genotypes_as_set_members(zoo):
    genotypes = [entry.arch for entry in zoo.values()]
    distinct_json = {g.to_json() for g in genotypes}
    assert len(set(genotypes)) == len(distinct_json) == 14  # SNAS and SNAS_mild are the same cell
    assert zoo["SNAS"].arch == zoo["SNAS_mild"].arch
    assert zoo["DARTS_V1"].arch != zoo["DARTS_V2"].arch


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_json_round_trip_of_every_zoo_entry(zoo, name):
    g = zoo[name].arch
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_dict(g.to_dict()) == g
    assert hash(Genotype.from_json(g.to_json())) == hash(g)
    data = json.loads(g.to_json())
    assert data == g.to_dict()
    assert sorted(data) == ["normal", "normal_concat", "reduce", "reduce_concat"]
    if name == "GDAS_FRC":
        assert data["reduce"] is None
    assert [tuple(e) for e in data["normal"]] == list(g.normal)


def test_to_dict_of_a_known_genotype():
    assert small().to_dict() == SMALL
    assert json.loads(small().to_json()) == SMALL


def test_str_lists_nodes_with_their_inputs():
    assert str(small()) == "\n".join([
        "normal cell -> concat(n2, n3)",
        "  n2 = sep_conv_3x3(c_{k-1}) + skip_connect(c_{k-2})",
        "  n3 = dil_conv_5x5(n2) + avg_pool_3x3(c_{k-1})",
        "reduce cell -> concat(n3)",
        "  n2 = max_pool_3x3(c_{k-2}) + sep_conv_5x5(c_{k-1})",
        "  n3 = skip_connect(n2) + max_pool_3x3(c_{k-2})",
    ])


def test_str_of_darts_v2_and_gdas_frc(zoo):
    text = str(zoo["DARTS_V2"].arch).splitlines()
    assert text[1] == "  n2 = sep_conv_3x3(c_{k-2}) + sep_conv_3x3(c_{k-1})"
    assert text[4] == "  n5 = skip_connect(c_{k-2}) + dil_conv_3x3(n2)"
    assert str(zoo["GDAS_FRC"].arch).splitlines()[-1] == "reduce cell: GDAS fixed reduction cell (not searched)"


@pytest.mark.parametrize("data, words", [
    ({k: v for k, v in SMALL.items() if k != "reduce_concat"}, ["missing reduce_concat"]),
    ({**SMALL, "extra": 1}, ["unknown extra"]),
    (with_(normal=[["conv_9x9", 0], ["skip_connect", 1]]), ["unknown operation 'conv_9x9'"]),
    (with_(normal=[["sep_conv_3x3", 0], ["skip_connect", 2]]), ["n2", "input 2", "0..1"]),
    (with_(reduce=[["sep_conv_3x3", 0], ["skip_connect", 1], ["skip_connect", 5], ["skip_connect", 0]]),
     ["reduce", "n3", "input 5"]),
    (with_(normal=[["sep_conv_3x3", -1], ["skip_connect", 1]]), ["input -1"]),
    (with_(normal=[["sep_conv_3x3", 0], ["skip_connect", 1], ["skip_connect", 0]]), ["two edges per node", "3 edges"]),
    (with_(normal=[]), ["0 edges"]),
    (with_(normal_concat=[2, 9]), ["concat [2, 9]"]),
    (with_(normal_concat=[2, 2]), ["concat [2, 2]", "distinct"]),
    (with_(reduce_concat=[]), ["concat []"]),
    (with_(normal=[["sep_conv_3x3", "0"], ["skip_connect", 1]]), ["integer", "'0'"]),
    (with_(normal=[["sep_conv_3x3", 1.0], ["skip_connect", 1]]), ["integer", "1.0"]),
    (with_(normal=[["sep_conv_3x3", True], ["skip_connect", 1]]), ["integer", "True"]),
    (with_(normal_concat=["2", 3]), ["integer", "'2'"]),
    (with_(normal=[["sep_conv_3x3"], ["skip_connect", 1]]), ["[operation, input] pair"]),
    (with_(normal="sep_conv_3x3"), ["list of [operation, input] pairs"]),
    # the message must say which field is wrong, not only Python's "'int' object is not iterable"
    pytest.param(with_(normal_concat=4), ["normal_concat"], id="concat-not-a-list"),
    ([1, 2], ["JSON object"]),
])
def test_malformed_dict_raises_config_error(data, words):
    with pytest.raises(ConfigError) as info:
        Genotype.from_dict(data, where="g.json")
    message = str(info.value)
    assert message.startswith("g.json")
    for word in words:
        assert word in message


def test_invalid_json_and_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid JSON"):
        Genotype.from_json("{normal: ", where="x")
    bad = tmp_path / "bad.json"
    bad.write_text('{"normal": [}')
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON"):
        Genotype.from_file(bad)
    with pytest.raises(ConfigError, match=r"cannot read genotype file .*missing\.json"):
        Genotype.from_file(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="cannot read genotype file"):
        Genotype.from_file(tmp_path)  # a directory


def test_from_file_round_trip(tmp_path, zoo):
    path = tmp_path / "g.json"
    path.write_text(zoo["PDARTS"].arch.to_json())
    assert Genotype.from_file(path) == zoo["PDARTS"].arch
