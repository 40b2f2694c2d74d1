/* Draws a benchwatch report's charts from the inline JSON block and filters the failed-task list.
   Plain script, no network: everything it needs is in this file. Text that came from a run (model names,
   task ids) reaches HTML only through textContent or echarts.format.encodeHTML. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var VERDICT = { PASS: "#2e9e5b", FAIL: "#d64545", ERROR: "#a452c4" };
  var QUANTILE_COLORS = ["#f2a900", "#e8590c", "#c2255c"];
  var esc = echarts.format.encodeHTML;
  var charts = [];

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    var a = Math.abs(v);
    return v.toLocaleString(undefined, { maximumFractionDigits: a >= 100 ? 0 : a >= 10 ? 1 : 2 });
  }

  function make(el, option) {
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    var chart = echarts.init(el, dark ? "dark" : null, { renderer: "canvas" });
    option.backgroundColor = "transparent";
    option.animation = false;
    chart.setOption(option);
    charts.push(chart);
    return chart;
  }

  function empty(el, text) {
    el.textContent = text;
    el.classList.add("muted");
    el.style.display = "flex";
    el.style.alignItems = "center";
    el.style.justifyContent = "center";
    el.style.height = "4rem";
  }

  function distributionChart(metric) {
    var el = document.getElementById("chart-" + metric.key);
    var models = data.matrix.models;
    var dist = data.distributions[metric.key];
    var points = [];
    models.forEach(function (m) {
      dist[m].values.forEach(function (v) { points.push([v, m]); });
    });
    if (!points.length) { empty(el, "No measured values."); return; }
    var quantileSeries = ["p50", "p90", "p99"].map(function (q, i) {
      return {
        name: q === "p50" ? "median" : q, type: "scatter", symbol: "rect", symbolSize: [4, 24], z: 3,
        itemStyle: { color: QUANTILE_COLORS[i] },
        data: models.filter(function (m) { return dist[m].quantiles[q] !== null; })
          .map(function (m) { return [dist[m].quantiles[q], m]; })
      };
    });
    make(el, {
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          return esc(p.seriesName) + " · " + esc(p.value[1]) + "<br><b>" + fmt(p.value[0]) + "</b> " + esc(metric.unit);
        }
      },
      legend: { top: 2, data: ["tasks", "median", "p90", "p99"] },
      grid: { left: 12, right: 28, top: 34, bottom: 8, containLabel: true },
      xAxis: { type: "value", name: metric.unit, nameGap: 6, splitLine: { lineStyle: { opacity: 0.4 } } },
      yAxis: { type: "category", data: models, inverse: true,
               axisLabel: { width: 140, overflow: "truncate" } },
      // large: one path for all dots, so thousands of tasks draw fast
      series: [{ name: "tasks", type: "scatter", symbolSize: 8, itemStyle: { opacity: 0.45 }, data: points,
                 large: points.length > 1000, largeThreshold: 1000 }]
        .concat(quantileSeries)
    });
  }

  var BOUNDARY_GROUPS = [["PASS", "task started · PASS"], ["FAIL", "task started · FAIL"],
                         ["ERROR", "task started · ERROR"], ["retried", "attempt retried"]];

  function boundarySeries(gridIndex, yAxisIndex, d) {
    // One polyline per verdict, broken between tasks: a vertical line from the bottom of the grid to a small
    // marker at the top (hover it for the task). Thousands of tasks stay cheap, unlike one markLine each.
    var groups = { PASS: [], FAIL: [], ERROR: [], retried: [] };
    data.boundaries.forEach(function (b) {
      var g = b.final ? (groups[b.verdict] ? b.verdict : "ERROR") : "retried";
      groups[g].push([b.start, 0],
                     { value: [b.start, 1], symbol: "triangle", symbolRotate: 180,
                       name: b.model + " · " + b.dataset + " · " + b.task_id + " #" + b.attempt + " " + b.verdict },
                     [b.start, "-"]);
    });
    return BOUNDARY_GROUPS.map(function (g) {
      var color = VERDICT[g[0]] || VERDICT.ERROR;
      return { id: "tb-" + gridIndex + "-" + g[0], name: g[1], type: "line", xAxisIndex: gridIndex,
               yAxisIndex: yAxisIndex, data: groups[g[0]], symbol: "none", symbolSize: d.symbolSize, showSymbol: true,
               connectNulls: false, z: 1, itemStyle: { color: color },
               lineStyle: { width: 1, opacity: d.opacity, color: color, type: g[0] === "retried" ? "dashed" : "solid" },
               emphasis: { disabled: true } };
    });
  }

  function segments() {
    // Consecutive attempts of one model on one dataset: the run's coarse structure, shaded in bands.
    var segs = [];
    data.boundaries.forEach(function (b) {
      var key = b.model + " · " + b.dataset, last = segs[segs.length - 1];
      if (last && last.key === key) last.end = Math.max(last.end, b.end);
      else segs.push({ key: key, start: b.start, end: b.end });
    });
    return segs;
  }

  function segmentSeries(gridIndex, yAxisIndex, segs) {
    return {
      id: "seg-" + gridIndex, name: "model · dataset", type: "line", xAxisIndex: gridIndex, yAxisIndex: yAxisIndex,
      data: [],
      markArea: {
        label: { show: false }, emphasis: { label: { show: false } },  // named in the tooltip instead
        data: segs.map(function (sg, i) {
          return [{ xAxis: sg.start, name: sg.key,
                    itemStyle: { color: i % 2 ? "rgba(128,128,128,0.12)" : "rgba(128,128,128,0.04)" } },
                  { xAxis: sg.end }];
        })
      }
    };
  }

  function density(startPct, endPct) {
    // Thousands of task lines in view are a wall of colour: fade them (and drop the markers) until zoomed in.
    var span = data.run_span;
    var lo = span[0] + (span[1] - span[0]) * startPct / 100, hi = span[0] + (span[1] - span[0]) * endPct / 100;
    var n = 0;
    data.boundaries.forEach(function (b) { if (b.start >= lo && b.start <= hi) n += 1; });
    return { symbolSize: n <= 300 ? 7 : 0, opacity: n <= 150 ? 0.45 : Math.max(0.04, 0.45 * 150 / n) };
  }

  function fitDensity(chart, startPct, endPct) {
    var d = density(startPct, endPct), updates = [];
    [0, 1].forEach(function (grid) {
      BOUNDARY_GROUPS.forEach(function (g) {
        updates.push({ id: "tb-" + grid + "-" + g[0], symbolSize: d.symbolSize, lineStyle: { opacity: d.opacity } });
      });
    });
    chart.setOption({ series: updates });
  }

  function telemetryChart() {
    var el = document.getElementById("chart-telemetry");
    var tel = data.telemetry;
    if (!tel.count && !data.boundaries.length) { empty(el, "Nothing to draw: no samples and no tasks."); return; }
    var span = data.run_span;
    var s = tel.series;
    var line = function (name, key, grid, yAxis, color) {
      return { name: name, type: "line", data: s[key], xAxisIndex: grid, yAxisIndex: yAxis, showSymbol: false,
               connectNulls: false, sampling: "lttb", lineStyle: { width: 1.6 }, itemStyle: { color: color } };
    };
    var timeAxis = function (grid) {
      return { type: "time", gridIndex: grid, min: span[0], max: span[1],
               axisLabel: { show: grid === 1, hideOverlap: true } };
    };
    var segs = segments(), dens = density(0, 100);
    var chart = make(el, {
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          if (p.componentType === "markArea") return esc(p.name || "");
          if (p.seriesIndex >= 4) return esc(p.seriesName) + "<br>" + esc(p.name || "");
          return esc(p.seriesName) + ": <b>" + fmt(p.value[1]) + "</b><br>" +
            esc(new Date(p.value[0]).toLocaleTimeString());
        }
      },
      legend: { top: 2, type: "scroll",
                data: ["TPS", "CPU %", "GPU %", "GPU °C"].concat(BOUNDARY_GROUPS.filter(function (g) {
                  return data.boundaries.some(function (b) {
                    return g[0] === "retried" ? !b.final : b.final && b.verdict === g[0];
                  });
                }).map(function (g) { return g[1]; })) },
      axisPointer: { link: [{ xAxisIndex: "all" }] },
      // Same left/right in both grids (no containLabel) so one instant is at one x in both.
      grid: [{ left: 46, right: 46, top: 44, height: "26%" },
             { left: 46, right: 46, top: "46%", bottom: 64 }],
      xAxis: [timeAxis(0), timeAxis(1)],
      yAxis: [
        { type: "value", gridIndex: 0, name: "tok/s", min: 0, splitLine: { lineStyle: { opacity: 0.4 } } },
        { type: "value", gridIndex: 1, name: "%", min: 0, max: 100, splitLine: { lineStyle: { opacity: 0.4 } } },
        { type: "value", gridIndex: 1, name: "°C", position: "right", scale: true, splitLine: { show: false } },
        { type: "value", gridIndex: 0, min: 0, max: 1, show: false },  // task boundaries, top grid
        { type: "value", gridIndex: 1, min: 0, max: 1, show: false }   // task boundaries, bottom grid
      ],
      dataZoom: [{ type: "inside", xAxisIndex: [0, 1] },
                 { type: "slider", xAxisIndex: [0, 1], bottom: 8, height: 22 }],
      series: [
        line("TPS", "tps", 0, 0, "#2f6fdf"),
        line("CPU %", "cpu_pct", 1, 1, "#12a4b8"),
        line("GPU %", "gpu_pct", 1, 1, "#7c5cd6"),
        line("GPU °C", "gpu_temp_c", 1, 2, "#e8590c")
      ].concat(boundarySeries(0, 3, dens), boundarySeries(1, 4, dens),
               segs.length <= 200 ? [segmentSeries(0, 3, segs), segmentSeries(1, 4, segs)] : [])
    });
    chart.on("datazoom", function (e) {  // the event carries the window; getOption() would copy every point
      var z = e.batch ? e.batch[0] : e;
      if (z.start !== undefined && z.end !== undefined) fitDensity(chart, z.start, z.end);
    });
  }

  // The model server's own metrics (report/model_server.py) on the run's time axis, with each answered task's
  // client-measured first token as a dot beside the server's per-interval TTFT.
  function modelServerChart() {
    var el = document.getElementById("chart-model-server");
    var ms = data.model_server;
    if (!el || !ms || !ms.present) return;
    var span = data.run_span;
    var line = function (key, grid, yAxis, color) {
      return { name: ms.labels[key].label, type: "line", data: ms.series[key], xAxisIndex: grid, yAxisIndex: yAxis,
               showSymbol: false, connectNulls: false, lineStyle: { width: 1.6 }, itemStyle: { color: color } };
    };
    var timeAxis = function (grid) {
      return { type: "time", gridIndex: grid, min: span[0], max: span[1], axisLabel: { show: grid === 1, hideOverlap: true } };
    };
    make(el, {
      tooltip: { trigger: "item", formatter: function (p) {
        var model = p.value.length > 2 ? " · " + esc(String(p.value[2])) : "";
        return esc(p.seriesName) + model + ": <b>" + fmt(p.value[1]) + "</b><br>" + esc(new Date(p.value[0]).toLocaleTimeString());
      } },
      legend: { top: 2, type: "scroll" },
      axisPointer: { link: [{ xAxisIndex: "all" }] },
      grid: [{ left: 46, right: 46, top: 44, height: "26%" }, { left: 46, right: 46, top: "46%", bottom: 64 }],
      xAxis: [timeAxis(0), timeAxis(1)],
      yAxis: [
        { type: "value", gridIndex: 0, name: "requests", min: 0, minInterval: 1, splitLine: { lineStyle: { opacity: 0.4 } } },
        { type: "value", gridIndex: 0, name: "KV %", min: 0, max: 100, position: "right", splitLine: { show: false } },
        { type: "value", gridIndex: 1, name: "ms", min: 0, splitLine: { lineStyle: { opacity: 0.4 } } }
      ],
      dataZoom: [{ type: "inside", xAxisIndex: [0, 1] }, { type: "slider", xAxisIndex: [0, 1], bottom: 8, height: 22 }],
      series: [
        line("running", 0, 0, "#2f6fdf"), line("waiting", 0, 0, "#e8590c"), line("kv_cache_pct", 0, 1, "#7c5cd6"),
        line("ttft_s", 1, 2, "#12a4b8"), line("itl_s", 1, 2, "#a07400"),
        { name: "Client first token", type: "scatter", data: ms.client_ttft, xAxisIndex: 1, yAxisIndex: 2,
          symbolSize: 5, itemStyle: { color: "#d6453d", opacity: 0.7 } }
      ]
    });
  }

  function draw() {
    charts.forEach(function (c) { c.dispose(); });
    charts = [];
    data.metrics.forEach(distributionChart);
    telemetryChart();
    modelServerChart();
    document.body.setAttribute("data-charts", String(charts.length));
  }

  function filters() {
    var list = document.getElementById("problem-list");
    if (!list) return;
    var byId = function (id) { return document.getElementById(id); };
    var model = byId("f-model"), dataset = byId("f-dataset"), verdict = byId("f-verdict");
    var retried = byId("f-retried"), count = byId("f-count");
    var items = list.querySelectorAll("details.task");
    function apply() {
      var shown = 0;
      items.forEach(function (d) {
        var ok = (!model.value || d.dataset.model === model.value) &&
                 (!dataset.value || d.dataset.dataset === dataset.value) &&
                 (!verdict.value || d.dataset.verdict === verdict.value) &&
                 (retried.checked || d.dataset.final === "true");
        d.classList.toggle("hidden", !ok);
        if (ok) shown += 1;
      });
      count.textContent = shown + " of " + items.length + " shown";
    }
    [model, dataset, verdict, retried].forEach(function (el) { el.addEventListener("change", apply); });
    apply();
  }

  draw();
  filters();
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  if (window.matchMedia) {
    var mq = window.matchMedia("(prefers-color-scheme: dark)");
    if (mq.addEventListener) mq.addEventListener("change", draw);
  }
})();
