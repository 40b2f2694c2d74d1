"""Shared fixtures. Tests run against real parts: a real SQLite file, the real embedded model, real servers."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config dict to tmp_path/config.yaml (store in tmp_path) and return its path."""
    def write(cfg: dict, name: str = "config.yaml") -> Path:
        cfg = dict(cfg)
        cfg.setdefault("store", f"sqlite:///{tmp_path / 'bench.db'}")
        path = tmp_path / name
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path
    return write


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("COLUMNS", "160")
    return env
