"""ENAS' macro search space: the architecture value and its malformed forms, uniform sampling,
mutation, and the protocol's [enas_macro] layout."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from nasbench.errors import ConfigError
from nasbench.protocol import load_protocol, protocol_from_file
from nasbench.spaces import get_space
from nasbench.spaces.enas_macro.plan import OPERATIONS
from nasbench.spaces.enas_macro.space import EnasMacroSpace, MacroArch
from nasbench.strategies import check_protocol


@pytest.fixture(scope="module")
def proxy_space():
    """6 layers, pooling after the second and the fourth."""
    return get_space("enas-macro", load_protocol("proxy"))


# -- the architecture value ---------------------------------------------------------------

def test_architectures_round_trip_through_json_and_read_as_text(proxy_space):
    arch = MacroArch(("conv_3x3", "sep_conv_5x5", "max_pool_3x3", "conv_5x5", "avg_pool_3x3", "sep_conv_3x3"),
                     ((), (0,), (), (0, 2), (1,), (0, 1, 2, 3, 4)))
    assert proxy_space.from_dict(json.loads(json.dumps(proxy_space.to_dict(arch)))) == arch
    assert hash(proxy_space.from_dict(arch.to_dict())) == hash(arch)
    assert str(arch) == ("conv_3x3 | sep_conv_5x5 +0 | max_pool_3x3 | conv_5x5 +0 +2 | avg_pool_3x3 +1 | "
                         "sep_conv_3x3 +0 +1 +2 +3 +4")
    assert proxy_space.skip_share(arch) == {"skips": 9 / 15}


@pytest.mark.parametrize("data, problem", [
    ([], "JSON object"),
    ({"operations": ["conv_3x3"] * 6}, "JSON object"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[]] * 6, "extra": 1}, "JSON object"),
    ({"operations": ["conv_3x3"] * 5, "skips": [[]] * 5}, "has 5 operations and 5 skip lists, but the protocol's "
                                                            "enas-macro layout has 6 layers"),
    ({"operations": ["conv_3x3"] * 5 + ["skip"], "skips": [[]] * 6}, "unknown operation 'skip'"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[0]] + [[]] * 5}, r"layer 0's skips \[0\] must be empty"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[], [], [1, 2]] + [[]] * 3}, r"layer 2's skips \[1, 2\] must be"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[], [], [1, 0]] + [[]] * 3}, "increasing integers in 0..1"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[], [], [0, 0]] + [[]] * 3}, "increasing integers"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[], [], ["0"]] + [[]] * 3}, "increasing integers"),
])
def test_malformed_architectures_fail_with_one_line_saying_what_is_wrong(proxy_space, data, problem):
    with pytest.raises(ConfigError, match=problem) as err:
        proxy_space.from_dict(data, where="arch.json")
    assert str(err.value).startswith("arch.json: ") and len(str(err.value).splitlines()) == 1


def test_sampling_is_uniform_and_uses_only_the_rng(proxy_space):
    archs = [proxy_space.sample(random.Random(seed)) for seed in range(600)]
    assert archs[:5] == [proxy_space.sample(random.Random(seed)) for seed in range(5)]
    assert all(proxy_space.from_dict(a.to_dict()) == a for a in archs)
    operations = Counter(op for a in archs for op in a.operations)
    assert set(operations) == set(OPERATIONS)
    assert all(abs(n / (600 * 6) - 1 / 6) < 0.02 for n in operations.values())
    density = sum(proxy_space.skip_share(a)["skips"] for a in archs) / len(archs)
    assert abs(density - 0.5) < 0.02  # each skip with probability 1/2
    every_skip = {(layer, j) for a in archs for layer, skips in enumerate(a.skips) for j in skips}
    assert every_skip == {(layer, j) for layer in range(6) for j in range(layer)}


def test_mutation_changes_one_operation_or_one_skip_connection(proxy_space):
    rng = random.Random(0)
    kinds = Counter()
    for _ in range(200):
        arch = proxy_space.sample(rng)
        child = proxy_space.mutate(arch, rng)
        assert proxy_space.from_dict(child.to_dict()) == child != arch
        ops = [i for i, (a, b) in enumerate(zip(arch.operations, child.operations)) if a != b]
        flips = [(i, j) for i, (a, b) in enumerate(zip(arch.skips, child.skips)) for j in set(a) ^ set(b)]
        assert len(ops) + len(flips) == 1
        kinds["op" if ops else "skip"] += 1
    assert kinds["op"] > 80 and kinds["skip"] > 60  # the first layer can only change its operation


def test_a_protocol_without_the_layout_or_with_too_few_layers_is_refused(tmp_path):
    raw = json.loads(load_protocol("smoke").to_json())
    del raw["enas_macro"], raw["name"]
    path = tmp_path / "nolayout.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    protocol = protocol_from_file(path)
    assert protocol.hash == load_protocol("smoke").hash  # a space's layout is not part of the hash
    with pytest.raises(ConfigError, match=r"protocol nolayout has no \[enas_macro\] section \(layers\)"):
        get_space("enas-macro", protocol)
    path = tmp_path / "shallow.toml"
    path.write_text('base = "smoke"\n[enas_macro]\nlayers = 2\n')
    with pytest.raises(ConfigError, match="layers must be >= 3"):
        check_protocol(protocol_from_file(path))
    assert [EnasMacroSpace.read_layout(load_protocol(name)).layers for name in ("smoke", "proxy", "full")] == [3, 6, 12]
