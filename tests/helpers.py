"""Plain helpers the tests share (fixtures live in conftest.py): where the repository and the
data are, the CLI run in-process, reading a store, and building tiny protocols and search
contexts. Importable from every test directory (pyproject's ``pythonpath = ["tests"]``)."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest
import torch
from filelock import FileLock

if TYPE_CHECKING:
    from nasbench.strategies.context import SearchContext
    from nasbench.strategies.supernet_search import Batch
    from nasbench.types import Checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "cifar10_subset.npz"
CPU = torch.device("cpu")

SUBPROCESS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""One thread in the subprocesses too, as conftest sets in this one (see there)."""


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]) -> tuple[Path, dict]:
    """``build(directory)`` run once per test session, even under ``pytest -n N``: the first
    worker to ask builds into a folder every worker of the session shares, under a file lock,
    and the rest wait for it and read what it returned (a JSON object) beside its files. Why:
    a session fixture is otherwise built once per worker, and the smoke store takes minutes."""
    session_root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base is a folder of the session's
        session_root = session_root.parent
    directory, done = session_root / name, session_root / f"{name}.json"
    with FileLock(session_root / f"{name}.lock"):
        if not done.is_file():
            shutil.rmtree(directory, ignore_errors=True)  # a build that failed in another worker
            directory.mkdir()
            done.write_text(json.dumps(build(directory)))
    return directory, json.loads(done.read_text())


def subset_path() -> Path:
    """$NASBENCH_DATA (relative to the working directory or, failing that, to the
    repository root, as CI sets it), else ../shared/data/cifar10_subset.npz."""
    configured = os.environ.get("NASBENCH_DATA")
    if not configured:
        return DEFAULT_DATA.resolve()
    path = Path(configured)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    return path.resolve()


# -- protocols and search contexts ---------------------------------------------------------

def tiny_protocol(smoke, candidates: int = 3):
    """The smoke protocol on fewer images (64 train of which 32 search-val, 40 test)."""
    data = dataclasses.replace(smoke.data, train_images=64, search_val_images=32, test_images=40)
    search = dataclasses.replace(smoke.search, candidates=candidates)
    return dataclasses.replace(smoke, name="tiny", data=data, search=search)


def with_candidates(protocol, candidates: int):
    """``protocol`` with ``search.candidates`` changed."""
    return dataclasses.replace(protocol, search=dataclasses.replace(protocol.search, candidates=candidates))


def with_supernet(protocol, **changes):
    """``protocol`` with its ``[search.supernet]`` budget changed (epochs, channels, batch_size...)."""
    supernet = dataclasses.replace(protocol.search.supernet, **changes)
    return dataclasses.replace(protocol, search=dataclasses.replace(protocol.search, supernet=supernet))


def with_section(protocol, label: str, **changes):
    """``protocol`` with values of a method's or space's own section changed
    (``with_section(p, "search.nas_rl", children_per_update=2)``, ``with_section(p, "metaqnn", ...)``)."""
    return protocol.with_section(label, {**(protocol.section(label) or {}), **changes})


def context(space, protocol, data, seed=0, **kwargs) -> "SearchContext":
    """A quiet search context on the CPU."""
    from nasbench.strategies.context import SearchContext

    return SearchContext(space=space, protocol=protocol, seed=seed, data=data, device=CPU, show_progress=False,
                         **kwargs)


def random_batch(generator: torch.Generator, n: int = 4, size: int = 8, dtype=torch.float32) -> "Batch":
    from nasbench.strategies.supernet_search import Batch

    return Batch(torch.randn(n, 3, size, size, generator=generator, dtype=dtype),
                 torch.randint(0, 10, (n,), generator=generator))


