"""Rebuild the run state from the store after a server restart (or a sink's resync).

The store is the truth: the plan the runner stored with the run (models, datasets, task ids) and the final
verdicts are turned into contract events (the plan's RunStarted with every final verdict as `done`, then the
model and dataset of the latest result) and folded through the same reducer as live events; the runner's next
events carry on from there. No config or dataset file is read: every model and dataset shows what the store says.
"""
from __future__ import annotations

import logging
from typing import Any

from .. import events as ev
from .. import state as reducer
from ..store import Store

log = logging.getLogger(__name__)


def stored_plan(store: Store, run: dict[str, Any], rows: list[dict[str, Any]]) -> ev.RunPlan:
    """The run's stored plan; for a run stored before plans were, the names in its stored config and the task
    ids its results hold (a dataset's tasks that never ran are then not known)."""
    plan = store.get_plan(run["id"])
    if plan is not None:
        return plan
    log.warning("rebuild %s: no stored plan (a run from an older store); using its stored config and results",
                run["id"])
    cfg = run["config"] if isinstance(run["config"], dict) else {}
    models = [ev.PlanModel(name=m["name"], backend=m.get("backend", "?")) for m in cfg.get("models", [])
              if isinstance(m, dict) and "name" in m and not m.get("judge_only")]
    datasets = [ev.PlanDataset(name=d["name"], evaluator=d.get("evaluator", "exact_match"),
                               task_ids=list(dict.fromkeys(r["task_id"] for r in rows if r["dataset"] == d["name"])))
                for d in cfg.get("datasets", []) if isinstance(d, dict) and "name" in d]
    cooling = (cfg.get("runner") or {}).get("cooling_s", 0.0)
    return ev.RunPlan(models=models, datasets=datasets, cooling_s=cooling if isinstance(cooling, (int, float)) else 0.0)


def events_from_store(store: Store, run_id: str) -> list[ev.Event] | None:
    run = store.get_run(run_id)
    if run is None:
        return None
    rows = store.results(run_id)
    plan = stored_plan(store, run, rows)
    done = [ev.DoneTask(model=m, dataset=d, task_id=t, verdict=v)
            for (m, d, t), v in store.final_verdicts(run_id).items()]
    out: list[ev.Event] = [plan.run_started(run_id, 0, done=done, ts=run["created_at"],
                                                config=run["config"] if isinstance(run["config"], dict) else None)]
    if rows:  # the model and dataset of the latest result are the ones in progress
        last = rows[-1]
        names = [m.name for m in plan.models]
        if last["model"] in names:
            i = names.index(last["model"])
            out.append(ev.ModelStarted(run_id=run_id, seq=0, model=last["model"], backend=last["backend"],
                                       ordinal=i + 1, total=len(names), concurrency=plan.models[i].concurrency))
            dataset = next((d for d in plan.datasets if d.name == last["dataset"]), None)
            if dataset is not None:
                out.append(ev.DatasetStarted(run_id=run_id, seq=0, model=last["model"], dataset=dataset.name,
                                             task_ids=dataset.task_ids))
    if run["status"] != "running":
        out.append(ev.RunFinished(run_id=run_id, seq=0, ts=run["finished_at"] or run["created_at"],
                                  status=run["status"], detail=run.get("detail") or ""))
    return out


def rebuilt_state(store: Store, run_id: str, previous: dict[str, Any]) -> dict[str, Any] | None:
    """The state for `run_id` from the store, keeping the host telemetry history of `previous`."""
    events = events_from_store(store, run_id)
    if events is None:
        return None
    s = reducer.initial_state(previous.get("thermal"))
    s["telemetry"] = previous["telemetry"]
    s["server"] = {**s["server"], **{k: v for k, v in previous["server"].items()
                                     if k in ("gpu_temp_c", "thermal", "gpu_unavailable")}}
    return reducer.replay(events, s)
