"""Registries of plugins (methods, spaces) that import a plugin only when it is used.

A registry line names where a plugin's class lives (``"darts:Darts"`` in its package).
What the command line shows before any work (names, summaries, spaces) is read from the
class's literal attributes in its source, following its bases, without importing it: so
``nasbench list``, ``--help`` and a misspelt name answer at once instead of after torch
and every plugin have loaded. The class itself, the only source of those attributes, is
imported on first use; a contract test checks that the source reading agrees with it.
A plugin's settings class (the dataclass its protocol section is parsed into) is built from
its source alone the same way (:meth:`Registry.source_class`), so that a bad value in a
protocol file is refused before torch and the plugin load.
"""
from __future__ import annotations
import __future__

import ast
import dataclasses
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator, MutableMapping
from functools import cache
from typing import Any

from nasbench.errors import ConfigError, UnknownNameError
from nasbench.settings import require

SETTINGS_NAMES = {"dataclass": dataclasses.dataclass, "field": dataclasses.field, "require": require,
                  "ConfigError": ConfigError}
"""What a settings class's source may use beyond the builtins and its module's literal constants."""


@cache
def _module_tree(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"no module {module}")
    with open(spec.origin, encoding="utf-8") as source:
        return ast.parse(source.read(), spec.origin)


def _resolve(module: str, name: str) -> tuple[str, ast.ClassDef] | None:
    """The class ``name`` as ``module`` defines or imports it, if it is nasbench's."""
    tree = _module_tree(module)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, node
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nasbench"):
            if any((alias.asname or alias.name) == name for alias in node.names):
                return _resolve(node.module, name)
    return None


def _lineage(module: str, class_name: str) -> Iterator[tuple[str, ast.ClassDef]]:
    """(defining module, class node) of ``module.class_name`` and of each of its nasbench
    bases, from source, nearest first."""
    pending = [(module, class_name)]
    while pending:
        resolved = _resolve(*pending.pop(0))
        if resolved is None:
            continue
        where, node = resolved
        yield where, node
        for base in node.bases:
            base = base.value if isinstance(base, ast.Subscript) else base  # SearchSpace[Genotype]
            if isinstance(base, ast.Name):
                pending.append((where, base.id))


def _assignments(module: str, class_name: str) -> Iterator[tuple[str, str, ast.expr]]:
    """(defining module, attribute, assigned expression) of every class attribute ``module.
    class_name`` and its nasbench bases assign in their source, nearest class first."""
    for where, node in _lineage(module, class_name):
        for statement in node.body:
            target = statement.targets[0] if isinstance(statement, ast.Assign) else getattr(statement, "target", None)
            value = getattr(statement, "value", None)
            if isinstance(target, ast.Name) and value is not None:
                yield where, target.id, value


LITERAL_NODES = (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load,
                 ast.Name)
"""What a value read from source may be made of: literals and the names of its module's constants."""


@cache
def _module_constants(module: str) -> dict[str, Any]:
    """``module``'s top-level constants, as far as each is a literal or built of earlier ones
    (``SETTINGS = {"mild": LAMBDA}``)."""
    constants: dict[str, Any] = {}
    for statement in _module_tree(module).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            try:
                constants[statement.targets[0].id] = _literal(statement.value, constants)
            except ValueError:
                continue
    return constants


def _literal(expression: ast.expr, constants: dict[str, Any]) -> Any:
    """The value of ``expression``: a literal, or one built of literals and ``constants``'
    names; else a ValueError (nothing else is evaluated)."""
    for node in ast.walk(expression):
        if not isinstance(node, LITERAL_NODES) or isinstance(node, ast.Name) and node.id not in constants:
            raise ValueError(f"not a literal: {ast.unparse(expression)}")
    return eval(compile(ast.Expression(expression), "<literal>", "eval"), {"__builtins__": {}}, dict(constants))  # noqa: S307


def class_attributes(module: str, class_name: str, names: tuple[str, ...]) -> dict[str, Any]:
    """The values of the class attributes ``names`` of ``module.class_name``, as its source
    (or its nasbench bases' source, nearest first) assigns them: literals, or built of
    literals and the defining module's constants."""
    found: dict[str, Any] = {}
    for where, name, value in _assignments(module, class_name):
        if name in names and name not in found:
            found[name] = _literal(value, _module_constants(where))
    return found


def _assigned_name(module: str, class_name: str, attribute: str) -> tuple[str, str] | None:
    """(module, name) of what ``module.class_name`` (or its nearest nasbench base) assigns to
    ``attribute`` by name; None where it assigns None or nothing."""
    for where, name, value in _assignments(module, class_name):
        if name == attribute:
            return (where, value.id) if isinstance(value, ast.Name) else None
    return None


