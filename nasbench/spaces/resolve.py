"""Architectures named by the user: a name in a space's zoo, or a JSON file of the space's form
(or a result record holding one)."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench.errors import ConfigError, NasbenchError, UnknownNameError

if TYPE_CHECKING:
    from nasbench.spaces.base import SearchSpace, ZooEntry


def resolve_arch(name: str, space: SearchSpace) -> tuple[Any, ZooEntry | None]:
    """The architecture of ``space`` that ``name`` gives: a zoo entry's (with the entry), or
    one read from ``name`` if it ends in ``.json`` (with None); else a one-line error."""
    zoo = space.zoo()
    if name in zoo:
        return zoo[name].arch, zoo[name]
    if name.endswith(".json"):
        return space.from_file(Path(name)), None
    if zoo:
        raise UnknownNameError(space.arch_noun, name, list(zoo) + ["<file>.json"])
    example = json.dumps(space.to_dict(space.sample(random.Random(0))))
    raise NasbenchError(f"the {space.name} space has no zoo: give an architecture JSON file, e.g. {example[:60]}...")


def record_space(name: str, default: str = "cell") -> str:
    """The space of the architecture ``name`` gives: the ``space`` field of a result record
    file, else ``default`` (a zoo name or a bare architecture file does not say)."""
    if not name.endswith(".json"):
        return default
    data = read_json_file(Path(name), "genotype")
    space = data.get("space") if is_record(data) else None
    return space if isinstance(space, str) else default


def read_json_file(path: Path, noun: str) -> Any:
    """The JSON a ``noun`` file (``genotype``, ``architecture``) holds, or a one-line error."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {noun} file {path}: {err.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None


def is_record(data: Any) -> bool:
    """Whether ``data`` is a result record (``nasbench describe --json``'s, ``nasbench run
    --json``'s) rather than an architecture: no space's architecture has a ``genotype`` key."""
    return isinstance(data, dict) and "genotype" in data


def record_arch(record: dict[str, Any], space: str, path: Path) -> Any:
    """The architecture a result record read from ``path`` holds, so that a command's JSON
    output can be given back as its input; an error when the record is of another space."""
    if record.get("space", space) != space:
        raise ConfigError(f"{path}: a record of the {record['space']} space, not of the {space} space")
    return record["genotype"]
