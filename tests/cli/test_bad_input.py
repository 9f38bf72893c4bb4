"""Bad input, as a hostile user gives it: every case is one line ``nasbench: error: ...``,
exit status 2, no traceback, and the store exactly as it was (or, given a new path,
never created). The store is a real one holding a finished run."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, SUBPROCESS_ENV, counts_table_file, run_cli, sha256

SMOKE = ("--protocol", "smoke")
RUN = ("run", "--method", "random-arch", "--no-progress")


def run(*options: str, data: str = "{data}", store: str = "{store}", protocol: tuple[str, ...] = SMOKE) -> tuple:
    return (*RUN, *protocol, "--data", data, "--store", store, *options)


def constrained(table: str = "{table}", **options: str) -> tuple:
    """A latency-constrained snas run on ``table``, with ``options`` (``target="inf"``) replacing its defaults."""
    given = {"constraint": "latency", "constraint_form": "hinge", "target": "5", "constraint_weight": "1", "table": table,
             **options}
    flags = [(f"--{name.replace('_', '-')}", value) for name, value in given.items()]
    return ("run", "--method", "snas", *SMOKE, "--data", "{data}", "--store", "{store}", "--no-progress",
            *(part for flag in flags for part in flag))


def rank(*options: str, samples: str = "2", store: str = "{store}") -> tuple:
    return ("rank", "--supernet", "random-ws", "--samples", samples, *SMOKE, "--data", "{data}", "--store", store,
            "--no-progress", *options)


def protocol(name: str) -> tuple[str, ...]:
    return ("--protocol", f"{{dir}}/{name}")


CASES = {
    # data files
    "data-truncated": (run(data="{dir}/truncated.npz"), "not a readable .npz file"),
    "data-empty": (run(data="{dir}/empty.npz"), "not a readable .npz file"),
    "data-corrupt": (run(data="{dir}/corrupt.npz"), "not a readable .npz file"),
    "data-corrupt-member": (run(data="{dir}/bad-member.npz"), "not a readable .npz file"),
    "data-missing": (run(data="{dir}/nowhere.npz"), "does not exist"),
    "data-directory": (run(data="{dir}/folder.npz"), "is a directory"),
    "data-missing-arrays": (run(data="{dir}/wrong-arrays.npz"), "missing arrays x_train, y_train, x_test, y_test"),
    "data-wrong-shape": (run(data="{dir}/wrong-shape.npz"), "must be uint8 images of shape (N, 32, 32, 3)"),
    "data-bad-labels": (run(data="{dir}/bad-labels.npz"), "labels must lie in 0..9"),
    "data-pickled": (run(data="{dir}/pickled.npz"), "not a readable .npz file"),
    "data-not-npz": (run(data="{dir}/data.csv"), "--data must be 'cifar10' or a path to an .npz file"),
    # seeds
    "seed-negative": (run("--seeds", "1,-1"), "a seed must lie in 0..2**63-1"),
    "seed-64-bits": (run("--seeds", str(2**64)), "a seed must lie in 0..2**63-1"),
    "seed-63-bits": (run("--seeds", str(2**63)), "a seed must lie in 0..2**63-1"),
    "seed-twice": (run("--seeds", "3,3"), "a seed is given twice"),
    "seed-not-integer": (run("--seeds", "1,x"), "seeds must be comma-separated integers"),
    "rank-seed-negative": (rank("--seed", "-2"), "a seed must lie in 0..2**63-1"),
    "rank-seed-64-bits": (rank("--seed", str(2**64 + 1)), "a seed must lie in 0..2**63-1"),
    "protocol-seed-negative": (run(protocol=protocol("seed-negative.toml")), "seeds: a seed must lie in 0..2**63-1"),
    "protocol-seed-huge": (run(protocol=protocol("seed-huge.yaml")), "seeds: a seed must lie in 0..2**63-1"),
    # protocol values
    "protocol-lr-inf": (run(protocol=protocol("lr-inf.toml")), "lr must be a finite number, got inf"),
    "protocol-lr-nan": (run(protocol=protocol("lr-nan.toml")), "lr must be a finite number, got nan"),
    "protocol-lr-negative": (run(protocol=protocol("lr-negative.toml")), "[candidate]"),
    "protocol-epochs-zero": (run(protocol=protocol("epochs-zero.toml")), "[final]"),
    "protocol-odd-supernet": (run(protocol=protocol("odd-supernet.toml")), "channels must be an even number >= 2"),
    "protocol-unknown-key": (run(protocol=protocol("unknown-key.toml")), "learning_rate"),
    "protocol-unknown-section": (run(protocol=protocol("unknown-section.toml")), "nobody"),
    "protocol-syntax": (run(protocol=protocol("syntax.toml")), "syntax.toml"),
    "protocol-missing": (run(protocol=protocol("missing.toml")), "missing.toml"),
    "protocol-population": (run(protocol=protocol("population.toml")), "population"),
    "protocol-too-big": (run(protocol=("--protocol", "full")), "the protocol needs 50000 training"),
    "protocol-unknown": (run(protocol=("--protocol", "nope")), "unknown protocol 'nope'"),
    "protocol-wrong-type": (run(protocol=protocol("epochs-many.toml")), "final.epochs must be an integer"),
    "list-protocol-unknown": (("list", "genotypes", "--protocol", "nope"), "unknown protocol 'nope'"),
    "describe-unknown-genotype": (("describe", "NotANet", *SMOKE), "unknown genotype 'NotANet'"),
    "describe-malformed-genotype": (("describe", "{dir}/broken-genotype.json", *SMOKE), "not valid JSON"),
    # constraints
    "weight-inf": (constrained(constraint_weight="inf"), "must be a finite number, got 'inf'"),
    "weight-nan": (constrained(constraint_weight="nan"), "must be a finite number, got 'nan'"),
    "weight-negative": (constrained(constraint_weight="-1"), "--constraint-weight must be a finite number >= 0"),
    "target-inf": (constrained(target="inf"), "must be a finite number, got 'inf'"),
    "target-nan": (constrained(target="nan"), "must be a finite number, got 'nan'"),
    "target-negative": (constrained(target="-5"), "--constraint needs a positive, finite --target"),
    "constraint-unknown": (constrained(constraint="energy"), "unknown --constraint 'energy'"),
    "snas-setting-unknown": (("run", "--method", "snas", *SMOKE, "--data", "{data}", "--store", "{store}",
                              "--constraint", "flops", "--snas-setting", "wild"),
                             "unknown --snas-setting 'wild'"),
    # cost tables
    "table-latency-string": (constrained(table="{dir}/latency-fast.json"), "latency_ms_p50 must be a finite number >= 0, got 'fast'"),
    "table-latency-negative": (constrained(table="{dir}/latency-negative.json"), "latency_ms_p50 must be a finite number >= 0"),
    "table-latency-nan": (constrained(table="{dir}/latency-nan.json"), "latency_ms_p50 must be a finite number >= 0, got nan"),
    "table-params-string": (constrained(table="{dir}/params-many.json"), "params must be an integer >= 0, got 'many'"),
    "table-missing-entries": (constrained(table="{dir}/missing-entries.json"), "lacks 2 of the cell space's parts"),
    "table-half-measured": (constrained(table="{dir}/half-measured.json"), "a latency for every entry"),
    "table-not-json": (constrained(table="{dir}/data.csv"), "is not a cost table (invalid JSON"),
    "table-missing": (constrained(table="{dir}/nowhere.json"), "cannot read cost table"),
    "table-other-space": (constrained(constraint="flops", table="{dir}/fbnet-table.json"), "is for the fbnet space"),
    "cost-latency-string": (("cost", "DARTS_V2", "--table", "{dir}/latency-fast.json"), "got 'fast'"),
    "cost-genotype-unknown": (("cost", "NotANet", "--table", "{table}"), "unknown genotype 'NotANet'"),
    "cost-table-missing-entries": (("cost", "DARTS_V2", "--table", "{dir}/missing-entries.json"),
                                   "lacks 2 of the cell space's parts"),
    # stores
    "store-under-a-file": (run(store="{dir}/data.csv/results.sqlite"), "is a file, not a directory"),
    "store-under-proc": (run(store="/proc/nasbench/results.sqlite"), "does not accept new files"),
    "store-a-directory": (run(store="{dir}/folder.npz"), "is a directory"),
    "store-foreign-sqlite": (run(store="{dir}/foreign.sqlite"), "not a nasbench store (its tables: runs, users)"),
    "store-other-version": (run(store="{dir}/version-9.sqlite"), "has schema version 9"),
    "store-corrupt": (run(store="{dir}/corrupt.npz"), "is not a nasbench results database"),
    "rank-store-foreign": (rank(store="{dir}/foreign.sqlite"), "not a nasbench store"),
    "report-store-foreign": (("report", "--store", "{dir}/foreign.sqlite", "--out", "{dir}/reports"), "not a nasbench store"),
    "report-store-missing": (("report", "--store", "{dir}/none.sqlite", "--out", "{dir}/reports"), "no results store"),
    # names and numbers
    "method-unknown": (("run", "--method", "random,nope", *SMOKE, "--store", "{store}"), "unknown method 'nope'"),
    "method-none": (("run", "--method", ",", *SMOKE, "--store", "{store}"), "--method needs at least one method name"),
    "space-unknown": (run("--space", "nope"), "unknown space"),
    "device-unknown": (run("--device", "tpu"), "argument --device: must be auto, cpu or cuda, got 'tpu'"),
    "workers-zero": (run("--workers", "0"), "must be >= 1, got 0"),
    "option-unknown": (run("--sedes", "1"), "unrecognized arguments: --sedes 1"),
    "rank-samples-one": (rank(samples="1"), "at least 2"),
    "rank-not-supernet": (("rank", "--supernet", "random", "--samples", "2", *SMOKE, "--store", "{store}"), "random"),
    "bench-odd-channels": (("bench", "search-step", "--method", "darts", "--channels", "3"),
                           "channels must be an even number >= 2"),
    "bench-not-supernet": (("bench", "search-step", "--method", "random"), "trains no weight-sharing supernet"),
    "bench-protocol-and-size": (("bench", "search-step", "--method", "darts", *SMOKE, "--batch-size", "64"),
                                "--protocol sizes the step by its [search.supernet] and lays out its space: drop "
                                "--batch-size"),
    "bench-protocol-unknown": (("bench", "search-step", "--method", "darts", "--protocol", "nope"), "unknown protocol"),
    # executors: each refused before Ray starts or, where only the cluster can tell, before the store opens
    "executor-unknown": (run("--executor", "dask"), "argument --executor: invalid choice: 'dask'"),
    "executor-inprocess-workers": (run("--executor", "inprocess", "--workers", "2"), "need --executor ray"),
    "executor-inprocess-address": (run("--executor", "inprocess", "--address", "auto"), "need --executor ray"),
    "executor-gpus-without-ray": (run("--device", "cpu", "--gpus-per-task", "3"), "need --executor ray"),
    "executor-address-unreachable": (run("--address", "127.0.0.1:1"), "no Ray cluster answers at 127.0.0.1:1"),
    "executor-address-nonsense": (run("--address", "nonsense"), "--address 'nonsense': give HOST:PORT"),
    "executor-address-workers": (run("--address", "auto", "--workers", "2"), "drop --workers"),
    "executor-cpus-too-many": (run("--cpus-per-task", "4096", "--executor", "ray"),
                               "--cpus-per-task 4096: this machine has"),
    "executor-cpus-zero": (run("--cpus-per-task", "0", "--executor", "ray"), "must be > 0, got 0"),
    "executor-gpus-negative": (run("--gpus-per-task", "-1", "--executor", "ray"), "must be >= 0, got -1"),
    # export
    "export-run-unknown": (("export", "99", "--store", "{store}", "--out", "{dir}/net.onnx"), "no run 99 in"),
    "export-store-missing": (("export", "1", "--store", "{dir}/none.sqlite", "--out", "{dir}/net.onnx"),
                             "no results store"),
    "export-store-foreign": (("export", "1", "--store", "{dir}/foreign.sqlite", "--out", "{dir}/net.onnx"),
                             "not a nasbench store"),
    "export-genotype-malformed": (("export", "{dir}/broken-genotype.json", *SMOKE, "--out", "{dir}/net.onnx"),
                                  "not valid JSON"),
    "export-genotype-unknown": (("export", "NotANet", *SMOKE, "--out", "{dir}/net.onnx"), "unknown genotype 'NotANet'"),
    "export-format-unknown": (("export", "DARTS_V2", *SMOKE, "--format", "tflite", "--out", "{dir}/net.onnx"),
                              "invalid choice: 'tflite'"),
    "export-out-missing": (("export", "DARTS_V2", *SMOKE), "the following arguments are required: --out"),
    "export-out-under-a-file": (("export", "DARTS_V2", *SMOKE, "--out", "{dir}/data.csv/net.onnx"),
                                "is a file, not a directory"),
    "export-out-under-proc": (("export", "DARTS_V2", *SMOKE, "--out", "/proc/nasbench/net.onnx"),
                              "does not accept new files"),
    "export-out-a-directory": (("export", "DARTS_V2", *SMOKE, "--out", "{dir}/folder.npz"), "is a directory"),
    "export-protocol-disagrees": (("export", "1", "--store", "{store}", "--protocol", "proxy", "--out", "{dir}/net.onnx"),
                                  "not under --protocol proxy"),
    "export-space-disagrees": (("export", "1", "--store", "{store}", "--space", "fbnet", "--out", "{dir}/net.onnx"),
                               "not --space fbnet"),
    "export-space-unknown": (("export", "DARTS_V2", "--space", "nope", "--out", "{dir}/net.onnx"), "unknown space"),
    # profile and cost --measure: batch sizes, precision, time limit, tolerance
    "profile-batch-zero": (("profile", *SMOKE, "--backend", "torch", "--out", "{dir}/tables", "--batch-size", "0"),
                           "must be >= 1, got 0"),
    "profile-batch-letter": (("profile", *SMOKE, "--backend", "torch", "--out", "{dir}/tables", "--batch-size", "1,a"),
                             "not an integer: 'a'"),
    "profile-batch-twice": (("profile", *SMOKE, "--backend", "torch", "--out", "{dir}/tables", "--batch-size", "32,32"),
                            "a batch size is given twice"),
    "profile-precision-zero": (("profile", *SMOKE, "--backend", "torch", "--out", "{dir}/tables", "--precision", "0"),
                               "must be a share > 0"),
    "profile-precision-negative": (("profile", *SMOKE, "--backend", "torch", "--out", "{dir}/tables",
                                    "--precision", "-0.02"), "must be a share > 0"),
    "profile-max-time-negative": (("profile", *SMOKE, "--backend", "torch", "--out", "{dir}/tables", "--max-time", "-1"),
                                  "must be a number of seconds >= 0"),
    "profile-tolerance-nan": (("profile", *SMOKE, "--backend", "torch", "--out", "{dir}/tables", "--tolerance", "nan"),
                              "must be a finite number"),
    "cost-precision-zero": (("cost", "DARTS_V2", "--table", "{table}", "--measure", "--precision", "0"),
                            "must be a share > 0"),
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, data_path, smoke, cell_space):
    """A real store with one finished run, and every bad file the cases name."""
    folder = tmp_path_factory.mktemp("bad-input")
    store = folder / "store.sqlite"
    finished = run_cli(*run(data=str(data_path), store=str(store)))
    assert finished.code == 0, finished.err
    subset = Path(data_path).read_bytes()
    (folder / "truncated.npz").write_bytes(subset[:len(subset) // 3])
    (folder / "empty.npz").write_bytes(b"")
    (folder / "corrupt.npz").write_bytes(os.urandom(4096))
    member = bytearray(subset)
    member[len(member) // 2:len(member) // 2 + 64] = bytes(64)  # a member's compressed bytes zeroed
    (folder / "bad-member.npz").write_bytes(bytes(member))
    (folder / "folder.npz").mkdir()
    images, labels = np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int64)
    np.savez(folder / "wrong-arrays.npz", images=images, labels=labels)
    np.savez(folder / "wrong-shape.npz", x_train=np.zeros((4, 28, 28), np.uint8), y_train=labels, x_test=images,
             y_test=labels)
    np.savez(folder / "bad-labels.npz", x_train=images, y_train=labels + 10, x_test=images, y_test=labels)
    np.savez(folder / "pickled.npz", x_train=np.array([{}], dtype=object), y_train=labels, x_test=images, y_test=labels)
    (folder / "data.csv").write_text("x,y\n1,2\n")
    protocols = {
        "seed-negative.toml": 'base = "smoke"\nseeds = [-1]\n',
        "seed-huge.yaml": f"base: smoke\nseeds: [{2**64}]\n",
        "lr-inf.toml": 'base = "smoke"\n[candidate]\nlr = inf\n',
        "lr-nan.toml": 'base = "smoke"\n[candidate]\nlr = nan\n',
        "lr-negative.toml": 'base = "smoke"\n[candidate]\nlr = -0.1\n',
        "epochs-zero.toml": 'base = "smoke"\n[final]\nepochs = 0\n',
        "odd-supernet.toml": 'base = "smoke"\n[search.supernet]\nchannels = 3\n',
        "unknown-key.toml": 'base = "smoke"\n[candidate]\nlearning_rate = 0.1\n',
        "unknown-section.toml": 'base = "smoke"\n[search.nobody]\nx = 1\n',
        "syntax.toml": 'base = "smoke"\n[candidate\n',
        "population.toml": 'base = "smoke"\n[search.evolution]\npopulation = 5\nsample = 2\n',
        "epochs-many.toml": 'base = "smoke"\n[final]\nepochs = "many"\n',
        "broken-genotype.json": '{"normal": [["sep_conv_3x3", 0]], "normal_concat": [2]',
    }
    for name, text in protocols.items():
        (folder / name).write_text(text)
    table = json.loads(counts_table_file(cell_space, smoke, folder).read_text())
    table["harness_ms"] = 0.01
    for entry in table["entries"]:
        entry.update(latency_ms_p10=0.1, latency_ms_p50=0.2, latency_ms_p90=0.3, latency_ms_mean=0.2, latency_count=5)
    (folder / "table.json").write_text(json.dumps(table))

    def variant(name, change):
        broken = json.loads(json.dumps(table))
        change(broken)
        (folder / name).write_text(json.dumps(broken))

    variant("latency-fast.json", lambda t: t["entries"][3].update(latency_ms_p50="fast"))
    variant("latency-negative.json", lambda t: t["entries"][3].update(latency_ms_p50=-0.2))
    variant("latency-nan.json", lambda t: t["entries"][3].update(latency_ms_p50=float("nan")))
    variant("params-many.json", lambda t: t["entries"][0].update(params="many"))
    variant("missing-entries.json", lambda t: t.update(entries=t["entries"][:3] + t["entries"][5:]))
    variant("half-measured.json", lambda t: t["entries"][1].pop("latency_ms_p50"))
    variant("fbnet-table.json", lambda t: t.update(space="fbnet"))
    with closing(sqlite3.connect(folder / "foreign.sqlite")) as conn, conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, what TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    shutil.copyfile(store, folder / "version-9.sqlite")
    with closing(sqlite3.connect(folder / "version-9.sqlite")) as conn, conn:
        conn.execute("UPDATE meta SET value='9' WHERE key='schema_version'")
    return {"dir": str(folder), "store": str(store), "data": str(data_path), "table": str(folder / "table.json")}


def listing(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash (a journal, a new table, a changed byte all show)."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv: tuple, message: str, workspace: dict) -> None:
    """``argv`` is one line ``nasbench: error: ...`` holding ``message``, exit status 2, and no file changed."""
    folder = Path(workspace["dir"])
    before = listing(folder)
    result = run_cli(*(arg.format(**workspace) for arg in argv))
    lines = result.err.splitlines()
    assert result.code == 2, result.err
    assert len(lines) == 1 and lines[0].startswith("nasbench: error: "), result.err
    assert message in lines[0]
    assert result.out == ""
    assert listing(folder) == before


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_changes_no_file(case, workspace):
    refused(*CASES[case], workspace)


IN_ORDER = """
import contextlib, io, json, sys
from nasbench.cli import main
found = {}
for case, argv in json.load(sys.stdin):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    found[case] = {"code": code, "torch": "torch" in sys.modules}
print(json.dumps(found))
"""


def test_bad_input_is_refused_before_torch_is_imported(workspace):
    """Every case, one after another in one fresh interpreter: none imports torch (once loaded
    it stays, so the first case importing it is the one named)."""
    cases = [(case, [arg.format(**workspace) for arg in argv]) for case, (argv, _) in CASES.items()]
    done = subprocess.run([sys.executable, "-c", IN_ORDER], input=json.dumps(cases), capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, **SUBPROCESS_ENV}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert {case: result["code"] for case, result in found.items()} == dict.fromkeys(CASES, 2)
    first = next((case for case, result in found.items() if result["torch"]), None)
    assert first is None, f"case {first} imported torch"


GPU_CASES = {
    "executor-gpus-none": (run("--device", "cpu", "--gpus-per-task", "1", "--executor", "ray"),
                           "--gpus-per-task 1: the Ray cluster has no GPU"),
    "executor-gpus-three": (run("--device", "cpu", "--gpus-per-task", "3", "--executor", "ray"),
                            "--gpus-per-task 3: the Ray cluster has no GPU"),
}
"""Cases only a machine without a GPU refuses: the local Ray instance they start (and shut
down) finds none."""


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the local Ray instance finds it")
@pytest.mark.parametrize("case", GPU_CASES)
def test_gpus_per_task_without_a_gpu_is_refused(case, workspace):
    refused(*GPU_CASES[case], workspace)


def test_the_cases_cover_every_kind_of_input():
    kinds = {case.split("-")[0] for case in CASES}
    assert {"data", "seed", "protocol", "weight", "target", "table", "store", "rank", "bench", "cost", "executor"} <= kinds
    assert len(CASES) >= 40


@pytest.fixture
def read_only_store(workspace, tmp_path):
    """A copy of the store this process cannot write: immutable where it runs as root
    (chattr +i), without write permission otherwise."""
    store = tmp_path / "read-only.sqlite"
    shutil.copyfile(workspace["store"], store)
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(store)], capture_output=True).returncode != 0:
            pytest.skip("running as root where chattr +i is refused: no way to make a file read-only for root")
        yield store
        subprocess.run(["chattr", "-i", str(store)], check=True)
    else:
        store.chmod(0o444)
        yield store


def test_a_read_only_store_is_refused_before_the_data_is_loaded(read_only_store, workspace):
    before = sha256(read_only_store)
    result = run_cli(*run(data="/nowhere/data.npz", store=str(read_only_store)))
    assert result.code == 2 and result.err.count("\n") == 1
    assert result.err.startswith(f"nasbench: error: --store {read_only_store} cannot be written")
    assert sha256(read_only_store) == before


def test_a_corrupt_archive_is_one_line_in_a_fresh_process(workspace, tmp_path):
    """The whole entry point, interpreter and all: no traceback reaches the terminal."""
    done = subprocess.run([sys.executable, "-m", "nasbench", *run(data=f"{workspace['dir']}/truncated.npz",
                                                                     store=str(tmp_path / "new.sqlite"))],
                          capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, **SUBPROCESS_ENV},
                          timeout=120)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.startswith("nasbench: error: ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "new.sqlite").exists()


def test_an_unreachable_cluster_is_refused_at_once(workspace):
    """``ray.init`` would retry an address nothing listens at for about a minute."""
    started = time.perf_counter()
    refused(run("--address", "127.0.0.1:1", "--executor", "ray"), "no Ray cluster answers at 127.0.0.1:1", workspace)
    assert time.perf_counter() - started < 15
