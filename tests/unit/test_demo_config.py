"""The bundled demo's configuration: its own task files load from any current directory, and it is built to be
watched (long answers from a real model, a second model, several datasets)."""
from __future__ import annotations

import os
from pathlib import Path

from benchwatch.datasets import load_dataset
from benchwatch.demo import DEMO_CONFIG, demo_config


def test_demo_datasets_load_from_any_directory(tmp_path: Path):
    old = os.getcwd()
    os.chdir(tmp_path)  # a new user runs the demo from wherever they are
    try:
        cfg = demo_config()
        sizes = {d.name: len(load_dataset(d, cfg.base_dir)) for d in cfg.datasets}
        assert cfg.store == f"sqlite:///{tmp_path.resolve() / 'benchwatch.db'}"  # the store stays in the cwd
    finally:
        os.chdir(old)
    assert all(n > 0 for n in sizes.values()), sizes
    for d in cfg.datasets:
        if d.source.endswith(".jsonl"):
            assert Path(d.source).is_relative_to(DEMO_CONFIG.parent)


def test_demo_store_override_and_shape():
    cfg = demo_config("sqlite:////tmp/x.db")
    assert cfg.store == "sqlite:////tmp/x.db"
    assert [m.backend for m in cfg.models] == ["embedded", "reference"]
    assert len(cfg.datasets) >= 3 and cfg.runner.cooling_s > 0  # the Cooling stage shows
    assert cfg.runner.max_tokens >= 128  # answers long enough to watch stream
