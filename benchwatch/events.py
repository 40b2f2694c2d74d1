"""The event contract: every event that crosses a boundary (runner -> sinks -> server -> page).

Runner, server, store and tests import these classes; nothing else declares an event's shape.
Every event carries the contract version `v`, the `run_id`, a per-run monotonic `seq` and a wall-clock `ts`.
"""
from __future__ import annotations

import time
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

CONTRACT_VERSION = 1

Stage = Literal["cooling", "thinking", "streaming", "evaluating", "done", "throttled"]
STAGES: tuple[str, ...] = ("cooling", "thinking", "streaming", "evaluating", "done")
# "throttled" (not one of the five workflow pills): the server answered 429/503 with Retry-After and the slot
# waits before sending the same attempt again (docs/concurrency.md).
Verdict = Literal["PASS", "FAIL", "ERROR"]
RunStatus = Literal["running", "finished", "interrupted", "failed"]
Connection = Literal["unknown", "connected", "disconnected", "loading"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = CONTRACT_VERSION
    run_id: str = Field(min_length=1, max_length=200)
    seq: int = Field(ge=0)
    ts: float = Field(default_factory=time.time, description="wall-clock seconds since the epoch")


class _TaskRef(_Event):
    model: str
    dataset: str
    task_id: str
    attempt: int = Field(ge=1)


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    backend: str


class PlanDataset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    evaluator: str
    task_ids: list[str]


class DoneTask(BaseModel):
    """A task that already has a final verdict when a run is (re)started: lets a resumed run, or a server
    rebuilding from the store, start from the right counters through the same reducer."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str
    dataset: str
    task_id: str
    verdict: Verdict


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    models: list[PlanModel]
    datasets: list[PlanDataset]
    cooling_s: float = 0.0
    resumed: bool = False
    done: list[DoneTask] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)


class ModelStarted(_Event):
    type: Literal["model_started"] = "model_started"
    model: str
    backend: str
    ordinal: int = Field(ge=1)
    total: int = Field(ge=1)
    concurrency: int = Field(default=1, ge=1, description="attempts in flight at most for this model")


class BackendState(_Event):
    """Connection state of a model's backend (Ollama's version endpoint, a remote server, the loaded GGUF)."""
    type: Literal["backend_state"] = "backend_state"
    model: str
    state: Connection
    detail: str = ""


class DatasetStarted(_Event):
    type: Literal["dataset_started"] = "dataset_started"
    model: str
    dataset: str
    task_ids: list[str]


class TaskStarted(_TaskRef):
    type: Literal["task_started"] = "task_started"
    prompt: str


class StageChanged(_TaskRef):
    """The task entered `stage`; `at_s` is monotonic seconds since the task (its cooling) began."""
    type: Literal["stage"] = "stage"
    stage: Stage
    at_s: float = Field(ge=0)


class TokenDelta(_TaskRef):
    """Coalesced text of one kind (thinking or visible) produced since the previous delta."""
    type: Literal["token"] = "token"
    kind: Literal["thinking", "visible"]
    text: str
    n_tokens: int = Field(ge=0, description="model tokens in this delta")
    tps: float | None = Field(default=None, description="visible tokens/s so far in this task")


class TaskFinished(_TaskRef):
    type: Literal["task_finished"] = "task_finished"
    verdict: Verdict
    final: bool = Field(description="False when an ERROR will be retried")
    detail: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    ttft_ms: float | None = None
    first_token_ms: float | None = None
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    completion_tokens: int | None = None
    output_tokens: int | None = Field(default=None, description="tokens generated (thinking + visible)")
    itl_ms: float | None = Field(default=None, description="mean inter-token latency (docs/concurrency.md)")
    tpot_ms: float | None = Field(default=None, description="time per output token (docs/concurrency.md)")
    stages: dict[str, list[float]] = Field(default_factory=dict, description="stage -> [start_s, end_s]")


class DatasetFinished(_Event):
    type: Literal["dataset_finished"] = "dataset_finished"
    model: str
    dataset: str


class ModelFinished(_Event):
    type: Literal["model_finished"] = "model_finished"
    model: str


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    status: RunStatus
    detail: str = ""


class Telemetry(_Event):
    """One host sample (server side, 1 Hz). A metric that can't be read is None with its reason."""
    type: Literal["telemetry"] = "telemetry"
    cpu_pct: float | None = None
    fds: int | None = None
    disk_mbps: float | None = None
    gpu_pct: float | None = None
    gpu_temp_c: float | None = None
    tps: float | None = None
    unavailable: dict[str, str] = Field(default_factory=dict, description="metric -> reason it is None")


Event = Annotated[
    Union[RunStarted, ModelStarted, BackendState, DatasetStarted, TaskStarted, StageChanged, TokenDelta,
          TaskFinished, DatasetFinished, ModelFinished, RunFinished, Telemetry],
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "run_started", "model_started", "backend_state", "dataset_started", "task_started", "stage", "token",
    "task_finished", "dataset_finished", "model_finished", "run_finished", "telemetry",
)
# Events that change more than the streaming text: never dropped by a sink (token deltas may be coalesced).
STATE_CHANGING = frozenset(EVENT_TYPES) - {"token", "telemetry"}

_adapter: TypeAdapter[Event] = TypeAdapter(Event)


class EventError(ValueError):
    """A malformed event; the message names the event (index / type / seq) and the field."""


def parse_event(data: Any, where: str = "event") -> Event:
    """Validate one event from JSON-like data; raises EventError naming the field that is wrong."""
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(event)"
        kind = data.get("type") if isinstance(data, dict) else None
        raise EventError(f"{where} (type={kind!r}): field '{field}': {err['msg']}") from None


def parse_events(items: Any) -> list[Event]:
    if not isinstance(items, list):
        raise EventError("body: expected a JSON list of events (or {\"events\": [...]})")
    return [parse_event(item, where=f"event[{i}]") for i, item in enumerate(items)]


def to_json(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json")
