"""Datasets: a task is (id, prompt, expected, evaluator options). Sources are chosen by the config's `source`:

- `builtin:NAME`        a JSONL set shipped in benchwatch/datasets/builtin/
- `path/to/file.jsonl`  a user's JSONL file (relative to the config file's folder)
- other prefixes        registered in SOURCES (benchwatch/registry.py) by `register_source` (humaneval, squad:, hf:)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..config import DatasetConfig
from ..registry import Registry
from ..safe_data import find_problem


@dataclass(frozen=True)
class Task:
    id: str
    prompt: str
    expected: Any = None
    system: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # per-task evaluator options
    meta: dict[str, Any] = field(default_factory=dict)  # anything else the source carries (e.g. tests)


class DatasetError(ValueError):
    """A dataset that can't be read; the message names the file, the line and the field."""


Loader = Callable[[str, DatasetConfig, Path], list[Task]]
# Source prefixes -> loaders. The built-in loader modules register themselves when this module is imported
# (at its end: they import it).
SOURCES: Registry[Loader] = Registry("dataset source")


def register_source(prefix: str, loader: Loader) -> None:
    """`prefix` is matched against the start of `source` (e.g. 'squad:' or 'humaneval')."""
    SOURCES.add(prefix, loader)


def loader_for(source: str) -> Loader | None:
    """The loader of a config's `source`: a registered prefix, else a JSONL path; None when it is neither."""
    entry = next((e for e in SOURCES.items() if source.startswith(e.name)), None)
    if entry is not None:
        return entry.target  # type: ignore[return-value]
    if source.endswith((".jsonl", ".json")) or "/" in source:
        return _load_jsonl_path
    return None


JSONL_FIELDS = {"id", "prompt", "expected", "system", "options", "meta"}


class JsonNumber(float):
    """A JSON number with a fraction or exponent, as written in the file: `str()` gives the text back (a gold
    `3.10` stays "3.10", not "3.1"); arithmetic and comparisons use the value."""
    raw: str

    def __new__(cls, text: str) -> "JsonNumber":
        obj = super().__new__(cls, text)
        obj.raw = text
        return obj

    def __str__(self) -> str:
        return self.raw

    def __reduce__(self) -> Any:
        return (JsonNumber, (self.raw,))


def as_written(value: Any) -> str:
    """A gold answer as text the way the dataset wrote it: JSON literals stay JSON (`true`, `null`, `3.10`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (NaN and Infinity are refused)")


def parse_jsonl(text: str, where: str) -> list[Task]:
    """One task per line. Lines are split on "\n" only (JSON Lines): a raw U+2028, form feed or vertical tab
    inside a string is data, not a line break."""
    tasks: list[Task] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        loc = f"{where}:{lineno}"
        try:
            obj = json.loads(line, parse_float=JsonNumber, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{loc}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:
            raise DatasetError(f"{loc}: not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{loc}: expected a JSON object, got {type(obj).__name__}")
        problem = find_problem(obj)
        if problem is not None:
            raise DatasetError(f"{loc}: field '{problem.field()}': {problem.reason}")
        for name in ("id", "prompt"):
            if name not in obj:
                raise DatasetError(f"{loc}: field '{name}' is missing")
        if not isinstance(obj["prompt"], str) or not obj["prompt"].strip():
            raise DatasetError(f"{loc}: field 'prompt' must be a non-empty string")
        if not isinstance(obj["id"], (str, int)):
            raise DatasetError(f"{loc}: field 'id' must be a string or an integer")
        unknown = set(obj) - JSONL_FIELDS
        if unknown:
            raise DatasetError(f"{loc}: unknown field(s) {sorted(unknown)}; allowed: {sorted(JSONL_FIELDS)}")
        for name in ("options", "meta"):
            if name in obj and not isinstance(obj[name], dict):
                raise DatasetError(f"{loc}: field '{name}' must be an object")
        if obj.get("system") is not None and not isinstance(obj["system"], str):
            raise DatasetError(f"{loc}: field 'system' must be a string (or null)")
        tid = str(obj["id"])
        if tid in seen:
            raise DatasetError(f"{loc}: field 'id': duplicate id {tid!r}")
        seen.add(tid)
        tasks.append(Task(id=tid, prompt=obj["prompt"], expected=obj.get("expected"),
                          system=obj.get("system"), options=obj.get("options") or {}, meta=obj.get("meta") or {}))
    if not tasks:
        raise DatasetError(f"{where}: no tasks")
    return tasks


def _load_builtin(source: str, cfg: DatasetConfig, base_dir: Path) -> list[Task]:
    name = source.split(":", 1)[1]
    path = resources.files(__package__).joinpath("builtin", f"{name}.jsonl")
    if not path.is_file():
        available = sorted(p.name[:-6] for p in resources.files(__package__).joinpath("builtin").iterdir()
                           if p.name.endswith(".jsonl"))
        raise DatasetError(f"dataset {cfg.name!r}: no built-in set {name!r}; available: {available}")
    return parse_jsonl(path.read_text(encoding="utf-8"), f"builtin:{name}")


def read_source_file(source_path: str, cfg: DatasetConfig, base_dir: Path) -> tuple[Path, str]:
    """Read a dataset file named in the config (relative to the config's folder), with a clear error."""
    path = Path(source_path)
    if not path.is_absolute():
        path = base_dir / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"dataset {cfg.name!r}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return path, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: dataset {cfg.name!r}: not UTF-8 text (byte 0x{data[exc.start]:02x} "
                           f"at offset {exc.start}); is it a binary file?") from None


def _load_jsonl_path(source: str, cfg: DatasetConfig, base_dir: Path) -> list[Task]:
    path, text = read_source_file(source, cfg, base_dir)
    return parse_jsonl(text, str(path))


register_source("builtin:", _load_builtin)


def load_dataset(cfg: DatasetConfig, base_dir: Path) -> list[Task]:
    """Load, then select by `ids` (in the order given) and `limit`."""
    loader = loader_for(cfg.source)
    if loader is None:
        raise DatasetError(f"dataset {cfg.name!r}: unknown source {cfg.source!r} "
                           f"(use builtin:NAME, a .jsonl path, or one of {SOURCES.names()})")
    tasks = loader(cfg.source, cfg, base_dir)
    if cfg.ids:
        by_id = {t.id: t for t in tasks}
        missing = [i for i in cfg.ids if i not in by_id]
        if missing:
            raise DatasetError(f"dataset {cfg.name!r}: ids not in {cfg.source}: {missing[:5]}")
        tasks = [by_id[i] for i in cfg.ids]
    if cfg.limit:
        tasks = tasks[: cfg.limit]
    return tasks


# Loaders that register themselves for their `source` prefix (imported last: they import this module).
from . import hf, humaneval, squad  # noqa: E402,F401
