"""A scripted benchmark run, as contract events, posted step by step to a real server's ingest endpoint."""
from __future__ import annotations

from benchwatch import events as ev

from .harness import Script

MODELS = [("smollm2-135m", "embedded"), ("qwen3:0.6b", "ollama")]
D1 = ("arithmetic", "numeric", ["a1", "a2", "a3"])
D2 = ("facts", "exact_match", ["f1", "f2"])
SYSTEM_PROMPT = "System: answer with a number only.\n\nUser: What is 2 + 2?"
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> 4'


def run_start(s: Script) -> list:
    return [
        s(ev.RunStarted, models=[ev.PlanModel(name=n, backend=b) for n, b in MODELS],
          datasets=[ev.PlanDataset(name=n, evaluator=e, task_ids=ids) for n, e, ids in (D1, D2)], cooling_s=0.5),
        s(ev.ModelStarted, model=MODELS[0][0], backend=MODELS[0][1], ordinal=1, total=2),
        s(ev.BackendState, model=MODELS[0][0], state="connected", detail="GGUF loaded"),
        s(ev.DatasetStarted, model=MODELS[0][0], dataset=D1[0], task_ids=D1[2]),
    ]


def first_task_streaming(s: Script) -> list:
    """Task a1 up to the middle of its visible answer (the LLM call is active)."""
    t = dict(model=MODELS[0][0], dataset=D1[0], task_id="a1")
    return [
        s.task(ev.TaskStarted, prompt=SYSTEM_PROMPT, **t),
        s.task(ev.StageChanged, stage="cooling", at_s=0.0, **t),
        s.task(ev.StageChanged, stage="thinking", at_s=0.5, **t),
        s.task(ev.TokenDelta, kind="thinking", text="The user wants 2+2. ", n_tokens=6, **t),
        s.task(ev.TokenDelta, kind="thinking", text="That is 4.", n_tokens=4, **t),
        s.task(ev.StageChanged, stage="streaming", at_s=1.25, **t),
        s.task(ev.TokenDelta, kind="visible", text=HOSTILE, n_tokens=20, tps=42.5, **t),
    ]


def first_task_finished(s: Script) -> list:
    t = dict(model=MODELS[0][0], dataset=D1[0], task_id="a1")
    return [
        s.task(ev.StageChanged, stage="evaluating", at_s=1.75, **t),
        s.task(ev.StageChanged, stage="done", at_s=1.8, **t),
        s.task(ev.TaskFinished, verdict="PASS", final=True, ttft_ms=750.0, first_token_ms=510.0, latency_ms=1300.0,
               tokens_per_s=40.0, completion_tokens=30, detail={"expected": "4", "actual": "4", "score": 1.0},
               stages={"cooling": [0.0, 0.5], "thinking": [0.5, 1.25], "streaming": [1.25, 1.75],
                       "evaluating": [1.75, 1.8], "done": [1.8, 1.8]}, **t),
    ]


def quick_task(s: Script, task_id: str, verdict: str, dataset: str = D1[0], model: str = MODELS[0][0]) -> list:
    t = dict(model=model, dataset=dataset, task_id=task_id)
    return [
        s.task(ev.TaskStarted, prompt=f"prompt of {task_id}", **t),
        s.task(ev.StageChanged, stage="cooling", at_s=0.0, **t),
        s.task(ev.StageChanged, stage="streaming", at_s=0.5, **t),
        s.task(ev.TokenDelta, kind="visible", text="5", n_tokens=1, tps=30.0, **t),
        s.task(ev.StageChanged, stage="evaluating", at_s=0.7, **t),
        s.task(ev.StageChanged, stage="done", at_s=0.71, **t),
        s.task(ev.TaskFinished, verdict=verdict, final=True, ttft_ms=500.0, latency_ms=700.0, tokens_per_s=30.0,
               detail={"expected": "4", "actual": "5", "score": 0.0, "threshold": 1.0} if verdict == "FAIL" else {},
               error="backend timed out" if verdict == "ERROR" else None, **t),
    ]


def rest_of_first_dataset(s: Script) -> list:
    return (quick_task(s, "a2", "FAIL") + quick_task(s, "a3", "ERROR")
            + [s(ev.DatasetFinished, model=MODELS[0][0], dataset=D1[0])])


def run_end(s: Script) -> list:
    return [s(ev.ModelFinished, model=MODELS[0][0]), s(ev.RunFinished, status="finished")]
