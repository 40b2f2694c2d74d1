// One EventSource carries everything: a `snapshot` (full state) on connect, then `patch` deltas.
// EventSource reconnects by itself (sending Last-Event-ID); if the browser gives up (e.g. a 503),
// we open a new one after a pause, so the page keeps retrying with no reload.
import { applyOps } from "./patch.js";
import { STREAM as STREAM_URL } from "./endpoints.js";  // served from benchwatch/endpoints.py

const RETRY_MS = 3000;

// onState(state, dirty) is called at most once per animation frame; dirty is null for "everything"
// or {keys: Set of top-level keys, taskItems: Set of changed task indexes, taskItemsAll: bool}.
export function connect({ onState, onConnection }) {
  let state = null;
  let dirty = null;
  let full = true;
  let scheduled = false;
  let es = null;
  let lastUpdate = null;  // Date.now() of the last snapshot or patch: how old the page's data is

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      const d = full ? null : dirty;
      full = false;
      dirty = { keys: new Set(), taskItems: new Set(), taskItemsAll: false };
      if (state) onState(state, d);
    });
  }

  function markDirty(path) {
    if (full) return;
    if (path.length === 0) { full = true; return; }
    dirty.keys.add(path[0]);
    if (path[0] === "tasks") {
      if (path.length >= 3 && path[1] === "items") dirty.taskItems.add(path[2]);
      else dirty.taskItemsAll = true;
    }
  }

  function open() {
    onConnection("connecting");
    es = new EventSource(STREAM_URL);
    es.addEventListener("open", () => onConnection("open"));
    es.addEventListener("snapshot", (msg) => guarded(() => {
      state = JSON.parse(msg.data).state;
      lastUpdate = Date.now();
      full = true;
      onConnection("open");
      schedule();
    }));
    es.addEventListener("patch", (msg) => guarded(() => {
      if (!state) return;  // deltas before a snapshot can't be applied; the snapshot comes first
      const ops = JSON.parse(msg.data).ops;
      state = applyOps(state, ops);
      lastUpdate = Date.now();
      for (const op of ops) markDirty(op[1]);
      schedule();
    }));
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED) {
        onConnection("closed");
        es.close();
        setTimeout(open, RETRY_MS);
      } else {
        onConnection("reconnecting");
      }
    });
  }

  // A message that can't be read or applied must not freeze the page: start over from a fresh snapshot.
  function guarded(fn) {
    try {
      fn();
    } catch (e) {
      console.error("benchwatch: stream message not applied, reconnecting for a fresh snapshot:", e);
      es.close();
      onConnection("closed");
      setTimeout(open, RETRY_MS);
    }
  }

  dirty = { keys: new Set(), taskItems: new Set(), taskItemsAll: false };
  open();
  return { get state() { return state; }, get lastUpdate() { return lastUpdate; } };
}
