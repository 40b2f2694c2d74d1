// The live monitor page: wires the SSE stream to the charts, pill grids, cards and streaming details.
// Rendering happens at most once per animation frame, touching only the parts whose state changed.
import { connect } from "./stream.js";
import { REPORTS } from "./endpoints.js";
import { Charts } from "./charts.js";
import { ServerCharts } from "./server_charts.js";
import { renderModels, renderDatasets, TaskGrid } from "./grids.js";
import { renderServer, renderProgress, renderTask, StreamCard } from "./cards.js";
import { Follow, inflightMap } from "./follow.js";

const $ = (sel) => document.querySelector(sel);
const HEADER_KEY = "benchwatch.monitor.hideHeader";
const GRIDS_KEY = "benchwatch.monitor.hiddenGrids";

// Chrome toggle: collapse the nav bar; remembered across reloads.
function setupHeaderToggle() {
  const btn = $("#toggle-header");
  const apply = (hidden) => {
    document.body.classList.toggle("header-hidden", hidden);
    $("#site-header").hidden = hidden;
    btn.textContent = hidden ? "Show header" : "Hide header";
    btn.setAttribute("aria-pressed", String(hidden));
  };
  apply(localStorage.getItem(HEADER_KEY) === "1");
  btn.addEventListener("click", () => {
    const hidden = !document.body.classList.contains("header-hidden");
    localStorage.setItem(HEADER_KEY, hidden ? "1" : "0");
    apply(hidden);
  });
}

function setupGridToggles() {
  const hidden = new Set(JSON.parse(localStorage.getItem(GRIDS_KEY) || "[]"));
  for (const btn of document.querySelectorAll("[data-grid]")) {
    const box = $(`#grid-${btn.dataset.grid}`);
    const apply = () => {
      const off = hidden.has(btn.dataset.grid);
      box.hidden = off;
      btn.setAttribute("aria-pressed", String(!off));
    };
    apply();
    btn.addEventListener("click", () => {
      if (hidden.has(btn.dataset.grid)) hidden.delete(btn.dataset.grid); else hidden.add(btn.dataset.grid);
      localStorage.setItem(GRIDS_KEY, JSON.stringify([...hidden]));
      apply();
    });
  }
}

function renderRun(state) {
  const run = state.run;
  $("#waiting-banner").hidden = Boolean(run);
  const chip = $("#run-chip");
  chip.dataset.state = run ? run.status : "none";
  chip.textContent = run ? `Run ${run.id} · ${run.status}` : "No run";
  chip.title = run && run.detail ? run.detail : "";
  const link = $("#report-link");
  link.hidden = !run;
  if (run) link.href = `${REPORTS}/${encodeURIComponent(run.id)}`;
  $("#datasets-model").textContent = state.server.active_model ? `· ${state.server.active_model}` : "";
  $("#tasks-dataset").textContent = state.tasks.dataset ? `· ${state.tasks.dataset} (${state.tasks.items.length})` : "";
}

const CONN_TEXT = { connecting: "Connecting…", open: "Live", reconnecting: "Reconnecting…", closed: "Disconnected, retrying…" };

function main() {
  setupHeaderToggle();
  setupGridToggles();
  const charts = new Charts($("#charts"), $("#chart-toggles"), $("#echarts-missing"));
  const serverCharts = new ServerCharts($("#charts"), $("#chart-toggles"));
  const taskGrid = new TaskGrid($("#pills-tasks"));
  const streamCard = new StreamCard($("#stream-card"));
  const cards = { server: $("#card-server"), progress: $("#card-progress"), task: $("#card-task") };
  let monitor = null;
  const follow = new Follow($("#pills-tasks"), $("#now-strip"), () => monitor && onState(monitor.state, null));

  const onState = (state, dirty) => {
    const has = (k) => !dirty || dirty.keys.has(k);
    const slots = state.slots || { n: 1, inflight: [] };
    if (has("run") || has("server") || has("tasks")) renderRun(state);
    if (has("telemetry") || has("metrics")) charts.update(state.telemetry, state.metrics);
    if (has("telemetry") || has("run")) serverCharts.update(state.telemetry, state.run && state.run.model_server);
    if (has("slots") || has("run")) {
      charts.setAggregate(slots.n > 1);
      for (const el of document.querySelectorAll("[data-legend=throttled]")) el.hidden = slots.n <= 1;
    }
    if (has("models")) renderModels($("#pills-models"), state.models);
    if (has("datasets")) renderDatasets($("#pills-datasets"), state.datasets);
    if (has("tasks") || has("current") || has("run") || has("slots")) {
      taskGrid.render(state.tasks, state.current, dirty, inflightMap(slots), follow.pinned);
    }
    if (has("server") || has("run") || has("thermal")) renderServer(cards.server, state);
    if (has("counters") || has("current") || has("run")) renderProgress(cards.progress, state);
    if (has("current") || has("run") || has("slots")) {
      // The cards show the followed task: the pinned one, else the server's current (concurrency 1: as before).
      const f = follow.followed(state);
      const view = f.rec === state.current ? state : { ...state, current: f.rec };
      const which = slots.n > 1 || f.mode.startsWith("pinned") ? follow.label(state, f) : undefined;
      const taskWhich = which === undefined || !f.rec ? undefined : f.mode === "last" ? "(last task)"
        : f.mode.startsWith("pinned") ? "(pinned task)" : "(most recently started)";
      renderTask(cards.task, view, taskWhich);
      streamCard.render(view, which);
    }
    if (has("counters") || has("current") || has("run") || has("slots") || has("telemetry")) {
      follow.renderStrip(state, follow.followed(state));
    }
    if (!document.body.dataset.rendered) {
      document.body.dataset.rendered = "1";  // tests and benchmarks wait for the first full render
      performance.mark("benchwatch:rendered");
    }
  };
  // While the stream is down the data on the page is stale: dimmed, and the chip says how old it is.
  let staleTimer = null;
  const onConnection = (st) => {
    const chip = $("#conn-chip");
    chip.dataset.state = st;
    const live = st === "open";
    const monitor = window.benchwatchMonitor;
    const stale = !live && monitor && monitor.lastUpdate !== null;
    document.body.classList.toggle("stale", Boolean(stale));
    clearInterval(staleTimer);
    staleTimer = null;
    const show = () => {
      const age = monitor && monitor.lastUpdate !== null ? Math.round((Date.now() - monitor.lastUpdate) / 1000) : null;
      chip.textContent = stale && age !== null ? `${CONN_TEXT[st]} · last update ${age} s ago` : CONN_TEXT[st];
    };
    show();
    if (stale) staleTimer = setInterval(show, 1000);
  };
  monitor = connect({ onState, onConnection });
  window.benchwatchMonitor = monitor;
  window.benchwatchFollow = follow;  // tests read which task is followed
}

main();
