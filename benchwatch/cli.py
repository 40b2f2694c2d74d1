"""The `benchwatch` command line.

Flags that set a config field (--cooling, --port, --store, ...) are not assigned past the schema: they become
overrides of that field and pass the same validation as the file (config.py), so `--cooling nan` is refused
naming --cooling. Exit codes (docs/cli.md): 0 done, every task PASS or FAIL; 1 the run failed (the harness
itself), or a run/report not found; 2 bad input (config, flag, dataset, store); 3 the run finished but some
tasks ended in ERROR; 4 the pass rate is below --fail-under; 130 interrupted (SIGINT / SIGTERM).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from . import __version__, endpoints
from .config import Config, ConfigError, Override, ServerConfig, default_config, env_overrides, load_config, parse_config
from .gc_tuning import freeze_long_lived

DEFAULT_CONFIG = "config.yaml"
err = Console(stderr=True)
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_TASK_ERRORS = 3
EXIT_BELOW_FAIL_UNDER = 4
EXIT_INTERRUPTED = 130

# Flags that override a config field: argparse dest -> (flag, field path). Their values reach the schema as
# the strings given, like the file's values do.
FIELD_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cooling": ("--cooling", ("runner", "cooling_s")),
    "store": ("--store", ("store",)),
    "host": ("--host", ("server", "host")),
    "port": ("--port", ("server", "port")),
    "heartbeat": ("--heartbeat", ("server", "heartbeat_s")),
    "bus": ("--bus", ("server", "bus")),
    "ring_size": ("--ring-size", ("server", "ring_size")),
    "write_timeout": ("--write-timeout", ("server", "write_timeout_s")),
    "workers": ("--workers", ("server", "workers")),
    "server_url": ("--server-url", ("server", "url")),
}


class FlagOptions(BaseModel):
    """Flags that are not config fields, validated the same way (finite, bounded)."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    fail_under: float | None = Field(default=None, ge=0, le=1, description="--fail-under RATE")
    delay: float = Field(default=2.0, ge=0, le=3600, description="demo --delay S")


