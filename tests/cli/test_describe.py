"""`nasbench describe`: a zoo genotype under a protocol, a genotype file, and a protocol of unusual
width."""
from __future__ import annotations

from helpers import run_cli

from nasbench.hardware.counting import count_params
from nasbench.protocol import load_protocol
from nasbench.spaces.cell.genotype import Genotype


def test_describe_darts_v2_under_the_full_protocol():
    result = run_cli("describe", "DARTS_V2", "--protocol", "full")
    assert result.code == 0
    assert "3.349M params" in result.out
    assert "36 channels, 20 cells" in result.out
    assert "published: 3.3M params" in result.out
    assert "  n5 = skip_connect(c_{k-2}) + dil_conv_3x3(n2)" in result.out


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
