// Applies the server's state deltas mechanically: the JS twin of benchwatch/patch.py apply_ops.
// No business logic here: the Python reducer (benchwatch/state.py) is the only place that interprets events.
//   ["set", path, value] | ["append", path, text] | ["push", path, item, keep]
// Returns the (possibly replaced) state; mutates in place otherwise.

export function applyOps(state, ops) {
  for (const op of ops) {
    const [kind, path] = op;
    if (path.length === 0) { state = op[2]; continue; }
    let parent = state;
    for (let i = 0; i < path.length - 1; i++) parent = parent[path[i]];
    const last = path[path.length - 1];
    if (kind === "set") {
      parent[last] = op[2];
    } else if (kind === "append") {
      parent[last] = (parent[last] || "") + op[2];
    } else if (kind === "push") {
      const items = parent[last] || [];
      items.push(op[2]);
      const keep = op[3];
      if (keep && items.length > keep) items.splice(0, items.length - keep);
      parent[last] = items;
    } else {
      throw new Error(`unknown op ${kind}`);
    }
  }
  return state;
}
