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
      series: [{ name: "tasks", type: "scatter", symbolSize: 8, itemStyle: { opacity: 0.45 }, data: points }]
        .concat(quantileSeries)
    });
  }

  function boundaryLines(gridIndex) {
    // A series with no points of its own carries the task-start lines for one grid.
    return {
      name: "task starts", type: "line", xAxisIndex: gridIndex, yAxisIndex: gridIndex, data: [],
      markLine: {
        symbol: ["none", "none"], silent: false, animation: false, label: { show: false },
        emphasis: { label: { show: false } },
        data: data.boundaries.map(function (b) {
          return {
            xAxis: b.start,
            name: b.model + " · " + b.dataset + " · " + b.task_id + " #" + b.attempt + " " + b.verdict,
            lineStyle: { color: VERDICT[b.verdict] || "#888", width: 1, opacity: 0.55,
                         type: b.final ? "solid" : "dashed" }
          };
        })
      }
    };
  }

  function telemetryChart() {
    var el = document.getElementById("chart-telemetry");
    var tel = data.telemetry;
    if (!tel.count && !data.boundaries.length) { empty(el, "Nothing to draw: no samples and no tasks."); return; }
    var span = data.run_span;
    var s = tel.series;
    var line = function (name, key, grid, yAxis, color) {
      return { name: name, type: "line", data: s[key], xAxisIndex: grid, yAxisIndex: yAxis, showSymbol: false,
               connectNulls: false, lineStyle: { width: 1.6 }, itemStyle: { color: color } };
    };
    var timeAxis = function (grid) {
      return { type: "time", gridIndex: grid, min: span[0], max: span[1],
               axisLabel: { show: grid === 1, hideOverlap: true } };
    };
    make(el, {
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          if (p.componentType === "markLine") return "task start<br>" + esc(p.name);
          return esc(p.seriesName) + ": <b>" + fmt(p.value[1]) + "</b><br>" +
            esc(new Date(p.value[0]).toLocaleTimeString());
        }
      },
      legend: { top: 2, data: ["TPS", "CPU %", "GPU %", "GPU °C"] },
      axisPointer: { link: [{ xAxisIndex: "all" }] },
      grid: [{ left: 12, right: 16, top: 40, height: "26%", containLabel: true },
             { left: 12, right: 16, top: "46%", bottom: 56, containLabel: true }],
      xAxis: [timeAxis(0), timeAxis(1)],
      yAxis: [
        { type: "value", gridIndex: 0, name: "tok/s", min: 0, splitLine: { lineStyle: { opacity: 0.4 } } },
        { type: "value", gridIndex: 1, name: "%", min: 0, max: 100, splitLine: { lineStyle: { opacity: 0.4 } } },
        { type: "value", gridIndex: 1, name: "°C", position: "right", scale: true, splitLine: { show: false } }
      ],
      dataZoom: [{ type: "inside", xAxisIndex: [0, 1] },
                 { type: "slider", xAxisIndex: [0, 1], bottom: 8, height: 22 }],
      series: [
        line("TPS", "tps", 0, 0, "#2f6fdf"),
        line("CPU %", "cpu_pct", 1, 1, "#12a4b8"),
        line("GPU %", "gpu_pct", 1, 1, "#7c5cd6"),
        line("GPU °C", "gpu_temp_c", 1, 2, "#e8590c"),
        boundaryLines(0),
        boundaryLines(1)
      ]
    });
  }

  function draw() {
    charts.forEach(function (c) { c.dispose(); });
    charts = [];
    data.metrics.forEach(distributionChart);
    telemetryChart();
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
