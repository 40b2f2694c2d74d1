"""The model server's own metrics: scrape its Prometheus `/metrics` and turn it into a few series.

A small mapping per server kind (vLLM, SGLang, TGI, llama.cpp's server, or names from the config) reads:
requests running and waiting, KV-cache usage (%), and the server's own time-to-first-token and inter-token
latency, which servers publish as cumulative histograms (or, for llama.cpp, cumulative counters): the series are
their per-interval means, Δsum / Δcount between two scrapes, with the count of requests behind each mean.

A scrape that fails, or a figure the server doesn't publish, is None with its reason (like NVML's), never 0.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

SERIES = ("running", "waiting", "kv_cache_pct", "ttft_s", "itl_s")  # what every sample carries
GENERIC_FIELDS = ("running", "waiting", "kv_cache_ratio", "ttft_histogram", "itl_histogram")
MAX_BYTES = 8 * 1024 * 1024  # a /metrics page larger than this is not read


@dataclass(frozen=True)
class Mapping:
    """Where one server kind publishes each figure. Names are tried in order (servers rename across versions)."""
    kind: str
    prefix: str  # how auto-detection recognises the server
    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    kv_cache_ratio: tuple[str, ...] = ()  # 0..1
    ttft: tuple[str, ...] = ()  # histogram names (their _sum and _count samples), seconds
    itl: tuple[str, ...] = ()
    itl_counters: tuple[str, str] | None = None  # (seconds counter, tokens counter): Δs/Δtokens is the ITL
    missing: dict[str, str] = field(default_factory=dict)  # series -> why this server kind has no such figure


# Metric names as each project documents them (vLLM "Production Metrics", SGLang "Production Metrics",
# TGI's metrics list, llama.cpp server README `--metrics`).
MAPPINGS: dict[str, Mapping] = {m.kind: m for m in (
    Mapping("vllm", "vllm:", running=("vllm:num_requests_running",), waiting=("vllm:num_requests_waiting",),
            kv_cache_ratio=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
            ttft=("vllm:time_to_first_token_seconds",),
            itl=("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")),
    Mapping("sglang", "sglang:", running=("sglang:num_running_reqs",), waiting=("sglang:num_queue_reqs",),
            kv_cache_ratio=("sglang:token_usage",), ttft=("sglang:time_to_first_token_seconds",),
            itl=("sglang:inter_token_latency_seconds", "sglang:time_per_output_token_seconds")),
    Mapping("tgi", "tgi_", running=("tgi_batch_current_size",), waiting=("tgi_queue_size",),
            itl=("tgi_request_mean_time_per_token_duration",),
            missing={"kv_cache_pct": "TGI publishes no KV-cache usage",
                     "ttft_s": "TGI publishes no time-to-first-token histogram"}),
    Mapping("llamacpp", "llamacpp:", running=("llamacpp:requests_processing",),
            waiting=("llamacpp:requests_deferred",), kv_cache_ratio=("llamacpp:kv_cache_usage_ratio",),
            itl_counters=("llamacpp:tokens_predicted_seconds_total", "llamacpp:tokens_predicted_total"),
            missing={"ttft_s": "llama.cpp's server publishes no time-to-first-token figure"}),
)}


def check_names(kind: str, names: dict[str, str]) -> None:
    """Config check: `metrics_names` only for the generic kind, with known fields and at least one name."""
    if kind != "generic":
        if names:
            raise ValueError("metrics_names is read only with metrics_kind: generic")
        return
    unknown = sorted(set(names) - set(GENERIC_FIELDS))
    if unknown:
        raise ValueError(f"metrics_names: unknown field(s) {unknown}; expected some of {list(GENERIC_FIELDS)}")
    if not any(names.values()):
        raise ValueError(f"metrics_kind generic needs metrics_names (some of {list(GENERIC_FIELDS)})")


def generic_mapping(names: dict[str, str]) -> Mapping:
    one = lambda key: (names[key],) if names.get(key) else ()  # noqa: E731
    missing = {series: "not named in metrics_names" for series, key in (
        ("running", "running"), ("waiting", "waiting"), ("kv_cache_pct", "kv_cache_ratio"),
        ("ttft_s", "ttft_histogram"), ("itl_s", "itl_histogram")) if not names.get(key)}
    return Mapping("generic", "", running=one("running"), waiting=one("waiting"),
                   kv_cache_ratio=one("kv_cache_ratio"), ttft=one("ttft_histogram"), itl=one("itl_histogram"),
                   missing=missing)


def parse(text: str, wanted: frozenset[str] | None = None) -> dict[str, list[float]]:
    """Sample name -> its values over every label set (a server with two engines has two of each). With `wanted`,
    only those samples' lines reach the parser (a vLLM page is mostly buckets, GC and process figures we don't
    read; skipping them is most of the scrape's cost)."""
    if wanted is not None:
        lines = [ln for ln in text.splitlines()
                 if ln and ln[0] != "#" and ln.split("{", 1)[0].split(" ", 1)[0] in wanted]
        if not lines:  # nothing we read: parse it all, so a page that isn't metrics at all says so
            return parse(text)
        text = "\n".join(lines) + "\n"
    from prometheus_client.parser import text_string_to_metric_families
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                out.setdefault(sample.name, []).append(float(sample.value))
    return out


