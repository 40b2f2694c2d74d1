// The telemetry charts: ECharts line series over the state's 60-sample telemetry window. Which charts, their
// labels, units and decimals come from the state (`metrics`, the server's one list); only how a metric is drawn
// (scale, colour bands) is said here.
// Streaming practice: time axis, no symbols, no animation, and setOption with the trimmed window
// (the server's window already holds the last 60 samples; appendData could not drop old points).

const BANDS = {
  // green < 20 %, blue 20–50, yellow 50–70, red > 70 (spec: CPU colour bands)
  cpu: [[0, 20, "#2e9d4f"], [20, 50, "#2f7fd8"], [50, 70, "#e0b000"], [70, 100, "#d6453d"]],
  // blue < 50 °C → green → yellow → orange → red > 95 °C (spec: Temp bands)
  temp: [[0, 50, "#2f7fd8"], [50, 70, "#2e9d4f"], [70, 85, "#e0b000"], [85, 95, "#f08c00"], [95, 130, "#d6453d"]],
};

const DRAWING = {
  cpu_pct: { max: 100, bands: BANDS.cpu },
  gpu_pct: { max: 100 },
  gpu_temp_c: { max: (v) => Math.max(100, Math.ceil(v.max / 10) * 10), bands: BANDS.temp },
};

const STORE_KEY = "benchwatch.monitor.hiddenCharts";

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function baseOption(m) {
  const fg = cssVar("--muted"), grid = cssVar("--grid-line"), line = cssVar("--accent");
  const series = {
    type: "line", showSymbol: false, animation: false, connectNulls: false, data: [],
    lineStyle: { width: 2 }, color: line, sampling: "none",
  };
  const option = {
    animation: false,
    grid: { left: 44, right: 12, top: 10, bottom: 24 },
    tooltip: { trigger: "axis", confine: true, valueFormatter: (v) => (v == null ? "unavailable" : `${Number(v).toFixed(m.digits)} ${m.unit}`) },
    xAxis: { type: "time", axisLabel: { color: fg, hideOverlap: true }, axisLine: { lineStyle: { color: grid } },
             splitLine: { show: false } },
    yAxis: { type: "value", min: 0, max: m.max, axisLabel: { color: fg }, splitLine: { lineStyle: { color: grid } } },
    series: [series],
  };
  if (m.bands) {
    // Faint background bands plus the line coloured by the band its value is in.
    series.markArea = { silent: true, data: m.bands.map(([lo, hi, c]) => [
      { yAxis: lo, itemStyle: { color: c, opacity: 0.10 } }, { yAxis: hi }]) };
    option.visualMap = { show: false, type: "piecewise", dimension: 1, seriesIndex: 0,
      pieces: m.bands.map(([lo, hi, c], i) => (
        i === 0 ? { lte: hi, color: c } : i === m.bands.length - 1 ? { gt: lo, color: c } : { gt: lo, lte: hi, color: c })) };
  }
  return option;
}

const PLOT_MIN_MS = 1000;  // see _pump

export class Charts {
  constructor(gridEl, togglesEl, missingEl) {
    this.gridEl = gridEl;
    this.togglesEl = togglesEl;
    this.available = typeof window.echarts !== "undefined";
    this.hidden = new Set(JSON.parse(localStorage.getItem(STORE_KEY) || "[]"));
    this.metrics = null;  // built from the first state's `metrics`
    this.boxes = {};
    this.charts = {};
    this.telemetry = [];
    this.pending = new Set();  // metrics whose chart waits for its frame (see update)
    this.pumping = false;
    this.plotted = {};  // metric key -> performance.now() of its last replot
    missingEl.hidden = this.available;
  }

