"""The plugin registries: what they list is read from the plugins' source without importing
them, and agrees with the classes once they are imported."""
from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO_ROOT

from nasbench.errors import UnknownNameError
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


def test_inherited_attributes_are_read_from_the_nearest_base():
    # darts-2nd and gdas inherit DARTS' family; fbnet and proxylessnas their base's spaces
    assert class_attributes("nasbench.strategies.darts", "DartsSecondOrder", ("strategy_class", "spaces")) == \
        {"strategy_class": "GO", "spaces": ("cell",)}
    assert class_attributes("nasbench.strategies.proxylessnas", "ProxylessNas", ("spaces",)) == {"spaces": ("fbnet", "cell")}


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
