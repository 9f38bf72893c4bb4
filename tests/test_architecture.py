"""The package's import graph, read from the source (every ``import`` of every module under
nasbench/, at module level, in functions and under ``if TYPE_CHECKING``): imports flow one
way, down the layers of the design, between top-level units (``nasbench.spaces``,
``nasbench.hardware``, ``nasbench.protocol``, ...):

    cli -> estimate -> runner, ranking, bench, export -> strategies, report -> language_model
        -> training, hardware, stored_run -> spaces -> corpus -> data, provenance, store -> protocol, registry -> settings, types, progress, numerics -> errors

An arrow may only point down (not sideways: ``ranking`` may not import ``bench``); ``store``
imports only ``types`` and ``errors``; ``report`` never imports a method (strategies, runner,
ranking, bench, cli); nothing in ``nasbench/hardware/`` imports a concrete space (anything
under ``nasbench.spaces`` but ``nasbench.spaces.base``); and no module is over 500 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "nasbench"
MAX_LINES = 500

LAYERS = [
    ["nasbench", "nasbench.__main__"],
    ["nasbench.cli"],
    ["nasbench.estimate"],
    ["nasbench.runner", "nasbench.ranking", "nasbench.bench", "nasbench.export"],
    ["nasbench.strategies", "nasbench.report"],
    ["nasbench.language_model"],
    ["nasbench.training", "nasbench.hardware", "nasbench.stored_run"],
    ["nasbench.spaces"],
    ["nasbench.corpus"],
    ["nasbench.data", "nasbench.provenance", "nasbench.store"],
    ["nasbench.images"],
    ["nasbench.protocol", "nasbench.registry"],
    ["nasbench.settings", "nasbench.types", "nasbench.progress", "nasbench.numerics", "nasbench.precision", "nasbench.protocols",
     "nasbench.executor"],
    ["nasbench.errors"],
]
"""Top-level units from the top layer down; a unit may import units of the layers below its own."""
LEVEL = {unit: len(LAYERS) - i for i, layer in enumerate(LAYERS) for unit in layer}

ONLY = {"nasbench.store": {"nasbench.types", "nasbench.errors"}, "nasbench.executor": {"nasbench.errors"}}
"""Units that may import these units only."""
NEVER = {"nasbench.report": {"nasbench.strategies", "nasbench.runner", "nasbench.ranking", "nasbench.bench",
                             "nasbench.cli"}}
"""Units that may never import these (whatever the layers would allow)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def unit(module: str) -> str:
    """The top-level unit a module belongs to: ``nasbench.spaces.cell.ops`` -> ``nasbench.spaces``."""
    return ".".join(module.split(".")[:2])


def imports(module: str) -> list[tuple[int, str]]:
    """(line, imported nasbench module) for every import in ``module``, wherever it stands."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:  # `from nasbench.spaces import cell` imports a module
                submodule = f"{source}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else source))
    return [(line, name) for line, name in found if name == "nasbench" or name.startswith("nasbench.")]


GRAPH = {module: imports(module) for module in MODULES}


def unit_arrows() -> dict[tuple[str, str], list[str]]:
    """Arrows between different units, each with where it comes from (module:line)."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for module, found in GRAPH.items():
        for line, imported in found:
            a, b = unit(module), unit(imported)
            if a != b:
                arrows.setdefault((a, b), []).append(f"{module}:{line}")
    return arrows


def test_every_unit_has_a_layer():
    missing = sorted({unit(m) for m in MODULES} - set(LEVEL))
    assert not missing, f"units without a layer (add them to LAYERS in {Path(__file__).name}): {missing}"


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_cycle_between_units():
    edges: dict[str, set[str]] = {}
    for a, b in unit_arrows():
        edges.setdefault(a, set()).add(b)
    cycle = find_cycle(edges)
    arrows = unit_arrows()
    assert cycle is None, "import cycle: " + " -> ".join(cycle) + "; arrows: " + "; ".join(
        f"{a} -> {b} ({', '.join(arrows[a, b][:3])})" for a, b in zip(cycle, cycle[1:]))


def test_imports_point_down_the_layers():
    wrong = []
    for (a, b), where in sorted(unit_arrows().items()):
        if a not in LEVEL or b not in LEVEL:
            continue  # test_every_unit_has_a_layer says which
        if a in ONLY and b not in ONLY[a]:
            wrong.append(f"{a} may import only {', '.join(sorted(ONLY[a]))}, not {b}")
        elif b in NEVER.get(a, ()):
            wrong.append(f"{a} must never import {b}")
        elif LEVEL[b] >= LEVEL[a]:
            wrong.append(f"{a} -> {b} points {'sideways' if LEVEL[b] == LEVEL[a] else 'up'}")
        else:
            continue
        wrong[-1] += f" ({', '.join(where)})"
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_hardware_imports_no_concrete_space():
    wrong = [f"{module}:{line} imports {imported}" for module, found in GRAPH.items()
             if unit(module) == "nasbench.hardware"
             for line, imported in found
             if unit(imported) == "nasbench.spaces" and imported != "nasbench.spaces.base"]
    assert not wrong, "hardware must reach spaces through nasbench.spaces.base only:\n" + "\n".join(wrong)


def test_no_module_is_over_500_lines():
    sizes = {module: len(path.read_text().splitlines()) for module, path in MODULES.items()}
    long = {module: n for module, n in sizes.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("source, expected", [
    ("from nasbench.spaces.cell import ops", "nasbench.spaces.cell.ops"),
    ("from nasbench.spaces import get_space", "nasbench.spaces"),
    ("from . import ops", "nasbench.spaces.cell.ops"),
    ("from ..base import SearchSpace", "nasbench.spaces.base"),
    ("import nasbench.types", "nasbench.types"),
])
def test_the_reader_resolves_imports(source, expected, tmp_path, monkeypatch):
    """The graph above is only as good as this reader: absolute, relative and from-imports
    of modules and of names, here as if in nasbench/spaces/cell/space.py, inside a function."""
    path = PACKAGE / "spaces" / "cell" / "space.py"
    text = "def f():\n    " + source + "\n"
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == path else original(self, *a, **k))
    assert imports("nasbench.spaces.cell.space") == [(2, expected)]
