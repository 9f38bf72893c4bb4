"""What every page of the site shares: the HTML shell with the stylesheet and script inlined
(so a page opened from disk needs nothing else, and its content security policy forbids
fetching anything), the page's data as an escaped JSON blob, and sortable tables."""
from __future__ import annotations

import json
import math
from html import escape
from importlib import resources
from typing import Any, Iterable, Sequence

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
"""Nothing but the page's own inline styles, scripts and data: images may load."""


def asset(name: str) -> str:
    """A static file shipped with the package (site.js, site.css)."""
    return resources.files("nasbench.report.site").joinpath(name).read_text()


def plain(value: Any) -> Any:
    """``value`` as JSON holds it: NaN and missing numbers as null, numpy scalars as Python's."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def data_blob(data: Any) -> str:
    """``data`` as JSON safe inside a <script> element: no ``<``, ``>`` or ``&`` survives
    unescaped, so no string in it can close the element or open a comment."""
    text = json.dumps(plain(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, body: str, data: Any, root: str = "") -> str:
    """A whole page; ``root`` leads from it back to the site's folder (``../`` for a method page)."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{asset('site.css')}</style>",
        "</head>",
        "<body>",
        f'<header><a class="home" href="{root}index.html">nasbench results</a></header>',
        f"<main>\n<h1>{escape(title)}</h1>\n{body}\n</main>",
        f'<script type="application/json" id="site-data">{data_blob(data)}</script>',
        f"<script>\n{asset('site.js')}</script>",
        "</body>",
        "</html>",
    ]) + "\n"


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: Any, digits: int = 2) -> str:
    return "–" if missing(value) else f"{value:.{digits}f}"


class Cell:
    """A table cell: its text (already HTML, as links are) and the value it sorts by."""

    def __init__(self, html: str, sort: Any = None):
        self.html = html
        self.sort = sort

    def render(self) -> str:
        if missing(self.sort):
            return f"<td>{self.html}</td>"
        key = repr(float(self.sort)) if isinstance(self.sort, (int, float)) else escape(str(self.sort))
        return f'<td data-sort="{key}">{self.html}</td>'


def text(value: Any) -> Cell:
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return Cell("–" if missing(value) else escape(str(value)), None if missing(value) else str(value))


def num(value: Any, digits: int = 2) -> Cell:
    return Cell(number(value, digits), None if missing(value) else float(value))


def table(table_id: str, headers: Sequence[str | tuple[str, str]], rows: Iterable[Sequence[Cell]],
          filtered: bool = True) -> str:
    """A sortable table (a button per header; a header given as (text, title) explains itself
    when hovered), with a filter box above it where ``filtered``."""
    head = "".join(map(_header, headers))
    body = "\n".join("<tr>" + "".join(c.render() for c in row) + "</tr>" for row in rows)
    tools = (f'<div class="table-tools"><input type="search" class="filter" data-table="{table_id}" '
             f'placeholder="Filter rows" aria-label="Filter the rows of this table"></div>\n') if filtered else ""
    return (f'{tools}<div class="scroll"><table class="sortable" id="{table_id}">'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>")


WIDE_HEADER = 18
"""Headers longer than this (in characters) get a wider column."""


def _header(header: str | tuple[str, str]) -> str:
    name, title = header if isinstance(header, tuple) else (header, "")
    explained = f' title="{escape(title)}"' if title else ""
    wide = ' class="wide"' if len(name) > WIDE_HEADER else ""  # wraps into a few lines, not one word a line
    return f'<th scope="col"{wide}{explained}><button type="button">{escape(name)}</button></th>'


def definition_list(items: Iterable[tuple[str, str]]) -> str:
    """Name-value pairs (values already HTML)."""
    return '<dl class="facts">' + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"
