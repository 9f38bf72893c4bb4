"""The report as a static web site: ``index.html`` (comparison tables per results section,
sortable and filterable, and test error against every cost with the Pareto front; the language
models' perplexity in tables of their own) and a page per method under ``methods/`` (each seed's
found architecture drawn, its search curves and its provenance).

Every page is one self-contained file: its stylesheet and script (``site.css``, ``site.js``,
shipped with the package) and its data are inlined, and its content security policy forbids
fetching anything, so the site opens from disk with no server and no network. Nothing in a
page depends on the time it was written: an unchanged store gives the same bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from nasbench.report.site.index import index_page, method_file
from nasbench.report.site.methods import method_page
from nasbench.report.site.page import page


def write_site(site_dir: Path, runs: pd.DataFrame, summary: pd.DataFrame, cost_tables: pd.DataFrame,
               histories: Mapping[str, pd.DataFrame], language: pd.DataFrame | None = None) -> list[Path]:
    """Write the site into ``site_dir`` from the report's frames (``summary``: the image runs',
    ``language``: the language models'; ``histories``: the ``anytime``, ``supernet`` and
    ``controller`` ones); the paths written, index.html first. Method pages of methods no
    longer in the store are removed."""
    language = pd.DataFrame() if language is None else language
    (site_dir / "methods").mkdir(parents=True, exist_ok=True)
    body, data = index_page(runs, summary, cost_tables, language)
    paths = [site_dir / "index.html"]
    paths[0].write_text(page("nasbench results", body, data))
    for method in data["methods"]:
        paths.append(site_dir / method_file(method))
        paths[-1].write_text(page(f"Method {method}", method_page(method, runs, summary, histories, language), {},
                                  root="../"))
    for stale in set((site_dir / "methods").glob("*.html")) - set(paths):
        stale.unlink()
    return paths
