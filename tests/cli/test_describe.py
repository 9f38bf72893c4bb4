"""`nasbench describe`: a zoo genotype under a protocol, a genotype file, a protocol of unusual
width, and its JSON output read back as a genotype file."""
from __future__ import annotations

import json
import random

import pytest
from helpers import run_cli

from nasbench.errors import ConfigError
from nasbench.hardware.counting import count_params
from nasbench.protocol import load_protocol
from nasbench.spaces import SPACES, get_space
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.resolve import resolve_arch


def test_describe_darts_v2_under_the_full_protocol():
    result = run_cli("describe", "DARTS_V2", "--protocol", "full")
    assert result.code == 0
    assert "3.349M params" in result.out
    assert "36 channels, 20 cells" in result.out
    assert "published: 3.3M params" in result.out
    assert "  n5 = skip_connect(c_{k-2}) + dil_conv_3x3(n2)" in result.out


@pytest.mark.parametrize(("space", "name", "params", "published"), [
    ("enas-rnn", "DARTS_V2", "22.960M", "23.0M"),  # DARTS Table 2: 23M at 850 units
    ("nasrl-rnn", "NAS_cell", "20.070M", "54.0M"),  # 10,000 * 851 + 16 * 850^2: NAS-RL gives no size
])
def test_describe_counts_a_recurrent_cell_as_the_papers_ptb_model(space, name, params, published):
    result = run_cli("describe", name, "--space", space, "--protocol", "full", "--json")
    assert result.code == 0, result.err
    (summary,) = [json.loads(line) for line in result.out.splitlines()]
    assert (summary["space"], summary["hidden_size"], summary["vocab_size"]) == (space, 850, 10000)
    assert f"{summary['params'] / 1e6:.3f}M" == params and f"{summary['published_params_m']}M" == published
    # one step of the cell and its projection, then the decoder: more than the decoder's 850 * 10000 MACs
    assert 850 * 10000 < summary["flops"] < summary["params"] + 10000
    text = run_cli("describe", name, "--space", space, "--protocol", "full").out
    assert f"{params} params" in text and "FLOPs per word" in text


def test_describe_a_genotype_file(tmp_path, cell_space, smoke):
    path = tmp_path / "mine.json"
    genotype = cell_space.zoo()["PC_DARTS"].arch
    path.write_text(genotype.to_json())
    (summary,) = run_cli("describe", str(path), "--protocol", "smoke", "--json").json_lines()
    assert summary["name"] == str(path) and summary["protocol"] == "smoke"
    assert Genotype.from_dict(summary["genotype"]) == genotype
    assert summary["params"] == count_params(cell_space.build(genotype, smoke.final.network))
    assert "published_params_m" not in summary
    text = run_cli("describe", str(path), "--protocol", "smoke")
    assert text.code == 0 and text.out.startswith(str(genotype)) and "published" not in text.out


def test_describe_gdas_frc_under_a_valid_protocol_of_6_channels(tmp_path):
    """The protocol check accepts any even channel count >= 2; describing (or listing) the zoo
    under such a protocol must work, or be refused with the one-line error, never crash."""
    protocol = tmp_path / "six.toml"
    protocol.write_text('base = "smoke"\nseeds = [0]\n[final]\nchannels = 6\n')
    assert load_protocol(str(protocol)).final.channels == 6
    result = run_cli("describe", "GDAS_FRC", "--protocol", protocol)
    if result.code == 2:
        assert len(result.err.splitlines()) == 1 and result.err.startswith("nasbench: error: ")
    else:
        assert result.code == 0 and "6 channels" in result.out


@pytest.mark.parametrize("name", ["DARTS_V2", "GDAS_FRC", "ENAS"])
def test_describe_json_is_read_back_as_a_genotype(name, tmp_path, cell_space):
    """`nasbench describe X --json > g.json && nasbench describe g.json` (the cell space is the
    one describe knows; GDAS_FRC has no searched reduction cell, ENAS' cells use other inputs)."""
    printed = run_cli("describe", name, "--protocol", "smoke", "--json")
    assert printed.code == 0, printed.err
    (record,) = printed.json_lines()
    assert record["space"] == "cell" and record["genotype"] == cell_space.zoo()[name].arch.to_dict()
    path = tmp_path / "g.json"
    path.write_text(printed.out)
    (again,) = run_cli("describe", path, "--protocol", "smoke", "--json").json_lines()
    published = {"published_params_m", "source", "note", "params_note"}  # the zoo entry's, not the file's
    assert published <= set(record)
    assert again == {k: v for k, v in record.items() if k not in published} | {"name": str(path)}
    text = run_cli("describe", path, "--protocol", "smoke")
    assert text.code == 0 and text.out.startswith(str(cell_space.zoo()[name].arch))


def test_every_space_reads_a_record_of_its_own_and_refuses_another(tmp_path, smoke):
    """A result record (`describe --json`'s, `run --json`'s) is read by its genotype field in every
    space; a record of another space, or a file that is neither form, is a one-line error saying so."""
    for name in SPACES:
        space = get_space(name, smoke)
        arch = space.sample(random.Random(3))
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"space": name, "method": "random", "genotype": space.to_dict(arch)}))
        assert space.from_file(path) == arch == resolve_arch(str(path), space)[0]
        other = "cell" if name != "cell" else "fbnet"
        with pytest.raises(ConfigError, match=f"^{path}: a record of the {name} space, not of the {other} space$"):
            get_space(other, smoke).from_file(path)
    neither = tmp_path / "neither.json"
    neither.write_text('{"name": "DARTS_V2"}')
    result = run_cli("describe", neither)
    assert result.code == 2 and len(result.err.splitlines()) == 1
    assert result.err.startswith(f"nasbench: error: {neither}: missing normal")
    assert "or give a record with the genotype in its genotype field, as `nasbench describe --json` prints" in result.err
