import subprocess

import pytest

from benchwatch.config import ConfigError, load_config, parse_config
from tests.conftest import PYTHON, cli_env

GOOD = {"models": [{"name": "m", "backend": "scripted"}],
        "datasets": [{"name": "d", "source": "builtin:facts", "evaluator": "exact_match"}]}


def test_defaults_fill_in():
    cfg = parse_config(GOOD)
    assert cfg.runner.cooling_s == 5 and cfg.runner.attempts == 2 and cfg.store.startswith("sqlite:///")
    assert cfg.server.token_env == "BENCHWATCH_TOKEN"


def test_example_config_is_valid():
    from tests.conftest import ROOT
    cfg = load_config(ROOT / "config.example.yaml")
    assert [m.name for m in cfg.models] == ["smollm2"]


@pytest.mark.parametrize("raw, path, words", [
    ({**GOOD, "runner": {"cooling_s": -1}}, "runner.cooling_s", "greater than or equal"),
    ({**GOOD, "models": [{"name": "m", "backend": "nope"}]}, "models[0](m).backend", "unknown backend 'nope'; expected one of: embedded, ollama, openai, reference, scripted"),
    ({**GOOD, "runner": {"atempts": 3}}, "runner.atempts", "unknown field"),
    ({**GOOD, "models": []}, "models", "at least 1"),
    ({**GOOD, "server": {"bus": "localhost:6379"}}, "server.bus", "expected a Redis URL"),
    ({"datasets": GOOD["datasets"]}, "models", "Field required"),
    ({**GOOD, "datasets": [GOOD["datasets"][0], GOOD["datasets"][0]]}, "(top level)", "duplicate"),
])
def test_errors_name_the_field(raw, path, words):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, "cfg.yaml")
    msg = str(exc.value)
    assert msg.startswith("cfg.yaml: invalid configuration")
    assert path in msg and words in msg


def test_bad_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("models:\n  - {name: m, backend: scripted\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(p) in str(exc.value) and "not valid YAML" in str(exc.value)


def test_cli_bad_config_exits_2_without_traceback(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("models:\n  - {name: m, backend: embedded, n_ctx: tiny}\ndatasets: [{name: d, source: builtin:facts}]\n")
    proc = subprocess.run([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(p)], capture_output=True,
                          text=True, env=cli_env(), timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(p) in proc.stderr and "models[0](m).n_ctx" in proc.stderr


def test_cli_missing_config_file(tmp_path):
    proc = subprocess.run([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(tmp_path / "nope.yaml")],
                          capture_output=True, text=True, env=cli_env(), timeout=60)
    assert proc.returncode == 2 and "cannot read config" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_serve_several_workers_need_a_bus(tmp_path):
    res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "serve", "--workers", "2", "--port", "0",
                          "--log-dir", str(tmp_path)], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "event bus" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "serve", "--bus", "http://x", "--port", "0",
                          "--log-dir", str(tmp_path)], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "expected a Redis URL" in res.stderr and "Traceback" not in res.stderr
