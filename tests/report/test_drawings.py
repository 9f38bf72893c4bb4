"""The architecture drawings: laid out in ranks, drawn as SVG that parses, names every node and
operation, keeps its labels apart and repeats byte for byte; one file per run, linked from
the Markdown report."""
from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from nasbench.report.drawings import (
    architecture_svg,
    graph_svg,
    layout,
    ranks,
    run_graphs,
    write_drawings,
)
from nasbench.spaces import get_space
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.cell.space import CellSpace

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def darts_v2(cell_space):
    return cell_space.graph(cell_space.zoo()["DARTS_V2"].arch)


def run(run_id: int, method: str, seed: int, genotype: dict, space: str = "cell", variant: str = "",
        protocol_json: str = "{}", **extra) -> dict:
    """A finished run as the report reads it (only what drawing needs)."""
    return {"id": run_id, "method": method, "variant": variant, "seed": seed, "protocol": "p", "protocol_hash": "h" * 12,
            "data": "d", "space": space, "genotype_json": json.dumps(genotype), "protocol_json": protocol_json, **extra}


def test_ranks_put_inputs_first_and_the_output_last(darts_v2):
    depth = ranks(darts_v2[0])
    assert depth["s0"] == depth["s1"] == 0 and depth["s2"] == depth["s3"] == depth["s4"] == 1  # nodes 0-2 read inputs only
    assert depth["s5"] == 2 and depth["out"] == 3  # node 3 reads node 0


def test_cells_run_left_to_right_and_networks_top_to_bottom(darts_v2, smoke):
    plan = layout(darts_v2[0])
    assert plan.across and plan.boxes["s0"].x < plan.boxes["s2"].x < plan.boxes["s5"].x < plan.boxes["out"].x
    metaqnn = get_space("metaqnn", smoke)
    (chain,) = metaqnn.graph(metaqnn.sample(random.Random(0)))
    plan = layout(chain)
    ys = [plan.boxes[n.id].y for n in chain.nodes]
    assert not plan.across and ys == sorted(ys) and len(set(ys)) == len(ys)


def test_svg_parses_and_names_every_node_and_operation(darts_v2):
    for graph in darts_v2:
        root = ET.fromstring(graph_svg(graph))
        assert root.tag == f"{SVG}svg" and root.get("data-group") == graph.group
        texts = [t.text for t in root.iter(f"{SVG}text")]
        assert sorted(t for t in texts if t) == sorted([n.label for n in graph.nodes] + [e.label for e in graph.edges
                                                                                         if e.label])
        assert len(list(root.iter(f"{SVG}path"))) == len(list(root.iter(f"{SVG}polygon"))) == len(graph.edges)


def label_boxes(svg: str) -> list[tuple[float, float, float, float]]:
    """The edge labels' boxes (6.3 px a character at 11 px, 16 px high), read back from the SVG."""
    group = svg.split('paint-order="stroke">')[1].split("</g>")[0]
    return [(float(x) - (6.3 * len(t) + 4) / 2, float(y) - 8, float(x) + (6.3 * len(t) + 4) / 2, float(y) + 8)
            for x, y, t in re.findall(r'<text x="([-\d.]+)" y="([-\d.]+)" dy="0.35em">([^<]*)</text>', group)]


def test_operation_labels_do_not_cover_each_other(darts_v2, smoke):
    nasnet = get_space("nasnet", smoke)
    for graph in (*darts_v2, *nasnet.graph(nasnet.zoo()["NASNet-A"].arch)):
        boxes = label_boxes(graph_svg(graph))
        assert len(boxes) == len([e for e in graph.edges if e.label])
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert min(a[2], b[2]) - max(a[0], b[0]) <= 0.5 or min(a[3], b[3]) - max(a[1], b[1]) <= 0.5, (a, b)


def test_inline_svg_names_no_namespace_and_drawings_repeat_byte_for_byte(darts_v2):
    assert "xmlns" not in graph_svg(darts_v2[0], xmlns=False) and "http" not in graph_svg(darts_v2[0], xmlns=False)
    assert architecture_svg(darts_v2, "DARTS_V2") == architecture_svg(darts_v2, "DARTS_V2")
    whole = ET.fromstring(architecture_svg(darts_v2, "DARTS_V2 <&>"))
    assert [s.get("data-group") for s in whole.iter(f"{SVG}svg") if s.get("data-group")] == ["normal", "reduce"]
    assert next(whole.iter(f"{SVG}text")).text == "DARTS_V2 <&>"


def test_a_run_is_drawn_in_the_layout_its_protocol_stored(smoke, fbnet_space):
    stored = smoke.to_json()
    blocks = ["skip"] * len(fbnet_space.specs)
    (graph,) = run_graphs(run(1, "fbnet", 0, {"blocks": blocks}, space="fbnet", protocol_json=stored))
    assert len([n for n in graph.nodes if n.kind == "layer"]) == len(fbnet_space.specs) + 1  # and the stem


def test_write_drawings_files_and_markdown(tmp_path, cell_space, monkeypatch):
    darts = cell_space.to_dict(cell_space.zoo()["DARTS_V2"].arch)
    amoeba = cell_space.to_dict(cell_space.zoo()["AmoebaNet"].arch)
    long_variant = "latency_ms<=2.5@cpu-x/cell-proxy-torch-t1-b1.json#47fc3101879d,weight=1,form=add-linear"
    runs = pd.DataFrame([run(3, "darts", 1, amoeba), run(2, "darts", 0, darts),
                         run(4, "snas", 0, darts, variant=long_variant, label="latency ≤ 2.5 ms, λ 1"),
                         run(5, "snas", 0, darts, variant=long_variant.replace("weight=1", "weight=2")),
                         run(6, "random", 0, darts, protocol_hash="a" * 12), run(7, "random", 0, darts)])
    paths, markdown = write_drawings(tmp_path, runs)
    names = sorted(p.name for p in paths)
    assert names[:5] == ["darts-seed0-p.svg", "darts-seed1-p.svg", "random-seed0-p-run6.svg", "random-seed0-p-run7.svg",
                         "snas-latency-2.5-ms-1-seed0-p.svg"]  # the same name twice: the run ids tell them apart
    assert re.fullmatch(r"snas-latency-ms-2\.5-cpu-x-cell-proxy-[0-9a-f]{7}-seed0-p\.svg", names[5])  # cut, with a hash
    assert all(p.parent == tmp_path / "architectures" for p in paths)
    assert "sep_conv_3x3" in (tmp_path / "architectures" / "darts-seed0-p.svg").read_text()
    assert "## Found architectures" in markdown
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith("| ")]
    assert ["darts", "cell", "[0](architectures/darts-seed0-p.svg), [1](architectures/darts-seed1-p.svg)"] in rows
    assert ["snas, latency ≤ 2.5 ms, λ 1", "cell", "[0](architectures/snas-latency-2.5-ms-1-seed0-p.svg)"] in rows
    assert markdown.count("### `p` protocol") == 2  # the two protocol hashes
    before = {p.name: p.read_bytes() for p in paths}
    write_drawings(tmp_path, runs)
    assert {p.name: p.read_bytes() for p in paths} == before
    monkeypatch.setattr(CellSpace, "graph", SearchSpace.graph)
    paths, markdown = write_drawings(tmp_path / "none", runs)
    assert paths == [] and "0 (the cell space has no drawing of its genotypes)" in markdown
