"""The backend interface: stream one chat request as thinking text, visible text and final stats.

Timing is not measured here: the runner measures every backend the same way (see docs/measuring.md).
A backend only says what arrived; the runner's clock says when.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Literal, Protocol

from ..config import ModelConfig
from ..registry import Registry

if TYPE_CHECKING:
    from ..datasets import Task


@dataclass(frozen=True)
class GenParams:
    max_tokens: int
    temperature: float
    seed: int
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 60.0
    total_timeout_s: float = 120.0
    # How long a remote stream's pieces after the first token may wait to reach the runner together: the runner
    # publishes them at this cadence anyway (its coalescing window). Each piece keeps the time it arrived.
    batch_s: float = 0.0


@dataclass(frozen=True)
class Text:
    """A piece of the answer. kind 'raw' may contain <think> tags (the runner splits them).

    For a backend whose requests go out and come back on another thread (the HTTP backends), `sent` is when the
    request was written to its connection and `arrived` when this piece came off it (time.monotonic): the runner
    times from these rather than from when its own thread got there, which with many streams in flight is later
    (docs/measuring.md)."""
    text: str
    kind: Literal["raw", "thinking", "visible"] = "raw"
    n_tokens: int = 1
    arrived: float | None = None
    sent: float | None = None


@dataclass(frozen=True)
class Stats:
    """What the backend reports at the end of a completion."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    server: dict[str, Any] = field(default_factory=dict)  # backend-native timings and counts


Item = Text | Stats
Message = dict[str, str]


class BackendError(Exception):
    """A failure of the backend or its connection: the attempt's verdict is ERROR (and it is retried)."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached (connection refused, dropped, timed out connecting): the runner publishes
    the backend as disconnected and checks the connection again before the next attempt."""


class BackendThrottled(BackendError):
    """The server pushed back (HTTP 429 or 503 with Retry-After): the slot waits `retry_after_s` and sends the
    same attempt again; this is not the model's failure (docs/concurrency.md)."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Backend(Protocol):
    """What the runner calls. A backend class subclasses this (for the defaults of the optional capabilities)."""
    cfg: ModelConfig

    def connect(self, timeout_s: float) -> tuple[str, str]:
        """Check or establish the connection, waiting at most `timeout_s` (runner.connect_timeout_s) for a remote
        server: returns (state, detail) with state in connected / disconnected / loading."""

    def render_prompt(self, messages: list[Message]) -> str:
        """The prompt exactly as it is sent (chat template applied where the backend applies it here)."""

    def stream(self, messages: list[Message], params: GenParams) -> Iterator[Item]:
        """Yield Text items as they arrive, then at most one Stats. Raise BackendError on failure."""

    def close(self) -> None: ...

    # ---- optional capabilities: the defaults do nothing
    max_concurrency: ClassVar[int | None] = None
    """Attempts in flight at most, whatever runner.concurrency says (None: no limit of its own). The embedded
    model (one llama.cpp context in this process) says 1."""

    def set_task(self, task: "Task") -> None:
        """Called with the task before each attempt; a backend that answers from the task itself (reference)
        keeps it."""


# The backends, by the name a config gives (models[].backend). Registered by where they live, so that knowing
# the names imports no HTTP client or model library; `options` names the model that checks models[].options
# where a backend reads them itself (the others pass them to their engine as they are).
BACKENDS: Registry[type[Backend]] = Registry("backend")
BACKENDS.add("embedded", "benchwatch.backends.embedded:EmbeddedBackend")
BACKENDS.add("ollama", "benchwatch.backends.ollama:OllamaBackend")
BACKENDS.add("openai", "benchwatch.backends.openai_compat:OpenAIBackend")
BACKENDS.add("reference", "benchwatch.backends.reference:ReferenceBackend",
             options="benchwatch.backends.reference:ReferenceOptions")
BACKENDS.add("scripted", "benchwatch.backends.scripted:ScriptedBackend",
             options="benchwatch.backends.scripted:ScriptedOptions")


def render_messages(messages: list[Message]) -> str:
    """How a chat request is shown when the template is applied by a remote server."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
