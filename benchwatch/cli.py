"""The `benchwatch` command line."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from . import __version__
from .config import Config, ConfigError, ServerConfig, load_config, parse_config

DEFAULT_CONFIG = "config.yaml"
err = Console(stderr=True)
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def wrap(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn
    return wrap


def _config(args: argparse.Namespace, required: bool = True) -> Config:
    path = Path(args.config)
    if not path.exists() and not required:
        # Commands that only read the store can work without a config: the default store.
        return parse_config({"models": [{"name": "-", "backend": "scripted"}],
                             "datasets": [{"name": "-", "source": "builtin:facts"}]}, "<defaults>")
    return load_config(path)


@command("run")
def cmd_run(args: argparse.Namespace) -> int:
    from .datasets import DatasetError
    from .evaluators import EvaluatorError
    from .runner import Runner
    from .runner.display import TerminalDisplay
    from .runner.sinks import JsonlSink
    from .store import Store
    from .results import load_table, summary_table

    store_cfg = _config(args, required=not args.resume)
    if args.resume:
        run = Store(store_cfg.store).get_run(args.resume)
        if run is None:
            err.print(f"[red]no run {args.resume!r} in {store_cfg.store}[/]")
            return EXIT_CONFIG
        cfg = parse_config(run["config"], f"run {args.resume} (stored config)")
        cfg._path = Path(run["config_path"]) if run["config_path"] else None
    else:
        cfg = store_cfg
    if args.cooling is not None:
        cfg.runner.cooling_s = args.cooling
    store = Store(cfg.store)
    sinks: list[Any] = [TerminalDisplay(err)]
    if args.events_out:
        sinks.append(JsonlSink(args.events_out))
    publisher = _publisher(cfg, args)
    if publisher is not None:
        sinks.append(publisher)
    runner = Runner(cfg, store, sinks, config_path=str(cfg._path) if cfg._path else None)
    _stop_on_sigterm(runner)
    try:
        outcome = runner.run(resume_run_id=args.resume)
    except (DatasetError, EvaluatorError) as exc:
        for s in sinks:
            s.close()
        err.print(f"[red]error:[/] {exc}")
        return EXIT_CONFIG
    rows = store.results(outcome.run_id)
    Console().print(summary_table(rows, title=f"run {outcome.run_id}: {outcome.status}"))
    if max(cfg.concurrency_for(m) for m in cfg.models) > 1 or cfg.runner.slo:  # concurrency: the load figures
        Console().print(load_table(rows, cfg.model_dump(mode="json")))
    if outcome.status == "interrupted":
        cfg_arg = f" --config {args.config}" if args.config != DEFAULT_CONFIG else ""
        err.print(f"[yellow]interrupted.[/] resume with:  benchwatch run --resume {outcome.run_id}{cfg_arg}")
        return EXIT_INTERRUPTED
    if outcome.status == "failed":
        detail = (store.get_run(outcome.run_id) or {}).get("detail")
        err.print(f"[red]run failed:[/] {detail}")
        return 1
    err.print(f"results: benchwatch results {outcome.run_id}" + (f" --config {args.config}"
                                                                if args.config != DEFAULT_CONFIG else ""))
    return 0


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
    err.print(f"live monitor: publishing events to {url}  (page: {url.rstrip('/')}/docs/benchmark_monitor.html)")
    return HttpSink(url, token)


def _stop_on_sigterm(runner: Any) -> None:
    """SIGTERM stops the run like Ctrl-C: the current task is abandoned and the run marked interrupted."""
    def handler(_sig: int, _frame: Any) -> None:
        runner.stop_requested.set()
        raise KeyboardInterrupt
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests)
        pass


@command("results")
def cmd_results(args: argparse.Namespace) -> int:
    from .results import load_table, result_json, summary_table
    from .store import Store

    cfg = _config(args, required=False)
    store = Store(cfg.store)
    run_id = args.run_id or store.latest_run_id()
    if run_id is None or store.get_run(run_id) is None:
        err.print(f"[red]no run {'named ' + repr(args.run_id) if args.run_id else 'yet'} in {store.url}[/]")
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
    import os
    import secrets

    from .server import create_app
    from .server.serve import serve

    cfg = _config(args, required=args.config != DEFAULT_CONFIG)
    if args.store:
        cfg.store = args.store
    if args.heartbeat is not None:
        cfg.server.heartbeat_s = args.heartbeat
    if args.bus:
        try:
            cfg.server.bus = ServerConfig._redis_url(args.bus)
        except ValueError as exc:
            err.print(f"[red]--bus {args.bus}: {exc}[/]", highlight=False)
            return 2
    if cfg.server.bus:
        from .server.bus import check_bus
        problem = check_bus(cfg.server.bus)
        if problem and problem[0]:
            err.print(f"[red]{problem[1]}[/]", highlight=False)
            return 2
        if problem:
            err.print(f"[yellow]warning: {problem[1]}[/]", highlight=False)
    if args.workers < 1 or (args.workers > 1 and not cfg.server.bus):
        err.print(f"[red]--workers {args.workers}: several workers share one live view only through an event "
                  "bus; set server.bus (or --bus) to a Redis URL, or run one worker[/]")
        return 2
    env = cfg.server.token_env
    if not os.environ.get(env):
        os.environ[env] = secrets.token_urlsafe(24)
        print(f"benchwatch serve: no ${env} set; generated an ingest token for this server. Give it to the "
              f"runner:\n  export {env}={os.environ[env]}", flush=True)
    host = args.host or cfg.server.host
    port = cfg.server.port if args.port is None else args.port
    serve(lambda: create_app(cfg, ring_size=args.ring_size, write_timeout_s=args.write_timeout), host, port,
          cfg.server.max_streams, Path(args.log_dir) / "server.out.log", worker=args.worker, workers=args.workers)
    return 0


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    from .report import ReportError, RunNotFound, render_compare, render_report
    from .store import Store

    store = Store(_config(args, required=False).store)
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
    from .store import Store

    store = Store(_config(args, required=False).store)
    run_id = args.run_id or store.latest_run_id()
    if run_id is None or store.get_run(run_id) is None:
        err.print(f"[red]no run {'named ' + repr(args.run_id) if args.run_id else 'yet'} in {store.url}[/]")
        return 1
    if args.output and args.output != "-":
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            n = export(store, run_id, args.format, f, args.table)
        err.print(f"{n} {args.table} rows written to {args.output}", highlight=False)
    else:
        try:
            export(store, run_id, args.format, sys.stdout, args.table)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            import os
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from .runner.display import TerminalDisplay
    from .server.demo import run_demo

    return run_demo(args.host, args.port, args.store, args.exit_when_done, args.delay, args.log_dir,
                    lambda msg: err.print(msg, highlight=False), [TerminalDisplay(err)])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchwatch", description="LLM benchmark runner with a live web monitor.")
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
    r.add_argument("--cooling", type=float, metavar="S", help="override runner.cooling_s")
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
                                    "ingest and the JSON API with gunicorn (one gevent worker; several "
                                    "with --workers and a Redis event bus). Logs to "
                                    "LOG_DIR/server.out.log (rotated). The ingest token is read from the "
                                    "variable named by server.token_env (default BENCHWATCH_TOKEN); without "
                                    "one a token is generated and printed.")
    with_config(sv)
    sv.add_argument("--host", help="bind address (default: server.host, loopback)")
    sv.add_argument("--port", type=int, help="port (default: server.port; 0 picks a free one and prints it)")
    sv.add_argument("--store", metavar="URL", help="override the config's store URL")
    sv.add_argument("--log-dir", default="log", metavar="DIR", help="where server.out.log goes (default: log)")
    sv.add_argument("--heartbeat", type=float, metavar="S", help="override server.heartbeat_s")
    sv.add_argument("--ring-size", type=int, default=4096, metavar="N",
                    help="patches kept for Last-Event-ID resume; a client further behind is dropped (default 4096)")
    sv.add_argument("--write-timeout", type=float, default=10.0, metavar="S",
                    help="drop an SSE client whose socket accepts nothing for this long (default 10)")
    sv.add_argument("--worker", choices=("gevent", "gthread"), default="gevent",
                    help="gunicorn worker class (gevent; gthread only for comparisons)")
    sv.add_argument("--workers", type=int, default=1, metavar="N",
                    help="gunicorn workers (default 1); more than one needs an event bus (--bus or server.bus)")
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
                                    "(benchwatch/demo_config.yaml: SmolLM2-135M on small built-in sets) with "
                                    "its events published there. The server keeps serving after the run "
                                    "until Ctrl-C, unless --exit-when-done.")
    dm.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    dm.add_argument("--port", type=int, help="port (default: server.port, a free one if busy; 0: a free one)")
    dm.add_argument("--store", metavar="URL", help="results store (default: sqlite:///benchwatch.db here)")
    dm.add_argument("--exit-when-done", action="store_true", help="stop the server when the run ends (scripts)")
    dm.add_argument("--delay", type=float, default=2.0, metavar="S",
                    help="seconds between printing the URL and starting the run (default 2)")
    dm.add_argument("--log-dir", default="log", metavar="DIR", help="server log folder (default: log)")

    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