def normalised_batch(data, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images of ``data``'s search-train split, normalised, and their labels."""
    from nasbench.data import Augmentation

    split = data.search_train
    return Augmentation(CPU).normalise(split.images[:n]), split.labels[:n]


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def stored(checkpoint: "Checkpoint") -> "Checkpoint":
    """The checkpoint as the store keeps and returns it: JSON text and torch.save bytes."""
    from nasbench.store import tensors_from_bytes, tensors_to_bytes
    from nasbench.types import Checkpoint

    return Checkpoint(json.loads(json.dumps(checkpoint.state)), tensors_from_bytes(tensors_to_bytes(checkpoint.tensors)))


def outcome(trials):
    """Trials without their wall time, which is the only thing allowed to differ between runs."""
    return [(t.index, t.arch, t.val_acc, t.error) for t in trials]


# -- costs and controllers ------------------------------------------------------------------

_COUNTS: dict[tuple[int, int], tuple] = {}


def flops_constraint(space, protocol, target: float | None, weight: float, form: str = "hinge", exponent: float = 1.0):
    """A FLOPs :class:`~nasbench.hardware.constraint.Constraint` counted on ``space`` as
    ``protocol`` sizes its networks (the counts table built once per space and protocol)."""
    from nasbench.hardware.constraint import Constraint
    from nasbench.hardware.cost_model import CostModel
    from nasbench.hardware.profiler import counts_table

    key = (id(space), id(protocol))
    if key not in _COUNTS:
        _COUNTS[key] = (space, protocol, CostModel(counts_table(space, protocol), space, "flops"))  # keeps the ids alive
    return Constraint("flops", target, weight, _COUNTS[key][2], form, exponent)


def counts_table_file(space, protocol, folder: Path) -> Path:
    """The protocol's counts table of ``space`` saved under ``folder`` (as if measured on a
    device called ``counts``), the file a ``--table`` option takes."""
    from nasbench.hardware.profiler import counts_table

    table = counts_table(space, protocol)
    table.conditions.update(device_fingerprint="counts", backend="none", threads=1, batch_size=1)
    return table.save(folder)


def cell_choice_counts() -> list[int]:
    """The number of options of each decision of ENAS' cell controller, in its order: two
    inputs and two operations per node, in two cell types."""
    from nasbench.spaces.cell.space import NODES, SAMPLED_OPERATIONS

    counts = []
    for _ in range(2):
        for node in range(NODES):
            counts += [node + 2, node + 1, len(SAMPLED_OPERATIONS), len(SAMPLED_OPERATIONS)]
    return counts


# -- the CLI, in-process ----------------------------------------------------------------------

@dataclasses.dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def run_cli(*argv: str) -> CliResult:
    """``nasbench.cli.main(argv)`` with its stdout and stderr captured."""
    from nasbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return CliResult(code, out.getvalue(), err.getvalue())


def smoke_args(store, data_path, *extra):
    """``nasbench run`` on the smoke protocol into ``store``, JSON lines, no progress bars, no estimate."""
    return ("run", "--protocol", "smoke", "--store", store, "--json", "--data", data_path, "--no-progress",
            "--no-estimate", *extra)


# -- reading a store ---------------------------------------------------------------------------

def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def store_rows(path: Path, where: str = "1=1") -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM runs WHERE {where} ORDER BY id")]


def store_trials(path: Path, run_id: int) -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM trials WHERE run_id=? ORDER BY idx", (run_id,))]


def by_key(rows):
    """Store rows by (method, seed)."""
    return {(r["method"], r["seed"]): r for r in rows}


@dataclasses.dataclass(frozen=True)
class SmokeStore:
    """The session's ``nasbench run --all`` store (read-only: tests that write take a copy)."""

    path: Path
    result: CliResult

    def copy_to(self, directory: Path) -> Path:
        target = Path(directory) / "copy.sqlite"
        shutil.copyfile(self.path, target)
        return target


def failing_candidates(context: "SearchContext", error: Exception, indices: set[int] | None = None,
                       calls: list[int] | None = None) -> None:
    """Make ``context`` train its candidates as before, except those at ``indices`` (every
    one where None), which raise ``error``; ``calls`` records every index asked for."""
    train = context.train_candidate

    def flaky(arch, index):
        if calls is not None:
            calls.append(index)
        if indices is None or index in indices:
            raise error
        return train(arch, index)

    context.train_candidate = flaky
