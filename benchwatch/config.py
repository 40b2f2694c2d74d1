"""The config schema (one source of truth for config.yaml) and the one door for outside values.

The config file, environment overrides (BENCHWATCH_STORE, BENCHWATCH_SERVER_PORT, BENCHWATCH_RUNNER_COOLING_S,
...: see `env_overrides`) and command-line flags all pass this schema: overrides are applied to the raw data
before validation, so a flag is checked exactly like the field it overrides, and an error names the flag, the
variable, or the file:line of the field. Numbers are finite and bounded; duplicate YAML keys, text that isn't
valid Unicode and non-finite numbers anywhere in the file are refused.

The names a config may use for a backend, an evaluator or a dataset source, and the options a backend reads
itself, come from their registries (benchwatch/registry.py), looked up when a config is validated.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .safe_data import dotted, find_problem, text_problem

ENV_PREFIX = "BENCHWATCH_"
_DAY_S = 86_400.0


class _Strict(BaseModel):
    # validate_assignment: a value set after loading (a flag, a test) passes the same checks as the file's.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


class ServerConfig(_Strict):
    url: str = Field(default="http://127.0.0.1:8765", pattern=r"^https?://[^\s/]+", max_length=2000,
                     description="the live server the runner publishes to")
    token_env: str = Field(default="BENCHWATCH_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=8765, ge=0, le=65535, description="0 picks a free port")
    max_streams: int = Field(default=1000, ge=1, le=100_000, description="concurrent SSE clients before 503")
    heartbeat_s: float = Field(default=15.0, ge=0.1, le=15, description="SSE heartbeat comment interval")
    thermal_warm_c: float = Field(default=70.0, ge=-50, le=200, description="GPU temperature: class turns warm")
    thermal_hot_c: float = Field(default=85.0, ge=-50, le=200, description="GPU temperature: class turns hot")
    bus: str | None = Field(default=None, description="redis://HOST:PORT/DB: the event bus that lets several "
                            "server workers share one live view (default: none, one worker folds in-process)")
    workers: int = Field(default=1, ge=1, le=64, description="gunicorn workers; more than one needs `bus`")
    ring_size: int = Field(default=4096, ge=16, le=1_000_000,
                           description="patches kept for Last-Event-ID resume; a client further behind is dropped")
    write_timeout_s: float = Field(default=10.0, ge=0.5, le=600,
                                   description="drop an SSE client that has taken nothing for this long")

    @field_validator("bus")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a Redis URL: redis://HOST:PORT/DB (or rediss://, unix://)")
        return v or None

    @model_validator(mode="after")
    def _thermal_order(self) -> "ServerConfig":
        if self.thermal_warm_c >= self.thermal_hot_c:
            raise ValueError(f"thermal_warm_c ({self.thermal_warm_c:g}) must be below thermal_hot_c "
                             f"({self.thermal_hot_c:g})")
        return self


class RunnerConfig(_Strict):
    cooling_s: float = Field(default=5.0, ge=0, le=3600, description="pause before each task so the GPU can recover")
    attempts: int = Field(default=2, ge=1, le=100, description="tries per task; only ERROR is retried")
    retry_backoff_s: float = Field(default=1.0, ge=0, le=3600,
                                   description="extra pause before a retry, doubled each time")
    task_timeout_s: float = Field(default=120.0, gt=0, le=_DAY_S, description="whole-answer limit per attempt")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    first_token_timeout_s: float = Field(default=60.0, gt=0, le=_DAY_S)
    max_tokens: int = Field(default=512, ge=1, le=10_000_000)
    temperature: float = Field(default=0.0, ge=0, le=100)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    system_prompt: str | None = Field(default=None, description="system context sent before every prompt")
    coalesce_ms: float = Field(default=50.0, ge=0, le=10_000, description="token deltas are batched this long")
    # Concurrency (docs/concurrency.md): attempts in flight per model against remote servers.
    concurrency: int = Field(default=1, ge=1, le=4096, description="attempts in flight per model (remote "
                             "backends; the embedded model stays at 1); 1 = one task after another")
    max_requests_per_s: float | None = Field(default=None, gt=0, le=1_000_000, description="cap on requests "
                                             "sent per second across all slots (hosted APIs with rate limits); "
                                             "default: no cap")
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
    backend: str = Field(description="a registered backend: embedded, ollama, openai, reference, scripted")
    base_url: str | None = None
    model: str | None = Field(default=None, description="model name at the backend (default: name)")
    gguf: str | None = Field(default=None, description="embedded: path to a GGUF (default: SmolLM2-135M)")
    n_ctx: int = Field(default=2048, ge=128, le=10_000_000)
    n_threads: int | None = Field(default=None, ge=1, le=4096)
    api_key_env: str | None = None
    think: bool | None = None
    keep_alive: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, ge=1, le=4096, description="overrides runner.concurrency for "
                                    "this model")
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
    limit: int | None = Field(default=None, ge=1, le=100_000_000)
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


RunnerConfig.model_rebuild()


class Config(_Strict):
    store: str = Field(default="sqlite:///benchwatch.db", description="SQLAlchemy URL: sqlite:///PATH or "
                       "postgresql+psycopg://USER:PASS@HOST/DB")
    server: ServerConfig = Field(default_factory=ServerConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    models: list[ModelConfig] = Field(min_length=1)
    datasets: list[DatasetConfig] = Field(min_length=1)
    sandbox: Literal["auto", "require"] = Field(
        default="auto", description="code sandbox: auto (the strongest this host allows, named at start-up) or "
        "require (refuse to start without the full isolation: bubblewrap + cgroup; see docs/sandbox.md)")

    @field_validator("store")
    @classmethod
    def _store_url(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
        try:
            url = make_url(v)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(f"not a database URL ({exc}); expected sqlite:///PATH or "
                             "postgresql+psycopg://USER:PASS@HOST/DB") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {url.get_backend_name()!r}: use sqlite:///PATH or "
                             "postgresql+psycopg://USER:PASS@HOST/DB")
        return v

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

    def concurrency_for(self, model: "ModelConfig") -> int:
        """Attempts in flight for one model: its override, else runner.concurrency, at most what its backend
        declares (Backend.max_concurrency: the embedded model, one llama.cpp context in this process, says 1)."""
        from .backends.base import BACKENDS  # imported here: backends import this module
        wanted = model.concurrency or self.runner.concurrency
        cap = BACKENDS.get(model.backend).max_concurrency
        return min(wanted, cap) if cap else wanted

    # Where the config came from, for relative paths and messages (not part of the schema).
    _path: Path | None = None

    @property
    def base_dir(self) -> Path:
        return self._path.parent if self._path else Path.cwd()


class ConfigError(Exception):
    """Raised with a message naming the file (and line), the flag or the variable, and what is wrong."""


@dataclass(frozen=True)
class Override:
    """A value from outside the file for one field: `label` names where it came from (--cooling, $VAR)."""
    path: tuple[str, ...]
    value: Any
    label: str


def env_overrides(environ: Mapping[str, str] | None = None) -> list[Override]:
    """BENCHWATCH_STORE and BENCHWATCH_<SECTION>_<FIELD> for every scalar field of `server` and `runner`
    (e.g. BENCHWATCH_SERVER_PORT, BENCHWATCH_RUNNER_COOLING_S). An empty value clears an optional field."""
    env = os.environ if environ is None else environ
    out = []
    names = {f"{ENV_PREFIX}STORE": ("store",)}
    for section, model in (("server", ServerConfig), ("runner", RunnerConfig)):
        for field in model.model_fields:
            names[f"{ENV_PREFIX}{section}_{field}".upper()] = (section, field)
    for name, path in names.items():
        if name in env:
            value: Any = env[name]
            if value == "" and path[-1] in ("bus", "system_prompt"):
                value = None
            out.append(Override(path, value, f"${name}"))
    return out


def _loc(loc: tuple[Any, ...], raw: Any) -> str:
    """Render a pydantic location with list items named where possible: models[1](llama).backend."""
    out, node = "", raw
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) else None
            out += f"[{part}]" + (f"({name})" if isinstance(name, str) and name and not text_problem(name) else "")
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _apply(raw: dict[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """A copy of raw with the overrides set (sections copied, the rest shared)."""
    out = dict(raw)
    for o in overrides:
        node = out
        for key in o.path[:-1]:
            child = node.get(key)
            node[key] = dict(child) if isinstance(child, dict) else {}
            node = node[key]
        node[o.path[-1]] = o.value
    return out


def parse_config(raw: Any, source: str = "<config>", overrides: Sequence[Override] = (),
                 lines: Mapping[tuple[Any, ...], int] | None = None) -> Config:
    """Validate raw data (+ overrides). Errors name `source`, the line (when `lines` maps paths to them), the
    field path, or the flag / variable an override came from."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    problem = find_problem(raw)
    if problem is not None:
        raise ConfigError(f"{_where(source, problem.path, lines)}: {_loc(problem.path, raw)}: {problem.reason}")
    merged = _apply(raw, overrides)
    by_path = {o.path: o for o in overrides}
    try:
        cfg = Config.model_validate(merged)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")  # our validators' own words, without pydantic's tag
            if err["type"] == "extra_forbidden":
                msg = "unknown field (see config.example.yaml for the fields)"
            loc = tuple(err["loc"])
            o = by_path.get(loc)  # type: ignore[arg-type]
            if o is not None:
                out.append(f"{o.label} {o.value!r}: {msg} (sets {dotted(loc)})")
            else:
                out.append(f"{_where(source, loc, lines)}: {_loc(loc, merged)}: {msg}")
        raise ConfigError("\n  ".join([f"{source}: invalid configuration"] + out)) from None
    return cfg


