// The model server's own metrics (its /metrics, scraped by the benchwatch server while that model runs):
// extra charts after the six, toggleable like them, hidden while no model of the run has a metrics_url.
// Each telemetry sample carries `model_server` ({running, waiting, kv_cache_pct, ttft_s, itl_s, unavailable})
// or null; a figure the server doesn't publish, or a failed scrape, is shown as unavailable with its reason.

export const SERVER_METRICS = [
  { key: "ms_queue", label: "Requests", unit: "requests", digits: 0,
    series: [{ field: "running", name: "running" }, { field: "waiting", name: "waiting" }] },
  { key: "ms_kv", label: "KV cache", unit: "%", digits: 1, max: 100,
    series: [{ field: "kv_cache_pct", name: "KV cache" }] },
  // Per-interval means: no value where no request finished, so points can stand alone: draw them as dots too.
  { key: "ms_latency", label: "Server TTFT / ITL", unit: "ms", digits: 1, scale: 1000, sparse: true,
    series: [{ field: "ttft_s", name: "TTFT" }, { field: "itl_s", name: "ITL" }] },
];

const STORE_KEY = "benchwatch.monitor.hiddenServerCharts";
const COLOURS = ["#2f7fd8", "#f08c00"];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function option(m) {
  const fg = cssVar("--muted"), grid = cssVar("--grid-line");
  return {
    animation: false,
    grid: { left: 44, right: 12, top: m.series.length > 1 ? 24 : 10, bottom: 24 },
    legend: m.series.length > 1 ? { top: 0, right: 0, itemHeight: 8, textStyle: { color: fg } } : undefined,
    tooltip: { trigger: "axis", confine: true,
               valueFormatter: (v) => (v == null ? "–" : `${Number(v).toFixed(m.digits)} ${m.unit}`) },
    xAxis: { type: "time", axisLabel: { color: fg, hideOverlap: true }, axisLine: { lineStyle: { color: grid } },
             splitLine: { show: false } },
    yAxis: { type: "value", min: 0, max: m.max, axisLabel: { color: fg }, splitLine: { lineStyle: { color: grid } } },
    series: m.series.map((s, i) => ({ name: s.name, type: "line", showSymbol: Boolean(m.sparse), symbolSize: 4, animation: false,
      connectNulls: false, data: [], lineStyle: { width: 2 }, color: COLOURS[i], sampling: "none" })),
  };
}

export class ServerCharts {
  constructor(gridEl, togglesEl) {
    this.available = typeof window.echarts !== "undefined";
    this.hidden = new Set(JSON.parse(localStorage.getItem(STORE_KEY) || "[]"));
    this.shown = false;  // any model of the run has a metrics_url
    this.boxes = {};
    this.buttons = {};
    this.charts = {};
    this.telemetry = [];
    // Their own toggle group right after the six's (the six's group stays exactly the spec's six).
    this.group = document.createElement("div");
    this.group.className = "toggles";
    this.group.id = "server-chart-toggles";
    this.group.setAttribute("role", "group");
    this.group.setAttribute("aria-label", "Show or hide the model server's charts");
    this.group.hidden = true;
    togglesEl.after(this.group);
    for (const m of SERVER_METRICS) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "toggle";
      btn.dataset.chart = m.key;
      btn.textContent = m.label;
      btn.title = "The model server's own metrics (models[].metrics_url)";
      btn.setAttribute("aria-pressed", String(!this.hidden.has(m.key)));
      btn.addEventListener("click", () => this.toggle(m.key));
      this.group.append(btn);
      const box = document.createElement("div");
      box.className = "chart-box server-chart";
      box.dataset.chart = m.key;
      box.hidden = true;
      box.innerHTML = `<div class="chart-head"><span class="chart-title"></span><span class="chart-value">–</span>` +
        `<span class="chart-unavailable" tabindex="0" hidden></span></div><div class="chart"></div>`;
      box.querySelector(".chart-title").textContent = `${m.label} (${m.unit})`;
      gridEl.append(box);
      this.boxes[m.key] = box;
      this.buttons[m.key] = btn;
    }
    if (this.available) {
      matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
        for (const c of Object.values(this.charts)) c.dispose();
        this.charts = {};
        this.update(this.telemetry, this.shown);
      });
      const ro = new ResizeObserver((entries) => {
        for (const e of entries) this.charts[e.target.parentElement.dataset.chart]?.resize();
      });
      for (const box of Object.values(this.boxes)) ro.observe(box.querySelector(".chart"));
    }
  }

  toggle(key) {
    if (this.hidden.has(key)) this.hidden.delete(key); else this.hidden.add(key);
    localStorage.setItem(STORE_KEY, JSON.stringify([...this.hidden]));
    this.buttons[key].setAttribute("aria-pressed", String(!this.hidden.has(key)));
    this.update(this.telemetry, this.shown);
  }

  // `shown`: the run's config names a metrics_url for at least one model.
  update(telemetry, shown) {
    this.telemetry = telemetry || [];
    this.shown = Boolean(shown);
    this.group.hidden = !this.shown;
    for (const m of SERVER_METRICS) {
      const box = this.boxes[m.key];
      box.hidden = !this.shown || this.hidden.has(m.key);
      if (!box.hidden) this._draw(m);
    }
  }

  _draw(m) {
    const box = this.boxes[m.key];
    const samples = this.telemetry;
    const last = samples.length ? samples[samples.length - 1].model_server : null;
    const reasons = m.series.map((s) => (last && last.unavailable ? last.unavailable[s.field] : undefined));
    const missing = reasons.filter((r) => r !== undefined);
    const all = missing.length === m.series.length;
    // Every figure of this chart unavailable (a failed scrape, or a server that doesn't publish it): the overlay
    // says why, as for the host charts; some of them: the badge names which, its title says why.
    box.classList.toggle("is-unavailable", all);
    box.dataset.reason = all ? missing[0] : "";
    const badge = box.querySelector(".chart-unavailable");
    badge.hidden = missing.length === 0;
    badge.textContent = all ? "unavailable" : m.series.filter((s, i) => reasons[i] !== undefined)
      .map((s) => `${s.name} unavailable`).join(", ");
    badge.title = [...new Set(missing)].join("; ");
    const scale = m.scale || 1;
    const value = (s, f) => (s && s[f] != null ? s[f] * scale : null);
    const head = m.series.map((s) => value(last, s.field)).filter((v) => v != null);
    box.querySelector(".chart-value").textContent = head.length ? head.map((v) => v.toFixed(m.digits)).join(" / ")
      : (all ? "n/a" : "–");
    if (!this.available) return;
    let chart = this.charts[m.key];
    if (!chart) {
      chart = this.charts[m.key] = window.echarts.init(box.querySelector(".chart"), null, { renderer: "canvas" });
      chart.setOption(option(m));
    }
    chart.setOption({ series: m.series.map((s) => ({
      data: samples.map((t) => [t.ts * 1000, value(t.model_server, s.field)]) })) });
  }
}
