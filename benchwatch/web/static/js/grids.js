// The three pill grids. Models and Datasets are short lists: rebuilt when they change.
// Current Dataset Tasks can hold 10,000 pills: built once per dataset, then only changed pills are touched.

const ACTIVE_CALL_STAGES = new Set(["thinking", "streaming", "evaluating"]);  // LLM call under way, not yet evaluated
// Past this many halos at once (runner.concurrency), they pulse together in two steps a second driven by one timer
// instead of each running its own 60 fps animation: measured with 64 in flight in headless Chromium, the
// animations alone took frame time p95 from 17 ms to 350 ms.
const MANY_HALOS = 8;
const BEAT_MS = 550;
// The pills are laid out in rows of as many as fit (recomputed when the grid's width changes). With many tasks in
// flight each row is a paint-contained box (monitor.css): a changed pill repaints its row, not the thousands of
// pills around it, and tasks run in plan order, so the changes of a moment sit in a row or two.
const FALLBACK_COLS = 64;  // while the grid is hidden (no width to measure)

function pill(text, cls, title) {
  const el = document.createElement("div");
  el.className = cls;
  el.textContent = text;
  el.title = title;
  return el;
}

// A model or dataset that is done but whose tasks ended in ERROR (backend or harness failure) is not the green of
// one whose tasks passed or failed: "done, N errors" in the error colour.
function statusOf(status, errors) {
  if (status === "done" && errors > 0) return { cls: "done-errors", text: `done, ${errors} error${errors === 1 ? "" : "s"}` };
  return { cls: status, text: status };
}

export function renderModels(box, models) {
  const frag = document.createDocumentFragment();
  for (const m of models) {
    const st_ = statusOf(m.status, m.errors);
    const el = pill("", `pill st-${st_.cls}`, `${m.name} · ${m.backend} · ${st_.text} · backend ${m.connection}`);
    el.dataset.name = m.name;
    el.dataset.status = m.status;
    const name = document.createElement("span"); name.className = "pill-name"; name.textContent = m.name;
    const ord = document.createElement("span"); ord.className = "pill-ord"; ord.textContent = `${m.ordinal}/${m.of}`;
    const st = document.createElement("span"); st.className = "pill-status"; st.textContent = st_.text;
    el.append(ord, name, st);
    frag.append(el);
  }
  box.replaceChildren(frag);
}

export function renderDatasets(box, datasets) {
  const frag = document.createDocumentFragment();
  for (const d of datasets) {
    const st_ = statusOf(d.status, d.error);
    const title = `${d.name} · ${d.evaluator} · ${st_.text} · ${d.done}/${d.total} done · pass ${d.pass} · fail ${d.fail} · error ${d.error}`;
    const el = pill("", `pill st-${st_.cls}`, title);
    el.dataset.name = d.name;
    el.dataset.status = d.status;
    const name = document.createElement("span"); name.className = "pill-name"; name.textContent = d.name;
    const cnt = document.createElement("span"); cnt.className = "pill-ord"; cnt.textContent = `${d.done}/${d.total}`;
    el.append(name, cnt);
    if (st_.cls === "done-errors") {
      const st = document.createElement("span"); st.className = "pill-status"; st.textContent = st_.text;
      el.append(st);
    }
    frag.append(el);
  }
  box.replaceChildren(frag);
}

export class TaskGrid {
  constructor(box) {
    this.box = box;
    this.key = null;      // model|dataset|count of the grid on screen
    this.pills = [];      // one element per task item
    this.shown = [];      // "status|verdict|attempt" on screen, to skip unchanged pills
    this.running = new Set();  // indexes whose status is running (for the halo)
    this.haloOn = new Set();
    this.cols = 0;        // pills per row on screen
    new ResizeObserver(() => this._rows(false)).observe(box);
  }

  // How many pills fit in a row: the grid's inner width over the pill's pitch (sizes from the CSS variables).
  _fit() {
    const width = this.box.clientWidth;
    if (!width) return this.cols || FALLBACK_COLS;
    const cs = getComputedStyle(this.box);
    const px = (name) => parseFloat(cs.getPropertyValue(name)) || 0;
    const inner = width - px("padding-left") - px("padding-right") - 2 * px("--room");
    return Math.max(1, Math.floor((inner + px("--gap")) / (px("--pill") + px("--gap"))));
  }

