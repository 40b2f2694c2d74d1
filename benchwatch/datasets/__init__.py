"""Datasets: a task is (id, prompt, expected, evaluator options). Sources are chosen by the config's `source`:

- `builtin:NAME`        a JSONL set shipped in benchwatch/datasets/builtin/
- `path/to/file.jsonl`  a user's JSONL file (relative to the config file's folder)
- other prefixes        registered in SOURCES (benchwatch/registry.py) by `register_source` (humaneval, squad:, hf:)
"""
from .jsonl import parse_jsonl, read_source_file
from .sources import SOURCES, Loader, load_dataset, loader_for, register_source
from .task import DatasetError, JsonNumber, Task, as_written

# Sources that register themselves for their `source` prefix when imported.
from . import hf, humaneval, squad  # noqa: E402,F401  (after the names above: they import them)

__all__ = ["SOURCES", "DatasetError", "JsonNumber", "Loader", "Task", "as_written", "load_dataset", "loader_for",
           "parse_jsonl", "read_source_file", "register_source"]
