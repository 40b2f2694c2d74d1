"""The CLI and the dataset loaders as a careless user and a fuzzer would meet them: every bad config, flag,
environment override and dataset line exits 2 with a message naming the file:line, the field, the flag or the
variable, and no traceback; nothing is written to the store.

`benchwatch.cli.main` runs in-process (the same function the command runs) for the ~100 cases; a few cases that
need a real process (SIGINT, a closed pipe, a config that isn't UTF-8 read by the real command) are in
tests/integration/test_cli_process.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchwatch import cli
from benchwatch.store import Store

GOOD_MODEL = {"name": "m", "backend": "scripted", "options": {"answers": {"*": "Paris"}}}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("BENCHWATCH_"):
            monkeypatch.delenv(name)
    return tmp_path


def _good(tmp: Path) -> dict:
    return {"store": f"sqlite:///{tmp / 'bench.db'}", "runner": {"cooling_s": 0},
            "models": [GOOD_MODEL], "datasets": [{"name": "facts", "source": "builtin:facts", "limit": 1}]}


def _runs(tmp: Path) -> int:
    db = tmp / "bench.db"
    return len(Store(f"sqlite:///{db}").list_runs()) if db.exists() else 0


def _main(capsys, argv: list[str]) -> tuple[int, str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return code, " ".join(out.err.split())  # rich wraps long lines: compare on one line


# ---- config files: (case id, YAML text with {db} for the store, words the message must hold)
HEAD = "store: sqlite:///{db}\nmodels:\n  - name: m\n    backend: scripted\n"
DS = "datasets:\n  - name: facts\n    source: builtin:facts\n"
CONFIGS = [
    ("cooling-inf", HEAD + DS + "runner:\n  cooling_s: .inf\n", ":9: runner.cooling_s: not a finite number"),
    ("cooling-nan", HEAD + DS + "runner:\n  cooling_s: .nan\n", ":9: runner.cooling_s: not a finite number"),
    ("cooling-neg", HEAD + DS + "runner:\n  cooling_s: -1\n", ":9: runner.cooling_s: Input should be greater"),
    ("cooling-huge", HEAD + DS + "runner:\n  cooling_s: 1e9\n", ":9: runner.cooling_s: Input should be less"),
    ("cooling-text", HEAD + DS + "runner:\n  cooling_s: soon\n", ":9: runner.cooling_s: Input should be a valid"),
    ("timeout-neg", HEAD + DS + "runner:\n  task_timeout_s: -1\n", ":9: runner.task_timeout_s: Input should be"),
    ("timeout-zero", HEAD + DS + "runner:\n  task_timeout_s: 0\n", ":9: runner.task_timeout_s: Input should be"),
    ("attempts-zero", HEAD + DS + "runner:\n  attempts: 0\n", ":9: runner.attempts: Input should be greater"),
    ("attempts-float", HEAD + DS + "runner:\n  attempts: 1.5\n", ":9: runner.attempts: Input should be a valid"),
    ("max-tokens-huge", HEAD + DS + "runner:\n  max_tokens: 99999999999\n", ":9: runner.max_tokens:"),
    ("temperature-inf", HEAD + DS + "runner:\n  temperature: -.inf\n", ":9: runner.temperature: not a finite"),
    ("seed-neg", HEAD + DS + "runner:\n  seed: -5\n", ":9: runner.seed: Input should be greater"),
    ("coalesce-neg", HEAD + DS + "runner:\n  coalesce_ms: -1\n", ":9: runner.coalesce_ms:"),
    ("system-not-string", HEAD + DS + "runner:\n  system_prompt: [a, b]\n", ":9: runner.system_prompt:"),
    ("unknown-runner-field", HEAD + DS + "runner:\n  atempts: 3\n", ":9: runner.atempts: unknown field"),
    ("port-big", HEAD + DS + "server:\n  port: 70000\n", ":9: server.port: Input should be less"),
    ("port-neg", HEAD + DS + "server:\n  port: -1\n", ":9: server.port: Input should be greater"),
    ("heartbeat-zero", HEAD + DS + "server:\n  heartbeat_s: 0\n", ":9: server.heartbeat_s:"),
    ("streams-zero", HEAD + DS + "server:\n  max_streams: 0\n", ":9: server.max_streams:"),
    ("ring-zero", HEAD + DS + "server:\n  ring_size: 0\n", ":9: server.ring_size:"),
    ("write-timeout-neg", HEAD + DS + "server:\n  write_timeout_s: -1\n", ":9: server.write_timeout_s:"),
    ("thermal-order", HEAD + DS + "server:\n  thermal_warm_c: 90\n  thermal_hot_c: 80\n", "server: thermal_warm_c (90) must be below"),
    ("server-url", HEAD + DS + "server:\n  url: localhost:8765\n", ":9: server.url: String should match"),
    ("token-env-bad", HEAD + DS + "server:\n  token_env: 'A B'\n", ":9: server.token_env:"),
    ("bus-not-redis", HEAD + DS + "server:\n  bus: http://x\n", ":9: server.bus: expected a Redis"),
    ("store-not-url", "store: not-a-url\nmodels:\n  - {name: m, backend: scripted}\n" + DS,
     ":1: store: not a database URL"),
    ("store-mysql", "store: mysql://u@h/db\nmodels:\n  - {name: m, backend: scripted}\n" + DS,
     ":1: store: unsupported database 'mysql'"),
    ("backend-unknown", "store: sqlite:///{db}\nmodels:\n  - name: m\n    backend: nope\n" + DS,
     ":4: models[0](m).backend: unknown backend 'nope'; expected one of"),
    ("n-ctx-small", HEAD + "    n_ctx: 1\n" + DS, ":5: models[0](m).n_ctx: Input should be greater"),
    ("n-threads-zero", HEAD + "    n_threads: 0\n" + DS, ":5: models[0](m).n_threads:"),
    ("model-option-nan", HEAD + "    options: {temperature: .nan}\n" + DS,
     ":5: models[0](m).options.temperature: not a finite number"),
    ("model-name-empty", "store: sqlite:///{db}\nmodels:\n  - name: ''\n    backend: scripted\n" + DS,
     ":3: models[0].name: String should have at least 1"),
    ("no-models", "store: sqlite:///{db}\nmodels: []\n" + DS, ":2: models: List should have at least 1"),
    ("no-datasets", HEAD, "datasets: Field required"),
    ("dup-key-top", HEAD + DS + "store: sqlite:///x.db\n", ":8: store: duplicate key 'store' (first given at line 1)"),
    ("dup-key-model", HEAD + "    name: m2\n" + DS, ":5: models[0].name: duplicate key 'name'"),
    ("dup-key-runner", HEAD + DS + "runner:\n  cooling_s: 1\n  cooling_s: 2\n", ":10: runner.cooling_s: duplicate key"),
    ("dup-names", HEAD + "  - name: m\n    backend: scripted\n" + DS, "models: duplicate name(s)"),
    ("surrogate-name", "store: sqlite:///{db}\nmodels:\n  - name: \"\\ud800\"\n    backend: scripted\n" + DS,
     ":3: models[0].name: not valid Unicode: lone surrogate U+D800"),
    ("surrogate-system", HEAD + DS + "runner:\n  system_prompt: \"a\\udfffb\"\n",
     ":9: runner.system_prompt: not valid Unicode: lone surrogate U+DFFF"),
    ("not-yaml", HEAD + DS + "runner: [\n", "not valid YAML"),
    ("tab-indent", HEAD + "\tname: x\n", "not valid YAML"),
    ("python-tag", HEAD + DS + "runner: !!python/object:os.system {}\n", "not valid YAML"),
    ("top-list", "- a\n- b\n", "expected a mapping at the top level"),
    ("top-scalar", "hello\n", "expected a mapping at the top level"),
    ("empty-file", "", "expected a mapping at the top level, got NoneType"),
    ("recursive-alias", "a: &x [*x]\n" + HEAD + DS, "a: unknown field"),
    ("limit-zero", HEAD + "datasets:\n  - {name: facts, source: builtin:facts, limit: 0}\n",
     ":6: datasets[0](facts).limit: Input should be greater"),
    ("evaluator-unknown", HEAD + "datasets:\n  - {name: facts, source: builtin:facts, evaluator: exactish}\n",
     "datasets[0](facts).evaluator: unknown evaluator 'exactish'"),
    ("evaluator-opt-type", HEAD + "datasets:\n  - {name: a, source: builtin:arithmetic, evaluator: numeric, "
     "options: {abs_tol: x}}\n", "datasets[0](a).options: evaluator 'numeric': bad options"),
    ("evaluator-opt-neg", HEAD + "datasets:\n  - {name: a, source: builtin:arithmetic, evaluator: numeric, "
     "options: {abs_tol: -1}}\n", "datasets[0](a).options: evaluator 'numeric': option abs_tol: -1 must be"),
    ("evaluator-opt-unknown", HEAD + "datasets:\n  - {name: f, source: builtin:facts, options: {colour: red}}\n",
     "datasets[0](f).options: evaluator 'exact_match': bad options"),
    ("threshold-out", HEAD + "datasets:\n  - {name: r, source: builtin:reading, evaluator: extractive_qa, "
     "options: {threshold: 2}}\n", "datasets[0](r).options: evaluator 'extractive_qa'"),
    ("timeout-opt-neg", HEAD + "datasets:\n  - {name: r, source: builtin:reading, evaluator: extractive_qa, "
     "options: {timeout_s: -1}}\n", "option timeout_s: -1 must be above 0"),
]


@pytest.mark.parametrize("case, text, words", [pytest.param(*c, id=c[0]) for c in CONFIGS])
def test_bad_config_exits_2_naming_the_place(env, capsys, case, text, words):
    cfg = env / "config.yaml"
    cfg.write_text(text.replace("{db}", str(env / "bench.db")), encoding="utf-8")
    code, err = _main(capsys, ["run", "--config", str(cfg), "--no-publish"])
    assert code == 2, err
    assert str(cfg) in err and words in err, err
    assert _runs(env) == 0


# ---- flags and environment overrides: (case, argv after the config, env, words)
FLAGS = [
    ("cooling-nan", ["run", "--cooling", "nan"], {}, "--cooling 'nan': Input should be a finite number"),
    ("cooling-inf", ["run", "--cooling", "inf"], {}, "--cooling 'inf': Input should be a finite number"),
    ("cooling-neg", ["run", "--cooling", "-1"], {}, "--cooling '-1': Input should be greater than or equal to 0"),
    ("cooling-text", ["run", "--cooling", "soon"], {}, "--cooling 'soon': Input should be a valid number"),
    ("fail-under-big", ["run", "--fail-under", "80"], {}, "--fail-under '80': Input should be less than or equal"),
    ("fail-under-nan", ["run", "--fail-under", "nan"], {}, "--fail-under 'nan': Input should be a finite"),
    ("server-url", ["run", "--server-url", "ftp://x"], {}, "--server-url 'ftp://x': String should match"),
    ("serve-port-big", ["serve", "--port", "70000"], {}, "--port '70000': Input should be less than or equal"),
    ("serve-port-neg", ["serve", "--port", "-1"], {}, "--port '-1': Input should be greater than or equal to 0"),
    ("serve-port-text", ["serve", "--port", "http"], {}, "--port 'http': Input should be a valid integer"),
    ("serve-heartbeat-0", ["serve", "--heartbeat", "0"], {}, "--heartbeat '0': Input should be greater than"),
    ("serve-heartbeat-nan", ["serve", "--heartbeat", "nan"], {}, "--heartbeat 'nan': Input should be a finite"),
    ("serve-ring-0", ["serve", "--ring-size", "0"], {}, "--ring-size '0': Input should be greater than or equal"),
    ("serve-ring-neg", ["serve", "--ring-size", "-1"], {}, "--ring-size '-1': Input should be greater than"),
    ("serve-write-neg", ["serve", "--write-timeout", "-1"], {}, "--write-timeout '-1': Input should be greater"),
    ("serve-workers-0", ["serve", "--workers", "0"], {}, "--workers '0': Input should be greater than or equal"),
    ("serve-bus", ["serve", "--bus", "http://x"], {}, "--bus 'http://x': expected a Redis URL"),
    ("serve-store", ["serve", "--store", "not-a-url"], {}, "--store 'not-a-url': not a database"),
    ("serve-store-dir", ["serve", "--store", "sqlite:////nonexistent/dir/x.db"], {},
     "store: cannot open sqlite:////nonexistent/dir/x.db: unable to open database file"),
    ("env-cooling", ["run"], {"BENCHWATCH_RUNNER_COOLING_S": "nan"},
     "$BENCHWATCH_RUNNER_COOLING_S 'nan': Input should be a finite number"),
    ("env-port", ["serve"], {"BENCHWATCH_SERVER_PORT": "99999"}, "$BENCHWATCH_SERVER_PORT '99999': Input should"),
    ("env-store", ["run"], {"BENCHWATCH_STORE": "nope"}, "$BENCHWATCH_STORE 'nope': not a database"),
    ("env-attempts", ["run"], {"BENCHWATCH_RUNNER_ATTEMPTS": "0"}, "$BENCHWATCH_RUNNER_ATTEMPTS '0': Input should"),
    ("demo-port", ["demo", "--port", "70000"], {}, "--port '70000': Input should be less than or equal to 65535"),
    ("demo-delay", ["demo", "--delay", "-1"], {}, "--delay '-1': Input should be greater than or equal to 0"),
    ("demo-delay-inf", ["demo", "--delay", "inf"], {}, "--delay 'inf': Input should be a finite number"),
    ("results-store", ["results"], {"BENCHWATCH_STORE": "sqlite:////nonexistent/d/x.db"}, "store: cannot open"),
]


@pytest.mark.parametrize("case, argv, environ, words", [pytest.param(*c, id=c[0]) for c in FLAGS])
def test_bad_flag_or_variable_exits_2_naming_it(env, capsys, monkeypatch, case, argv, environ, words):
    cfg = env / "config.yaml"
    cfg.write_text(yaml.safe_dump(_good(env)))
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    extra = [] if argv[0] == "demo" else ["--config", str(cfg)]
    code, err = _main(capsys, argv + extra)
    assert code == 2, err
    assert words in err, err
    assert _runs(env) == 0


# ---- dataset files: (case, file bytes, words after "FILE:")
DATASETS = [
    ("surrogate-prompt", b'{"id": 1, "prompt": "a\\ud800b", "expected": "x"}\n',
     ":1: field 'prompt': not valid Unicode: lone surrogate U+D800"),
    ("surrogate-expected", b'{"id": 1, "prompt": "p", "expected": ["ok", "\\udc00"]}\n',
     ":1: field 'expected[1]': not valid Unicode"),
    ("surrogate-meta-deep", b'{"id": 1, "prompt": "p", "expected": "x"}\n{"id": 2, "prompt": "p", '
     b'"expected": "x", "meta": {"a": {"b": "\\ud83d"}}}\n', ":2: field 'meta.a.b': not valid Unicode"),
    ("nan-expected", b'{"id": 1, "prompt": "p", "expected": NaN}\n', ":1: not valid JSON: NaN is not a JSON"),
    ("inf-option", b'{"id": 1, "prompt": "p", "expected": 1, "options": {"threshold": Infinity}}\n',
     ":1: not valid JSON: Infinity is not a JSON"),
    ("huge-float", b'{"id": 1, "prompt": "p", "expected": 1e999}\n', ":1: field 'expected': not a finite number"),
    ("system-number", b'{"id": 1, "prompt": "p", "expected": "x", "system": 5}\n',
     ":1: field 'system' must be a string"),
    ("system-object", b'{"id": 1, "prompt": "p", "expected": "x", "system": {"a": 1}}\n', ":1: field 'system'"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", ":1: dataset 'd': not UTF-8 text"),
    ("latin1-line-3", b'{"id": 1, "prompt": "p", "expected": "x"}\n\n{"id": 2, "prompt": "caf\xe9"}\n',
     ":3: dataset 'd': not UTF-8 text"),
    ("bad-json-line-2", b'{"id": 1, "prompt": "p", "expected": "x"}\n{"id": 2,\n', ":2: not valid JSON"),
    ("not-object", b'[1, 2]\n', ":1: expected a JSON object, got list"),
    ("missing-prompt", b'{"id": 1}\n', ":1: field 'prompt' is missing"),
    ("empty-prompt", b'{"id": 1, "prompt": "  "}\n', ":1: field 'prompt' must be a non-empty string"),
    ("id-float", b'{"id": 1.5, "prompt": "p"}\n', ":1: field 'id' must be a string or an integer"),
    ("dup-id", b'{"id": 1, "prompt": "p"}\n{"id": "1", "prompt": "q"}\n', ":2: field 'id': duplicate id '1'"),
    ("unknown-field", b'{"id": 1, "prompt": "p", "answer": "x"}\n', ":1: unknown field(s) ['answer']"),
    ("options-list", b'{"id": 1, "prompt": "p", "options": [1]}\n', ":1: field 'options' must be an object"),
    ("deep-meta", b'{"id": 1, "prompt": "p", "meta": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}\n",
     ":1: field 'meta.a.a"),
    ("very-deep", b'{"id": 1, "prompt": "p", "meta": ' + b"[" * 100000 + b"]" * 100000 + b"}\n",
     ":1: not valid JSON"),
    ("u2028-is-data-then-bad-line", '{"id": 1, "prompt": "a\u2028b\u2029c\u0085e"}\n{"id": 2}\n'.encode(),
     ":2: field 'prompt' is missing"),
    ("only-comments", b"// nothing here\n\n", ": no tasks"),
]


@pytest.mark.parametrize("case, data, words", [pytest.param(*c, id=c[0]) for c in DATASETS])
def test_bad_dataset_exits_2_naming_file_and_line(env, capsys, case, data, words):
    (env / "d.jsonl").write_bytes(data)
    raw = _good(env)
    raw["datasets"] = [{"name": "d", "source": "d.jsonl"}]
    cfg = env / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    code, err = _main(capsys, ["run", "--config", str(cfg), "--no-publish"])
    assert code == 2, err
    assert f"{env / 'd.jsonl'}{words}" in err, err
    assert _runs(env) == 0


SQUAD = [
    ("squad-surrogate", {"data": [{"paragraphs": [{"context": "c\ud800", "qas": []}]}]},
     ": field 'data[0].paragraphs[0].context': not valid Unicode"),
    ("squad-nan", '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": 1, "question": "q", '
     '"answers": [{"text": "a", "answer_start": NaN}]}]}]}]}', ": field 'data[0].paragraphs[0].qas[0].answers"),
]


@pytest.mark.parametrize("case, data, words", [pytest.param(*c, id=c[0]) for c in SQUAD])
def test_bad_squad_file_exits_2_naming_the_field(env, capsys, case, data, words):
    text = data if isinstance(data, str) else json.dumps(data)
    (env / "s.json").write_text(text, encoding="utf-8")
    raw = _good(env)
    raw["datasets"] = [{"name": "s", "source": "squad:s.json", "evaluator": "extractive_qa"}]
    cfg = env / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    code, err = _main(capsys, ["run", "--config", str(cfg), "--no-publish"])
    assert code == 2, err
    assert f"{env / 's.json'}{words}" in err, err
    assert _runs(env) == 0


def test_a_valid_line_with_u2028_and_other_separators_inside_a_string_is_one_task(env):
    from benchwatch.datasets import parse_jsonl
    # Raw U+2028, U+2029 and U+0085 are legal inside a JSON string (str.splitlines would break the line there);
    # \v, \f and \x1c must be escaped in JSON, and are: they survive as data too.
    text = ('{"id": 1, "prompt": "a\u2028b\u2029c\u0085d\\u000be\\u000cf\\u001cg", "expected": "x"}\r\n'
            '{"id": 2, "prompt": "p"}')
    tasks = parse_jsonl(text, "f.jsonl")
    assert [t.id for t in tasks] == ["1", "2"]
    assert tasks[0].prompt == "a\u2028b\u2029c\u0085d\u000be\u000cf\u001cg"


def test_unknown_command_and_flag_exit_2(env, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--coolingg", "1"])
    assert exc.value.code == 2 and "--coolingg" in capsys.readouterr().err


def test_the_suite_has_at_least_60_cases():
    assert len(CONFIGS) + len(FLAGS) + len(DATASETS) + len(SQUAD) >= 60


# ---- exit codes of runs that finish
def _run(env, capsys, answers: dict, *extra: str, fail_times: int = 0) -> int:
    raw = _good(env)
    raw["runner"]["attempts"] = 1
    raw["models"] = [{"name": "m", "backend": "scripted", "options": {"answers": answers, "fail_times": fail_times}}]
    raw["datasets"] = [{"name": "facts", "source": "builtin:facts", "limit": 4}]
    cfg = env / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    code, _ = _main(capsys, ["run", "--config", str(cfg), "--no-publish", *extra])
    return code


def test_exit_0_when_every_task_passes_or_fails(env, capsys):
    assert _run(env, capsys, {"France": "Paris", "*": "no idea"}) == 0


def test_exit_3_when_some_tasks_errored(env, capsys):
    assert _run(env, capsys, {"*": "Paris"}, fail_times=1) == cli.EXIT_TASK_ERRORS


def test_fail_under_gates_on_the_pass_rate(env, capsys):
    assert _run(env, capsys, {"France": "Paris", "*": "no idea"}, "--fail-under", "0.25") == 0  # 1/4 pass
    assert _run(env, capsys, {"France": "Paris", "*": "no idea"}, "--fail-under", "0.5") == cli.EXIT_BELOW_FAIL_UNDER


def test_a_stored_config_stays_resumable(env, capsys):
    """What is stored passed the schema; resuming parses it again through the same schema."""
    assert _run(env, capsys, {"*": "Paris"}, "--cooling", "0.0") == 0
    run_id = Store(f"sqlite:///{env / 'bench.db'}").latest_run_id()
    code, err = _main(capsys, ["run", "--resume", run_id, "--config", str(env / "config.yaml"), "--no-publish"])
    assert code == 0, err
