"""Architectures named by the user: a name in a space's zoo, or a JSON file of the space's form."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from nasbench.errors import ConfigError, NasbenchError, UnknownNameError
from nasbench.spaces.base import SearchSpace, ZooEntry


def resolve_arch(name: str, space: SearchSpace) -> tuple[Any, ZooEntry | None]:
    """The architecture of ``space`` that ``name`` gives: a zoo entry's (with the entry), or
    one read from ``name`` if it ends in ``.json`` (with None); else a one-line error."""
    zoo = space.zoo()
    if name in zoo:
        return zoo[name].arch, zoo[name]
    if name.endswith(".json"):
        path = Path(name)
        return space.from_dict(_read_json(path, space.arch_noun), where=str(path)), None
    if zoo:
        raise UnknownNameError(space.arch_noun, name, list(zoo) + ["<file>.json"])
    example = json.dumps(space.to_dict(space.sample(random.Random(0))))
    raise NasbenchError(f"the {space.name} space has no zoo: give an architecture JSON file, e.g. {example[:60]}...")


def _read_json(path: Path, noun: str) -> Any:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {noun} file {path}: {err.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
