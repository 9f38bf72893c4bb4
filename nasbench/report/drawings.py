"""Found architectures drawn as SVG: each space's graphs (:meth:`SearchSpace.graph`) laid out in
layers by topological depth, in Python, so that drawing needs no graphviz binary and the same
store gives the same bytes.

Cells (graphs with intermediate nodes) run left to right, as in DARTS' figures, with their
operations on the edges; whole networks run top to bottom, one layer under the other, their
skip connections as arcs on the right. An edge that jumps a rank, or repeats another, is an
arc so that it passes beside the nodes between, not through them.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from nasbench.errors import NasbenchError
from nasbench.report.common import SECTION_KEYS, label, section_title
from nasbench.settings import parse_settings
from nasbench.spaces import space_class
from nasbench.spaces.base import SearchSpace
from nasbench.types import ArchitectureGraph

FILL = {"input": "#c1f0c1", "intermediate": "#add8e6", "output": "#eee8aa", "layer": "#dbe7f7"}
"""Node colours of DARTS' drawings (graphviz's darkseagreen2, lightblue, palegoldenrod)."""
GROUP_TITLES = {"normal": "normal cell", "reduce": "reduction cell"}
CHAR_WIDTH, NODE_HEIGHT, PADDING, MARGIN = 7.0, 26.0, 10.0, 12.0
"""Pixels: a 12 px sans-serif character's width (generous), a node's height, the padding
around a node's label and around the drawing."""


@dataclass(frozen=True)
class Box:
    """A placed node: its centre and width."""

    x: float
    y: float
    width: float


def text_width(text: str, char_width: float = CHAR_WIDTH) -> float:
    return char_width * len(text)


