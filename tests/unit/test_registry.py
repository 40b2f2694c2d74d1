"""One registry idiom (benchwatch/registry.py) for backends, evaluators and dataset sources; config validation
derived from it: the names a config may use, and the options a backend reads itself."""
from __future__ import annotations

import subprocess
import sys

import pytest

from benchwatch.backends import BACKENDS, Backend
from benchwatch.config import ConfigError, parse_config
from benchwatch.datasets import SOURCES
from benchwatch.evaluators import EVALUATORS
from benchwatch.registry import Registry
from tests.conftest import ROOT, cli_env

DATASET = {"name": "d", "source": "builtin:facts"}


def refused(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, "cfg.yaml")
    return str(exc.value)


def test_the_allowed_names_come_from_the_registries():
    assert BACKENDS.names() == ["embedded", "ollama", "openai", "reference", "scripted"]
    assert {"exact_match", "contains", "regex", "numeric", "extractive_qa", "code_execution"} <= set(
        EVALUATORS.names())
    assert {"builtin:", "humaneval", "squad:"} <= set(SOURCES.names())
    msg = refused({"models": [{"name": "m", "backend": "scripted"}], "datasets": [{**DATASET, "evaluator": "exat"}]})
    assert "datasets[0](d).evaluator" in msg and "unknown evaluator 'exat'; expected one of: " in msg
    assert ", ".join(EVALUATORS.names()) in msg
    msg = refused({"models": [{"name": "m", "backend": "scripted"}],
                   "datasets": [{"name": "d", "source": "hugging:thing"}]})
    assert "datasets[0](d).source" in msg and "unknown source 'hugging:thing'" in msg and "builtin:" in msg


def test_a_backends_own_options_are_checked_by_its_declared_model():
    msg = refused({"models": [{"name": "m", "backend": "scripted", "options": {"chnk": 3}}], "datasets": [DATASET]})
    assert "models[0](m)" in msg and "backend 'scripted': unknown option 'chnk'; its options: answers," in msg
    msg = refused({"models": [{"name": "m", "backend": "scripted", "options": {"chunk": 0}}], "datasets": [DATASET]})
    assert "backend 'scripted': option 'chunk': Input should be greater than or equal to 1" in msg
    msg = refused({"models": [{"name": "m", "backend": "reference", "options": {"token_delay_s": "soon"}}],
                   "datasets": [DATASET]})
    assert "backend 'reference': option 'token_delay_s'" in msg
    # Options an engine takes as they are (llama.cpp's, Ollama's model options) pass through.
    cfg = parse_config({"models": [{"name": "o", "backend": "ollama", "options": {"num_gpu": 1, "top_k": 5}}],
                        "datasets": [DATASET]})
    assert cfg.models[0].options == {"num_gpu": 1, "top_k": 5}


def test_knowing_the_backend_names_imports_no_backend():
    code = ("import sys\nfrom benchwatch.config import parse_config\n"
            "parse_config({'models': [{'name': 'o', 'backend': 'ollama'}, {'name': 'e', 'backend': 'embedded'}],"
            " 'datasets': [{'name': 'd', 'source': 'builtin:facts'}]})\n"
            "loaded = [m for m in sys.modules if m.startswith('benchwatch.backends.') or m in ('httpx', 'llama_cpp')]\n"
            "print(sorted(loaded))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['benchwatch.backends.base']"


def test_optional_backend_capabilities_are_declared_not_probed():
    runner_source = "".join(p.read_text() for p in (ROOT / "benchwatch" / "runner").glob("*.py"))
    assert "def _attempt" in runner_source  # the attempt code is read too
    assert "hasattr(" not in runner_source and "getattr(backend" not in runner_source
    for name in BACKENDS.names():
        cls = BACKENDS.get(name)
        assert Backend in cls.__mro__ and callable(cls.set_task), name  # the protocol's default, or its own


def test_a_registry_names_what_it_has_and_an_entry_that_cannot_load_says_so():
    reg: Registry[type] = Registry("widget")
    reg.add("spinner", "benchwatch.no_such_module:Spinner")

    @reg.register("gear")
    class Gear:
        pass

    assert reg.names() == ["gear", "spinner"] and Gear.name == "gear" and reg.get("gear") is Gear
    with pytest.raises(ValueError, match="unknown widget 'cog'; expected one of: gear, spinner"):
        reg.check_name("cog")
    with pytest.raises(ModuleNotFoundError):
        reg.get("spinner")
    assert reg.check_options("gear", {"anything": 1}) == {"anything": 1}  # no options model: its own business
