"""The real `benchwatch` command in its own process: SIGINT when started with SIGINT ignored (a shell's
background job), a closed pipe on an output command, a config that isn't UTF-8. Exit codes as docs/cli.md says."""
from __future__ import annotations

import json
import signal
import subprocess
import time

import yaml

from benchwatch.store import Store
from tests.conftest import PYTHON, cli_env


def _config(tmp, n_tasks: int = 300, token_delay_s: float = 0.0):
    lines = [json.dumps({"id": f"t{i}", "prompt": f"question {i} " + "x" * 200, "expected": "42"})
             for i in range(n_tasks)]
    (tmp / "d.jsonl").write_text("\n".join(lines) + "\n")
    cfg = {"store": f"sqlite:///{tmp / 'bench.db'}", "runner": {"cooling_s": 0, "attempts": 1},
           "models": [{"name": "m", "backend": "scripted",
                       "options": {"answers": {"*": "42"}, "token_delay_s": token_delay_s}}],
           "datasets": [{"name": "d", "source": "d.jsonl"}]}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cli(*args: str, **kw):
    return subprocess.run([PYTHON, "-m", "benchwatch.cli", *args], env=cli_env(), capture_output=True, text=True,
                          timeout=120, **kw)


def test_sigint_stops_a_run_started_with_sigint_ignored(tmp_path):
    cfg = _config(tmp_path, n_tasks=50, token_delay_s=0.05)
    proc = subprocess.Popen([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg), "--no-publish"],
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        store = Store(f"sqlite:///{tmp_path / 'bench.db'}")
        deadline = time.time() + 60
        while time.time() < deadline:
            run_id = store.latest_run_id()
            if run_id and store.results(run_id):
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "resume with" in err
    assert store.get_run(run_id)["status"] == "interrupted"


def test_output_commands_meet_a_closed_pipe_quietly(tmp_path):
    cfg = _config(tmp_path)
    res = _cli("run", "--config", str(cfg), "--no-publish")
    assert res.returncode == 0, res.stderr
    for args in (["results", "--format", "json"], ["export", "--format", "jsonl"], ["export", "--format", "csv"]):
        proc = subprocess.Popen([PYTHON, "-m", "benchwatch.cli", *args, "--config", str(cfg)], env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = proc.stdout.readline()  # like `| head -1`: read a line, then hang up
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert first and proc.returncode == 0, (args, err)
        assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, (args, err)


def test_config_that_is_not_utf8_exits_2_naming_file_and_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"models:\n  - name: caf\xe9\n    backend: scripted\n")
    res = _cli("run", "--config", str(path))
    assert res.returncode == 2 and f"{path}:2: not UTF-8 text" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr


def test_exit_3_when_tasks_errored_and_4_under_fail_under(tmp_path):
    cfg = yaml.safe_load(_config(tmp_path, n_tasks=4).read_text())
    cfg["models"][0]["options"]["fail_times"] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = _cli("run", "--config", str(path), "--no-publish")
    assert res.returncode == 3 and "1 of 4 tasks ended in ERROR" in res.stderr
    cfg["models"][0]["options"] = {"answers": {"question 1 ": "42", "*": "no"}}
    path.write_text(yaml.safe_dump(cfg))
    res = _cli("run", "--config", str(path), "--no-publish", "--fail-under", "0.5")
    assert res.returncode == 4 and "below --fail-under 0.5" in res.stderr
