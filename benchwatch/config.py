"""The config schema (one source of truth for config.yaml) and its loader with readable errors.

The names a config may use for a backend, an evaluator or a dataset source, and the options a backend reads
itself, come from their registries (benchwatch/registry.py), looked up when a config is validated."""
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


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    backend: str = Field(description="a registered backend: embedded, ollama, openai, reference, scripted")
    base_url: str | None = None
    model: str | None = Field(default=None, description="model name at the backend (default: name)")
    gguf: str | None = Field(default=None, description="embedded: path to a GGUF (default: SmolLM2-135M)")
    n_ctx: int = Field(default=2048, ge=128)
    n_threads: int | None = None
    api_key_env: str | None = None
    think: bool | None = None
    keep_alive: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    judge_only: bool = Field(default=False, description="only grades answers (llm_judge's judge): not benchmarked")
    metrics_url: str | None = Field(default=None, description="the model server's Prometheus /metrics (vLLM, "
                                    "SGLang, TGI, llama.cpp --metrics): polled at 1 Hz by the server while this "
                                    "model runs")
    metrics_kind: Literal["auto", "vllm", "sglang", "tgi", "llamacpp", "generic"] = Field(
        default="auto", description="which server's metric names to read (auto: told from the names)")
    metrics_names: dict[str, str] = Field(default_factory=dict, description="generic: field -> metric name "
                                          "(running, waiting, kv_cache_ratio, ttft_histogram, itl_histogram)")

    @field_validator("metrics_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL of the model server's /metrics")
        return v or None

    @model_validator(mode="after")
    def _generic_names(self) -> "ModelConfig":
        from .telemetry.model_server import check_names  # one list of the fields, beside the mappings
        check_names(self.metrics_kind, self.metrics_names)
        return self

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        from .backends.base import BACKENDS  # imported here: backends import this module
        return BACKENDS.check_name(v)

    @model_validator(mode="after")
    def _backend_options(self) -> "ModelConfig":
        from .backends.base import BACKENDS
        BACKENDS.check_options(self.backend, self.options)
        return self

    @property
    def remote_name(self) -> str:
        return self.model or self.name


class HFConfig(_Strict):
    config: str | None = Field(default=None, description="the dataset's configuration (subset), e.g. 'main'")
    split: str = Field(default="test", min_length=1)
    revision: str | None = Field(default=None, description="a branch, tag or commit of the Hub repository")


class DatasetConfig(_Strict):
    name: str = Field(min_length=1)
    preset: str | None = Field(default=None, description="a standard suite (mmlu, gsm8k, ...): sets source, "
                               "hf, templates, evaluator and options; every field stated here overrides it")
    source: str = Field(min_length=1, description="builtin:NAME, humaneval, squad:PATH, hf:REPO_ID|PATH "
                        "or a .jsonl path")
    evaluator: str = "exact_match"
    limit: int | None = Field(default=None, ge=1)
    ids: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="evaluator options")
    system_prompt: str | None = None
    # hf: sources: where in the Hub dataset, and Jinja2 templates that build a task from each row.
    hf: HFConfig = Field(default_factory=HFConfig)
    prompt: str | None = Field(default=None, description="hf: Jinja2 template of the prompt (row columns as names)")
    expected: str | None = Field(default=None, description="hf: template of the expected answer (native value)")
    id: str | None = Field(default=None, description="hf: template of the task id (default: the row index)")
    system: str | None = Field(default=None, description="hf: template of the task's system message")
    meta: dict[str, str] = Field(default_factory=dict, description="hf: extra meta fields, each a template "
                                 "rendered to a native value (e.g. choices: '{{ choices }}')")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("preset") is not None:
            from .datasets.presets import apply_preset  # late: the datasets package imports this module
            return apply_preset(raw)
        return raw

    @model_validator(mode="after")
    def _templates_need_hf(self) -> "DatasetConfig":
        fields = type(self).model_fields
        stated = sorted(f for f in ("hf", "prompt", "expected", "id", "system", "meta")
                        if getattr(self, f) != fields[f].get_default(call_default_factory=True))
        if stated and not self.source.startswith("hf:"):
            raise ValueError(f"field(s) {stated} apply to hf: sources only (source is {self.source!r})")
        return self

    @field_validator("evaluator")
    @classmethod
    def _known_evaluator(cls, v: str) -> str:
        from .evaluators import EVALUATORS  # imported here: evaluators import this module
        return EVALUATORS.check_name(v)

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        from .datasets import SOURCES, loader_for
        if loader_for(v) is None:
            raise ValueError(f"unknown source {v!r}: use builtin:NAME, a .jsonl path, or one of "
                             f"{', '.join(SOURCES.names())}")
        return v


class Config(_Strict):
    store: str = "sqlite:///benchwatch.db"
    server: ServerConfig = Field(default_factory=ServerConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    models: list[ModelConfig] = Field(min_length=1)
    datasets: list[DatasetConfig] = Field(min_length=1)
    sandbox: Literal["auto", "require"] = Field(
        default="auto", description="code sandbox: auto (the strongest this host allows, named at start-up) or "
        "require (refuse to start without the full isolation: bubblewrap + cgroup; see docs/sandbox.md)")

    @model_validator(mode="after")
    def _unique_names(self) -> "Config":
        for kind, items in (("models", self.models), ("datasets", self.datasets)):
            names = [i.name for i in items]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{kind}: duplicate name(s) {sorted(dup)}")
        if all(m.judge_only for m in self.models):
            raise ValueError("models: every model is judge_only; at least one must be benchmarked")
        return self

    @property
    def benchmarked_models(self) -> list[ModelConfig]:
        """The models the run walks (all but the judge_only ones)."""
        return [m for m in self.models if not m.judge_only]

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


def default_config(source: str = "<defaults>") -> Config:
    """The config of a command started without a config file (`serve`, `results`, `report`...): every default,
    the default store, and a placeholder model and dataset (the schema requires one of each)."""
    return parse_config({"models": [{"name": "-", "backend": "scripted"}],
                         "datasets": [{"name": "-", "source": "builtin:facts"}]}, source)
