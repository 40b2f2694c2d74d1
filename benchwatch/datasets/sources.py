"""Where a dataset comes from: the registry of `source` prefixes, and loading one dataset of the config."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..config import DatasetConfig
from ..registry import Registry
from .jsonl import load_builtin, load_jsonl_path
from .task import DatasetError, Task

Loader = Callable[[str, DatasetConfig, Path], list[Task]]
# Source prefixes -> loaders. JSON Lines sets are built in; the other source modules (humaneval, squad:, hf:)
# register themselves when the package is imported (datasets/__init__.py).
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
        return load_jsonl_path
    return None


register_source("builtin:", load_builtin)


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
