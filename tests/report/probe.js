/* Test probe: tests/report/test_browser.py adds this to a copy of report.html, after the
 * report's own scripts, and reads what it writes into <pre id="probe-out"> from the DOM
 * headless Chromium dumps. It measures the layout, reads the charts' canvases, and
 * drives the page as a user would: hover, drag-zoom and double-click on a chart, sort,
 * filter and scroll the trade table. */
(async function () {
  "use strict";
  const out = { errors: window.__probeErrors, panels: {}, charts: {}, steps: {} };
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height];
  };
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0)); // uPlot commits later
  out.page = [document.documentElement.scrollWidth, document.documentElement.scrollHeight];
  document.querySelectorAll("section.panel").forEach((p) => { out.panels[p.id] = box(p); });

  const report = window.ml4tReport;
  for (const [name, u] of Object.entries(report.charts)) {
    const canvas = u.root.querySelector("canvas");
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) ink++;
    const legend = u.root.querySelector(".u-legend");
    out.charts[name] = {
      panel: u.root.closest("section").id,
      ink: ink / (canvas.width * canvas.height),
      root: box(u.root),
      plot: box(u.root.querySelector(".u-over")),
      legend: legend ? box(legend) : null,
      legendText: legend ? legend.textContent : "",
    };
  }

  // hover the middle of the equity chart: its legend and the drawdown's (synced) follow
  const mouse = (el, type, fx, fy) => {
    const r = el.getBoundingClientRect();
    // uPlot ignores a drag's mousemove that did not move (movementX/Y of 0)
    el.dispatchEvent(new MouseEvent(type, { bubbles: true, cancelable: true, button: 0,
      clientX: r.left + r.width * fx, clientY: r.top + r.height * fy, movementX: 1,
      movementY: 1 }));
  };
  const legendTime = (u) => u.root.querySelector(".u-legend .u-value").textContent;
  const equity = report.charts.equity, drawdown = report.charts.drawdown;
  const over = equity.root.querySelector(".u-over");
  mouse(over, "mouseenter", 0.5, 0.5);
  mouse(over, "mousemove", 0.5, 0.5);
  out.steps.hover = { index: equity.cursor.idx, equity: legendTime(equity),
    drawdown: legendTime(drawdown), values: equity.root.querySelector(".u-legend").textContent };

  // drag from a quarter to a half of the width: every time chart zooms to that span
  const full = [equity.scales.x.min, equity.scales.x.max];
  mouse(over, "mousedown", 0.25, 0.5);
  mouse(over, "mousemove", 0.5, 0.5);
  const r = over.getBoundingClientRect();
  document.dispatchEvent(new MouseEvent("mouseup", { bubbles: true, button: 0,
    clientX: r.left + r.width * 0.5, clientY: r.top + r.height * 0.5 }));
  const spans = () => Object.fromEntries(["equity", "drawdown", "exposure", "sharpe", "volatility"]
    .filter((k) => report.charts[k]).map((k) => [k, [report.charts[k].scales.x.min,
      report.charts[k].scales.x.max]]));
  await settle();
  out.steps.zoom = { full, spans: spans() };
  mouse(over, "dblclick", 0.5, 0.5);
  await settle();
  out.steps.reset = spans();
  mouse(over, "mouseleave", 0.5, 0.5);

  // the trade table
  const root = document.querySelector('.table[data-table="trades"]');
  const count = () => root.querySelector(".dt-bar span").textContent;
  const rows = () => Array.from(root.querySelectorAll("tbody tr:not(.dt-pad)"));
  const cells = (row) => Array.from(row.children).map((td) => td.textContent);
  const keys = Array.from(root.querySelectorAll("thead .dt-label")).map((l) => l.dataset.key);
  const column = (key) => rows().map((row) => cells(row)[keys.indexOf(key)]);
  const filter = (key, text) => {
    const input = root.querySelector('input.dt-filter[data-key="' + key + '"]');
    input.value = text;
    input.dispatchEvent(new Event("change"));
    return input;
  };
  const clear = () => root.querySelector(".dt-bar button").click();
  out.steps.table = { count: count(), rendered: rows().length, first: cells(rows()[0]), keys };
  const sort = (key) => root.querySelector('.dt-label[data-key="' + key + '"]').click();
  sort("pnl_net");
  out.steps.sortDesc = column("pnl_net").slice(0, 3);
  sort("pnl_net");
  out.steps.sortAsc = column("pnl_net").slice(0, 3);
  sort("trade_id");
  out.steps.sortIds = column("trade_id").slice(0, 12);
  filter("symbol", "s01");
  out.steps.symbol = { count: count(), symbols: Array.from(new Set(column("symbol"))) };
  filter("pnl_net", ">0");
  out.steps.symbolWinners = count();
  clear();
  filter("pnl_net", "-50..50");
  out.steps.range = { count: count(), values: column("pnl_net") };
  clear();
  filter("exit_timestamp", "2024-03");
  out.steps.month = { count: count(), values: Array.from(new Set(column("exit_timestamp")
    .map((t) => t.slice(0, 7)))) };
  filter("exit_timestamp", ">=2024-06-01");
  out.steps.after = count();
  clear();
  const bad = filter("pnl_net", ">abc");
  out.steps.bad = { count: count(), bad: bad.classList.contains("bad") };
  clear();
  // scroll to the end: the last trades are drawn, still only a window of rows
  const scroller = root.querySelector(".dt-scroll");
  scroller.scrollTop = scroller.scrollHeight;
  scroller.dispatchEvent(new Event("scroll"));
  await frame();
  await frame();
  out.steps.scrolled = { rendered: rows().length, last: column("trade_id").slice(-1)[0] };

  const pre = document.createElement("pre");
  pre.id = "probe-out";
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
})().catch((e) => {
  const pre = document.createElement("pre");
  pre.id = "probe-out";
  pre.textContent = JSON.stringify({ crashed: String(e && e.stack || e) });
  document.body.append(pre);
});