def ranks(graph: ArchitectureGraph) -> dict[str, int]:
    """Each node's depth: the length of the longest path reaching it (inputs at 0)."""
    sources: dict[str, list[str]] = {node.id: [] for node in graph.nodes}
    for edge in graph.edges:
        sources[edge.dst].append(edge.src)
    depth: dict[str, int] = {}

    def visit(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((visit(source) for source in sources[node]), default=-1)
        return depth[node]

    for node in graph.nodes:
        visit(node.id)
    return depth


def ordered_ranks(graph: ArchitectureGraph, depth: dict[str, int]) -> list[list[str]]:
    """The nodes of each rank, each rank after the first sorted by the mean position of the
    nodes feeding it (one barycentre pass, which removes most crossings in these graphs)."""
    layers: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in graph.nodes:
        layers[depth[node.id]].append(node.id)
    position: dict[str, float] = {}
    for layer in layers:
        barycentre = {}
        for i, node in enumerate(layer):
            fed_by = [position[e.src] for e in graph.edges if e.dst == node]
            barycentre[node] = sum(fed_by) / len(fed_by) if fed_by else i - (len(layer) - 1) / 2
        layer.sort(key=barycentre.__getitem__)
        position |= {node: i - (len(layer) - 1) / 2 for i, node in enumerate(layer)}
    return layers


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    depth: dict[str, int]
    across: bool
    """Left to right (cells) rather than top to bottom (networks)."""


def layout(graph: ArchitectureGraph) -> Layout:
    """Every node's place: ranks side by side (cells) or one under the other (networks),
    each rank's nodes centred on the drawing's axis; the space between two ranks of a cell
    fits the labels of the edges that cross it."""
    depth = ranks(graph)
    layers = ordered_ranks(graph, depth)
    widths = {n.id: max(36.0, text_width(n.label) + 2 * PADDING) for n in graph.nodes}
    boxes: dict[str, Box] = {}
    if any(node.kind == "intermediate" for node in graph.nodes):
        x, row = 0.0, NODE_HEIGHT + 50
        for rank, layer in enumerate(layers):
            labels = [e.label for e in graph.edges if depth[e.dst] == rank]
            x += 0 if rank == 0 else max(56.0, 1.5 * max(map(label_width, labels), default=0) + 40)
            column = max(widths[n] for n in layer)
            for i, node in enumerate(layer):
                boxes[node] = Box(x + column / 2, (i - (len(layer) - 1) / 2) * row, widths[node])
            x += column
        return Layout(boxes, depth, True)
    row, gap = NODE_HEIGHT + 20, 24.0
    for rank, layer in enumerate(layers):
        x = -(sum(widths[n] for n in layer) + gap * (len(layer) - 1)) / 2
        for node in layer:
            boxes[node] = Box(x + widths[node] / 2, rank * row, widths[node])
            x += widths[node] + gap
    return Layout(boxes, depth, False)


Point = tuple[float, float]
Rect = tuple[float, float, float, float]
"""Left, top, right, bottom."""


def label_width(text: str) -> float:
    return 6.3 * len(text) + 4


def _rect(box: Box) -> Rect:
    return (box.x - box.width / 2, box.y - NODE_HEIGHT / 2, box.x + box.width / 2, box.y + NODE_HEIGHT / 2)


def edge_points(graph_plan: Layout, src: str, dst: str, repeat: int) -> tuple[Point, ...]:
    """A straight line (two points) between adjacent ranks; else a cubic (four points): a
    repeated edge bends beside the first, and an edge that jumps ranks arcs over (or under)
    the cells' nodes between, right of the networks' layers, farther the more it jumps."""
    boxes, depth = graph_plan.boxes, graph_plan.depth
    s, d = boxes[src], boxes[dst]
    span = depth[dst] - depth[src]
    across = graph_plan.across
    start = (s.x + s.width / 2, s.y) if across else (s.x, s.y + NODE_HEIGHT / 2)
    end = (d.x - d.width / 2, d.y) if across else (d.x, d.y - NODE_HEIGHT / 2)
    if span == 1:
        if repeat == 0:
            return start, end
        dx, dy = end[0] - start[0], end[1] - start[1]
        bend = 22.0 * repeat / (math.hypot(dx, dy) or 1.0)
        return start, (start[0] + dx / 3 - dy * bend, start[1] + dy / 3 + dx * bend), \
            (start[0] + 2 * dx / 3 - dy * bend, start[1] + 2 * dy / 3 + dx * bend), end
    between = [_rect(b) for n, b in boxes.items() if depth[src] <= depth[n] <= depth[dst]]
    clearance = 14 + 8 * (span - 2) + 10 * repeat
    if across:
        centre = (min(b.y for b in boxes.values()) + max(b.y for b in boxes.values())) / 2
        side = 1 if (s.y + d.y) / 2 >= centre else -1
        start, end = (s.x, s.y + side * NODE_HEIGHT / 2), (d.x, d.y + side * NODE_HEIGHT / 2)
        peak = max(r[3] for r in between) + clearance if side > 0 else min(r[1] for r in between) - clearance
        control = (8 * peak - start[1] - end[1]) / 6  # the cubic's middle reaches the peak
        return start, (start[0], control), (end[0], control), end
    # from a node's right side where nothing stands right of it, else from its bottom (into its top)
    start = (s.x + s.width / 2, s.y) if _rightmost(graph_plan, src) else start
    end = (d.x + d.width / 2, d.y) if _rightmost(graph_plan, dst) else end
    control = (8 * (max(r[2] for r in between) + clearance) - start[0] - end[0]) / 6
    return start, (control, start[1]), (control, end[1]), end


def _rightmost(graph_plan: Layout, node: str) -> bool:
    rank, x = graph_plan.depth[node], graph_plan.boxes[node].x
    return all(b.x <= x for n, b in graph_plan.boxes.items() if graph_plan.depth[n] == rank)


def _at(points: tuple[Point, ...], t: float) -> Point:
    if len(points) == 2:
        return tuple(a + t * (b - a) for a, b in zip(*points))  # type: ignore[return-value]
    weights = ((1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t ** 3)
    return tuple(sum(w * p[i] for w, p in zip(weights, points)) for i in (0, 1))  # type: ignore[return-value]


LABEL_PLACES = tuple(sorted((i / 20 for i in range(3, 18)), key=lambda t: abs(t - 0.5)))
"""Where along its edge a label may sit, the middle first."""
CROSSING_PENALTY = 40.0
"""What covering a point of another edge costs, in square pixels of covered label."""


def _overlap(a: Rect, b: Rect) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_label(points: tuple[Point, ...], text: str, taken: list[Rect], others: list[Point]) -> Rect:
    """The label's box at the first place along the edge that covers nothing already drawn
    (nodes, other labels) nor other edges (``others``: points along them), else at the place
    that covers least."""
    width = label_width(text)
    best: tuple[float, Rect] | None = None
    for t in LABEL_PLACES:
        x, y = _at(points, t)
        rect = (x - width / 2, y - 8, x + width / 2, y + 8)
        covered = sum(_overlap(rect, other) for other in taken) + CROSSING_PENALTY * sum(
            rect[0] <= px <= rect[2] and rect[1] <= py <= rect[3] for px, py in others)
        if best is None or covered < best[0]:
            best = (covered, rect)
        if covered == 0:
            break
    taken.append(best[1])
    return best[1]


def _f(value: float) -> str:
    return f"{value:.1f}"


def _arrowhead(points: tuple[Point, ...]) -> str:
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    corners = [(x1, y1), (x1 - 8 * ux - 4 * uy, y1 - 8 * uy + 4 * ux), (x1 - 8 * ux + 4 * uy, y1 - 8 * uy - 4 * ux)]
    return f'<polygon points="{" ".join(f"{_f(x)},{_f(y)}" for x, y in corners)}"/>'


@dataclass(frozen=True)
class Drawing:
    """A graph's SVG elements and the box they occupy."""

    elements: list[str]
    bounds: Rect

    @property
    def width(self) -> float:
        return self.bounds[2] - self.bounds[0]

    @property
    def height(self) -> float:
        return self.bounds[3] - self.bounds[1]


def draw(graph: ArchitectureGraph) -> Drawing:
    plan = layout(graph)
    taken = [_rect(box) for box in plan.boxes.values()]
    extent = list(taken)
    routes, repeats = [], Counter()
    for edge in graph.edges:
        routes.append(edge_points(plan, edge.src, edge.dst, repeats[edge.src, edge.dst]))
        repeats[edge.src, edge.dst] += 1
    samples = [[_at(points, i / 32) for i in range(1, 32)] for points in routes]
    paths, heads, labels = [], [], []
    for i, (edge, points) in enumerate(zip(graph.edges, routes)):
        coords = [f"{_f(x)},{_f(y)}" for x, y in points]
        paths.append(f'<path d="M{coords[0]} {"L" if len(points) == 2 else "C"}{" ".join(coords[1:])}"/>')
        heads.append(_arrowhead(points))
        extent += [(x, y, x, y) for x, y in (points[0], *samples[i], points[-1])]
        if edge.label:
            others = [point for j, along in enumerate(samples) if j != i for point in along]
            left, top, right, bottom = place_label(points, edge.label, taken, others)
            labels.append(f'<text x="{_f((left + right) / 2)}" y="{_f((top + bottom) / 2)}" dy="0.35em">'
                          f'{escape(edge.label)}</text>')
    extent += taken
    nodes = [f'<g class="node {node.kind}"><rect x="{_f(box.x - box.width / 2)}" y="{_f(box.y - NODE_HEIGHT / 2)}" '
             f'width="{_f(box.width)}" height="{_f(NODE_HEIGHT)}" rx="4" fill="{FILL[node.kind]}" stroke="#333"/>'
             f'<text x="{_f(box.x)}" y="{_f(box.y)}" dy="0.35em">{escape(node.label)}</text></g>'
             for node, box in ((node, plan.boxes[node.id]) for node in graph.nodes)]
    bounds = (min(r[0] for r in extent) - MARGIN, min(r[1] for r in extent) - MARGIN,
              max(r[2] for r in extent) + MARGIN, max(r[3] for r in extent) + MARGIN)
    return Drawing(['<g fill="none" stroke="#666" stroke-width="1.2">', *paths, "</g>", '<g fill="#666">', *heads,
                    "</g>", '<g font-size="11" fill="#222" stroke="#fff" stroke-width="3" paint-order="stroke">',
                    *labels, "</g>", *nodes], bounds)


def graph_svg(graph: ArchitectureGraph, xmlns: bool = True, at: Point | None = None) -> str:
    """One graph as an SVG element; ``xmlns=False`` for SVG inlined in HTML, which needs no
    namespace (and so the page names no URL at all); ``at``, its place inside another SVG."""
    drawing = draw(graph)
    left, top, _, _ = drawing.bounds
    namespace = ' xmlns="http://www.w3.org/2000/svg"' if xmlns else ""
    place = "" if at is None else f' x="{_f(at[0])}" y="{_f(at[1])}"'
    return "\n".join([
        f'<svg{namespace}{place} class="architecture" data-group="{escape(graph.group)}" width="{_f(drawing.width)}" '
        f'height="{_f(drawing.height)}" viewBox="{_f(left)} {_f(top)} {_f(drawing.width)} {_f(drawing.height)}" '
        f'font-family="sans-serif" font-size="12" text-anchor="middle" role="img" '
        f'aria-label="{escape(group_title(graph.group))}">', *drawing.elements, "</svg>"])


def group_title(group: str) -> str:
    return GROUP_TITLES.get(group, group)


def architecture_svg(graphs: tuple[ArchitectureGraph, ...], title: str) -> str:
    """A run's graphs in one standalone SVG file: a title, then each graph under its own."""
    parts, y, width = [], 28.0, text_width(title) + 2 * MARGIN
    for graph in graphs:
        drawing = draw(graph)
        parts.append(f'<text x="{_f(MARGIN)}" y="{_f(y + 16)}" font-size="13" font-weight="bold">'
                     f'{escape(group_title(graph.group))}</text>')
        parts.append(graph_svg(graph, xmlns=False, at=(0, y + 22)))
        y += 22 + drawing.height + 8
        width = max(width, drawing.width)
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(y)}" viewBox="0 0 {_f(width)} '
        f'{_f(y)}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>',
        f'<text x="{_f(MARGIN)}" y="18" font-size="14">{escape(title)}</text>', *parts, "</svg>"]) + "\n"


