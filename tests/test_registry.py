"""The plugin registries: what they list, and the settings classes of the plugins' protocol
sections, are read from the plugins' source without importing them, and agree with the
classes once they are imported."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from helpers import REPO_ROOT

from nasbench.errors import ConfigError, UnknownNameError
from nasbench.protocol import builtin_protocols, load_protocol, read_section
from nasbench.registry import Registry, class_attributes
from nasbench.spaces import SPACES
from nasbench.strategies import STRATEGIES


@pytest.mark.parametrize("registry", [STRATEGIES, SPACES], ids=["methods", "spaces"])
def test_the_cards_read_from_source_agree_with_the_classes(registry):
    for name, card in registry.cards().items():
        cls = registry[name]
        assert card["name"] == cls.name
        for attribute in registry.listed:
            assert card.get(attribute) == getattr(cls, attribute), (name, attribute)
        assert card["location"] == f"{cls.__module__}:{cls.__name__}"


def settings_of(registry, name: str) -> tuple[str, str] | None:
    """(label of the plugin's protocol section, attribute naming its settings class), if it has one."""
    card = registry.cards()[name]
    if not card.get("protocol_section"):
        return None
    if registry is STRATEGIES:
        return f"search.{card['protocol_section']}", "settings_class"
    return card["protocol_section"], "layout_class"


def section_outcome(protocol, label: str, cls: type):
    """The section as ``cls`` parses it (as a dict), or the error it gives."""
    try:
        return dataclasses.asdict(read_section(protocol, label, cls))
    except ConfigError as err:
        return str(err)


@pytest.mark.parametrize("registry", [STRATEGIES, SPACES], ids=["methods", "spaces"])
def test_settings_classes_built_from_source_parse_and_refuse_as_the_imported_ones(registry):
    owned = 0
    for name in registry:
        found = settings_of(registry, name)
        if found is None:
            continue
        label, attribute = found
        built, real = registry.source_class(name, attribute), getattr(registry[name], attribute)
        assert built is not real and built.__name__ == real.__name__
        assert [(f.name, f.default) for f in dataclasses.fields(built)] == \
            [(f.name, f.default) for f in dataclasses.fields(real)], name
        for protocol in map(load_protocol, builtin_protocols()):
            assert section_outcome(protocol, label, built) == section_outcome(protocol, label, real)
            section = protocol.section(label)
            for key, value in section.items():  # every value made bad: the same error (or none) from both
                for bad in ((-1, 0, 10**9) if isinstance(value, int) and not isinstance(value, bool) else ("x", None)):
                    changed = protocol.with_section(label, {**section, key: bad})
                    assert section_outcome(changed, label, built) == section_outcome(changed, label, real), (name, key)
        owned += 1
    assert owned >= 4


def test_inherited_attributes_are_read_from_the_nearest_base():
    # darts-2nd and gdas inherit DARTS' family; fbnet and proxylessnas their base's spaces
    assert class_attributes("nasbench.strategies.darts", "DartsSecondOrder", ("strategy_class", "spaces")) == \
        {"strategy_class": "GO", "spaces": ("cell", "enas-rnn")}
    assert class_attributes("nasbench.strategies.proxylessnas", "ProxylessNas", ("spaces",)) == {"spaces": ("fbnet", "cell")}


def test_class_attributes_may_name_their_modules_constants_but_never_run_code(tmp_path, monkeypatch):
    # snas' named constraint strength is its module's lambda: {"mild": PER_EDGE_LOG_LAMBDA}
    assert class_attributes("nasbench.strategies.snas", "Snas", ("constraint_settings",)) == \
        {"constraint_settings": {"mild": 1e-2}}
    (tmp_path / "plugin_with_code.py").write_text("X = 1\nY = [X, -X]\nclass P:\n    a = {'x': Y}\n    b = print('ran')\n")
    monkeypatch.syspath_prepend(tmp_path)
    assert class_attributes("plugin_with_code", "P", ("a",)) == {"a": {"x": [1, -1]}}
    with pytest.raises(ValueError, match="not a literal: print"):
        class_attributes("plugin_with_code", "P", ("b",))


def test_what_a_method_derives_from_is_read_from_source_as_issubclass_says():
    from nasbench.strategies import SUPERNET_SEARCH, supernet_methods
    from nasbench.strategies.supernet_search import SupernetSearch

    expected = [name for name, cls in STRATEGIES.items() if issubclass(cls, SupernetSearch)]
    assert supernet_methods() == expected
    assert {"darts", "snas", "enas", "spos"} <= set(expected) and not STRATEGIES.derives_from("random", SUPERNET_SEARCH)


def test_listing_and_unknown_names_import_no_plugin():
    code = ("import sys; from nasbench.strategies import STRATEGIES; from nasbench.spaces import SPACES\n"
            "STRATEGIES.cards(); SPACES.cards()\n"
            "try:\n    STRATEGIES.check('nope')\nexcept Exception as err:\n    print(err)\n"
            "print(sorted(m for m, module in sys.modules.items() if m.startswith(('torch', 'nasbench.strategies.', "
            "'nasbench.spaces.')) and not getattr(module, '__file__', '').endswith('__init__.py')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    error, imported = done.stdout.splitlines()
    assert error.startswith("unknown method 'nope'; known: darts, darts-2nd, eas, enas")
    assert imported == "[]"


def test_a_class_registered_at_run_time_is_listed_and_can_be_removed():
    registry = Registry("method", "nasbench.strategies", ("random_search:RandomSearch",), listed=("summary",))

    class Extra:
        name, summary = "extra", "a method of a test"

    registry["extra"] = Extra
    assert list(registry) == ["random", "extra"] and registry["extra"] is Extra
    assert registry.cards()["extra"] == {"name": "extra", "summary": "a method of a test"}
    del registry["random"]
    assert list(registry) == ["extra"] and "random" not in registry
    with pytest.raises(UnknownNameError, match="unknown method 'random'; known: extra"):
        registry.check("random")
