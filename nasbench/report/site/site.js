// nasbench's report site: sortable and filterable tables, and the test error against cost
// charts drawn from the runs embedded in the page (#site-data). No library, no network.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("site-data").textContent);
  // matplotlib's ten colours, then ten darker ones: a method per colour up to twenty methods
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                   "#bcbd22", "#17becf", "#393b79", "#a55194", "#637939", "#843c39", "#8c6d31", "#3182bd",
                   "#e6550d", "#31a354", "#756bb1", "#636363"];

  function escapeHtml(value) {
    return String(value).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;" })[c]);
  }

  function short(value) {
    return String(Number(Number(value).toPrecision(4)));
  }

  // -- tables: a click on a header sorts by its column (again: the other way) ----------------
  function sortKey(cell) {
    const raw = cell ? cell.dataset.sort : undefined;
    if (raw === undefined || raw === "") return null;
    const value = Number(raw);
    return Number.isFinite(value) ? value : raw.toLowerCase();
  }

  function compareKeys(a, b) {
    if (typeof a !== typeof b) return typeof a === "number" ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function sortTable(table, column, header) {
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows, (row, index) => ({ row, index, key: sortKey(row.cells[column]) }));
    rows.sort((a, b) => {
      if (a.key === null || b.key === null) {  // empty cells last, either way
        return (a.key === null) - (b.key === null) || a.index - b.index;
      }
      const order = compareKeys(a.key, b.key);
      return (ascending ? order : -order) || a.index - b.index;
    });
    for (const { row } of rows) body.appendChild(row);
  }

  for (const table of document.querySelectorAll("table.sortable")) {
    Array.from(table.tHead.rows[0].cells).forEach((header, column) => {
      header.querySelector("button").addEventListener("click", () => sortTable(table, column, header));
    });
  }

  // -- filters: a row stays when it contains every word typed -------------------------------
  for (const input of document.querySelectorAll("input.filter")) {
    const table = document.getElementById(input.dataset.table);
    input.addEventListener("input", () => {
      const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (const row of table.tBodies[0].rows) {
        const text = row.textContent.toLowerCase();
        row.hidden = !words.every((word) => text.includes(word));
      }
    });
  }

  // -- charts -------------------------------------------------------------------------------
  const WIDTH = 460, HEIGHT = 300, LEFT = 56, RIGHT = 26, TOP = 12, BOTTOM = 44;

  function niceTicks(low, high, count) {
    if (high <= low) { low -= 0.5; high += 0.5; }
    const raw = (high - low) / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((s) => s * power).find((s) => s >= raw);
    const first = Math.floor(low / step) * step;
    const ticks = [];
    for (let value = first; value < high + step * 0.999; value += step) ticks.push(Number(value.toPrecision(12)));
    return ticks;
  }

  // 1, 2 and 5 times each power of ten in range; powers of ten only over more than three decades
  function logTicks(low, high) {
    const ticks = [];
    const multiples = Math.log10(high / low) > 3 ? [1] : [1, 2, 5];
    for (let e = Math.floor(Math.log10(low)); e <= Math.ceil(Math.log10(high)); e++) {
      for (const m of multiples) {
        const value = Number((m * Math.pow(10, e)).toPrecision(12));
        if (value >= low && value <= high) ticks.push(value);
      }
    }
    return ticks;
  }

  // the x axis: logarithmic where the costs span more than a factor of 30
  function xAxis(values) {
    const low = Math.min(...values), high = Math.max(...values);
    if (low > 0 && high / low > 30) {
      const from = Math.log10(low) - 0.05, to = Math.log10(high) + 0.05;
      return { ticks: logTicks(Math.pow(10, from), Math.pow(10, to)), log: true,
               scale: (v) => (Math.log10(v) - from) / (to - from) };
    }
    const ticks = niceTicks(low, high, 5);
    const from = ticks[0], to = ticks[ticks.length - 1];
    return { ticks, log: false, scale: (v) => (v - from) / (to - from) };
  }

  // the runs no other run beats on both the cost and the test error (lower is better for both)
  function paretoFront(points, key) {
    const sorted = points.slice().sort((a, b) => a[key] - b[key] || a.test_error - b.test_error);
    const front = [];
    for (const point of sorted) {
      if (!front.length || point.test_error < front[front.length - 1].test_error) front.push(point);
    }
    return front;
  }

  function drawChart(figure) {
    const section = data.sections[Number(figure.dataset.section)];
    const key = figure.dataset.metric;
    const metric = section.metrics.find((m) => m.key === key);
    const points = section.points.filter((p) => p[key] !== null && p[key] !== undefined && p.test_error !== null);
    const plot = figure.querySelector(".plot");
    if (!points.length) {
      plot.textContent = "No run has this cost.";
      return;
    }
    const x = xAxis(points.map((p) => p[key]));
    const yTicks = niceTicks(Math.min(...points.map((p) => p.test_error)), Math.max(...points.map((p) => p.test_error)), 5);
    const yLow = yTicks[0], yHigh = yTicks[yTicks.length - 1];
    const px = (v) => LEFT + x.scale(v) * (WIDTH - LEFT - RIGHT);
    const py = (v) => HEIGHT - BOTTOM - (v - yLow) / (yHigh - yLow) * (HEIGHT - TOP - BOTTOM);
    const colour = (p) => PALETTE[data.methods.indexOf(p.method) % PALETTE.length];
    const parts = [];
    for (const t of yTicks) {
      parts.push(`<line class="grid" x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${py(t)}" y2="${py(t)}"></line>`,
                 `<text x="${LEFT - 5}" y="${py(t) + 4}" text-anchor="end">${short(t)}</text>`);
    }
    for (const t of x.ticks) {
      parts.push(`<line class="grid" y1="${TOP}" y2="${HEIGHT - BOTTOM}" x1="${px(t)}" x2="${px(t)}"></line>`,
                 `<text x="${px(t)}" y="${HEIGHT - BOTTOM + 15}" text-anchor="middle">${short(t)}</text>`);
    }
    parts.push(`<line class="axis" x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${HEIGHT - BOTTOM}" y2="${HEIGHT - BOTTOM}"></line>`,
               `<line class="axis" x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${HEIGHT - BOTTOM}"></line>`,
               `<text x="${(LEFT + WIDTH - RIGHT) / 2}" y="${HEIGHT - 6}" text-anchor="middle">` +
                 `${escapeHtml(metric.label)}${x.log ? " (log scale)" : ""}</text>`,
               `<text transform="translate(14 ${(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">` +
                 "test error (%)</text>");
    const front = paretoFront(points, key).map((p) => `${px(p[key])},${py(p.test_error)}`).join(" ");
    parts.push(`<polyline class="front" points="${front}"></polyline>`);
    points.forEach((p, i) => {
      parts.push(`<circle class="point" data-index="${i}" cx="${px(p[key])}" cy="${py(p.test_error)}" r="5" ` +
                 `fill="${colour(p)}" tabindex="0" aria-label="${escapeHtml(p.label)}, seed ${p.seed}"></circle>`);
    });
    const methods = data.methods.filter((m) => points.some((p) => p.method === m));
    const legend = methods.map((m) => `<li><span class="swatch" style="background:${colour({ method: m })}"></span>` +
                                      `${escapeHtml(m)}</li>`).join("");
    plot.innerHTML = `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(figure.querySelector("figcaption").textContent)}">` +
                     parts.join("") + `</svg><ul class="legend">${legend}</ul>`;
    const tooltip = figure.querySelector(".tooltip");
    const show = (event) => {
      const circle = event.target.closest("circle.point");
      if (!circle) return;
      const p = points[Number(circle.dataset.index)];
      tooltip.innerHTML = `<strong>${escapeHtml(p.label)}</strong><br>${escapeHtml(p.space)} space, seed ${p.seed}<br>` +
                          `test error ${short(p.test_error)} %<br>${escapeHtml(metric.label)}: ${short(p[key])}`;
      const box = figure.getBoundingClientRect(), at = circle.getBoundingClientRect();
      tooltip.style.left = `${at.right - box.left + 6}px`;
      tooltip.style.top = `${at.top - box.top - 6}px`;
      tooltip.hidden = false;
    };
    const hide = () => { tooltip.hidden = true; };
    plot.addEventListener("pointerover", show);
    plot.addEventListener("focusin", show);
    plot.addEventListener("pointerout", hide);
    plot.addEventListener("focusout", hide);
  }

  document.querySelectorAll("figure.chart").forEach(drawChart);
})();
