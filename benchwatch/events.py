"""The event contract: every event that crosses a boundary (runner -> sinks -> server; the sampler -> server).

Runner, server, store and tests import these classes; nothing else declares an event's shape. Events stop at the
server: it folds them through the reducer (state.py), and the page sees that state, never an event.
Every event carries the contract version `v`, the `run_id`, a per-run monotonic `seq` and a wall-clock `ts`.
"""
from __future__ import annotations

import time
from typing import Annotated, Any, Literal, NamedTuple, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

CONTRACT_VERSION = 1
MAX_SEQ = 2**53 - 1  # the page reads ids as JavaScript numbers: exact up to 2**53

Stage = Literal["cooling", "thinking", "streaming", "evaluating", "done", "throttled"]
STAGES: tuple[str, ...] = ("cooling", "thinking", "streaming", "evaluating", "done")
# "throttled" (not one of the five workflow pills): the server answered 429/503 with Retry-After and the slot
# waits before sending the same attempt again (docs/concurrency.md).
Verdict = Literal["PASS", "FAIL", "ERROR"]
RunStatus = Literal["running", "finished", "interrupted", "failed"]
Connection = Literal["unknown", "connected", "disconnected", "loading"]


class _Event(BaseModel):
    # allow_inf_nan=False: NaN / Infinity are not JSON; in the state they would break every stream's JSON.parse.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    v: Literal[1] = CONTRACT_VERSION
    run_id: str = Field(min_length=1, max_length=200)
    seq: int = Field(ge=0, le=MAX_SEQ)
    ts: float = Field(default_factory=time.time, ge=0, le=1e11, description="wall-clock seconds since the epoch")


class _TaskRef(_Event):
    model: str
    dataset: str
    task_id: str
    attempt: int = Field(ge=1, le=10_000)


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    backend: str
    concurrency: int = Field(default=1, ge=1, le=4096, description="attempts in flight at most (a rebuilt "
                             "server shows this many places for the model in progress)")


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


class RunPlan(BaseModel):
    """What a run will do: its models, its datasets and their task ids, as the runner sends them in run_started.
    The store keeps it with the run, so a restarted server rebuilds the run from the store alone."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    models: list[PlanModel]
    datasets: list[PlanDataset]
    cooling_s: float = 0.0

    def run_started(self, run_id: str, seq: int, done: list[DoneTask], resumed: bool = False,
                    ts: float | None = None, config: dict[str, Any] | None = None) -> "RunStarted":
        """The run_started event for this plan (the runner's and the rebuild's: one place builds it)."""
        return RunStarted(run_id=run_id, seq=seq, models=self.models, datasets=self.datasets,
                          cooling_s=self.cooling_s, resumed=resumed, done=done, config=config or {},
                          **({"ts": ts} if ts is not None else {}))


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    models: list[PlanModel]
    datasets: list[PlanDataset]
    cooling_s: float = 0.0
    resumed: bool = False
    done: list[DoneTask] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict, description="the run's config (for the record; the "
                                   "store keeps it with the run, the live state does not carry it)")

    def plan(self) -> RunPlan:
        return RunPlan(models=self.models, datasets=self.datasets, cooling_s=self.cooling_s)


class ModelStarted(_Event):
    type: Literal["model_started"] = "model_started"
    model: str
    backend: str
    ordinal: int = Field(ge=1, le=1_000_000)
    total: int = Field(ge=1, le=1_000_000)
    concurrency: int = Field(default=1, ge=1, le=4096, description="attempts in flight at most for this model "
                             "(runner.concurrency or the model's own)")


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
    at_s: float = Field(ge=0, le=1e7)


class TokenDelta(_TaskRef):
    """Coalesced text of one kind (thinking or visible) produced since the previous delta."""
    type: Literal["token"] = "token"
    kind: Literal["thinking", "visible"]
    text: str
    n_tokens: int = Field(ge=0, le=10**9, description="model tokens in this delta")
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
    completion_tokens: int | None = Field(default=None, ge=0, le=10**9)
    output_tokens: int | None = Field(default=None, ge=0, le=10**9, description="tokens generated (thinking + "
                                      "visible)")
    itl_ms: float | None = Field(default=None, description="mean inter-token latency (benchwatch/loadmetrics.py)")
    tpot_ms: float | None = Field(default=None, description="time per output token (benchwatch/loadmetrics.py)")
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


class TelemetryMetric(NamedTuple):
    key: str
    label: str
    unit: str
    digits: int  # decimals the page shows
    kind: type  # float or int
    source: Literal["host", "run"]  # host: read by the sampler; run: the run's own streaming speed


# The one list of telemetry metrics: the Telemetry event's fields, the store's telemetry columns, the sampler,
# the report's charts and the page's charts (sent in the live state) all come from here, in this order.
TELEMETRY_METRICS: tuple[TelemetryMetric, ...] = (
    TelemetryMetric("tps", "TPS", "tokens/s", 1, float, "run"),
    TelemetryMetric("fds", "FD", "open FDs", 0, int, "host"),
    TelemetryMetric("cpu_pct", "CPU", "%", 0, float, "host"),
    TelemetryMetric("disk_mbps", "Disk", "MB/s", 2, float, "host"),
    TelemetryMetric("gpu_pct", "GPU", "%", 0, float, "host"),
    TelemetryMetric("gpu_temp_c", "Temp", "°C", 0, float, "host"),
)
HOST_METRICS: tuple[str, ...] = tuple(m.key for m in TELEMETRY_METRICS if m.source == "host")


class _TelemetryBase(_Event):
    """One host sample (server side, 1 Hz). A metric that can't be read is None with its reason."""
    type: Literal["telemetry"] = "telemetry"
    unavailable: dict[str, str] = Field(default_factory=dict, description="metric -> reason it is None")
    model_server: dict[str, Any] | None = Field(default=None, description="the running model's server metrics "
                                                "(telemetry/model_server.py), None when it has no metrics_url")


Telemetry = create_model(  # one optional field per metric of TELEMETRY_METRICS
    "Telemetry", __base__=_TelemetryBase, __doc__=_TelemetryBase.__doc__,
    **{m.key: (m.kind | None, Field(default=None, description=f"{m.label} ({m.unit})"))  # type: ignore[call-overload]
       for m in TELEMETRY_METRICS})


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
        kind = data.get("type") if isinstance(data, dict) else None
        loc = err["loc"][1:] if err["loc"][:1] == (kind,) else err["loc"]  # drop the union's tag
        field = ".".join(str(p) for p in loc) or "(event)"
        raise EventError(f"{where} (type={kind!r}): field '{field}': {err['msg']}") from None


def parse_events(items: Any) -> list[Event]:
    if not isinstance(items, list):
        raise EventError("body: expected a JSON list of events (or {\"events\": [...]})")
    return [parse_event(item, where=f"event[{i}]") for i, item in enumerate(items)]


def to_json(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json")


def to_json_text(event: Event) -> str:
    """The event as one line of JSON, as the sinks send and write it: pydantic's own serialiser, a quarter of
    json.dumps(to_json(e))'s cost (bench/bench_concurrency.py publishes ~8 events a task). Valid JSON always: a
    lone surrogate in a text raises ValueError; a NaN or infinity inside a free-form field becomes null."""
    return event.model_dump_json()
