"""The report's web site, read as files (the browser test drives it): self-contained pages,
the store's numbers in sortable tables and in the charts' data, a page per method with each
seed's drawings, curves and provenance, and the same bytes for the same store."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from nasbench.report import generate
from nasbench.report.site import write_site
from nasbench.report.site.page import data_blob
from nasbench.store import RunKey, RunOutcome, RunStart, Store
from nasbench.types import Provenance, Trial

DARTS_V2 = {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
                       ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
            "normal_concat": [2, 3, 4, 5],
            "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
                       ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
            "reduce_concat": [2, 3, 4, 5]}
OPERATIONS = ["max_pool_3x3", "skip_connect", "sep_conv_3x3"]
HOSTILE = "</script><script>alert(1)</script><!--"


def weights(skip: float) -> dict:
    """Every edge of both cells putting ``skip`` on skip_connect, the rest on the other two."""
    row = [(1 - skip) / 2, skip, (1 - skip) / 2]
    return {"normal": [row] * 14, "reduce": [row] * 14}


def add(store: Store, method: str, seed: int, test_acc: float, details: dict | None = None, variant: str = "",
        trials: tuple[float, ...] = (), device: str = "cpu x") -> None:
    provenance = Provenance(protocol="p", protocol_json=json.dumps({"name": "p"}), device=device,
                            device_fingerprint="cpu-x", software={"torch": "t"}, git_commit="abc123")
    run_id = store.start(RunStart(key=RunKey(method, seed, "h" * 12, "d", variant), strategy_class="GO",
                                  space="cell", provenance=provenance))
    for index, accuracy in enumerate(trials):
        store.add_trial(run_id, Trial(index, {}, accuracy, 10.0))
    store.finish(run_id, RunOutcome(search_seconds=3600.0 * (seed + 1), eval_seconds=60.0, genotype=DARTS_V2,
                                    val_acc=0.5, test_acc=test_acc, params=1_000_000 * (seed + 1), flops=2_000_000,
                                    details=details or {}))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("site") / "s.sqlite"
    epochs = [{"epoch": e, "supernet_val_acc": 0.2 * e, "skip_share": {"normal": 0.25 * e, "reduce": 0.0},
               "weights": weights(0.2 * e)} for e in (1, 2)]
    with Store(path) as store:
        add(store, "random", 0, 0.60, trials=(0.3, 0.5))
        add(store, "random", 1, 0.70, trials=(0.4, 0.2))
        add(store, "random-arch", 0, 0.55)
        add(store, "darts", 0, 0.65, details={"operations": OPERATIONS, "epochs": epochs})
        add(store, "enas", 0, 0.50, details={"controller_epochs": [
            {"epoch": 1, "rewards": [0.1, 0.2], "entropies": [3.0, 2.5]}]}, device=HOSTILE)
    out = path.parent / "out"
    paths = generate(path, out)
    return path, out, paths


def read(out, name: str = "index.html") -> str:
    return (out / "site" / name).read_text()


def test_generate_writes_the_index_and_a_page_per_method(site):
    _, out, paths = site
    pages = [p for p in paths if p.suffix == ".html"]
    assert pages == [out / "site" / "index.html"] + [out / "site" / "methods" / f"{m}.html"
                                                     for m in ("random", "random-arch", "darts", "enas")]
    index = read(out)
    for method in ("random", "random-arch", "darts", "enas"):
        assert f'<a href="methods/{method}.html">' in index


def test_pages_are_self_contained(site):
    _, out, paths = site
    for page in (p for p in paths if p.suffix == ".html"):
        html = page.read_text()
        assert "http:" not in html and "https:" not in html and "//" not in re.sub(r"<script>.*?</script>", "", html,
                                                                                   flags=re.S)
        assert re.search(r"\s(src|href)=\"(?!(\.\./)?index\.html|methods/|#|data:|[a-z0-9-]+\.html)", html) is None
        assert re.search(r"<[^>]+\son[a-z]+=", html) is None  # no inline event handlers
        assert "Content-Security-Policy" in html and "default-src 'none'" in html
        assert "<style>" in html and "function sortTable" in html  # the assets, inlined


def embedded(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="site-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in blob
    return json.loads(blob)


def test_the_data_blob_cannot_close_its_script(site):
    assert "</" not in data_blob({"a": HOSTILE}) and json.loads(data_blob({"a": HOSTILE})) == {"a": HOSTILE}
    assert json.loads(data_blob({"x": float("nan")})) == {"x": None}
    _, out, _ = site
    enas = read(out, "methods/enas.html")
    assert HOSTILE not in enas and "&lt;/script&gt;&lt;script&gt;alert(1)" in enas  # the device name, escaped


def test_tables_carry_the_store_numbers_to_sort_by(site):
    _, out, _ = site
    index = read(out)
    table = index.split('id="results-0"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    methods = [re.search(r'<a href="methods/[^"]+">([^<]*)</a>', r).group(1) for r in rows]
    assert methods == ["random", "random-arch", "darts", "enas"]
    errors = {m: [float(v) for v in re.findall(r'data-sort="([-\d.e]+)">[\d.]+ ± ', r)][0] for m, r in zip(methods, rows)}
    assert errors == pytest.approx({"random": 35.0, "random-arch": 45.0, "darts": 35.0, "enas": 50.0})
    assert 'class="filter" data-table="results-0"' in index


def test_charts_get_one_point_per_run_and_every_cost(site):
    _, out, _ = site
    data = embedded(read(out))
    assert data["methods"] == ["random", "random-arch", "darts", "enas"]
    (section,) = data["sections"]
    assert [m["key"] for m in section["metrics"]] == ["params_m", "flops_m", "search_hours"]
    points = {(p["method"], p["seed"]): p for p in section["points"]}
    assert len(points) == 5
    assert points["random", 1]["test_error"] == pytest.approx(30.0)
    assert points["random", 1]["params_m"] == pytest.approx(2.0) and points["random", 1]["search_hours"] == pytest.approx(2.0)
    assert read(out).count('<figure class="chart"') == 3


def test_method_pages_draw_each_seed_with_its_curves_and_provenance(site):
    _, out, _ = site
    random = read(out, "methods/random.html")
    assert random.count('<section class="seed"') == 2
    assert random.count('<svg class="architecture" data-group="normal"') == 2
    assert random.count('data-group="reduce"') == 2 and "xmlns" not in random
    assert random.count("<figcaption>Lowest search-validation error so far</figcaption>") == 2
    darts = read(out, "methods/darts.html")
    for curve in ("Skip share of the derived architecture", "Supernet search-validation error",
                  "Architecture weights, normal cell (mean over its positions)", "Architecture weights, reduction cell"):
        assert curve in darts
    assert "Controller reward (mean per update)" in read(out, "methods/enas.html")
    assert "<code>abc123</code>" in darts and "hash <code>hhhhhhhhhhhh</code>" in darts and "torch t" in darts


def test_the_same_store_gives_the_same_bytes(site, tmp_path):
    path, out, paths = site
    again = generate(path, tmp_path)
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(out) for p in paths]
    for first, second in zip(paths, again):
        if first.suffix in (".html", ".svg"):
            assert first.read_bytes() == second.read_bytes(), first.name


def test_optional_summary_columns_and_stale_pages(site, tmp_path):
    _, out, _ = site
    from nasbench.report import load_runs, summarise

    runs = load_runs(site[0])
    summary = summarise(runs)
    plain = tmp_path / "plain"
    write_site(plain, runs, summary.drop(columns=[c for c in ("test_error_ci_low", "test_error_ci_high",
                                                              "distinguishable", "published_data") if c in summary]),
               pd.DataFrame(), {})
    assert "95% CI" not in (plain / "index.html").read_text()
    (plain / "methods" / "gone.html").write_text("a method no longer in the store")
    extra = summary.assign(test_error_ci_low=1.5, test_error_ci_high=2.5, distinguishable=True)
    write_site(plain, runs, extra, pd.DataFrame(), {})
    index = (plain / "index.html").read_text()
    assert "95% CI" in index and "1.50 – 2.50" in index and ">yes<" in index
    assert not (plain / "methods" / "gone.html").exists()
