"""`nasbench list`: methods, spaces, protocols and the genotype zoo."""
from __future__ import annotations

import pytest
from helpers import run_cli

from nasbench.hardware.counting import count_params
from nasbench.protocol import builtin_protocols, load_protocol
from nasbench.spaces.cell.genotype import Genotype
from nasbench.strategies import STRATEGIES


def test_list_methods():
    result = run_cli("list", "methods", "--json")
    (rows,) = result.json_lines()
    assert [r["name"] for r in rows] == list(STRATEGIES)
    assert all(r["strategy"] == STRATEGIES[r["name"]].strategy_class and r["summary"]
               and r["spaces"] == list(STRATEGIES[r["name"]].spaces) for r in rows)
    assert {r["name"]: r["spaces"] for r in rows if r["spaces"] != ["cell"]} == \
        {"fbnet": ["fbnet", "cell"], "proxylessnas": ["fbnet", "cell"], "random": ["cell", "nasnet"],
         "evolution": ["cell", "nasnet"], "enas": ["cell", "enas-macro"], "metaqnn": ["metaqnn"],
         "nas-rl": ["nasrl-macro"], "nasnet": ["nasnet", "cell"]}
    text = run_cli("list", "methods").out.splitlines()
    assert [line.split()[0] for line in text] == list(STRATEGIES)
    assert [line.split()[2] for line in text] == [",".join(cls.spaces) for cls in STRATEGIES.values()]


def test_list_spaces_and_protocols():
    (spaces,) = run_cli("list", "spaces", "--json").json_lines()
    assert [s["name"] for s in spaces] == ["cell", "fbnet", "nasrl-macro", "nasnet", "metaqnn", "enas-macro"]
    (protocols,) = run_cli("list", "protocols", "--json").json_lines()
    assert [p["name"] for p in protocols] == builtin_protocols() == ["full", "proxy", "smoke"]
    assert all(p["hash"] == load_protocol(p["name"]).hash for p in protocols)
    text = run_cli("list", "protocols").out
    assert f"smoke    {load_protocol('smoke').hash}" in text


@pytest.mark.slow
def test_list_genotypes(cell_space, smoke):
    result = run_cli("list", "genotypes", "--protocol", "smoke", "--json")
    assert result.code == 0
    (rows,) = result.json_lines()
    zoo = cell_space.zoo()
    assert [r["name"] for r in rows] == list(zoo)
    for r in rows:
        entry = zoo[r["name"]]
        model = cell_space.build(entry.arch, smoke.final.network)
        assert r["params"] == count_params(model)
        assert r["published_params_m"] == entry.published_params_m
        assert Genotype.from_dict(r["genotype"]) == entry.arch
        assert r["channels"] == 4 and r["cells"] == 3 and r["flops"] > 0
