"""`nasbench cost`: this machine's table picked by default from a tables folder that also holds
another device's, another device's table labelled when given explicitly, and one line naming the
profile command where this machine has no table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import run_cli

from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.profiler import counts_table
from nasbench.hardware.table import CostTable
from nasbench.provenance import device_fingerprint, resolve_device

ELSEWHERE = "cpu-elsewhere-f0m0s0-0c"
SMOKE = ("--protocol", "smoke")


def latency_table(folder: Path, space, protocol, device: torch.device, fingerprint: str, ms: float) -> Path:
    """The protocol's counts table of ``space`` as if measured on ``fingerprint`` (a device of
    ``device``'s type), each part taking ``ms`` milliseconds, saved under ``folder``."""
    table = counts_table(space, protocol)
    table.conditions.update(device=f"the {fingerprint} device", device_fingerprint=fingerprint,
                            device_type=device.type, backend="torch", threads=1, batch_size=1)
    path = table.save(folder)
    raw = json.loads(path.read_text())
    raw["harness_ms"] = 0.01
    for entry in raw["entries"]:
        entry.update(latency_ms_p10=ms / 2, latency_ms_p50=ms, latency_ms_p90=2 * ms, latency_ms_mean=ms, latency_count=5)
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture(scope="module")
def tables(tmp_path_factory, cell_space, smoke):
    """A tables folder with a table of this machine (the device ``--device auto`` picks) and
    one of a device that is not this machine, of the same space, protocol and conditions."""
    folder = tmp_path_factory.mktemp("cost-tables")
    here = resolve_device("auto")
    return {"dir": folder, "here": latency_table(folder, cell_space, smoke, here, device_fingerprint(here), 0.2),
            "elsewhere": latency_table(folder, cell_space, smoke, torch.device("cpu"), ELSEWHERE, 0.4)}


def test_cost_picks_the_table_of_this_machine(tables, cell_space):
    result = run_cli("cost", "DARTS_V2", "--tables", tables["dir"], *SMOKE, "--json")
    assert result.code == 0, result.err
    (record,) = result.json_lines()
    here = device_fingerprint(resolve_device("auto"))
    assert record["table"] == str(tables["here"]) and tables["here"].parent.name == here
    assert (record["table_device"], record["this_device"], record["same_device"]) == (here, here, True)
    expected = CostModel(CostTable.load(tables["here"]), cell_space, "latency_ms").cost(cell_space.zoo()["DARTS_V2"].arch)
    assert record["latency_ms_predicted"] == pytest.approx(expected)
    text = run_cli("cost", "DARTS_V2", "--tables", tables["dir"], *SMOKE)
    assert text.code == 0 and f"(table {tables['here']})" in text.out and "not this machine" not in text.out


def test_cost_labels_a_table_of_another_device(tables):
    here = device_fingerprint(torch.device("cpu"))  # the other table is a CPU's: compared with this machine's CPU
    text = run_cli("cost", "DARTS_V2", "--table", tables["elsewhere"])
    assert text.code == 0, text.err
    assert f"  predicted for {ELSEWHERE}, not this machine ({here})" in text.out.splitlines()
    (record,) = run_cli("cost", "DARTS_V2", "--table", tables["elsewhere"], "--json").json_lines()
    assert (record["table_device"], record["this_device"], record["same_device"]) == (ELSEWHERE, here, False)
    (mine,) = run_cli("cost", "DARTS_V2", "--table", tables["here"], "--json").json_lines()
    assert mine["same_device"] is True and record["latency_ms_predicted"] > mine["latency_ms_predicted"]
    measured = run_cli("cost", "DARTS_V2", "--table", tables["elsewhere"], "--measure")
    assert measured.code == 2 and measured.out == "" and len(measured.err.splitlines()) == 1
    assert f"was measured on {ELSEWHERE}, not on {here}" in measured.err


def test_cost_reads_a_describe_record(tables, tmp_path):
    """What `nasbench describe --json` prints is a genotype `nasbench cost` takes, its space read from it."""
    described = run_cli("describe", "DARTS_V2", *SMOKE, "--json")
    path = tmp_path / "darts_v2.json"
    path.write_text(described.out)
    (by_name,) = run_cli("cost", "DARTS_V2", "--tables", tables["dir"], *SMOKE, "--json").json_lines()
    result = run_cli("cost", path, "--tables", tables["dir"], *SMOKE, "--json")
    assert result.code == 0, result.err
    (by_file,) = result.json_lines()
    assert by_file == by_name | {"genotype": str(path)}
    assert by_file["params"] == json.loads(described.out)["params"]


def test_cost_without_a_table_of_this_machine_names_the_profile_command(tables, tmp_path):
    here = resolve_device("auto")
    result = run_cli("cost", "DARTS_V2", "--tables", tables["dir"], *SMOKE, "--threads", "2")
    assert result.code == 2 and result.out == ""
    (line,) = result.err.splitlines()
    wanted = tables["dir"] / device_fingerprint(here) / "cell-smoke-torch-t2-b1.json"
    assert line.startswith(f"nasbench: error: no cost table {wanted} for this machine ({device_fingerprint(here)}); ")
    assert (f"`nasbench profile --space cell --protocol smoke --device {here.type} --backend torch --threads 2 "
            f"--batch-size 1 --out {tables['dir']}`") in line
    assert line.endswith(f"(this machine's tables: {tables['here'].name})")
    empty = run_cli("cost", "DARTS_V2", "--tables", tmp_path, *SMOKE)
    assert empty.code == 2 and len(empty.err.splitlines()) == 1
    assert empty.err.strip().endswith(f"(this machine has none; other devices' under {tmp_path}: none)")
