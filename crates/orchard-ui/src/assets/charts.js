// Metric charts (uPlot draws them; the server reduces each series to the chart's width, keeping every spike).
// A chart is fetched and drawn when it scrolls into view; the page's settings (x axis, log scale, smoothing) live
// in its URL; dragging over a chart zooms and asks the server again for the visible range at full detail, and a
// double click zooms out. Every user string reaches the page as text (uPlot writes labels with textContent).
"use strict";

(function charts() {
  const figures = Array.from(document.querySelectorAll("figure.chart"));
  if (!figures.length || typeof uPlot === "undefined") return;
  const COLORS = ["#2f7d4f", "#d9822b", "#3d6fd1", "#b8336a", "#7a5cc7", "#2a9d8f", "#c44536", "#8a6d3b", "#5c7080", "#e0a800"];
  const form = document.querySelector("form.chart-controls");

  function settings() {
    const p = new URLSearchParams(location.search);
    return {
      axis: ["step", "time", "relative"].includes(p.get("x")) ? p.get("x") : "step",
      log: p.get("log") === "1",
      smooth: Math.min(Math.max(parseFloat(p.get("smooth")) || 0, 0), 0.99),
    };
  }

  // An exponential moving average, corrected for its start (as TensorBoard smooths).
  function smooth(ys, weight) {
    if (!weight) return ys;
    let last = 0, n = 0;
    return ys.map((y) => {
      if (y === null) return null;
      n += 1;
      last = last * weight + (1 - weight) * y;
      return last / (1 - Math.pow(weight, n));
    });
  }

  async function fetchSeries(fig, view, range) {
    const q = new URLSearchParams();
    fig.dataset.runs.split(" ").filter(Boolean).forEach((r) => q.append("run", r));
    q.set("key", fig.dataset.key);
    q.set("x", view.axis);
    q.set("width", String(Math.max(fig.querySelector(".plot").clientWidth, 16)));
    if (range) { q.set("from", String(range[0])); q.set("to", String(range[1])); }
    const res = await fetch("/charts/series?" + q.toString(), { headers: { Accept: "application/json" } });
    const body = await res.json();
    if (!res.ok) throw new Error(body.message || res.statusText);
    return body.series;
  }

  // Server x (steps, or milliseconds) to the chart's x (steps, or seconds for both time axes).
  const toChartX = (view, x) => (view.axis === "step" ? x : x / 1000);
  const toServerX = (view, x) => (view.axis === "step" ? x : x * 1000);

  // uPlot.join keeps one value per x and series; a run may log several values at one step (MLflow's log_metric
  // without a step logs them all at 0). Repeated x are moved apart by a hair, so that each value, and each
  // spike the server kept, is still drawn.
  function distinct(xs) {
    const out = xs.slice();
    for (let i = 1; i < out.length; i++) {
      if (out[i] <= out[i - 1]) out[i] = out[i - 1] + Math.max(Math.abs(out[i - 1]) * 1e-12, 1e-9);
    }
    return out;
  }

  function chartData(series, view) {
    const tables = series.map((s) => {
      const ys = smooth(s.y, view.smooth).map((y) => (view.log && !(y > 0) ? null : y));
      return [distinct(s.x.map((x) => toChartX(view, x))), ys];
    });
    return tables.length ? uPlot.join(tables) : [[]];
  }

  function fillTable(fig, series, labels) {
    const holder = fig.querySelector(".points .table");
    holder.replaceChildren();
    const LIMIT = 2000;
    series.forEach((s, i) => {
      const table = document.createElement("table");
      table.className = "data";
      const caption = table.createCaption();
      caption.textContent = (labels[i] || s.run_id) + " · " + s.x.length + " of " + s.total + " points";
      const body = table.createTBody();
      for (let j = 0; j < Math.min(s.x.length, LIMIT); j++) {
        const row = body.insertRow();
        row.insertCell().textContent = String(s.x[j]);
        row.insertCell().textContent = String(s.y[j]);
      }
      holder.appendChild(table);
    });
  }

  async function draw(fig, range) {
    const view = settings();
    const plot = fig.querySelector(".plot");
    const labels = JSON.parse(fig.dataset.labels || "[]");
    // Only the latest request of a chart is drawn: an answer that arrives after a newer request is dropped.
    const ticket = (fig._ticket = (fig._ticket || 0) + 1);
    let series;
    try {
      series = await fetchSeries(fig, view, range);
      if (ticket !== fig._ticket) return;
    } catch (e) {
      if (ticket !== fig._ticket) return;
      const err = document.createElement("div");
      err.className = "error";
      err.textContent = "Could not load the chart: " + e.message;
      plot.replaceChildren(err);
      return;
    }
    fillTable(fig, series, labels);
    fig.dataset.points = String(series.reduce((n, s) => n + s.x.length, 0));
    const data = chartData(series, view);
    if (fig._plot && range) {
      fig._plot.setData(data, false);
      return;
    }
    if (fig._plot) fig._plot.destroy();
    plot.replaceChildren();
    const opts = {
      width: Math.max(plot.clientWidth, 200),
      height: 220,
      scales: { x: { time: view.axis === "time" }, y: { distr: view.log ? 3 : 1 } },
      axes: [{ label: { step: "step", time: "", relative: "seconds" }[view.axis] }, {}],
      series: [{ label: view.axis }].concat(series.map((s, i) => ({
        label: labels[i] || s.run_id,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        spanGaps: true,
      }))),
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 2) return;
          const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          draw(fig, [toServerX(view, lo), toServerX(view, hi)]);
        }],
      },
    };
    fig._plot = new uPlot(opts, data, plot);
    plot.ondblclick = () => draw(fig, null);
  }

  function redrawAll() {
    figures.forEach((fig) => {
      if (fig._plot) { fig._plot.destroy(); fig._plot = null; }
      if (fig.dataset.visible === "1") draw(fig, null);
    });
  }

  const seen = new IntersectionObserver((entries) => {
    entries.forEach((entry) => {
      if (!entry.isIntersecting || entry.target.dataset.visible === "1") return;
      entry.target.dataset.visible = "1";
      draw(entry.target, null);
    });
  }, { rootMargin: "200px" });
  figures.forEach((fig) => seen.observe(fig));

  // A setting applies as it changes (`input`, e.g. while the smoothing slider moves; some changes only report
  // `change`): both come here, and a burst of them redraws once.
  let pending = null;
  function applySettings() {
    clearTimeout(pending);
    pending = setTimeout(applyNow, 30);
  }
  if (form) {
    form.addEventListener("input", applySettings);
    form.addEventListener("change", applySettings);
  }
  function applyNow() {
    const p = new URLSearchParams(location.search);
    const data = new FormData(form);
    p.set("x", data.get("x"));
    if (data.get("log")) p.set("log", "1"); else p.delete("log");
    if (parseFloat(data.get("smooth"))) p.set("smooth", data.get("smooth")); else p.delete("smooth");
    history.replaceState(null, "", location.pathname + "?" + p.toString());
    redrawAll();
  }
})();