def _where(source: str, path: tuple[Any, ...], lines: Mapping[tuple[Any, ...], int] | None) -> str:
    """file:line of the deepest part of `path` the file has a line for (just the file otherwise)."""
    for n in range(len(path), -1, -1):
        line = (lines or {}).get(tuple(path[:n]))
        if line:
            return f"{source}:{line}"
    return source


def read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse a YAML file strictly: UTF-8 only, duplicate keys refused. Returns (data, path -> line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save the config as UTF-8") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            _index(node, (), lines, path)
        raw = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    return raw, lines


def _index(root: yaml.Node, base: tuple[Any, ...], lines: dict[tuple[Any, ...], int], path: Path) -> None:
    """Record each key's and item's line; refuse a key given twice in one mapping (YAML says it is an error,
    PyYAML silently keeps the last). Each node once: aliases can't blow this up."""
    seen: set[int] = set()
    stack = [(base, root)]
    while stack:
        at, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                if key in first:
                    raise ConfigError(f"{path}:{line}: {dotted(at + (key,))}: duplicate key {key!r} (first "
                                      f"given at line {first[key]}); give each key once")
                first[key] = line
                lines.setdefault(at + (key,), line)
                stack.append((at + (key,), value_node))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault(at + (i,), item.start_mark.line + 1)
                stack.append((at + (i,), item))


def load_config(path: str | Path, overrides: Sequence[Override] = ()) -> Config:
    p = Path(path)
    raw, lines = read_yaml(p)
    cfg = parse_config(raw, str(p), overrides, lines)
    cfg._path = p.resolve()
    return cfg


def default_config(source: str = "<defaults>", overrides: Sequence[Override] = ()) -> Config:
    """The config of a command started without a config file (`serve`, `results`, `report`...): every default,
    the default store, and a placeholder model and dataset (the schema requires one of each); flags and
    environment overrides pass the schema as with a file."""
    return parse_config({"models": [{"name": "-", "backend": "scripted"}],
                         "datasets": [{"name": "-", "source": "builtin:facts"}]}, source, overrides)
