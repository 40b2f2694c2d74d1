"""Hugging Face datasets: `source: hf:REPO_ID` (the Hub, or its cache offline) or `source: hf:PATH` (a local
folder in the Hub's layout: parquet / JSON / CSV files, with or without one sub-folder per configuration).

Read with the `datasets` library in streaming mode: rows are pulled one at a time, so `limit: 50` on a
100,000-row split reads about 50 rows, never the whole split. Each row becomes a task through the dataset's
Jinja2 templates (benchwatch/datasets/templates.py); `meta` keeps the row's columns.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from ..config import DatasetConfig
from .sources import register_source
from .task import DatasetError, Task
from .templates import RowTemplates, TemplateError


def local_folder(target: str, base_dir: Path) -> Path | None:
    """The local folder `target` names (relative to the config's folder), or None for a Hub repository id."""
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.is_dir():
        return path
    if target.startswith(("./", "../", "/", "~")) or path.exists():
        raise DatasetError(f"no folder {path} (hf:PATH reads a folder in the Hub's layout)")
    return None


def _declares_configs(folder: Path) -> bool:
    """A dataset card (README.md) whose YAML header lists its configurations, as the Hub's repositories do."""
    card = folder / "README.md"
    try:
        return card.is_file() and "config_name:" in card.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def open_rows(target: str, cfg: DatasetConfig, base_dir: Path) -> Iterator[dict[str, Any]]:
    """The split's rows as a stream (the `datasets` library's IterableDataset)."""
    try:
        import datasets
    except ImportError:
        raise DatasetError("hf: sources need the 'datasets' package (pip install datasets)") from None
    kwargs: dict[str, Any] = {"split": cfg.hf.split, "streaming": True}
    folder = local_folder(target, base_dir)
    if folder is not None:
        if cfg.hf.revision:
            raise DatasetError(f"hf.revision applies to Hub repositories; {folder} is a local folder")
        config = cfg.hf.config
        if config and (folder / config).is_dir() and not _declares_configs(folder):
            kwargs["data_dir"] = config  # a sub-folder per configuration, no dataset card naming them
        elif config:
            kwargs["name"] = config
        path = str(folder)
    else:
        path = target
        if cfg.hf.config:
            kwargs["name"] = cfg.hf.config
        if cfg.hf.revision:
            kwargs["revision"] = cfg.hf.revision
    return iter(datasets.load_dataset(path, **kwargs))


def load_hf(source: str, cfg: DatasetConfig, base_dir: Path) -> list[Task]:
    target = source.split(":", 1)[1].strip()
    where = f"dataset {cfg.name!r} ({source}, " + (f"config {cfg.hf.config}, " if cfg.hf.config else "") + \
        f"split {cfg.hf.split})"
    if not target:
        raise DatasetError(f"{where}: name a Hub repository (hf:OWNER/NAME) or a local folder (hf:./PATH)")
    if not cfg.prompt:
        raise DatasetError(f"{where}: field 'prompt' (a Jinja2 template over the row's columns) is required "
                           f"for hf: sources unless a preset gives it")
    try:
        templates = RowTemplates.compile(cfg.prompt, cfg.expected, cfg.id, cfg.system, cfg.meta)
    except TemplateError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    wanted = set(cfg.ids or ())
    tasks: list[Task] = []
    seen: set[str] = set()
    index = -1
    try:
        rows = open_rows(target, cfg, base_dir)
        for index, row in enumerate(rows):
            try:
                parts = templates.render(index, row)
            except TemplateError as exc:
                raise DatasetError(f"{where}, row {index}: {exc}") from None
            if not parts["prompt"].strip():
                raise DatasetError(f"{where}, row {index}: field 'prompt': the template rendered an empty prompt")
            tid = parts["id"]
            if tid in seen:
                raise DatasetError(f"{where}, row {index}: field 'id': duplicate id {tid!r}")
            seen.add(tid)
            if wanted and tid not in wanted:
                continue
            tasks.append(Task(id=tid, prompt=parts["prompt"], expected=parts["expected"], system=parts["system"],
                              meta={**row, **parts["meta"]}))
            if (wanted and len(tasks) == len(wanted)) or (not wanted and cfg.limit and len(tasks) >= cfg.limit):
                break  # stop reading: the rest of the split is never pulled
    except DatasetError:
        raise
    except Exception as exc:  # the library's own errors: no such repository, split or config; offline; bad file
        at = f", row {index + 1}" if index >= 0 else ""
        hint = ""
        if isinstance(exc, ConnectionError) and not os.environ.get("HF_HUB_OFFLINE"):
            hint = " (no network? HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 read an earlier download from the cache)"
        raise DatasetError(f"{where}{at}: {type(exc).__name__}: {exc}{hint}") from None
    if not tasks and not wanted:
        raise DatasetError(f"{where}: the split has no rows")
    return tasks


register_source("hf:", load_hf)
