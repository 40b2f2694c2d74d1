// The dashboard cards and the Streaming Details card. Everything the model or the user wrote is put in
// the page with textContent / Text nodes: a response holding <script> or <img onerror> shows as text.

const DASH = "–";
const STAGES = ["cooling", "thinking", "streaming", "evaluating", "done"];

function setText(el, text, title) {
  if (el.textContent !== text) el.textContent = text;
  if (title !== undefined && el.title !== title) el.title = title;
}

const num = (v, digits, unit) => (v == null ? DASH : `${Number(v).toFixed(digits)}${unit}`);
const ms = (v) => (v == null ? DASH : v >= 10000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);
const pos = (p, name) => (!p || p[0] == null ? DASH : `${p[0]}/${p[1]}${name ? " · " + name : ""}`);

function field(card, key) { return card.querySelector(`[data-k="${key}"]`); }

export function renderServer(card, state) {
  const s = state.server;
  const run = state.run;
  setText(field(card, "active_model"), (run && s.active_model) || DASH);
  const conn = field(card, "connection");
  setText(conn, run ? s.connection : DASH, s.connection_detail || "");
  conn.dataset.state = run ? s.connection : "";
  const temp = field(card, "gpu_temp");
  if (s.gpu_temp_c != null) setText(temp, `${Number(s.gpu_temp_c).toFixed(0)} °C`, "");
  else if (s.gpu_unavailable) setText(temp, "unavailable", s.gpu_unavailable);
  else setText(temp, DASH, "");
  const th = field(card, "thermal");
  setText(th, s.thermal || DASH, `cool < ${state.thermal.warm_c} °C ≤ warm < ${state.thermal.hot_c} °C ≤ hot`);
  th.dataset.thermal = s.thermal || "";
}

export function renderProgress(card, state) {
  const c = state.counters;
  const cur = state.current;
  const run = state.run;
  const p = (run && cur && cur.position) || {};
  setText(field(card, "model_pos"), pos(p.model, cur && cur.model));
  setText(field(card, "dataset_pos"), pos(p.dataset, cur && cur.dataset));
  setText(field(card, "task_pos"), pos(p.task, cur && cur.task_id));
  setText(field(card, "done"), run ? `${c.done}/${c.total}` : DASH);
  const of = (n, what) => (run ? `${n} ${what} of ${c.done} final verdicts` : "");
  setText(field(card, "ok_pct"), run ? num(c.ok_pct, 1, " %") : DASH, of(c.pass, "PASS"));
  setText(field(card, "ko_pct"), run ? num(c.ko_pct, 1, " %") : DASH, of(c.fail, "FAIL"));
  setText(field(card, "other_pct"), run ? num(c.other_pct, 1, " %") : DASH, of(c.error, "ERROR"));
  setText(field(card, "remaining"), run ? String(c.remaining) : DASH);
}

export function isLast(state) {
  const cur = state.current;
  return Boolean(cur && (cur.last || !state.run || state.run.status !== "running"));
}

export function renderTask(card, state, which) {
  const cur = state.run ? state.current : null;
  setText(field(card, "which"), which !== undefined ? which : cur ? (isLast(state) ? "(last task)" : "(current task)") : "");
  setText(field(card, "task"), cur ? `${cur.task_id} · ${cur.dataset}` : DASH);
  setText(field(card, "attempt"), cur ? String(cur.attempt) : DASH);
  const label = field(card, "status_label");
  setText(label, cur ? cur.status_label || DASH : DASH);
  label.dataset.verdict = cur && cur.verdict ? cur.verdict : "";
  setText(field(card, "ttft"), cur ? ms(cur.ttft_ms) : DASH);
  setText(field(card, "tps"), cur ? num(cur.tps, 1, " tok/s") : DASH);
  setText(field(card, "latency"), cur ? ms(cur.latency_ms) : DASH);
}

function detailValue(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

export class StreamCard {
  constructor(root) {
    this.root = root;
    this.which = root.querySelector("#stream-which");
    this.stages = Object.fromEntries(STAGES.map((n) => [n, root.querySelector(`[data-stage="${n}"]`)]));
    this.status = root.querySelector("#panel-status");
    this.prompt = root.querySelector("#panel-prompt");
    this.thinkingEl = root.querySelector("#response-thinking");
    this.visibleEl = root.querySelector("#response-visible");
    this.result = root.querySelector("#panel-result");
    this.thinking = { node: document.createTextNode(""), shown: "" };
    this.visible = { node: document.createTextNode(""), shown: null };
    this.thinkingEl.replaceChildren(this.thinking.node);
    this.visibleEl.replaceChildren(this.visible.node);
    this.taskKey = null;
    this.resultKey = null;
  }

  // Streaming text grows by appends: add only the new characters to one Text node (cheap per token).
  _stream(slot, text) {
    if (slot.shown !== null && text.length >= slot.shown.length && text.startsWith(slot.shown)) {
      if (text.length > slot.shown.length) slot.node.appendData(text.slice(slot.shown.length));
    } else {
      slot.node.data = text;
    }
    slot.shown = text;
  }

  render(state, which) {
    const cur = state.run ? state.current : null;
    setText(this.which, which !== undefined ? which : cur ? (isLast(state) ? "· last task" : `· ${cur.task_id}`) : "");
    for (const name of STAGES) {
      const li = this.stages[name];
      const st = cur && cur.stages[name];
      const phase = !st ? "pending" : cur.stage === name && name !== "done" && st.end == null ? "active" : "passed";
      if (li.dataset.phase !== phase) li.dataset.phase = phase;
      const t = li.lastElementChild;
      setText(t, !st ? DASH : st.elapsed_s != null ? `${st.elapsed_s.toFixed(2)} s` : "…",
              st ? `from ${st.start.toFixed(2)} s after the task began` : "");
    }
    setText(this.status, cur && cur.stage ? cur.stage.toUpperCase() : DASH);
    setText(this.prompt, cur ? cur.prompt : DASH);

    const key = cur ? `${cur.model}|${cur.dataset}|${cur.task_id}|${cur.attempt}` : null;
    if (key !== this.taskKey) {
      this.taskKey = key;
      this.thinking.shown = null;
      this.visible.shown = null;
    }
    const thinking = cur ? cur.thinking : "";
    this.thinkingEl.hidden = !thinking;
    this._stream(this.thinking, thinking);
    this._stream(this.visible, cur ? cur.response || (thinking ? "" : DASH) : DASH);
    this._result(cur);
  }

  _result(cur) {
    const key = cur ? `${this.taskKey}|${cur.verdict}|${cur.error}|${JSON.stringify(cur.detail)}` : null;
    if (key === this.resultKey) return;
    this.resultKey = key;
    if (!cur || !cur.verdict) { this.result.replaceChildren(DASH); return; }
    const badge = document.createElement("span");
    badge.className = "verdict";
    badge.dataset.verdict = cur.verdict;
    badge.textContent = cur.verdict;
    const dl = document.createElement("dl");
    for (const [k, v] of Object.entries(cur.detail || {})) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = detailValue(v);
      dl.append(dt, dd);
    }
    if (cur.error) {
      const dt = document.createElement("dt"); dt.textContent = "error";
      const dd = document.createElement("dd"); dd.textContent = cur.error;
      dl.append(dt, dd);
    }
    this.result.replaceChildren(badge, dl);
  }
}
