"""The config schema (one source of truth for config.yaml) and its loader with readable errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Strict):
    url: str = "http://127.0.0.1:8765"
    token_env: str = "BENCHWATCH_TOKEN"
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    max_streams: int = Field(default=1000, ge=1, description="concurrent SSE clients before 503")
    heartbeat_s: float = Field(default=15.0, gt=0, le=15, description="SSE heartbeat comment interval")
    thermal_warm_c: float = Field(default=70.0, description="GPU temperature at which the class turns warm")
    thermal_hot_c: float = Field(default=85.0, description="GPU temperature at which the class turns hot")
    bus: str | None = Field(default=None, description="redis://HOST:PORT/DB: the event bus that lets several "
                            "server workers share one live view (default: none, one worker folds in-process)")

    @field_validator("bus")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a Redis URL: redis://HOST:PORT/DB (or rediss://, unix://)")
        return v or None


class RunnerConfig(_Strict):
    cooling_s: float = Field(default=5.0, ge=0, description="pause before each task so the GPU can recover")
    attempts: int = Field(default=2, ge=1, description="tries per task; only ERROR is retried")
    retry_backoff_s: float = Field(default=1.0, ge=0, description="extra pause before a retry, doubled each time")
    task_timeout_s: float = Field(default=120.0, gt=0, description="whole-answer limit per attempt")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    first_token_timeout_s: float = Field(default=60.0, gt=0)
    max_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    seed: int = 42
    system_prompt: str | None = Field(default=None, description="system context sent before every prompt")
    coalesce_ms: float = Field(default=50.0, ge=0, description="token deltas are batched this long")
    # Concurrency (docs/concurrency.md): attempts in flight per model against remote servers.
    concurrency: int = Field(default=1, ge=1, le=4096, description="attempts in flight per model (remote "
                             "backends; the embedded model stays at 1); 1 = one task after another")
    max_requests_per_s: float | None = Field(default=None, gt=0, description="cap on requests sent per second "
                                             "across all slots (hosted APIs with rate limits); default: no cap")
    slo: "SloConfig | None" = Field(default=None, description="service-level objectives: the report shows the "
                                    "share of requests meeting each and goodput (requests/s meeting all)")


class SloConfig(_Strict):
    """Per-request objectives, each optional (docs/concurrency.md, "Metrics")."""
    ttft_ms: float | None = Field(default=None, gt=0, description="time to first visible token")
    itl_ms: float | None = Field(default=None, gt=0, description="mean inter-token latency")
    e2e_ms: float | None = Field(default=None, gt=0, description="request latency: sent to last byte")

    @model_validator(mode="after")
    def _one_at_least(self) -> "SloConfig":
        if self.ttft_ms is None and self.itl_ms is None and self.e2e_ms is None:
            raise ValueError("give at least one of ttft_ms, itl_ms, e2e_ms")
        return self


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    backend: Literal["embedded", "ollama", "openai", "reference", "scripted"]
    base_url: str | None = None
    model: str | None = Field(default=None, description="model name at the backend (default: name)")
    gguf: str | None = Field(default=None, description="embedded: path to a GGUF (default: SmolLM2-135M)")
    n_ctx: int = Field(default=2048, ge=128)
    n_threads: int | None = None
    api_key_env: str | None = None
    think: bool | None = None
    keep_alive: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, ge=1, le=4096, description="overrides runner.concurrency for "
                                    "this model")

    @property
    def remote_name(self) -> str:
        return self.model or self.name


class DatasetConfig(_Strict):
    name: str = Field(min_length=1)
    source: str = Field(min_length=1, description="builtin:NAME, humaneval, squad:PATH or a .jsonl path")
    evaluator: str = "exact_match"
    limit: int | None = Field(default=None, ge=1)
    ids: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="evaluator options")
    system_prompt: str | None = None


RunnerConfig.model_rebuild()


class Config(_Strict):
    store: str = "sqlite:///benchwatch.db"
    server: ServerConfig = Field(default_factory=ServerConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    models: list[ModelConfig] = Field(min_length=1)
    datasets: list[DatasetConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "Config":
        for kind, items in (("models", self.models), ("datasets", self.datasets)):
            names = [i.name for i in items]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{kind}: duplicate name(s) {sorted(dup)}")
        return self

    def concurrency_for(self, model: "ModelConfig") -> int:
        """Attempts in flight for one model: its override, else runner.concurrency; the embedded model (one
        llama.cpp context in this process) always 1."""
        if model.backend == "embedded":
            return 1
        return model.concurrency or self.runner.concurrency

    # Where the config came from, for relative paths and messages (not part of the schema).
    _path: Path | None = None

    @property
    def base_dir(self) -> Path:
        return self._path.parent if self._path else Path.cwd()


class ConfigError(Exception):
    """Raised with a message naming the file, the field path and what is wrong."""


def _loc(loc: tuple[Any, ...], raw: Any) -> str:
    """Render a pydantic location with list items named where possible: models[1](llama).backend."""
    out, node = "", raw
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) else None
            out += f"[{part}]" + (f"({name})" if name else "")
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def parse_config(raw: Any, source: str = "<config>") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{source}: invalid configuration"]
        for err in exc.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (see config.example.yaml for the fields)"
            lines.append(f"  {_loc(err['loc'], raw)}: {msg}")
        raise ConfigError("\n".join(lines)) from None
    return cfg


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}{where}: not valid YAML: {problem}") from None
    cfg = parse_config(raw, str(p))
    cfg._path = p.resolve()
    return cfg
