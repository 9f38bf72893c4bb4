"""Protocols: built-ins, the content hash, custom files and their errors."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import REPO_ROOT, SUBPROCESS_ENV

from nasbench.errors import ConfigError, UnknownNameError
from nasbench.protocol import Protocol, builtin_protocols, load_protocol
from nasbench.spaces import SPACES
from nasbench.strategies import STRATEGIES


def test_builtins_load():
    assert builtin_protocols() == ["full", "proxy", "quick", "smoke"]
    for name in builtin_protocols():
        protocol = load_protocol(name)
        assert isinstance(protocol, Protocol) and protocol.name == name
        assert len(protocol.hash) == 12 and int(protocol.hash, 16) >= 0


def test_full_holds_the_darts_settings():
    p = load_protocol("full")
    assert (p.data.dataset, p.data.train_images, p.data.search_val_images, p.data.test_images) == \
        ("cifar10", 50000, 25000, 10000)
    assert p.data.train_images - p.data.search_val_images == 25000
    expected = dict(channels=36, cells=20, epochs=600, batch_size=96, lr=0.025, lr_min=0.0, momentum=0.9,
                    nesterov=False, weight_decay=3e-4, grad_clip=5.0, cutout=16, drop_path=0.2, auxiliary_weight=0.4)
    assert dataclasses.asdict(p.final) == expected
    assert dataclasses.asdict(p.candidate) == {**expected, "epochs": 100}
    assert p.search.candidates == 24
    assert dataclasses.asdict(p.search.supernet) == dict(channels=16, cells=8, epochs=50, batch_size=64)
    assert p.final.network.auxiliary and p.final.network.channels == 36 and p.final.network.cells == 20


def test_smoke_is_tiny():
    p = load_protocol("smoke")
    assert (p.data.train_images, p.data.search_val_images, p.data.test_images) == (320, 160, 200)
    assert (p.candidate.channels, p.candidate.cells, p.candidate.epochs) == (4, 3, 1)
    assert p.search.candidates == 2 and p.seeds == (0,)


# -- the hash --------------------------------------------------------------------------

def test_hash_is_stable_across_loads_and_processes():
    smoke = load_protocol("smoke")
    assert load_protocol("smoke").hash == smoke.hash
    # pinned: every stored result carries it, so a change orphans existing stores
    assert smoke.hash == "608f830fc1e3"
    other = subprocess.run([sys.executable, "-c", "from nasbench.protocol import load_protocol; "
                            "print(load_protocol('smoke').hash, load_protocol('full').hash)"],
                           capture_output=True, text=True, cwd=REPO_ROOT,
                           env={**os.environ, **SUBPROCESS_ENV, "PYTHONHASHSEED": "123"})
    assert other.stdout.split() == [smoke.hash, load_protocol("full").hash]


def test_hash_ignores_name_and_description():
    smoke = load_protocol("smoke")
    assert dataclasses.replace(smoke, name="other", description="something else").hash == smoke.hash


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, (tuple, list)):
        return type(value)(value) + type(value)([99])
    raise AssertionError(f"unexpected field type {type(value)}")


def _leaf_paths(obj, prefix=()):
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if dataclasses.is_dataclass(value):
            yield from _leaf_paths(value, prefix + (field.name,))
        elif field.name not in ("name", "description"):
            yield prefix + (field.name,)


def _replace_path(obj, path, value):
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    return dataclasses.replace(obj, **{path[0]: _replace_path(getattr(obj, path[0]), path[1:], value)})


def _get_path(obj, path):
    for name in path:
        obj = getattr(obj, name)
    return obj


def test_hash_changes_when_any_value_changes():
    smoke = load_protocol("smoke")
    paths = [path for path in _leaf_paths(smoke) if path != ("sections",)]
    assert len(paths) == 1 + 5 + 13 + 13 + 1 + 4 + 1  # seeds, data, candidate, final, candidates, supernet, precision
    hashes = {smoke.hash}
    for path in paths:
        changed = _replace_path(smoke, path, _changed(_get_path(smoke, path)))
        assert changed.hash != smoke.hash, ".".join(path)
        hashes.add(changed.hash)
    assert len(hashes) == len(paths) + 1
    # smoke has every method's own section and lays out every space
    assert set(smoke.sections) == ({f"search.{cls.protocol_section}" for cls in STRATEGIES.values()
                                    if cls.protocol_section} |
                                   {cls.protocol_section for cls in SPACES.values() if cls.protocol_section})
    for label, values in smoke.sections.items():  # the methods' own sections and the spaces' layouts are left out
        for key, value in values.items():
            assert smoke.with_section(label, {**values, key: _changed(value)}).hash == smoke.hash, f"{label}.{key}"


# -- custom files ----------------------------------------------------------------------

def _plain(protocol: Protocol) -> dict:
    return json.loads(protocol.to_json())


def test_yaml_file_with_every_key_equals_the_builtin(tmp_path):
    smoke = load_protocol("smoke")
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_plain(smoke)))
    loaded = load_protocol(str(path))
    assert loaded == smoke  # the file names itself "smoke"
    path.write_text(yaml.safe_dump({k: v for k, v in _plain(smoke).items() if k != "name"}))
    renamed = load_protocol(str(path))
    assert renamed.name == "mine" and renamed.hash == smoke.hash


SMOKE_TOML = (REPO_ROOT / "nasbench" / "protocols" / "smoke.toml").read_text()


def test_toml_file_loads(tmp_path):
    path = tmp_path / "copy.toml"
    # the first "epochs = 1" is the [candidate] stage's
    path.write_text(SMOKE_TOML.replace('name = "smoke"', 'name = "copy"').replace("epochs = 1", "epochs = 3", 1))
    loaded = load_protocol(str(path))
    assert loaded.name == "copy"
    assert loaded.candidate.epochs == 3 and loaded.final.epochs == 1
    assert loaded == dataclasses.replace(load_protocol("smoke"), name="copy",
                                         candidate=dataclasses.replace(load_protocol("smoke").candidate, epochs=3))


def test_base_with_overrides_merges(tmp_path):
    smoke = load_protocol("smoke")
    path = tmp_path / "longer.toml"
    path.write_text('base = "smoke"\nseeds = [0, 1, 2]\n\n[final]\nepochs = 3\nlr = 0.1\n\n'
                    '[search.supernet]\nepochs = 2\n')
    loaded = load_protocol(str(path))
    assert loaded.name == "longer"
    assert loaded.seeds == (0, 1, 2)
    assert loaded.final == dataclasses.replace(smoke.final, epochs=3, lr=0.1)
    assert loaded.search.supernet == dataclasses.replace(smoke.search.supernet, epochs=2)
    assert loaded.search.candidates == smoke.search.candidates
    assert loaded.candidate == smoke.candidate and loaded.data == smoke.data
    assert loaded.hash != smoke.hash


def test_base_without_overriding_seeds(tmp_path):
    """The most common derived protocol: change one value, inherit everything else (seeds too)."""
    smoke = load_protocol("smoke")
    path = tmp_path / "more_candidates.toml"
    path.write_text('base = "smoke"\n\n[search]\ncandidates = 4\n')
    loaded = load_protocol(str(path))
    assert loaded.seeds == smoke.seeds
    assert loaded.search.candidates == 4
    assert loaded == dataclasses.replace(smoke, name="more_candidates",
                                         search=dataclasses.replace(smoke.search, candidates=4))


def test_base_in_yaml(tmp_path):
    path = tmp_path / "y.yml"
    path.write_text("base: smoke\nseeds: [5]\nname: custom\ndata:\n  test_images: 100\n")
    loaded = load_protocol(str(path))
    assert loaded.name == "custom" and loaded.seeds == (5,) and loaded.data.test_images == 100
    assert loaded.data.train_images == 320


# -- errors ----------------------------------------------------------------------------

def _smoke_toml_with(old: str, new: str) -> str:
    assert old in SMOKE_TOML
    return SMOKE_TOML.replace(old, new, 1)


@pytest.mark.parametrize("text, words", [
    pytest.param(_smoke_toml_with("split_seed = 0", "split_seed = 0\nsplit_seeds = 1"),
                 ["unknown key 'split_seeds'", "[data]"], id="unknown-key"),
    pytest.param(_smoke_toml_with("test_images = 200\n", ""), ["missing key 'test_images'", "[data]"], id="missing-key"),
    pytest.param(_smoke_toml_with("candidates = 2", "candidates = \"2\""), ["search.candidates", "integer", "'2'"],
                 id="string-for-int"),
    pytest.param(_smoke_toml_with("candidates = 2", "candidates = true"), ["search.candidates", "integer", "True"],
                 id="bool-for-int"),
    pytest.param(_smoke_toml_with("candidates = 2", "candidates = 2.0"), ["search.candidates", "integer"],
                 id="float-for-int"),
    pytest.param(_smoke_toml_with("lr = 0.05", "lr = true"), ["candidate.lr", "number", "True"], id="bool-for-float"),
    pytest.param(_smoke_toml_with("nesterov = false", "nesterov = 0"), ["candidate.nesterov", "true or false"],
                 id="int-for-bool"),
    pytest.param(_smoke_toml_with("seeds = [0]", "seeds = [0, true]"), ["seeds", "list of integers"], id="bad-seeds"),
    pytest.param(_smoke_toml_with("search_val_images = 160", "search_val_images = 320"),
                 ["search_val_images must be positive and smaller than train_images"], id="val-not-smaller"),
    pytest.param(_smoke_toml_with("channels = 4", "channels = 5"), ["[candidate]", "even"], id="odd-channels"),
    pytest.param(_smoke_toml_with('dataset = "cifar10"', 'dataset = "mnist"'), ["dataset must be one of cifar10"],
                 id="unknown-dataset"),
    pytest.param(_smoke_toml_with("seeds = [0]", "seeds = []"), ["seeds must list at least one seed"], id="no-seeds"),
    pytest.param(_smoke_toml_with("[search.supernet]", "[search.supernet]\n[search.other]"),
                 ["missing key 'channels' in [search.supernet]"], id="keys-of-a-shared-section-elsewhere"),
    pytest.param("name = \n", ["not valid TOML"], id="toml-syntax"),
    pytest.param('base = "huge"\n', ["base 'huge' is not a built-in protocol", "full, proxy, quick, smoke"], id="unknown-base"),
])
def test_malformed_toml(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_protocol(str(path))
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert "\n" not in message


@pytest.mark.parametrize("text, words", [
    ("data: [unclosed\n", ["not valid YAML"]),
    ("- 1\n- 2\n", ["table/mapping at the top level"]),
    ("base: smoke\nseeds: [0]\nfinal: 3\n", ["[final] must be a table"]),
])
def test_malformed_yaml(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_protocol(str(path))
    for word in words:
        assert word in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_name_unsupported_suffix_and_missing_file(tmp_path):
    with pytest.raises(UnknownNameError) as info:
        load_protocol("nope")
    assert str(info.value).startswith("unknown protocol 'nope'; known:")
    assert {"full", "proxy", "smoke"} <= set(info.value.known)
    json_file = tmp_path / "p.json"
    json_file.write_text("{}")
    with pytest.raises(UnknownNameError, match=r"unknown protocol '.*p\.json'"):
        load_protocol(str(json_file))
    with pytest.raises(ConfigError, match=r"cannot read protocol file .*missing\.toml"):
        load_protocol(str(tmp_path / "missing.toml"))


# -- precision ----------------------------------------------------------------------------

def test_fp32_hashes_and_stores_as_before_precision_existed():
    """Every stored run and cost table keeps its protocol hash: fp32, the default, is left out
    of the hashed content and of the stored JSON, so a protocol stored without the key parses."""
    smoke = load_protocol("smoke")
    assert smoke.precision == "fp32" and smoke.hash == "608f830fc1e3"
    assert "precision" not in smoke.to_dict()
    from nasbench.protocol import protocol_from_json

    assert protocol_from_json(smoke.to_json(), "stored") == smoke


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_low_precision_is_part_of_the_hash_and_the_stored_protocol(tmp_path, precision):
    from nasbench.protocol import protocol_from_json

    path = tmp_path / "low.toml"
    path.write_text(f'base = "smoke"\nprecision = "{precision}"\n')
    low = load_protocol(str(path))
    assert low.precision == precision and low.hash != load_protocol("smoke").hash
    assert protocol_from_json(low.to_json(), "stored") == low
    assert dataclasses.replace(low, precision="fp32").hash == load_protocol("smoke").hash


@pytest.mark.parametrize("value, words", [('"fp8"', "precision must be one of fp32, bf16, fp16, got 'fp8'"),
                                          ("16", "precision must be a string, got 16")])
def test_a_bad_precision_is_one_line(tmp_path, value, words):
    path = tmp_path / "bad.toml"
    path.write_text(f'base = "smoke"\nprecision = {value}\n')
    with pytest.raises(ConfigError) as err:
        load_protocol(str(path))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_every_builtin_protocol_says_its_precision():
    from importlib import resources

    for name in builtin_protocols():
        text = resources.files("nasbench.protocols").joinpath(f"{name}.toml").read_text()
        assert '\nprecision = "fp32"\n' in text, name