  // (Re)build the rows from the pills: on a new grid, or when the width fits another number of pills per row.
  _rows(force) {
    const cols = this._fit();
    if (!force && cols === this.cols) return;
    this.cols = cols;
    const frag = document.createDocumentFragment();
    for (let i = 0; i < this.pills.length; i += cols) {
      const row = document.createElement("div");
      row.className = "dot-row";
      row.append(...this.pills.slice(i, i + cols));
      frag.append(row);
    }
    this.box.replaceChildren(frag);
  }

  _paint(i, item) {
    const sig = `${item.status}|${item.verdict || ""}|${item.attempt || 0}`;
    if (this.shown[i] === sig) return;
    this.shown[i] = sig;
    const el = this.pills[i];
    el.className = `dot st-${item.status}`;
    el.dataset.status = item.status;
    el.title = `${item.id} · ${item.status}${item.verdict ? " · " + item.verdict : ""}` +
      (item.attempt > 1 ? ` · attempt ${item.attempt}` : "");
    if (item.status === "running" || item.status === "throttled") this.running.add(i); else this.running.delete(i);
    this.haloOn.delete(i);
  }

  // dirty: null (everything) or {taskItems, taskItemsAll} from stream.js; inflight: {"model|dataset|task_id": record} of the attempts in flight
  render(tasks, current, dirty, inflight, pinned) {
    const items = tasks.items;
    const key = `${tasks.model}|${tasks.dataset}|${items.length}`;
    if (key !== this.key) {
      this.key = key;
      this.pills = new Array(items.length);
      this.shown = new Array(items.length);
      this.running.clear();
      this.haloOn.clear();
      for (let i = 0; i < items.length; i++) {
        const el = document.createElement("div");
        el.dataset.id = items[i].id;
        this.pills[i] = el;
        this._paint(i, items[i]);
      }
      this._rows(true);
    } else if (!dirty || dirty.taskItemsAll) {
      for (let i = 0; i < items.length; i++) this._paint(i, items[i]);
    } else {
      for (const i of dirty.taskItems) if (items[i]) this._paint(i, items[i]);
    }
    this._halo(items, current, tasks, inflight || {});
    this._pin(tasks, pinned);
    this._beat();
  }

  _beat() {
    const many = this.haloOn.size > MANY_HALOS;
    if (many === Boolean(this.beatTimer)) return;
    this.box.classList.toggle("many", many);
    if (many) {
      this.beatTimer = setInterval(() => this.box.classList.toggle("beat"), BEAT_MS);
    } else {
      clearInterval(this.beatTimer);
      this.beatTimer = null;
      this.box.classList.remove("beat");
    }
  }

  _pin(tasks, pinned) {
    const prefix = `${tasks.model}|${tasks.dataset}|`;
    const id = pinned && pinned.startsWith(prefix) ? pinned.slice(prefix.length) : null;
    if (this.pinnedEl && this.pinnedEl.dataset.id !== id) { this.pinnedEl.classList.remove("pinned"); this.pinnedEl = null; }
    if (id && !this.pinnedEl) {
      this.pinnedEl = this.pills.find((el) => el && el.dataset.id === id) || null;
      if (this.pinnedEl) this.pinnedEl.classList.add("pinned");
    }
  }

  // Every attempt whose LLM call is under way has the halo (one at a time: the current one, as before).
  _halo(items, current, tasks, inflight) {
    const active = current && !current.last && ACTIVE_CALL_STAGES.has(current.stage) && !current.verdict;
    const prefix = `${tasks.model}|${tasks.dataset}|`;
    for (const i of this.running) {
      const rec = inflight[prefix + items[i].id];
      const want = Boolean((active && items[i].id === current.task_id) || (rec && ACTIVE_CALL_STAGES.has(rec.stage)));
      if (want !== this.haloOn.has(i)) {
        this.pills[i].classList.toggle("halo", want);
        if (want) this.haloOn.add(i); else this.haloOn.delete(i);
      }
    }
  }
}
