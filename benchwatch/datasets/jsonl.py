"""JSON Lines datasets: a user's file (relative to the config's folder) and the built-in sets shipped in
benchwatch/datasets/builtin/."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import DatasetConfig
from ..safe_data import find_problem
from .task import DatasetError, JsonNumber, Task

JSONL_FIELDS = {"id", "prompt", "expected", "system", "options", "meta"}


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


def load_builtin(source: str, cfg: DatasetConfig, base_dir: Path) -> list[Task]:
    name = source.split(":", 1)[1]
    path = resources.files("benchwatch.datasets").joinpath("builtin", f"{name}.jsonl")
    if not path.is_file():
        available = sorted(p.name[:-6] for p in resources.files("benchwatch.datasets").joinpath("builtin").iterdir()
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


def load_jsonl_path(source: str, cfg: DatasetConfig, base_dir: Path) -> list[Task]:
    path, text = read_source_file(source, cfg, base_dir)
    return parse_jsonl(text, str(path))