def run_space(space: str, protocol_json: str) -> SearchSpace:
    """The space a run searched, laid out by the run's stored protocol where the space has a
    layout section of its own."""
    cls = space_class(space)
    if cls.protocol_section is None:
        return cls()
    raw = json.loads(protocol_json).get(cls.protocol_section)
    return cls(parse_settings(cls.layout_class, raw, "the run's stored protocol", cls.protocol_section))


def run_graphs(run: dict) -> tuple[ArchitectureGraph, ...]:
    """The graphs of a run's found architecture, read from its stored genotype."""
    space = run_space(run["space"], run["protocol_json"])
    return space.graph(space.from_dict(json.loads(run["genotype_json"]), where=f"run {run['id']}'s genotype"))


def run_label(row: Mapping[str, Any]) -> str:
    """A run's (or a summary row's) name: its method and its variant's short label where the
    report gives one (the ``label`` column), else its variant as stored."""
    short = row.get("label")
    return label(row["method"], short if isinstance(short, str) else row["variant"])


def run_title(run: dict) -> str:
    return f"{run_label(run)}, {run['space']} space, seed {run['seed']}, protocol {run['protocol']}"


SLUG_LENGTH = 40


def drawing_names(runs: pd.DataFrame) -> dict[int, str]:
    """Each run's file name, ``<method>[-<variant slug>]-seed<k>-<protocol>.svg`` (a slug of over
    :data:`SLUG_LENGTH` characters cut, with a hash of the variant); where two runs
    would share one (the same protocol name with another hash or data), ``-run<id>`` is added."""
    names = {}
    for run in runs.to_dict("records"):
        short = run.get("label")
        slug = re.sub(r"[^a-z0-9.]+", "-", (short if isinstance(short, str) and short else run["variant"]).lower())
        slug = slug.strip("-")
        if len(slug) > SLUG_LENGTH:  # a constraint's variant names its table: keep it short, and distinct
            slug = f"{slug[:SLUG_LENGTH - 8].rstrip('-')}-{hashlib.sha256(run['variant'].encode()).hexdigest()[:7]}"
        names[run["id"]] = "-".join(p for p in (run["method"], slug, f"seed{run['seed']}", run["protocol"]) if p)
    counts = Counter(names.values())
    return {run_id: f"{name}-run{run_id}.svg" if counts[name] > 1 else f"{name}.svg" for run_id, name in names.items()}