FLAG_NAMES = {"fail_under": "--fail-under", "delay": "--delay"}
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def wrap(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn
    return wrap


def overrides(args: argparse.Namespace) -> list[Override]:
    """Environment overrides, then the flags given (a flag wins over a variable)."""
    out = env_overrides()
    for dest, (flag, path) in FIELD_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            out.append(Override(path, value, flag))
    return out


def flag_options(args: argparse.Namespace) -> FlagOptions:
    given = {k: getattr(args, k) for k in FLAG_NAMES if getattr(args, k, None) is not None}
    try:
        return FlagOptions.model_validate(given)
    except ValidationError as exc:
        e = exc.errors()[0]
        key = str(e["loc"][0])
        raise ConfigError(f"{FLAG_NAMES[key]} {given.get(key)!r}: {e['msg']}") from None


def _config(args: argparse.Namespace, required: bool = True) -> Config:
    path = Path(args.config)
    if not path.exists() and not required:
        # Commands that only read the store can work without a config: the default store.
        return default_config("<defaults>", overrides(args))
    return load_config(path, overrides(args))


def open_store(cfg: Config, base_dir: Path | None = None) -> Any:
    """The config's store, or a ConfigError naming the field when it can't be opened (bad URL, missing folder,
    database down, driver not installed). `base_dir`: where a relative SQLite path starts (as the caller's
    Store would resolve it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from .store import Store
    try:
        return Store(cfg.store, base_dir)
    except (SQLAlchemyError, ImportError, OSError, ValueError) as exc:
        shown = make_url(cfg.store).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        source = f"{cfg._path}: " if cfg._path else ""
        raise ConfigError(f"{source}store: cannot open {shown}: {reason}") from None


def check_evaluators(cfg: Config) -> None:
    """Build each dataset's evaluator before anything runs: an unknown name or a bad option is refused naming
    the file, the dataset and the field."""
    from .evaluators import EvaluatorError, get_evaluator
    for i, d in enumerate(cfg.datasets):
        try:
            get_evaluator(d.evaluator, d.options)
        except EvaluatorError as exc:
            field = "evaluator" if "unknown evaluator" in str(exc) else "options"
            source = f"{cfg._path}: " if cfg._path else ""
            raise ConfigError(f"{source}datasets[{i}]({d.name}).{field}: {exc}") from None


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    from .datasets import DatasetError
    from .evaluators import EvaluatorError
    from .runner import Runner
    from .runner.display import TerminalDisplay
    from .runner.sinks import JsonlSink
    from .results import load_table, summary_table

    opts = flag_options(args)
    store_cfg = _config(args, required=not args.resume)
    if args.resume:
        run = open_store(store_cfg).get_run(args.resume)
        if run is None:
            err.print(f"no run {args.resume!r} in {store_cfg.store} (--resume)", style="red", highlight=False)
            return EXIT_CONFIG
        cfg = parse_config(run["config"], f"run {args.resume} (stored config)", overrides(args))
        cfg._path = Path(run["config_path"]) if run["config_path"] else None
    else:
        cfg = store_cfg
    check_evaluators(cfg)
    store = open_store(cfg)
    sinks: list[Any] = [TerminalDisplay(err)]
    if args.events_out:
        sinks.append(JsonlSink(args.events_out))
    publisher = _publisher(cfg, args)
    if publisher is not None:
        sinks.append(publisher)
    runner = Runner(cfg, store, sinks, config_path=str(cfg._path) if cfg._path else None)
    freeze_long_lived()  # no full GC pass over the imports stalls the slots mid-run (gc_tuning.py)
    _stop_on_signals(runner)
    try:
        outcome = runner.run(resume_run_id=args.resume)
    except (DatasetError, EvaluatorError) as exc:
        for s in sinks:
            s.close()
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return EXIT_CONFIG
    rows = store.results(outcome.run_id)
    Console().print(summary_table(rows, title=f"run {outcome.run_id}: {outcome.status}"))
    if max(cfg.concurrency_for(m) for m in cfg.benchmarked_models) > 1 or cfg.runner.slo:  # the load figures
        Console().print(load_table(rows, cfg.model_dump(mode="json")))
    cfg_arg = f" --config {args.config}" if args.config != DEFAULT_CONFIG else ""
    if outcome.status == "interrupted":
        err.print(f"[yellow]interrupted.[/] resume with:  benchwatch run --resume {outcome.run_id}{cfg_arg}")
        return EXIT_INTERRUPTED
    if outcome.status == "failed":
        detail = (store.get_run(outcome.run_id) or {}).get("detail")
        err.print(f"[red]run failed:[/] {detail}", highlight=False)
        return EXIT_FAILED
    err.print(f"results: benchwatch results {outcome.run_id}{cfg_arg}", highlight=False)
    return exit_code(outcome.counts, opts.fail_under)


def exit_code(counts: dict[str, int], fail_under: float | None) -> int:
    """A finished run's exit code from its final verdicts (see the module docstring)."""
    done = sum(counts.values())
    errors = counts.get("ERROR", 0)
    if errors:
        err.print(f"[yellow]{errors} of {done} tasks ended in ERROR[/] (backend or harness failure; exit "
                  f"{EXIT_TASK_ERRORS})", highlight=False)
        return EXIT_TASK_ERRORS
    if fail_under is not None:
        rate = counts.get("PASS", 0) / done if done else 0.0
        if rate < fail_under:
            err.print(f"[red]pass rate {rate:.3f} is below --fail-under {fail_under:g}[/] (exit "
                      f"{EXIT_BELOW_FAIL_UNDER})", highlight=False)
            return EXIT_BELOW_FAIL_UNDER
    return EXIT_OK


def _publisher(cfg: Config, args: argparse.Namespace) -> Any:
    """The HTTP sink to the live server when its token is set (server.token_env), unless --no-publish."""
    import os

    from .runner.http_sink import HttpSink

    url = args.server_url or cfg.server.url
    token = os.environ.get(cfg.server.token_env)
    if args.no_publish or not token:
        if not args.no_publish:
            err.print(f"[dim]live monitor: not publishing (set ${cfg.server.token_env} to publish to {url})[/]")
        return None
    err.print(f"live monitor: publishing events to {url}  (page: {url.rstrip('/')}{endpoints.MONITOR})")
    return HttpSink(url, token)


def _stop_on_signals(runner: Any) -> None:
    """SIGINT and SIGTERM stop the run: the current task is abandoned and the run marked interrupted. Installed
    explicitly, so SIGINT works even when the process started with it ignored (a shell's background job)."""
    def handler(_sig: int, _frame: Any) -> None:
        runner.stop_requested.set()
        raise KeyboardInterrupt
    try:
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (tests)
        pass


@command("results")
def cmd_results(args: argparse.Namespace) -> int:
    from .results import load_table, result_json, summary_table

    cfg = _config(args, required=False)
    store = open_store(cfg)
    run_id = args.run_id or store.latest_run_id()
    if run_id is None or store.get_run(run_id) is None:
        err.print(f"[red]no run {'named ' + repr(args.run_id) if args.run_id else 'yet'} in {store.url}[/]",
                  highlight=False)
        return 1
    rows = store.results(run_id)
    if args.format == "json":
        for r in rows:
            print(json.dumps(result_json(r), ensure_ascii=False))
    else:
        run = store.get_run(run_id) or {}
        Console().print(summary_table(rows, title=f"run {run_id}: {run.get('status')}"))
        Console().print(load_table(rows, run.get("config")))
    return 0


@command("serve")
def cmd_serve(args: argparse.Namespace) -> int:
    import secrets

    cfg = _config(args, required=args.config != DEFAULT_CONFIG)
    sc = cfg.server
    if sc.bus:
        from .server.bus import check_bus
        problem = check_bus(sc.bus)
        if problem and problem[0]:
            err.print(f"[red]{problem[1]}[/]", highlight=False)
            return EXIT_CONFIG
        if problem:
            err.print(f"[yellow]warning: {problem[1]}[/]", highlight=False)
    if sc.workers > 1 and not sc.bus:
        err.print(f"[red]--workers {sc.workers}: several workers share one live view only through an event "
                  "bus; set server.bus (or --bus) to a Redis URL, or run one worker[/]", highlight=False)
        return EXIT_CONFIG
    open_store(cfg, cfg.base_dir).close()  # refused here, not in every worker (create_app opens it so too)
    from .server import create_app
    from .serve import serve

    env = sc.token_env
    if not os.environ.get(env):
        os.environ[env] = secrets.token_urlsafe(24)
        print(f"benchwatch serve: no ${env} set; generated an ingest token for this server. Give it to the "
              f"runner:\n  export {env}={os.environ[env]}", flush=True)
    serve(lambda: create_app(cfg, ring_size=sc.ring_size, write_timeout_s=sc.write_timeout_s), sc.host, sc.port,
          sc.max_streams, Path(args.log_dir) / "server.out.log", worker=args.worker, workers=sc.workers)
    return EXIT_OK


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from .report import ReportError, RunNotFound, render_compare, render_report

    store = open_store(_config(args, required=False))
    run_id = args.run_id or store.latest_run_id()
    if run_id is None:
        err.print(f"[red]no runs yet in {store.url}[/]")
        return 1
    try:
        html = render_compare(store, run_id, args.compare) if args.compare else render_report(store, run_id)
    except RunNotFound as exc:
        from sqlalchemy.engine import make_url
        err.print(f"[red]{exc} in {make_url(store.url).render_as_string(hide_password=True)}[/]", highlight=False)
        return 1
    except ReportError as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        return 1
    if args.output == "-":
        sys.stdout.write(html)
        return 0
    out = Path(args.output or (f"reports/{run_id}-vs-{args.compare}.html" if args.compare
                               else f"reports/{run_id}.html"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    err.print(f"report written: {out}  (one self-contained file; open it in any browser, offline)",
              highlight=False, soft_wrap=True)
    return 0


@command("export")
def cmd_export(args: argparse.Namespace) -> int:
    from .report import export

    store = open_store(_config(args, required=False))
    run_id = args.run_id or store.latest_run_id()
    if run_id is None or store.get_run(run_id) is None:
        err.print(f"[red]no run {'named ' + repr(args.run_id) if args.run_id else 'yet'} in {store.url}[/]")
        return 1
    if args.output and args.output != "-":
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            n = export(store, run_id, args.format, f, args.table)
        err.print(f"{n} {args.table} rows written to {args.output}", highlight=False)
    else:
        export(store, run_id, args.format, sys.stdout, args.table)
        sys.stdout.flush()  # a closed pipe (`| head`) raises here, and main() exits quietly
    return 0


@command("schema")
def cmd_schema(args: argparse.Namespace) -> int:
    from .schema import json_schema

    try:
        print(json.dumps(json_schema(args.name), indent=2, ensure_ascii=False), flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from .runner.display import TerminalDisplay
    from .demo import run_demo

    opts = flag_options(args)
    # The flags pass the config schema like serve's (a port above 65535, a bad store URL: exit 2).
    cfg = default_config("benchwatch demo", [o for o in overrides(args) if o.label.startswith("--")])
    host = cfg.server.host if args.host is not None else "127.0.0.1"
    port = cfg.server.port if args.port is not None else None
    return run_demo(host, port, args.store, args.exit_when_done, opts.delay, args.log_dir,
                    lambda msg: err.print(msg, highlight=False), [TerminalDisplay(err)])


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="benchwatch", description="LLM benchmark runner with a live web monitor.")
    p.add_argument("--version", action="version", version=f"benchwatch {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", "-c", default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"config file (default: {DEFAULT_CONFIG}; see config.example.yaml)")

    r = sub.add_parser("run", help="run the benchmark matrix in a config",
                       description="Run every model x dataset x task in the config; store results; publish events.")
    with_config(r)
    r.add_argument("--resume", metavar="RUN_ID", help="continue a stopped run, skipping tasks with a final verdict")
    r.add_argument("--events-out", metavar="FILE", help="also write every event as JSON lines to FILE")
    r.add_argument("--cooling", metavar="S", help="override runner.cooling_s (0 to 3600)")
    r.add_argument("--fail-under", metavar="RATE",
                   help="exit 4 when the pass rate (PASS / tasks with a final verdict) is below RATE (0 to 1), "
                        "for CI gating")
    r.add_argument("--server-url", metavar="URL",
                   help="live server to publish events to (default: server.url). Events are published only when "
                        "the token variable named by server.token_env (default BENCHWATCH_TOKEN) is set; the run "
                        "never waits on the server (buffered, retried, results always in the store)")
    r.add_argument("--no-publish", action="store_true", help="don't publish events even if the token is set")

    res = sub.add_parser("results", help="show a run's results from the store")
    with_config(res)
    res.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
    res.add_argument("--format", choices=("table", "json"), default="table",
                     help="table: summary per model x dataset; json: one object per task attempt")

    sv = sub.add_parser("serve", help="serve the live monitor, event ingest and JSON API",
                        description="Serve the live monitor (/docs/benchmark_monitor.html), the SSE stream, event "
                                    "ingest, the JSON API and Prometheus metrics (/metrics) with gunicorn (one "
                                    "gevent worker; several with --workers and a Redis event bus). Logs to "
                                    "LOG_DIR/server.out.log (rotated). The ingest token is read from the "
                                    "variable named by server.token_env (default BENCHWATCH_TOKEN); without "
                                    "one a token is generated and printed.")
    with_config(sv)
    sv.add_argument("--host", help="bind address (default: server.host, loopback)")
    sv.add_argument("--port", help="port 0-65535 (default: server.port; 0 picks a free one and prints it)")
    sv.add_argument("--store", metavar="URL", help="override the config's store URL")
    sv.add_argument("--log-dir", default="log", metavar="DIR", help="where server.out.log goes (default: log)")
    sv.add_argument("--heartbeat", metavar="S", help="override server.heartbeat_s (0.1 to 15)")
    sv.add_argument("--ring-size", metavar="N",
                    help="override server.ring_size: patches kept for Last-Event-ID resume; a client further "
                         "behind is dropped (16 to 1000000, default 4096)")
    sv.add_argument("--write-timeout", metavar="S",
                    help="override server.write_timeout_s: drop an SSE client that has taken nothing for this "
                         "long while data waits for it (0.5 to 600, default 10)")
    sv.add_argument("--worker", choices=("gevent", "gthread"), default="gevent",
                    help="gunicorn worker class (gevent; gthread only for comparisons)")
    sv.add_argument("--workers", metavar="N",
                    help="override server.workers: gunicorn workers (1 to 64, default 1); more than one needs an "
                         "event bus (--bus or server.bus)")
    sv.add_argument("--bus", metavar="URL", help="override server.bus: redis://HOST:PORT/DB, the event bus that "
                                                 "several workers share")

    rp = sub.add_parser("report", help="write a run's report: one self-contained HTML file",
                        description="Write a run's report as one HTML file that opens offline: configuration, "
                                    "pass rates with Wilson 95% intervals, TTFT/tokens-per-s/latency "
                                    "distributions, telemetry, failed and errored tasks.")
    with_config(rp)
    rp.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
    rp.add_argument("-o", "--output", metavar="FILE",
                    help="where to write it (default: reports/RUN_ID.html; '-' for stdout)")
    rp.add_argument("--compare", metavar="RUN_ID_B", help="compare with this run: side by side, flipped verdicts")

    ex = sub.add_parser("export", help="export a run's task attempts (or telemetry) as CSV or JSON lines")
    with_config(ex)
    ex.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
    ex.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="default: csv")
    ex.add_argument("--table", choices=("results", "telemetry"), default="results",
                    help="results: one row per task attempt (default); telemetry: the host samples")
    ex.add_argument("-o", "--output", metavar="FILE", help="default: stdout")

    dm = sub.add_parser("demo", help="live monitor + the bundled benchmark on the embedded model",
                        description="Start the live server on a loopback port (server.port, or a free one when "
                                    "busy) with a generated ingest token, print the monitor URL "
                                    "(/docs/benchmark_monitor.html), and run the bundled benchmark "
                                    "(benchwatch/demo_config.yaml: SmolLM2-135M, then the reference answers, on small task sets) with "
                                    "its events published there. The server keeps serving after the run "
                                    "until Ctrl-C, unless --exit-when-done.")
    dm.add_argument("--host", help="bind address (default: loopback)")
    dm.add_argument("--port", help="port (default: server.port, a free one if busy; 0: a free one)")
    dm.add_argument("--store", metavar="URL", help="results store (default: sqlite:///benchwatch.db here)")
    dm.add_argument("--exit-when-done", action="store_true", help="stop the server when the run ends (scripts)")
    dm.add_argument("--delay", metavar="S",
                    help="seconds between printing the URL and starting the run (default 2)")
    dm.add_argument("--log-dir", default="log", metavar="DIR", help="server log folder (default: log)")

    sc = sub.add_parser("schema", help="print the JSON Schema of the live state or of the events",
                        description="Print a JSON Schema: 'state' is what the monitor page sees (the SSE snapshot "
                                    "and GET /api/benchmark/state), 'events' what a runner posts to the server.")
    sc.add_argument("name", choices=("state", "events"), help="state or events")

    return p


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 too; say which command's --help to read
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C raises KeyboardInterrupt even when the process started with SIGINT ignored (a background job);
    # `run` replaces this with its own handler that also stops the runner.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return code
    except ConfigError as exc:
        err.print(str(exc), style="red", highlight=False, markup=False, soft_wrap=True)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `benchwatch results --format json | head`: the reader has what it wanted
        _quiet_stdout()
        return EXIT_OK


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush doesn't fail again on the closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
