"""baselines/fidelity.md, the fidelity table, kept honest: a section for every registered
method, four columns in every method table, every test it names under "pinned by" defined
where it says, no placeholder left, and the optimiser and controller numbers it pins here
equal to the code's constants."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "baselines" / "fidelity.md"
HEADER = ["setting", "paper / official code (source)", "ours", "pinned by"]
PROTOCOL_HEADING = "## Where the shared protocol differs from every paper"
METHOD_HEADING = re.compile(r"^## `([^`]+)`")
REFERENCE = re.compile(r"(tests/[\w/.-]+\.py)::(\w+)(\[[^\]]*\])?")
UNPINNED = "—"
PLACEHOLDER = "TODO"


def method_sections(text: str) -> dict[str, list[str]]:
    """Method name -> the lines of its section (``## `name` ...`` up to the next ``## ``)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            match = METHOD_HEADING.match(line)
            current = sections.setdefault(match.group(1), []) if match else None
        elif current is not None:
            current.append(line)
    return sections


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of every table row of ``lines``, the separator row left out."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    return [row for row in rows if not all(set(cell) <= set("-: ") for cell in row)]


@cache
def defined_tests(path: str) -> frozenset[str]:
    """The test functions ``path`` (relative to the repository) defines, at module level or
    in a class."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), path)
    nodes = list(tree.body) + [n for c in tree.body if isinstance(c, ast.ClassDef) for n in c.body]
    return frozenset(n.name for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.name.startswith("test"))


def reference_problems(reference: str) -> list[str]:
    """What is wrong with one ``tests/path.py::test_name[id]`` reference (nothing if the
    test is defined there)."""
    match = REFERENCE.fullmatch(reference)
    if match is None:
        return [f"{reference!r} is not tests/<path>.py::<test name>"]
    path, name, _ = match.groups()
    if not (ROOT / path).is_file():
        return [f"{reference}: no file {path}"]
    if name not in defined_tests(path):
        return [f"{reference}: {path} defines no {name}"]
    return []


def pinned_by_problems(cell: str) -> list[str]:
    """What is wrong with a "pinned by" cell: it must be "—" or references separated by
    commas, every one of a test that exists. A placeholder is the concern of
    :func:`test_no_placeholder_is_left`."""
    if cell == UNPINNED or PLACEHOLDER in cell:
        return []
    references = [part.strip() for part in cell.split(",")]
    if not all(references):
        return [f"{cell!r}: an empty reference"]
    return [problem for reference in references for problem in reference_problems(reference)]


@pytest.fixture(scope="module")
def text() -> str:
    return TABLE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sections(text) -> dict[str, list[str]]:
    return method_sections(text)


def test_every_registered_method_has_its_section_and_no_other_method_one(sections):
    from nasbench.strategies import STRATEGIES  # reads the registry's sources: no torch

    assert sorted(sections) == sorted(STRATEGIES)


def test_the_shared_protocol_is_stated_once(text):
    assert text.splitlines().count(PROTOCOL_HEADING) == 1


def test_every_method_table_has_the_four_columns_and_a_value_in_each(sections):
    problems = []
    for method, lines in sections.items():
        rows = table_rows(lines)
        if not rows or rows[0] != HEADER:
            problems.append(f"{method}: the table's header is not {HEADER}")
            continue
        if len(rows) < 2:
            problems.append(f"{method}: no settings")
        for row in rows[1:]:
            if len(row) != len(HEADER) or not all(row):
                problems.append(f"{method}: {row[0]!r} has {len(row)} cells, some empty: {row}")
    assert not problems, "\n".join(problems)


def test_every_pinning_test_exists(text, sections):
    """Every "pinned by" cell names tests that are defined where it says, and so does every
    other reference anywhere in the file: a renamed or removed test fails here."""
    problems = [f"{method}, {row[0]}: {problem}"
                for method, lines in sections.items() for row in table_rows(lines)[1:]
                for problem in pinned_by_problems(row[-1])]
    problems += [problem for match in REFERENCE.finditer(text) for problem in reference_problems(match.group(0))]
    assert not problems, "\n".join(problems)


def test_a_missing_or_renamed_test_is_caught():
    """The check above can fail: on a test that does not exist, in a file that does not
    exist, and on a cell that is not a reference."""
    real = "tests/test_fidelity.py::test_a_missing_or_renamed_test_is_caught"
    assert pinned_by_problems(real) == [] and pinned_by_problems(f"{real}[some-id], {real}") == []
    assert pinned_by_problems(UNPINNED) == []
    assert pinned_by_problems("tests/test_fidelity.py::test_renamed_away") == [
        "tests/test_fidelity.py::test_renamed_away: tests/test_fidelity.py defines no test_renamed_away"]
    assert pinned_by_problems("tests/nowhere.py::test_x") == ["tests/nowhere.py::test_x: no file tests/nowhere.py"]
    assert pinned_by_problems("the smoke run") == ["'the smoke run' is not tests/<path>.py::<test name>"]
    assert pinned_by_problems(f"{real},") == [f"'{real},': an empty reference"]


def test_no_placeholder_is_left(text):
    left = [f"line {number}: {line}" for number, line in enumerate(text.splitlines(), start=1) if PLACEHOLDER in line]
    assert not left, "rows still to fill:\n" + "\n".join(left)


# -- the numbers the table pins here --------------------------------------------------------

PUBLISHED = {
    # DARTS (quark0/darts cnn/train_search.py, architect.py, model_search.py)
    "strategies.darts:DARTS_WEIGHTS": dict(lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=3e-4, grad_clip=5.0,
                                           nesterov=False),
    "strategies.darts:DARTS_ARCHITECTURE": dict(lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3),
    "spaces.cell.supernet:ALPHA_INIT_SCALE": 1e-3,
    # SNAS (SNAS-Series SNAS/train_search.py)
    "strategies.snas:SNAS_WEIGHTS": dict(lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=3e-4, grad_clip=5.0,
                                         nesterov=False),
    "strategies.snas:SNAS_ARCHITECTURE": dict(lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3),
    "strategies.snas:ARCH_GRAD_CLIP": 10.0,
    # GDAS (AutoDL-Projects GDAS-NASNet-CIFAR.config, NASNet-space-search-by-GDAS.sh)
    "strategies.gdas:GDAS_WEIGHTS": dict(lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=5e-4, grad_clip=5.0,
                                         nesterov=True),
    "strategies.gdas:GDAS_ARCHITECTURE": dict(lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3),
    # PC-DARTS (yuhuixu1993/PC-DARTS train_search.py; the minimum learning rate V100_python1.0's)
    "strategies.pc_darts:PC_DARTS_WEIGHTS": dict(lr=0.1, lr_min=0.0, momentum=0.9, weight_decay=3e-4, grad_clip=5.0,
                                                 nesterov=False),
    "strategies.pc_darts:PC_DARTS_ARCHITECTURE": dict(lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3),
    # PNAS' predictor (Sect. 3.3; the fit is ours)
    "strategies.pnas:EMBEDDING_SIZE": 100,
    "strategies.pnas:ENSEMBLE_SIZE": 5,
    "strategies.pnas:HIDDEN_UNITS": 100,
    "strategies.pnas:HIDDEN_LAYERS": 2,
    "strategies.pnas:PREDICTOR_LR": 0.01,
    "strategies.pnas:PREDICTOR_STEPS": 200,
    # random search with weight sharing (randomNAS_release run_stage1.sh)
    "strategies.random_ws:RANDOM_WS_WEIGHTS": dict(lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=3e-4,
                                                   grad_clip=1.0, nesterov=False),
    # FBNet (the paper; AnnaAraslanova/FBNet config_for_supernet.py)
    "strategies.fbnet:FBNET_WEIGHTS": dict(lr=0.1, lr_min=0.0, momentum=0.9, weight_decay=1e-4, grad_clip=0.0,
                                           nesterov=False),
    "strategies.fbnet:FBNET_ARCHITECTURE": dict(lr=0.01, betas=(0.9, 0.999), weight_decay=5e-4),
    "strategies.fbnet:Fbnet.constraint_forms": [("mul-log-hinge", (0.2, 0.6)), ("mul-log", (0.2, 0.6))],
    # ProxylessNAS (mit-han-lab/proxylessnas search/imagenet_arch_search.py)
    "strategies.proxylessnas:PROXYLESS_WEIGHTS": dict(lr=0.025, lr_min=0.0, momentum=0.9, weight_decay=4e-5,
                                                      grad_clip=0.0, nesterov=True),
    "strategies.proxylessnas:PROXYLESS_ARCHITECTURE": dict(lr=1e-3, betas=(0.0, 0.999), weight_decay=0.0),
    "strategies.proxylessnas:LABEL_SMOOTHING": 0.1,
    "strategies.proxylessnas:ProxylessNas.alpha_std": 1e-3,
    "strategies.proxylessnas:ProxylessNas.constraint_forms": [("mul-log", (0.2, 0.3)), ("add-linear", (0.1, 1.0))],
    # ENAS (Pham et al. 2018, Sect. 3.2; melodyguan/enas)
    "strategies.enas:ENAS_WEIGHTS": dict(lr=0.05, lr_min=0.001, momentum=0.9, weight_decay=2e-4, grad_clip=0.0,
                                         nesterov=True),
    "strategies.enas:RESTART_PERIOD": 10,
    "strategies.enas:RESTART_MULTIPLIER": 2,
    "strategies.enas:CONTROLLER_LR": 3.5e-4,
    "strategies.controller:HIDDEN": 100,
    "strategies.controller:TEMPERATURE": 5.0,
    "strategies.controller:TANH_CONSTANT": 2.5,
    "strategies.controller:MICRO_SQUASH": [("temperature", 1.0), ("tanh_constant", 1.10), ("op_tanh_reduce", 2.5)],
    "strategies.controller:ENTROPY_WEIGHT": 1e-4,
    "strategies.controller:BASELINE_DECAY": 0.99,
    "strategies.macro_controller:SKIP_TARGET": 0.4,
    "strategies.macro_controller:SKIP_WEIGHT": 0.8,
    # MetaQNN (Sect. 4.2)
    "strategies.metaqnn:Q_INIT": 0.5,
    "strategies.metaqnn:LEARNING_RATE": 0.01,
    "strategies.metaqnn:DISCOUNT": 1.0,
    "strategies.metaqnn:REPLAY_SAMPLES": 100,
    # EAS (han-cai/EAS code/arch_search/arch_search_convnet_net2net.py, models/layers.py)
    "strategies.eas:EMBEDDING": 16,
    "strategies.eas:HIDDEN": 50,
    "strategies.eas:PLACES": 10,
    "strategies.eas:CONTROLLER_LR": 2e-3,
    "strategies.eas:ENTROPY_WEIGHT": 1e-5,
    "strategies.eas:BASELINE_STEP": 0.95,
    "strategies.eas:STATISTICS_IMAGES": 64,
    "spaces.plain_cnn.morphism:WIDER_NOISE": 1e-2,
    "spaces.plain_cnn.morphism:DEEPER_NOISE": 1e-3,
    "spaces.plain_cnn.arch:KERNELS": (1, 3, 5),
}
"""What the table states as ours, by ``<module under nasbench>:<name>[.<attribute>]`` (a method's
loss forms in order: the first is its default)."""


def code_value(location: str):
    """The value at ``location``: a dataclass as its fields, a dict as its items in order."""
    module, name = location.split(":")
    value = importlib.import_module(f"nasbench.{module}")
    for part in name.split("."):
        value = getattr(value, part)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return list(value.items()) if isinstance(value, dict) else value


@pytest.mark.parametrize("location", PUBLISHED)
def test_the_settings_the_table_gives_are_the_codes(location):
    assert code_value(location) == PUBLISHED[location]


def test_the_rl_policies_are_the_tables():
    """NAS-RL's REINFORCE (Adam 6e-4, baseline decay 0.95, no entropy bonus) and NASNet's PPO
    (Adam 3.5e-4, entropy 1e-5, baseline decay 0.95, clip 0.2, 10 passes), as the strategies
    build them."""
    from torch import nn

    from nasbench.strategies.nas_rl import NasRl
    from nasbench.strategies.nasnet import Nasnet

    reinforce = NasRl.build_policy(None, nn.Linear(1, 1))
    assert (reinforce.optimizer.defaults["lr"], reinforce.baseline_decay, reinforce.entropy_weight) == (6e-4, 0.95, 0.0)
    ppo = Nasnet.build_policy(None, nn.Linear(1, 1))
    assert (ppo.optimizer.defaults["lr"], ppo.entropy_weight, ppo.baseline_decay, ppo.clip, ppo.epochs) == (
        3.5e-4, 1e-5, 0.95, 0.2, 10)