  _build(metrics) {
    this.metrics = metrics.map((m) => ({ ...m, ...(DRAWING[m.key] || {}) }));
    const gridEl = this.gridEl, togglesEl = this.togglesEl;
    for (const m of this.metrics) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "toggle";
      btn.dataset.chart = m.key;
      btn.textContent = m.label;
      btn.setAttribute("aria-pressed", String(!this.hidden.has(m.key)));
      btn.addEventListener("click", () => this.toggle(m.key, btn));
      togglesEl.append(btn);

      const box = document.createElement("div");
      box.className = "chart-box";
      box.dataset.chart = m.key;
      box.hidden = this.hidden.has(m.key);
      box.innerHTML = `<div class="chart-head"><span class="chart-title"></span><span class="chart-value">–</span>` +
        `<span class="chart-unavailable" tabindex="0" hidden>unavailable</span></div><div class="chart"></div>`;
      gridEl.append(box);
      this.boxes[m.key] = box;
      this._title(m.key);
    }
    if (this.available) {
      this.initCharts();
      // Follow the system theme: colours are read from CSS variables when a chart is created.
      matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
        for (const c of Object.values(this.charts)) c.dispose();
        this.charts = {};
        this.initCharts();
        this.update(this.telemetry);
      });
      const ro = new ResizeObserver((entries) => {
        for (const e of entries) this.charts[e.target.parentElement.dataset.chart]?.resize();
      });
      for (const box of Object.values(this.boxes)) ro.observe(box.querySelector(".chart"));
    }
  }

  initCharts() {
    for (const m of this.metrics) {
      if (this.hidden.has(m.key)) continue;
      this._init(m);
    }
  }

  _init(m) {
    const chart = window.echarts.init(this.boxes[m.key].querySelector(".chart"), null, { renderer: "canvas" });
    chart.setOption(baseOption(m));
    this.charts[m.key] = chart;
  }

  toggle(key, btn) {
    const box = this.boxes[key];
    const show = box.hidden;
    box.hidden = !show;
    btn.setAttribute("aria-pressed", String(show));
    if (show) this.hidden.delete(key); else this.hidden.add(key);
    localStorage.setItem(STORE_KEY, JSON.stringify([...this.hidden]));
    if (!this.available) return;
    const m = this.metrics.find((x) => x.key === key);
    if (show && !this.charts[key]) this._init(m);
    if (show) { this.charts[key].resize(); this._draw(m); }
  }

  // Several tasks in flight: the TPS chart is the aggregate of every stream (the server sums their tokens).
  setAggregate(on) {
    this.aggregate = on;
    this._title("tps");
  }

  _title(key) {
    const m = this.metrics && this.metrics.find((x) => x.key === key);
    if (!m) return;
    const text = key === "tps" && this.aggregate ? `${m.label} (output tokens/s, all streams)` : `${m.label} (${m.unit})`;
    const el = this.boxes[key].querySelector(".chart-title");
    if (el.textContent !== text) el.textContent = text;
  }

  update(telemetry, metrics) {
    if (!this.metrics) this._build(metrics);
    this.telemetry = telemetry || [];
    for (const m of this.metrics) this._label(m);
    // One chart replotted at a time: all of them in one frame took ~70 ms on a busy 2-core machine (a dropped
    // frame every sample); one at a time each new sample reaches every chart within a few frames.
    for (const m of this.metrics) this.pending.add(m);
    this._pump();
  }

  // Each chart is replotted at most once per PLOT_MIN_MS. Samples can come several times a second (a short
  // sampling interval; a benchmark's probe), and a replot is the page's costliest script: with 64 tasks in flight
  // replots took a third of the page's script time. The value in each chart's head follows every sample.
  _pump() {
    if (this.pumping || !this.pending.size) return;
    this.pumping = true;
    const ready = (m, t) => t - (this.plotted[m.key] ?? -Infinity) >= PLOT_MIN_MS;
    // In the frame's idle time where the browser has one (a replot then seldom delays a frame), else the next frame.
    const idle = window.requestIdleCallback ? (f) => requestIdleCallback(f, { timeout: 250 }) : requestAnimationFrame;
    const frame = () => idle(() => {
      this.pumping = false;
      const t = performance.now();
      const m = [...this.pending].find((x) => ready(x, t));
      if (m) {
        this.pending.delete(m);
        this.plotted[m.key] = t;
        this._plot(m);
      }
      this._pump();
    });
    const now = performance.now();
    const wait = Math.min(...[...this.pending].map((m) => (this.plotted[m.key] ?? -Infinity) + PLOT_MIN_MS - now));
    if (wait > 0) setTimeout(frame, wait); else frame();
  }

  _draw(m) {
    this._label(m);
    this._plot(m);
  }

  // The chart's head: current value, or "unavailable" with the server's reason.
  _label(m) {
    const box = this.boxes[m.key];
    if (box.hidden) return;
    const samples = this.telemetry;
    const last = samples[samples.length - 1];
    const reason = last && last.unavailable ? last.unavailable[m.key] : undefined;
    const badge = box.querySelector(".chart-unavailable");
    // A metric the server can't read is shown as unavailable with its reason, never as a zero line.
    box.classList.toggle("is-unavailable", reason !== undefined);
    box.dataset.reason = reason || "";  // the chart's overlay says why (CSS attr(), so it stays text)
    badge.hidden = reason === undefined;
    badge.title = reason || "";
    badge.textContent = reason === undefined ? "" : "unavailable";
    const value = last ? last[m.key] : null;
    box.querySelector(".chart-value").textContent =
      value == null ? (reason !== undefined ? "n/a" : "–") : Number(value).toFixed(m.digits);
  }

  _plot(m) {
    const chart = this.charts[m.key];
    if (!chart || this.boxes[m.key].hidden) return;
    const data = this.telemetry.map((s) => [s.ts * 1000, s[m.key] == null ? null : s[m.key]]);
    chart.setOption({ series: [{ data }] });
  }
}