@cache
def source_class(module: str, class_name: str, attribute: str) -> type | None:
    """The class ``module.class_name`` assigns to ``attribute`` (``settings_class``,
    ``layout_class``), executed from its source alone: its definition, the module's classes
    it names (nested settings) and literal constants, :data:`SETTINGS_NAMES` and the
    builtins, nothing imported. It lives in a module of its own, ``<module>:source``."""
    assigned = _assigned_name(module, class_name, attribute)
    resolved = None if assigned is None else _resolve(*assigned)
    if resolved is None:
        return None
    where, node = resolved
    tree = _module_tree(where)
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    needed, pending = [], [node]
    while pending:
        current = pending.pop()
        if current not in needed:
            needed.insert(0, current)
            pending += [classes[n.id] for n in ast.walk(current) if isinstance(n, ast.Name) and n.id in classes]
    constants = []
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
            try:
                ast.literal_eval(statement.value)
            except ValueError:
                continue
            constants.append(statement)
    built = types.ModuleType(f"{where}:source")
    built.__dict__.update(SETTINGS_NAMES)
    sys.modules[built.__name__] = built  # where dataclasses and typing.get_type_hints look names up
    source = ast.fix_missing_locations(ast.Module(body=[*constants, *needed], type_ignores=[]))
    code = compile(source, importlib.util.find_spec(where).origin, "exec", flags=__future__.annotations.compiler_flag,
                   dont_inherit=True)
    exec(code, built.__dict__)  # noqa: S102
    return built.__dict__[node.name]


class Registry(MutableMapping):
    """Name -> plugin class, loaded on first access. Built from registry lines
    ``"<module>:<Class>"`` (relative to ``package``); classes may also be registered at run
    time (``registry[name] = cls``). ``cards()`` gives the listed attributes of every plugin
    without importing one."""

    def __init__(self, kind: str, package: str, lines: tuple[str, ...], listed: tuple[str, ...]):
        self.kind, self.package, self.listed = kind, package, listed
        self._lines = lines
        self._classes: dict[str, type] = {}
        self._added: dict[str, type] = {}
        self._removed: set[str] = set()
        self._read: dict[str, dict[str, Any]] | None = None

    def _line_cards(self) -> dict[str, dict[str, Any]]:
        if self._read is None:
            self._read = {}
            for line in self._lines:
                module, class_name = line.split(":")
                card = class_attributes(f"{self.package}.{module}", class_name, ("name", *self.listed))
                self._read[card["name"]] = {**card, "location": f"{self.package}.{module}:{class_name}"}
        return self._read

    def source_class(self, name: str, attribute: str) -> type | None:
        """The class plugin ``name`` assigns to ``attribute``, from source (see
        :func:`source_class`); a plugin registered at run time gives its own."""
        if name in self._added:
            return getattr(self._added[name], attribute)
        module, class_name = self._line_cards()[name]["location"].split(":")
        return source_class(module, class_name, attribute)

    def cards(self) -> dict[str, dict[str, Any]]:
        """Every plugin's ``name`` and listed attributes, in registry order."""
        added = {name: {"name": name, **{a: getattr(cls, a) for a in self.listed}} for name, cls in self._added.items()}
        return {name: card for name, card in (self._line_cards() | added).items() if name not in self._removed}

    def derives_from(self, name: str, base: str) -> bool:
        """Whether plugin ``name``'s class is, or derives from, ``base`` (``"module:Class"``),
        read from source (a plugin registered at run time: its class asked)."""
        if name in self._added:
            module, class_name = base.split(":")
            return issubclass(self._added[name], getattr(importlib.import_module(module), class_name))
        module, class_name = self._line_cards()[self.check(name)]["location"].split(":")
        return any(f"{where}:{node.name}" == base for where, node in _lineage(module, class_name))

    def check(self, name: str) -> str:
        """``name`` if it is registered, else the one-line error listing the known ones."""
        if name not in self:
            raise UnknownNameError(self.kind, name, list(self))
        return name

    def __getitem__(self, name: str) -> type:
        if name in self._added:
            return self._added[name]
        if name in self._removed or name not in self._line_cards():
            raise KeyError(name)
        if name not in self._classes:
            module, class_name = self._line_cards()[name]["location"].split(":")
            self._classes[name] = getattr(importlib.import_module(module), class_name)
        return self._classes[name]

    def __setitem__(self, name: str, cls: type) -> None:
        self._added[name] = cls
        self._removed.discard(name)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._added.pop(name, None)
        if name in self._line_cards():
            self._removed.add(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.cards())

    def __len__(self) -> int:
        return len(self.cards())

    def __contains__(self, name: object) -> bool:
        return name in self.cards()
