/* ml4t report: draws the charts (uPlot) and the data tables from #report-data.
 *
 * The payload is built by ml4t.backtest.report._page: numbers already rounded, times
 * as epoch seconds (charts) or text in the run's day timezone (tables). Nothing here
 * fetches anything. */
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const TZ = DATA.tz;
  const COLOR = { blue: "#2b6cb0", red: "#d73027", green: "#1a9850", grey: "#718096",
    orange: "#dd6b20", purple: "#6b46c1" };

  // ------------------------------------------------------------------ formatting

  const numbers = {};
  function nf(digits, min) {
    const key = digits + ":" + min;
    if (!numbers[key]) {
      numbers[key] = new Intl.NumberFormat("en-US",
        { minimumFractionDigits: min === undefined ? digits : min, maximumFractionDigits: digits });
    }
    return numbers[key];
  }
  const missing = (v) => v === null || v === undefined || (typeof v === "number" && !isFinite(v));

  // kinds: money, price, qty, int, pct (already a percentage: 5.0 = 5 %), frac (a fraction
  // shown as %), x (a multiple), num, text, time
  function fmt(kind, v) {
    if (missing(v)) return "";
    switch (kind) {
      case "money": return nf(2).format(v);
      case "price": return nf(4).format(v);
      case "qty": return nf(4, 0).format(v);
      case "int": return nf(0).format(v);
      case "pct": return nf(2).format(v) + "%";
      case "frac": return nf(2).format(v * 100) + "%";
      case "x": return nf(2).format(v) + "x";
      case "num": return nf(3).format(v);
      default: return String(v);
    }
  }
  const NUMERIC = new Set(["money", "price", "qty", "int", "pct", "frac", "x", "num"]);

  // the fewest decimals that write x exactly (0.25 -> 2), at most 6
  function decimals(x) {
    for (let d = 0; d < 6; d++) {
      const k = Math.abs(x) * Math.pow(10, d);
      if (Math.abs(k - Math.round(k)) < 1e-6 * Math.max(1, k)) return d;
    }
    return 6;
  }

  // axis ticks: the decimals the tick step needs, with k/M/B for money
  function ticks(kind) {
    return (u, splits) => {
      const finite = splits.filter((v) => v !== null && isFinite(v));
      if (!finite.length) return splits.map(() => "");
      const step = finite.length > 1 ? Math.abs(finite[1] - finite[0]) : Math.abs(finite[0]) || 1;
      const scale = kind === "frac" ? 100 : 1;
      let div = 1, suffix = "";
      if (kind === "money") {
        const top = Math.max(...finite.map(Math.abs));
        if (top >= 1e9) { div = 1e9; suffix = "B"; }
        else if (top >= 1e6) { div = 1e6; suffix = "M"; }
        else if (top >= 1e4) { div = 1e3; suffix = "k"; }
      }
      const digits = decimals(step * scale / div);
      const tail = kind === "frac" || kind === "pct" ? "%" : kind === "x" ? "x" : suffix;
      return splits.map((v) => (v === null ? "" : Math.abs(v) < step * 1e-9 ? "0" :
        (v * scale / div).toFixed(digits) + tail));
    };
  }

  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
    "Nov", "Dec"];
  const two = (n) => (n < 10 ? "0" : "") + n;
  const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), TZ);
  const dateText = (ts) => {
    const d = tzDate(ts);
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes());
  };

  // time ticks in the run's timezone: years, months, days or hours by the tick step,
  // with the year (or the date) under the first tick of each
  function timeTicks(u, splits, axis, space, incr) {
    const DAY = 86400;
    let prev = null;
    return splits.map((ts) => {
      const d = tzDate(ts);
      const y = d.getFullYear(), m = d.getMonth(), day = d.getDate();
      const newYear = prev === null || prev.y !== y;
      let text;
      if (incr >= 365 * DAY) text = String(y);
      else if (incr >= 28 * DAY) text = MONTHS[m] + (newYear ? "\n" + y : "");
      else if (incr >= DAY) text = MONTHS[m] + " " + day + (newYear ? "\n" + y : "");
      else {
        text = two(d.getHours()) + ":" + two(d.getMinutes()) +
          (prev === null || prev.day !== day ? "\n" + y + "-" + two(m + 1) + "-" + two(day) : "");
      }
      prev = { y, day };
      return text;
    });
  }

  // legend values: the hovered point, or the last one when the cursor is off the chart
  function lastIndex(values) {
    for (let i = values.length - 1; i >= 0; i--) if (!missing(values[i])) return i;
    return null;
  }
  // asOf: a series with a point a day (the benchmark) shows its last point at or before
  // the hovered time
  const value = (kind, asOf) => (u, v, si, i) => {
    if (i === null || i === undefined) {
      const last = lastIndex(u.data[si]);
      v = last === null ? null : u.data[si][last];
    } else if (asOf && missing(v)) {
      let k = i;
      while (k > 0 && missing(u.data[si][k])) k--;
      v = u.data[si][k];
    }
    return missing(v) ? "–" : fmt(kind, v);
  };
  const timeValue = (u, v, si, i) => {
    const k = i === null || i === undefined ? lastIndex(u.data[0]) : i;
    return k === null ? "" : dateText(u.data[0][k]) + (i === null || i === undefined ? " (last)" : "");
  };

  // ------------------------------------------------------------------ charts

  const charts = {}; // by name, also window.ml4tReport.charts: for scripting from the console
  const timeCharts = [];
  let zooming = false;
  function shareZoom(u, key) {
    if (key !== "x" || zooming) return;
    zooming = true;
    const { min, max } = u.scales.x;
    for (const other of timeCharts) {
      if (other !== u && (other.scales.x.min !== min || other.scales.x.max !== max)) {
        other.setScale("x", { min, max });
      }
    }
    zooming = false;
  }

  function mount(name) {
    return document.querySelector('.plot[data-chart="' + name + '"]');
  }

  function fit(chart, el, height) {
    const resize = () => {
      const width = Math.max(200, Math.floor(el.clientWidth));
      if (width !== chart.width) chart.setSize({ width, height });
    };
    if (window.ResizeObserver) new ResizeObserver(resize).observe(el);
    else window.addEventListener("resize", resize);
  }

  function line(label, color, kind, extra) {
    return Object.assign({ label, stroke: color, width: 1.5, value: value(kind),
      points: { show: false } }, extra || {});
  }

  function timeChart(name, height, x, series, yKind) {
    const el = mount(name);
    if (!el || !x) return null;
    const opts = {
      width: Math.max(200, el.clientWidth), height,
      padding: [10, 16, 0, 0],
      tzDate,
      cursor: { sync: { key: "time" }, drag: { x: true, y: false } },
      scales: { x: { time: true } },
      legend: { live: true },
      series: [{ label: "time", value: timeValue }].concat(series.map((s) => s.opts)),
      axes: [
        { values: timeTicks, space: 80, grid: { stroke: "#edf2f7" },
          ticks: { stroke: "#cbd5e0" } },
        { values: ticks(yKind), size: 62, grid: { stroke: "#edf2f7" },
          ticks: { stroke: "#cbd5e0" } },
      ],
      hooks: { setScale: [shareZoom] },
    };
    const chart = new uPlot(opts, [x].concat(series.map((s) => s.values)), el);
    timeCharts.push(chart);
    charts[name] = chart;
    fit(chart, el, height);
    return chart;
  }

  function drawTimeline() {
    const tl = DATA.timeline;
    if (!tl) return;
    const equity = [{ opts: line("equity", COLOR.blue, "money", { width: 2 }),
      values: tl.equity }];
    if (tl.benchmark) {
      equity.push({ opts: line("benchmark", COLOR.grey, "money",
        { dash: [6, 4], spanGaps: true, value: value("money", true) }), values: tl.benchmark });
    }
    timeChart("equity", 300, tl.t, equity, "money");
    timeChart("drawdown", 170, tl.t, [{
      opts: line("drawdown", COLOR.red, "frac",
        { fill: "rgba(215,48,39,0.25)", fillTo: 0 }),
      values: tl.drawdown }], "frac");
    timeChart("exposure", 190, tl.t, [
      { opts: line("gross", COLOR.blue, "x"), values: tl.gross_leverage },
      { opts: line("net", COLOR.green, "x", { dash: [5, 3] }), values: tl.net_leverage },
    ], "x");
  }

  function drawRolling() {
    const r = DATA.rolling;
    if (!r) return;
    timeChart("sharpe", 190, r.t, [{
      opts: line("Sharpe ratio", COLOR.purple, "num"), values: r.sharpe }], "num");
    timeChart("volatility", 190, r.t, [{
      opts: line("volatility", COLOR.orange, "frac"), values: r.volatility }], "frac");
  }

  function drawHistogram() {
    const h = DATA.histogram;
    const el = mount("histogram");
    if (!h || !el) return;
    const edges = h.edges;
    const bars = uPlot.paths.bars({ size: [0.92, Infinity], align: 0 });
    const binText = (u, v, si, i) => (i === null || i === undefined ? "" :
      "[" + fmt("money", edges[i]) + ", " + fmt("money", edges[i + 1]) + ")");
    // a bin's count when hovered, else the series' total
    const count = (u, v, si, i) => {
      if (i === null || i === undefined) v = u.data[si].reduce((a, b) => a + (b || 0), 0);
      return missing(v) ? "–" : fmt("int", v) + " trades";
    };
    const height = 240;
    const chart = new uPlot({
      width: Math.max(200, el.clientWidth), height,
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: false, range: () => [edges[0], edges[edges.length - 1]] },
        y: { range: (u, lo, hi) => [0, Math.max(1, hi) * 1.08] } },
      legend: { live: true },
      series: [
        { label: "net P&L", value: binText },
        { label: "winners", stroke: COLOR.green, fill: "rgba(26,152,80,0.75)", paths: bars,
          points: { show: false }, value: count },
        { label: "losers", stroke: COLOR.red, fill: "rgba(215,48,39,0.75)", paths: bars,
          points: { show: false }, value: count },
      ],
      axes: [{ values: ticks("money"), grid: { show: false } },
        { values: ticks("int"), size: 48, grid: { stroke: "#edf2f7" } }],
    }, [h.centers, h.wins, h.losses], el);
    charts.histogram = chart;
    fit(chart, el, height);
  }

  function drawScatter() {
    const s = DATA.scatter;
    const el = mount("scatter");
    if (!s || !el) return;
    const dots = (color) => ({ show: true, size: 5, stroke: color, fill: color, width: 0 });
    const hovered = (kind) => (u, v, si, i) => (i === null || i === undefined || missing(v) ?
      "–" : fmt(kind, v));
    const trade = (u, v, si, i) => (i === null || i === undefined ? "" :
      s.trade[i] + " " + s.symbol[i] + " · net " + fmt("money", s.pnl[i]) +
      " · MAE " + fmt("pct", s.mae[i]));
    const height = 240;
    const chart = new uPlot({
      width: Math.max(200, el.clientWidth), height,
      mode: 1,
      cursor: { drag: { x: true, y: true, uni: 30 }, points: { size: 9 } },
      scales: { x: { time: false, range: (u, lo, hi) => [0, Math.max(hi, 0.01) * 1.05] },
        y: { range: (u, lo, hi) => [0, Math.max(hi, 0.01) * 1.05] } },
      legend: { live: true },
      series: [
        { label: "trade", value: trade },
        { label: "winners MFE", stroke: COLOR.green, paths: () => null,
          points: dots("rgba(26,152,80,0.55)"), value: hovered("pct") },
        { label: "losers MFE", stroke: COLOR.red, paths: () => null,
          points: dots("rgba(215,48,39,0.55)"), value: hovered("pct") },
      ],
      axes: [
        { values: ticks("pct"), label: "MAE, % of entry", labelSize: 18,
          grid: { stroke: "#edf2f7" } },
        { values: ticks("pct"), label: "MFE, % of entry", labelSize: 18, size: 52,
          grid: { stroke: "#edf2f7" } },
      ],
    }, [s.mae, s.winners, s.losers], el);
    charts.scatter = chart;
    fit(chart, el, height);
    if (s.step > 1) {
      const note = document.createElement("p");
      note.className = "note";
      note.textContent = "one trade in " + s.step + " shown";
      el.after(note);
    }
  }

  // ------------------------------------------------------------------ data tables

  const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
  const escapeHtml = (s) => s.replace(/[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  // a filter: >x, >=x, <x, <=x, =x, a..b on numbers (as shown) and on times (as text);
  // anything else is a case-insensitive substring of the shown text
  function predicate(column, values, text, expr) {
    expr = expr.trim();
    if (!expr) return null;
    const numeric = NUMERIC.has(column.kind);
    const parse = (s) => {
      s = s.trim().replace(/[,%x]/g, "");
      if (!numeric) return s;
      const n = Number(s);
      return s !== "" && isFinite(n) ? n : undefined;
    };
    const ordered = numeric || column.kind === "time";
    const cmp = /^(>=|<=|>|<|=)\s*(.+)$/.exec(expr);
    const range = /^(.+?)\s*\.\.\s*(.+)$/.exec(expr);
    if (ordered && cmp) {
      const x = parse(cmp[2]);
      if (x === undefined) return "bad";
      const op = cmp[1];
      return (i) => {
        const v = values[i];
        if (missing(v)) return false;
        return op === ">" ? v > x : op === "<" ? v < x : op === ">=" ? v >= x :
          op === "<=" ? v <= x : numeric ? v === x : String(v).startsWith(x);
      };
    }
    if (ordered && range) {
      const a = parse(range[1]), b = parse(range[2]);
      if (a === undefined || b === undefined) return "bad";
      return (i) => {
        const v = values[i];
        return !missing(v) && v >= a && (numeric ? v <= b : v <= b || String(v).startsWith(b));
      };
    }
    const needle = expr.toLowerCase();
    return (i) => text(i).toLowerCase().includes(needle);
  }

  function dataTable(el, spec, opts) {
    const cols = spec.columns, n = spec.rows, D = spec.data;
    const order = Array.from({ length: n }, (_, i) => i);
    let view = order.slice();
    let sortKey = null, sortDesc = false;
    let rowHeight = 24;
    const filters = new Map();
    const barMax = {};
    for (const c of cols) {
      if (c.key === opts.bar) {
        barMax[c.key] = D[c.key].reduce((m, v) => Math.max(m, Math.abs(v || 0)), 1e-12);
      }
    }
    const text = (c) => (i) => fmt(c.kind, D[c.key][i]);

    el.innerHTML = "";
    const bar = document.createElement("div");
    bar.className = "dt-bar";
    const count = document.createElement("span");
    const clear = document.createElement("button");
    clear.type = "button";
    clear.textContent = "clear filters";
    bar.append(count, clear);
    const scroller = document.createElement("div");
    scroller.className = "dt-scroll";
    scroller.style.maxHeight = opts.height + "px";
    const table = document.createElement("table");
    const head = document.createElement("thead");
    const body = document.createElement("tbody");
    const headRow = document.createElement("tr");
    const labels = [];
    const inputs = [];
    cols.forEach((c) => {
      const th = document.createElement("th");
      if (NUMERIC.has(c.kind)) th.className = "num";
      const label = document.createElement("div");
      label.className = "dt-label";
      label.dataset.key = c.key;
      label.title = "sort by " + c.label;
      label.innerHTML = escapeHtml(c.label) + ' <span class="arrow"></span>';
      label.addEventListener("click", () => {
        sortDesc = sortKey === c.key ? !sortDesc : NUMERIC.has(c.kind);
        sortKey = c.key;
        sort();
        apply();
      });
      const input = document.createElement("input");
      input.className = "dt-filter";
      input.dataset.key = c.key;
      input.placeholder = NUMERIC.has(c.kind) ? ">0, a..b" : c.kind === "time" ? "2024-03" : "filter";
      let timer = null;
      input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => update(c, input), 120);
      });
      input.addEventListener("change", () => update(c, input));
      th.append(label, input);
      headRow.append(th);
      labels.push(label);
      inputs.push(input);
    });
    head.append(headRow);
    table.append(head, body);
    scroller.append(table);
    el.append(bar, scroller);

    // a column's filter, applied when its text changed (typing, then leaving the box,
    // filters once and keeps the scroll position)
    const applied = new Map();
    function update(c, input) {
      if ((applied.get(c.key) || "") === input.value) return;
      applied.set(c.key, input.value);
      const p = predicate(c, D[c.key], text(c), input.value);
      input.classList.toggle("bad", p === "bad");
      if (p && p !== "bad") filters.set(c.key, p);
      else filters.delete(c.key);
      apply();
    }

    // one numeric key per row and column, made on the first sort by it: the value, or
    // for text its rank in natural order (T2 before T10); NaN for an empty cell
    const keys = {};
    function sortKeys(c) {
      if (keys[c.key]) return keys[c.key];
      const values = D[c.key], k = new Float64Array(n);
      if (NUMERIC.has(c.kind)) {
        for (let i = 0; i < n; i++) k[i] = missing(values[i]) ? NaN : values[i];
      } else {
        const distinct = Array.from(new Set(values.filter((v) => !missing(v))));
        const rank = new Map(distinct.sort(collator.compare).map((v, r) => [v, r]));
        for (let i = 0; i < n; i++) k[i] = missing(values[i]) ? NaN : rank.get(values[i]);
      }
      return (keys[c.key] = k);
    }

    function sort() {
      const k = sortKeys(cols.find((col) => col.key === sortKey));
      const dir = sortDesc ? -1 : 1;
      order.sort((a, b) => {
        const x = k[a], y = k[b];
        if (x !== x) return y !== y ? a - b : 1; // empty cells last, either way
        if (y !== y) return -1;
        return x === y ? a - b : x < y ? -dir : dir;
      });
      labels.forEach((l) => {
        l.querySelector(".arrow").textContent =
          l.dataset.key === sortKey ? (sortDesc ? "▼" : "▲") : "";
      });
    }

    function apply() {
      const tests = Array.from(filters.values());
      view = tests.length ? order.filter((i) => tests.every((t) => t(i))) : order.slice();
      count.textContent = "showing " + fmt("int", view.length) + " of " + fmt("int", n) +
        " " + opts.noun;
      scroller.scrollTop = 0;
      render();
    }

    function cell(c, i) {
      const v = D[c.key][i];
      const shown = escapeHtml(fmt(c.kind, v));
      let cls = NUMERIC.has(c.kind) ? "num" : "";
      if (opts.signed && opts.signed.includes(c.key) && !missing(v) && v !== 0) {
        cls += v > 0 ? " pos" : " neg";
      }
      let style = "";
      if (c.key === opts.bar && !missing(v)) {
        const w = Math.round(Math.abs(v) / barMax[c.key] * 100);
        const tint = v >= 0 ? "rgba(26,152,80,0.18)" : "rgba(215,48,39,0.18)";
        style = ' style="background:linear-gradient(to left,' + tint + " " + w + "%,transparent " + w + '%)"';
      }
      return "<td" + (cls ? ' class="' + cls.trim() + '"' : "") + style + ">" + shown + "</td>";
    }

    function pad(height) {
      return '<tr class="dt-pad"><td colspan="' + cols.length + '" style="height:' + height + 'px"></td></tr>';
    }

    function render() {
      const top = scroller.scrollTop;
      const visible = Math.max(scroller.clientHeight, opts.height);
      const overscan = 12;
      const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
      const last = Math.min(view.length, Math.ceil((top + visible) / rowHeight) + overscan);
      const parts = [first > 0 ? pad(first * rowHeight) : ""];
      for (let k = first; k < last; k++) {
        const i = view[k];
        parts.push("<tr>" + cols.map((c) => cell(c, i)).join("") + "</tr>");
      }
      if (last < view.length) parts.push(pad((view.length - last) * rowHeight));
      body.innerHTML = parts.join("");
      const row = body.querySelector("tr:not(.dt-pad)");
      const measured = row ? row.getBoundingClientRect().height : rowHeight;
      if (measured > 0 && Math.abs(measured - rowHeight) > 0.5) {
        rowHeight = measured;
        render();
      }
    }

    let ticking = false;
    scroller.addEventListener("scroll", () => {
      if (ticking) return;
      ticking = true;
      requestAnimationFrame(() => { ticking = false; render(); });
    });
    clear.addEventListener("click", () => {
      inputs.forEach((input) => { input.value = ""; input.classList.remove("bad"); });
      filters.clear();
      applied.clear();
      apply();
    });
    if (opts.sort) {
      sortKey = opts.sort;
      sortDesc = !!opts.desc;
      sort();
    }
    apply();
  }

  function drawTables() {
    const symbols = document.querySelector('.table[data-table="symbols"]');
    if (symbols && DATA.symbols) {
      dataTable(symbols, DATA.symbols, { height: 320, noun: "symbols", sort: "pnl_net",
        desc: true, bar: "pnl_net",
        signed: ["pnl_net", "pnl_gross", "average_pnl", "best", "worst"] });
    }
    const trades = document.querySelector('.table[data-table="trades"]');
    if (trades && DATA.trades) {
      dataTable(trades, DATA.trades, { height: 520, noun: "trades",
        signed: ["pnl_net", "pnl_percent"] });
    }
  }

  drawTimeline();
  drawRolling();
  drawHistogram();
  drawScatter();
  drawTables();
  window.ml4tReport = { charts, data: DATA };
})();
