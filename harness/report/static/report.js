/* report.html: draws each scenario's charts from the JSON in #report-data with uPlot.
   One time axis per scenario (seconds from its start), shared by its charts: windows shaded
   under the lines, Chaos Toolkit activities and the recovery point as vertical lines, unhealthy
   buckets as a red strip; the cursor and zoom move on all of a scenario's charts together. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var DPR = window.devicePixelRatio || 1;
  var BAND = { warmup: "rgba(120,120,120,0.08)", baseline: "rgba(52,120,246,0.09)",
               fault: "rgba(214,48,39,0.11)", recovery: "rgba(30,150,70,0.10)" };
  var MARK = { fault: ["#c0392b", [], 2], rollback: ["#1e8449", [6, 4], 2], recovery: ["#1e8449", [], 2],
               probe: ["#6b7785", [2, 3], 1], health: ["#d35400", [], 1.5], node: ["#7d3c98", [], 1.5],
               pod: ["#95a5a6", [2, 2], 1], phase: ["#148f77", [3, 3], 1.5] };
  var charts = [];
  var RIGHT = 50;
  /* An empty right axis, so that every chart of a scenario has the same plot edges (one time axis). */
  var SPACER = { side: 1, size: RIGHT, label: " ", grid: { show: false }, ticks: { show: false }, values: function () { return []; } };

  function fmtT(s, span) {
    if (s == null) return "—";
    var neg = s < 0 ? "-" : "";
    s = Math.abs(s);
    if (span > 7200) { var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60); return neg + h + ":" + (m < 10 ? "0" : "") + m; }
    if (span > 240) { var mm = Math.floor(s / 60), ss = Math.round(s % 60); return neg + mm + ":" + (ss < 10 ? "0" : "") + ss; }
    return neg + (Math.round(s * 10) / 10) + " s";
  }
  function fmtN(v, digits, unit) {
    if (v == null || isNaN(v)) return "—";
    return v.toLocaleString("en-US", { maximumFractionDigits: digits }) + (unit || "");
  }
  function span(u) { return (u.scales.x.max || 0) - (u.scales.x.min || 0); }

  /* Draws windows (under the grid), and marks, thresholds and the unhealthy strip (over the lines). */
  function decorations(sc, opts) {
    function x(u, v) { return u.valToPos(v, "x", true); }
    function clip(u) { var b = u.bbox; u.ctx.save(); u.ctx.beginPath(); u.ctx.rect(b.left, b.top, b.width, b.height); u.ctx.clip(); }
    return {
      hooks: {
        drawClear: [function (u) {
          clip(u);
          (sc.bands || []).forEach(function (b) {
            var x0 = x(u, b.start_s), x1 = x(u, b.end_s);
            u.ctx.fillStyle = BAND[b.kind] || "rgba(0,0,0,0.05)";
            u.ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
          });
          u.ctx.restore();
        }],
        draw: [function (u) {
          var ctx = u.ctx, b = u.bbox;
          clip(u);
          (opts.limits || []).forEach(function (lim) {
            if (lim.value == null) return;
            var y = u.valToPos(lim.value, lim.scale || "y", true);
            ctx.strokeStyle = "rgba(179,38,30,0.8)"; ctx.setLineDash([4 * DPR, 4 * DPR]); ctx.lineWidth = DPR;
            ctx.beginPath(); ctx.moveTo(b.left, y); ctx.lineTo(b.left + b.width, y); ctx.stroke();
            ctx.setLineDash([]); ctx.fillStyle = "rgba(179,38,30,0.9)"; ctx.font = (10 * DPR) + "px sans-serif";
            ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
            ctx.fillText(lim.label, b.left + 4 * DPR, y - 3 * DPR);
          });
          var tl = sc.timeline;
          if (opts.strip && tl) {
            for (var i = 0; i < tl.t.length; i++) {
              var f = tl.unhealthy[i];
              if (f == null || f <= 0) continue;
              var x0 = x(u, tl.t[i]), x1 = Math.max(x0 + DPR, x(u, tl.t[i] + tl.bin_s));
              ctx.fillStyle = "rgba(214,48,39," + (0.35 + 0.6 * f) + ")";
              ctx.fillRect(x0, b.top, x1 - x0, 5 * DPR);
            }
          }
          var rows = [-1e9, -1e9, -1e9];
          ctx.font = (10.5 * DPR) + "px sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
          (opts.marks || []).forEach(function (m) {
            var style = MARK[m.kind] || ["#555", [], 1], x0 = x(u, m.t);
            if (m.end != null && m.kind === "health") {
              ctx.fillStyle = "rgba(211,84,0,0.12)";
              ctx.fillRect(x0, b.top, Math.max(DPR, x(u, m.end) - x0), b.height);
            }
            ctx.strokeStyle = style[0]; ctx.lineWidth = style[2] * DPR;
            ctx.setLineDash(style[1].map(function (d) { return d * DPR; }));
            ctx.beginPath(); ctx.moveTo(x0, b.top); ctx.lineTo(x0, b.top + b.height); ctx.stroke();
            ctx.setLineDash([]);
            if (opts.labels && m.kind !== "probe" && m.kind !== "pod") {
              var text = m.kind === "recovery" ? "recovered" : m.label, w = ctx.measureText(text).width;
              for (var r = 0; r < rows.length; r++) {
                if (x0 + 3 * DPR > rows[r]) {
                  ctx.fillStyle = "rgba(255,255,255,0.85)";
                  ctx.fillRect(x0 + 2 * DPR, b.top + (8 + 13 * r) * DPR, w + 4 * DPR, 12 * DPR);
                  ctx.fillStyle = style[0];
                  ctx.fillText(text, x0 + 4 * DPR, b.top + (18 + 13 * r) * DPR);
                  rows[r] = x0 + w + 10 * DPR;
                  break;
                }
              }
            }
          });
          ctx.restore();
        }],
        setCursor: [function (u) { readout(sc, u); }],
        setScale: [function (u, key) { if (key === "x") linkZoom(sc, u); }]
      }
    };
  }

  function readout(sc, u) {
    var el = document.querySelector('[data-readout="' + sc.id + '"]');
    if (!el) return;
    var left = u.cursor.left;
    if (left == null || left < 0) { el.textContent = ""; return; }
    var t = u.posToVal(left, "x"), near = (u.scales.x.max - u.scales.x.min) / 80, parts = ["t = " + fmtT(t, span(u))];
    (sc.bands || []).forEach(function (b) { if (t >= b.start_s && t < b.end_s) parts.push(b.kind + " window"); });
    (sc.marks || []).concat(sc.controlplane ? sc.controlplane.marks : []).forEach(function (m) {
      var end = m.end != null ? m.end : m.t;
      if (t >= m.t - near && t <= end + near) parts.push(m.kind + ": " + m.label + " at " + fmtT(m.t, 0));
    });
    el.textContent = parts.join(" · ");
  }

  function linkZoom(sc, src) {
    if (sc.zooming) return;
    sc.zooming = true;
    sc.charts.forEach(function (o) {
      if (o !== src && (o.scales.x.min !== src.scales.x.min || o.scales.x.max !== src.scales.x.max)) {
        o.setScale("x", { min: src.scales.x.min, max: src.scales.x.max });
      }
    });
    sc.zooming = false;
  }

  function range(sc) {
    var lo = Infinity, hi = -Infinity;
    function take(v) { if (v != null && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
    if (sc.timeline) { take(sc.timeline.t[0]); take(sc.timeline.t[sc.timeline.t.length - 1] + sc.timeline.bin_s); }
    if (sc.controlplane && sc.controlplane.t.length) {
      take(sc.controlplane.t[0]); take(sc.controlplane.t[sc.controlplane.t.length - 1] + sc.controlplane.bin_s);
    }
    (sc.bands || []).forEach(function (b) { take(b.start_s); take(b.end_s); });
    return lo < hi ? [lo, hi] : [0, 1];
  }

  function baseOpts(sc, el, height, series, axes, scales, deco) {
    var xr = sc.xrange;
    return Object.assign({
      width: Math.max(300, el.clientWidth), height: height,
      cursor: { sync: { key: sc.sync.key, setSeries: false }, drag: { x: true, y: false }, points: { size: 6 } },
      legend: { live: true },
      scales: Object.assign({ x: { time: false, range: function (u, mn, mx) {
        /* Auto-ranging (first draw, double-click) spans the whole scenario on every chart; a zoom is kept. */
        var d = u.data && u.data[0];
        if (mn == null || !d || !d.length || (mn === d[0] && mx === d[d.length - 1])) return xr;
        return [mn, mx];
      } } }, scales),
      series: [{ label: "t", value: function (u, v) { return fmtT(v, span(u)); } }].concat(series),
      axes: [{ values: function (u, splits) { return splits.map(function (s) { return fmtT(s, span(u)); }); }, size: 36 }].concat(axes),
      plugins: [decorations(sc, deco)]
    });
  }

  function draw(el, opts, data) {
    var u = new uPlot(opts, data, el);
    el.setAttribute("data-drawn", "true");
    charts.push({ el: el, u: u, height: opts.height });
    return u;
  }

  function line(label, stroke, digits, unit, extra) {
    return Object.assign({ label: label, stroke: stroke, width: 1.5, spanGaps: false,
      value: function (u, v) { return fmtN(v, digits, unit); } }, extra || {});
  }

  function scenarioCharts(id, sc) {
    sc.id = id;
    sc.sync = uPlot.sync("scenario-" + id);
    sc.charts = [];
    sc.xrange = range(sc);
    var tl = sc.timeline, allMarks = sc.marks || [];
    function el(kind) { return document.querySelector('.chart[data-scenario="' + id + '"][data-chart="' + kind + '"]'); }
    var box;
    if (tl && (box = el("throughput"))) {
      sc.charts.push(draw(box, baseOpts(sc, box, 200, [
        line("requests/s", "#2b6cb0", 1, "/s", { fill: "rgba(43,108,176,0.08)" }),
        line("KPI/s", "#d97706", 2, "/s", { scale: "kpi" })
      ], [{ label: "requests/s", size: 52 }, { scale: "kpi", side: 1, label: "KPI/s", grid: { show: false }, size: RIGHT }],
      { y: { range: function (u, mn, mx) { return [0, Math.max(1, mx * 1.1)]; } },
        kpi: { range: function (u, mn, mx) { return [0, Math.max(1, mx * 1.15)]; } } },
      { marks: allMarks, labels: true, strip: true }), [tl.t, tl.rps, tl.kps]));
    }
    if (tl && (box = el("errors"))) {
      sc.charts.push(draw(box, baseOpts(sc, box, 150, [line("error rate", "#b3261e", 2, " %", { fill: "rgba(179,38,30,0.10)" })],
        [{ label: "%", size: 52 }, SPACER],
        { y: { range: function (u, mn, mx) { return [0, Math.max(1, (mx || 0) * 1.15, (tl.err_limit || 0) * 1.4)]; } } },
        { marks: allMarks, strip: true, limits: [{ value: tl.err_limit, label: "healthy ≤ " + fmtN(tl.err_limit, 2, " %") }] }),
        [tl.t, tl.err]));
    }
    if (tl && (box = el("latency"))) {
      sc.charts.push(draw(box, baseOpts(sc, box, 200, [
        line("p50", "#2f855a", 1, " ms"), line("p95", "#d97706", 1, " ms"), line("p99", "#b3261e", 1, " ms"),
        line("p99 actual", "#7b8794", 1, " ms", { dash: [5, 4], width: 1 })
      ], [{ label: "ms", size: 52 }, SPACER],
        { y: { range: function (u, mn, mx) { return [0, Math.max(1, (mx || 0) * 1.1)]; } } },
        { marks: allMarks, strip: true, limits: [{ value: tl.p95_limit, label: "healthy p95 ≤ " + fmtN(tl.p95_limit, 0, " ms") }] }),
        [tl.t, tl.p50, tl.p95, tl.p99, tl.p99a]));
    }
    var cp = sc.controlplane;
    if (cp && (box = el("controlplane"))) {
      sc.charts.push(draw(box, baseOpts(sc, box, 180, [
        line("API p50", "#2f855a", 1, " ms"), line("API p99", "#b3261e", 1, " ms"),
        line("failed calls", "#7d3c98", 0, "", { scale: "errors", paths: uPlot.paths.bars({ size: [0.9, 8] }), fill: "rgba(125,60,152,0.35)", width: 0 })
      ], [{ label: "ms", size: 52 }, { scale: "errors", side: 1, label: "failed", grid: { show: false }, size: RIGHT }],
        { y: { range: function (u, mn, mx) { return [0, Math.max(1, (mx || 0) * 1.1)]; } },
          errors: { range: function (u, mn, mx) { return [0, Math.max(3, (mx || 0) * 1.3)]; } } },
        { marks: allMarks.concat(cp.marks), labels: true }),
        [cp.t, cp.p50, cp.p99, cp.errors]));
    }
    var tr = sc.trend;
    if (tr) {
      var tsync = uPlot.sync("trend-" + id);
      tr.series.forEach(function (s) {
        var tb = document.querySelector('.chart[data-scenario="' + id + '"][data-chart="trend"][data-metric="' + s.key + '"]');
        if (!tb) return;
        draw(tb, {
          width: Math.max(240, tb.clientWidth), height: 130,
          cursor: { sync: { key: tsync.key }, points: { size: 7 } },
          legend: { live: true },
          scales: { x: { time: false, range: function () { return [0.7, tr.x.length + 0.3]; } } },
          series: [{ label: "run", value: function (u, v, si, i) {
                     return i == null ? "—" : tr.run_ids[i] + " (" + new Date(tr.x[i] * 1000).toISOString().slice(0, 16).replace("T", " ") + ")"; } },
                   line(s.label, "#2b6cb0", 2, s.unit ? " " + s.unit : "", { points: { show: true, size: 6 } })],
          axes: [{ size: 30, incrs: [1, 2, 5, 10, 20, 50, 100], values: function (u, splits) { return splits.map(function (v) { return "#" + v; }); } },
                 { size: 46 }]
        }, [tr.x.map(function (_, i) { return i + 1; }), s.values]);
      });
    }
  }

  Object.keys(DATA.scenarios).forEach(function (id) {
    try {
      scenarioCharts(id, DATA.scenarios[id]);
    } catch (err) {
      var sec = document.getElementById(id);
      if (sec) { var p = document.createElement("p"); p.className = "note fail"; p.textContent = "Charts could not be drawn: " + err; sec.appendChild(p); }
      throw err;
    }
  });

  /* A finding's link shows its scenario's charts zoomed to the finding's time range. */
  document.querySelectorAll("a[data-t-from][data-scenario]").forEach(function (a) {
    a.addEventListener("click", function () {
      var sc = DATA.scenarios[a.getAttribute("data-scenario")];
      var lo = parseFloat(a.getAttribute("data-t-from")), hi = parseFloat(a.getAttribute("data-t-to"));
      if (!sc || !sc.charts || !sc.charts.length || !isFinite(lo) || !isFinite(hi)) return;
      var pad = Math.max(2, 0.25 * (hi - lo));
      sc.charts[0].setScale("x", { min: lo - pad, max: hi + pad });
    });
  });

  function resize(width) {
    charts.forEach(function (c) { c.u.setSize({ width: width || Math.max(240, c.el.clientWidth), height: c.height }); });
  }
  var pending = null;
  window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(function () { resize(); }, 150); });
  /* Paper is narrower than a screen: redraw at page width so the text stays legible when printed. */
  window.addEventListener("beforeprint", function () { resize(680); });
  window.addEventListener("afterprint", function () { resize(); });
})();