def _names(m: Mapping) -> set[str]:
    hists = {h + suffix for h in m.ttft + m.itl for suffix in ("_sum", "_count")}
    return {*m.running, *m.waiting, *m.kv_cache_ratio, *(m.itl_counters or ()), *hists}


_KNOWN = frozenset(n for m in MAPPINGS.values() for n in _names(m))


def wanted_names(kind: str, names: dict[str, str]) -> frozenset[str]:
    """The sample names a scrape of this kind reads (auto: every known server's)."""
    if kind == "generic":
        return frozenset(_names(generic_mapping(names)))
    return frozenset(_names(MAPPINGS[kind])) if kind in MAPPINGS else _KNOWN


def detect(samples: dict[str, list[float]]) -> Mapping | None:
    for mapping in MAPPINGS.values():
        if any(name.startswith(mapping.prefix) for name in samples):
            return mapping
    return None


def _first(samples: dict[str, list[float]], names: tuple[str, ...]) -> list[float] | None:
    for name in names:
        if name in samples:
            return samples[name]
    return None


@dataclass
class _Prev:
    """The cumulative figures of the previous scrape of one URL (per-interval means need two)."""
    totals: dict[str, tuple[float, float]] = field(default_factory=dict)  # series -> (sum, count)


class ModelServerScraper:
    """Polls one model server at a time (the model that runs). `sample(...)` returns the sample dict."""

    def __init__(self, timeout_s: float = 0.8, fetch: Callable[[str, float], str] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.timeout_s, self.clock = timeout_s, clock
        self._client: httpx.Client | None = None  # one client, kept: a new one per scrape costs ~50 ms of CPU
        self.fetch = fetch or self._fetch
        self._prev: dict[str, _Prev] = {}

    def _fetch(self, url: str, timeout_s: float) -> str:
        import httpx  # here, not at import: the config schema imports this module
        if self._client is None:
            self._client = httpx.Client(follow_redirects=False, headers={"Accept": "text/plain"})
        return fetch_text(url, timeout_s, self._client)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def forget(self) -> None:
        """The model stopped running: the next scrape of any URL starts a fresh interval."""
        self._prev.clear()

    def sample(self, model: str, url: str, kind: str = "auto", names: dict[str, str] | None = None
               ) -> dict[str, Any]:
        out: dict[str, Any] = {"model": model, "kind": kind, **{k: None for k in SERIES},
                               "ttft_n": None, "itl_n": None, "unavailable": {}}
        t0 = self.clock()
        try:
            samples = parse(self.fetch(url, self.timeout_s), wanted_names(kind, names or {}))
        except Exception as exc:  # refused, timed out, HTTP error, not the text format: say which
            self._prev.pop(url, None)
            why = f"scrape of {redact(url)} failed: {_reason(exc)}"
            out["error"] = why
            out["unavailable"] = {k: why for k in SERIES}
            return out
        out["scrape_ms"] = round((self.clock() - t0) * 1000.0, 2)
        mapping = generic_mapping(names or {}) if kind == "generic" else (
            detect(samples) if kind == "auto" else MAPPINGS[kind])
        if mapping is None:
            why = "no vLLM, SGLang, TGI or llama.cpp metric names in the scrape: set models[].metrics_kind"
            out["unavailable"] = {k: why for k in SERIES}
            return out
        out["kind"] = mapping.kind
        un: dict[str, str] = dict(mapping.missing)
        for series, names_, agg in (("running", mapping.running, sum), ("waiting", mapping.waiting, sum),
                                    ("kv_cache_pct", mapping.kv_cache_ratio, _mean)):
            if series in un:
                continue
            values = _first(samples, names_)
            if values is None:
                un[series] = f"{' / '.join(names_)} not in the scrape"
            else:
                out[series] = round(agg(values) * (100.0 if series == "kv_cache_pct" else 1.0), 3)
        prev = self._prev.get(url)
        now = self._prev[url] = _Prev()
        for series, hist in (("ttft_s", mapping.ttft), ("itl_s", mapping.itl)):
            if series in un:
                continue
            pair = self._cumulative(samples, series, hist, mapping)
            if pair is None:
                un[series] = f"{' / '.join(hist or (mapping.itl_counters or ()))} not in the scrape"
                continue
            now.totals[series] = pair
            before = prev.totals.get(series) if prev else None
            if before is None:
                continue  # the first scrape: a mean over an interval needs two
            d_sum, d_n = pair[0] - before[0], pair[1] - before[1]
            if d_n > 0 and d_sum >= 0:  # d_n < 0: the server restarted (counters reset): skip this interval
                out[series] = round(d_sum / d_n, 6)
                out[series.replace("_s", "_n")] = int(round(d_n))
        out["unavailable"] = un
        return out

    @staticmethod
    def _cumulative(samples: dict[str, list[float]], series: str, hist: tuple[str, ...],
                    mapping: Mapping) -> tuple[float, float] | None:
        for name in hist:
            if name + "_sum" in samples and name + "_count" in samples:
                return sum(samples[name + "_sum"]), sum(samples[name + "_count"])
        if series == "itl_s" and mapping.itl_counters:
            secs, toks = (_first(samples, (n,)) for n in mapping.itl_counters)
            if secs is not None and toks is not None:
                return sum(secs), sum(toks)
        return None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def fetch_text(url: str, timeout_s: float, client: httpx.Client | None = None) -> str:
    """GET a /metrics page: no redirects, at most MAX_BYTES, HTTP 200 only."""
    import httpx
    if client is None:
        with httpx.Client(follow_redirects=False, headers={"Accept": "text/plain"}) as own:
            return fetch_text(url, timeout_s, own)
    with client.stream("GET", url, timeout=timeout_s) as r:
        if r.status_code != 200:
            raise ScrapeError(f"HTTP {r.status_code} {r.reason_phrase}".rstrip())
        body = bytearray()
        for chunk in r.iter_bytes():
            body += chunk
            if len(body) > MAX_BYTES:
                raise ScrapeError(f"the page is over {MAX_BYTES // (1024 * 1024)} MiB")
        return body.decode("utf-8", errors="replace")


class ScrapeError(RuntimeError):
    pass


def _reason(exc: Exception) -> str:
    import httpx
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    if isinstance(exc, ScrapeError):
        return str(exc)
    if isinstance(exc, ValueError):
        return f"not the Prometheus text format ({exc})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def redact(url: str) -> str:
    """A URL with any user:password@ removed, for messages."""
    import httpx
    parts = httpx.URL(url)
    return str(parts.copy_with(userinfo=b"")) if parts.userinfo else url


def active_target(state: dict[str, Any]) -> dict[str, Any] | None:
    """The running model's metrics endpoint, from the run's config as the runner sent it in run_started (kept in
    the reducer's private plan): {"model", "url", "kind", "names"}, or None when no run is active or that model
    has no metrics_url."""
    run = state.get("run")
    model = (state.get("server") or {}).get("active_model")
    if run is None or run.get("status") != "running" or model is None:
        return None
    target = ((state.get("plan") or {}).get("scrape") or {}).get(model)
    return {"model": model, **target} if target else None