DRAWINGS_INTRO = (
    "Each finished run's found architecture, drawn from its stored genotype: cells as in DARTS' figures (the "
    "inputs, the intermediate nodes, each edge labelled with its operation, the output concatenating the "
    "nodes), layer-wise and macro networks as their chain of layers with the skip connections as arcs. "
    "One SVG per run under `architectures/`.")


def write_drawings(out_dir: Path, runs: pd.DataFrame) -> tuple[list[Path], str]:
    """``out_dir/architectures/<name>.svg`` per finished run, and the Markdown section linking
    them: per results section, a row per method and variant with a link per seed. A run of a
    space without a drawing is listed as such."""
    if runs.empty:
        return [], ""
    folder = out_dir / "architectures"
    folder.mkdir(parents=True, exist_ok=True)
    names, paths, rows = drawing_names(runs), [], {}
    for run in runs.sort_values("seed", kind="stable").to_dict("records"):
        row = rows.setdefault((*(run[k] for k in SECTION_KEYS), run["method"], run["variant"]),
                              [run_label(run), run["space"], []])
        try:
            graphs = run_graphs(run)
        except NasbenchError as err:
            row[2].append(f"{run['seed']} ({err})")
            continue
        paths.append(folder / names[run["id"]])
        paths[-1].write_text(architecture_svg(graphs, run_title(run)))
        row[2].append(f"[{run['seed']}](architectures/{names[run['id']]})")
    lines = ["", "## Found architectures", "", DRAWINGS_INTRO]
    for section in dict.fromkeys(key[:3] for key in rows):
        table = pd.DataFrame([(name, space, ", ".join(seeds)) for key, (name, space, seeds) in rows.items()
                              if key[:3] == section], columns=["Method", "Space", "Seeds"])
        lines += ["", f"### {section_title(*section)}", "", table.to_markdown(index=False, disable_numparse=True)]
    return paths, "\n".join(lines) + "\n"
