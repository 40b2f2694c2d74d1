// Concurrency on the page (docs/concurrency.md): which task the Task Details and Streaming Details cards follow,
// pinning by clicking a pill, and the compact "now" strip. With one slot (concurrency 1) none of this shows:
// the strip stays hidden and the cards follow state.current exactly as before.
//
// state.slots = {n, inflight: [record like state.current, or null] x N} (aggregate tokens/s: telemetry tps)
// state.current = the followed attempt chosen by the server: the most recently started, kept until it finishes.

const DASH = "–";
const ms = (v) => (v == null ? DASH : v >= 10000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);
const rate = (v) => (v == null ? DASH : `${Number(v).toFixed(1)} tok/s`);

export const keyOf = (rec) => `${rec.model}|${rec.dataset}|${rec.task_id}`;

// The attempts in flight as {"model|dataset|task_id": record} (patches change the list in place: built per call).
export function inflightMap(slots) {
  const map = {};
  for (const rec of (slots && slots.inflight) || []) if (rec) map[keyOf(rec)] = rec;
  return map;
}

export class Follow {
  constructor(pillsBox, strip, onChange) {
    this.pinned = null;     // key of the pinned attempt, or null: follow the server's choice
    this.lastSeen = null;   // the pinned record as last seen in flight (kept once it finishes)
    this.strip = strip;
    this.onChange = onChange;
    this.state = null;
    // Clicking a running (or throttled) task's pill pins it; clicking the pinned pill again unpins.
    pillsBox.addEventListener("click", (ev) => {
      const pill = ev.target.closest(".dot");
      if (!pill || !this.state) return;
      const tasks = this.state.tasks;
      const key = `${tasks.model}|${tasks.dataset}|${pill.dataset.id}`;
      if (this.pinned === key) this.unpin();
      else if (inflightMap(this.state.slots)[key]) this.pin(key);
    });
  }

  pin(key) {
    this.pinned = key;
    this.lastSeen = inflightMap(this.state.slots)[key];
    this.onChange();
  }

  unpin() {
    this.pinned = null;
    this.lastSeen = null;
    this.onChange();
  }

  // {rec, mode}: the record the cards show and why ("pinned", "pinned-finished", "latest", "last").
  followed(state) {
    this.state = state;
    const inflight = inflightMap(state.slots);
    if (this.pinned) {
      const live = inflight[this.pinned];
      if (live) { this.lastSeen = live; return { rec: live, mode: "pinned" }; }
      const cur = state.current;
      if (cur && keyOf(cur) === this.pinned) return { rec: cur, mode: "pinned-finished" };
      if (this.lastSeen) return { rec: { ...this.lastSeen, stage: "done", status_label: "FINISHED" }, mode: "pinned-finished" };
      this.pinned = null;
    }
    const cur = state.current;
    if (!cur) return { rec: null, mode: "none" };
    const last = cur.last || !state.run || state.run.status !== "running" || (cur.verdict && !Object.keys(inflight).length);
    return { rec: cur, mode: last ? "last" : "latest" };
  }

  // The card label: as today with one slot; with several, says which task and why.
  label(state, f) {
    const many = state.slots && state.slots.n > 1;
    if (!f.rec) return "";
    if (f.mode === "last") return "· last task";
    if (!many && f.mode === "latest") return `· ${f.rec.task_id}`;
    if (f.mode === "pinned") return `· ${f.rec.task_id} · pinned (click its pill again to unpin)`;
    if (f.mode === "pinned-finished") return `· ${f.rec.task_id} · pinned, finished (click its pill to unpin)`;
    return `· ${f.rec.task_id} · most recently started (click a running pill to pin one)`;
  }

  // The "now" strip: position, in flight k/N, aggregate tokens/s, the followed task's stage, TTFT and speed.
  renderStrip(state, f) {
    const slots = state.slots || { n: 1, inflight: [] };
    const show = Boolean(state.run) && slots.n > 1;
    if (this.strip.hidden === show) this.strip.hidden = !show;
    if (!show) return;
    const c = state.counters;
    const recs = Object.values(inflightMap(slots));
    const inflight = recs.length;
    const throttled = recs.filter((r) => r.stage === "throttled").length;
    const tel = state.telemetry && state.telemetry.length ? state.telemetry[state.telemetry.length - 1] : null;
    const set = (k, text, title) => {
      const el = this.strip.querySelector(`[data-k="${k}"]`);
      if (el.textContent !== text) el.textContent = text;
      if (title !== undefined && el.title !== title) el.title = title;
    };
    set("position", `${c.done}/${c.total} done`);
    set("inflight", `${inflight}/${slots.n} in flight` + (throttled ? ` · ${throttled} throttled` : ""));
    set("agg_tps", tel && tel.tps != null ? `${Number(tel.tps).toFixed(0)} tok/s all streams` : `${DASH} tok/s`);
    const r = f.rec;
    set("task", r ? `${f.mode.startsWith("pinned") ? "📌 " : ""}${r.task_id}` : DASH,
        r ? `${r.model} · ${r.dataset} · ${r.task_id} · attempt ${r.attempt}` : "");
    set("stage", r ? (r.verdict || (r.stage || DASH).toUpperCase()) : DASH);
    set("ttft", `TTFT ${r ? ms(r.ttft_ms) : DASH}`);
    set("tps", r ? rate(r.tps) : DASH);
    this.strip.dataset.throttled = throttled ? "1" : "";
  }
}
