"""Rebuild the run state from the store after a server restart (or a sink's resync).

The store is the truth: the run's stored config gives the plan, its final verdicts give the counters. They are
turned into contract events (a RunStarted with `done`, then the model and dataset in progress) and folded
through the same reducer as live events; the runner's next events carry on from there.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import events as ev
from .. import state as reducer
from ..config import parse_config
from ..datasets import load_dataset
from ..store import Store

log = logging.getLogger(__name__)


def events_from_store(store: Store, run_id: str) -> list[ev.Event] | None:
    run = store.get_run(run_id)
    if run is None:
        return None
    cfg = parse_config(run["config"], f"run {run_id} (stored config)")
    base_dir = Path(run["config_path"]).parent if run.get("config_path") else Path.cwd()
    rows = store.results(run_id)
    datasets = []
    for d in cfg.datasets:
        try:
            ids = [t.id for t in load_dataset(d, base_dir)]
        except Exception as exc:  # the dataset moved: the tasks the store has seen still give a picture
            log.warning("rebuild %s: dataset %s unreadable here (%s); using stored task ids", run_id, d.name, exc)
            ids = list(dict.fromkeys(r["task_id"] for r in rows if r["dataset"] == d.name))
        datasets.append(ev.PlanDataset(name=d.name, evaluator=d.evaluator, task_ids=ids))
    done = [ev.DoneTask(model=m, dataset=d, task_id=t, verdict=v)
            for (m, d, t), v in store.final_verdicts(run_id).items()]
    models = [ev.PlanModel(name=m.name, backend=m.backend) for m in cfg.benchmarked_models]
    out: list[ev.Event] = [ev.RunStarted(run_id=run_id, seq=0, ts=run["created_at"], models=models,
                                         datasets=datasets, cooling_s=cfg.runner.cooling_s, done=done,
                                         config=run["config"])]
    if rows:  # the model and dataset of the latest result are the ones in progress
        last = rows[-1]
        names = [m.name for m in cfg.benchmarked_models]
        if last["model"] in names:
            out.append(ev.ModelStarted(run_id=run_id, seq=0, model=last["model"], backend=last["backend"],
                                       ordinal=names.index(last["model"]) + 1, total=len(names)))
            plan = next((d for d in datasets if d.name == last["dataset"]), None)
            if plan is not None:
                out.append(ev.DatasetStarted(run_id=run_id, seq=0, model=last["model"], dataset=plan.name,
                                             task_ids=plan.task_ids))
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
    for e in events:
        s = reducer.apply(s, e)
    return s
