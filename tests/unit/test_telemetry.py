"""Host telemetry: NVML's error paths (no GPU here), the retry, the V-call preference, and the 1 Hz loop.

The fake NVML module below is a stand-in for pynvml on a GPU host (this machine has no NVIDIA driver): it
raises the real pynvml exception classes and returns what the documented calls return.
"""
from __future__ import annotations

import types

import pynvml
import pytest

from benchwatch import events as ev
from benchwatch import state as reducer
from benchwatch.server.hub import Hub
from benchwatch.server.telemetry_loop import TelemetryLoop
from benchwatch.telemetry import HostSampler
from benchwatch.telemetry.nvml import NvmlReader


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def fake_nvml(init_error: Exception | None = None, temp_v: bool = True, util: int = 37, temp: int = 64):
    calls: list[str] = []
    m = types.SimpleNamespace(NVML_TEMPERATURE_GPU=0, calls=calls, init_error=init_error)

    def init():
        calls.append("init")
        if m.init_error is not None:
            raise m.init_error
    m.nvmlInit = init
    m.nvmlShutdown = lambda: calls.append("shutdown")
    m.nvmlDeviceGetCount = lambda: 1
    m.nvmlDeviceGetHandleByIndex = lambda i: f"gpu{i}"
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=util, memory=5)
    if temp_v:
        def temp_v_call(h, sensor):
            calls.append("tempV")
            return types.SimpleNamespace(temperature=temp)
        m.nvmlDeviceGetTemperatureV = temp_v_call

    def temp_call(h, sensor):
        calls.append("temp")
        return temp
    m.nvmlDeviceGetTemperature = temp_call
    return m


def test_real_nvml_on_this_machine_gives_null_with_reason():
    values, why = NvmlReader().read()  # no NVIDIA driver here: the real library can't load
    assert values == {"gpu_pct": None, "gpu_temp_c": None}
    assert why["gpu_pct"].startswith("NVML") and why["gpu_temp_c"]


def test_nvml_library_missing_gives_null_and_other_metrics_flow():
    def missing():
        raise ImportError("No module named 'pynvml'")
    sampler = HostSampler(nvml=NvmlReader(load=missing))
    s = sampler.sample()
    assert s["gpu_pct"] is None and s["gpu_temp_c"] is None
    assert "library missing" in s["unavailable"]["gpu_pct"]
    assert isinstance(s["cpu_pct"], float) and isinstance(s["fds"], int) and s["fds"] > 0
    s2 = sampler.sample()
    assert isinstance(s2["disk_mbps"], float) or "disk" in s2["unavailable"].get("disk_mbps", "disk")


def test_nvml_permission_error_gives_null_with_reason_then_retries_later():
    clock = Clock()
    m = fake_nvml(init_error=pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION))
    reader = NvmlReader(retry_s=30, clock=clock, load=lambda: m)
    values, why = reader.read()
    assert values["gpu_temp_c"] is None and "Insufficient Permissions" in why["gpu_temp_c"]
    clock.t = 10
    reader.read()
    assert m.calls.count("init") == 1  # not hammered every second
    m.init_error = None  # permission granted
    clock.t = 31
    values, why = reader.read()
    assert values == {"gpu_pct": 37.0, "gpu_temp_c": 64.0} and why == {}
    reader.read()
    assert m.calls.count("init") == 2  # initialised once, then kept


def test_temperature_prefers_the_v_call_and_falls_back():
    m = fake_nvml(temp_v=True)
    assert NvmlReader(load=lambda: m).read()[0]["gpu_temp_c"] == 64.0
    assert "tempV" in m.calls and "temp" not in m.calls
    old = fake_nvml(temp_v=False, temp=71)  # an older library without the V call
    assert NvmlReader(load=lambda: old).read()[0]["gpu_temp_c"] == 71.0

    broken = fake_nvml()
    def v_not_supported(h, s):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
    broken.nvmlDeviceGetTemperatureV = v_not_supported
    assert NvmlReader(load=lambda: broken).read()[0]["gpu_temp_c"] == 64.0


def test_one_failing_gpu_call_leaves_the_other():
    m = fake_nvml()
    def util_fails(h):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    m.nvmlDeviceGetUtilizationRates = util_fails
    values, why = NvmlReader(load=lambda: m).read()
    assert values["gpu_pct"] is None and "Not Supported" in why["gpu_pct"] and values["gpu_temp_c"] == 64.0


class InjectedSampler:
    """A sampler stand-in with a GPU: what HostSampler returns on a GPU host."""

    def sample(self):
        return {"cpu_pct": 12.5, "fds": 40, "disk_mbps": 1.5, "gpu_pct": 88.0, "gpu_temp_c": 91.0,
                "unavailable": {}}


def test_loop_folds_samples_into_state_and_stores_them_for_the_active_run(tmp_path):
    from benchwatch.store import Store
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    hub = Hub(reducer.initial_state())
    loop = TelemetryLoop(hub, store, sampler=InjectedSampler())
    e = loop.tick()
    assert e.run_id == "host" and e.tps is None and e.unavailable["tps"] == "no run active"
    assert store.telemetry("host") == []  # nothing stored without an active run
    hub.fold([ev.RunStarted(run_id="r1", seq=1, models=[ev.PlanModel(name="m", backend="scripted")],
                            datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=["a"])])])
    loop.tick()
    st = hub.state
    assert st["server"]["gpu_temp_c"] == 91.0 and st["server"]["thermal"] == "hot"
    assert len(st["telemetry"]) == 2 and st["telemetry"][-1]["tps"] == 0.0
    rows = store.telemetry("r1")
    assert len(rows) == 1 and rows[0]["gpu_pct"] == 88.0 and rows[0]["cpu_pct"] == 12.5


def test_loop_survives_a_sampler_that_raises():
    class Boom:
        def sample(self):
            raise RuntimeError("boom")
    hub = Hub(reducer.initial_state())
    loop = TelemetryLoop(hub, None, sampler=Boom(), interval_s=0.01)
    loop.start()
    import time
    time.sleep(0.1)
    loop.stop()
    assert loop.errors >= 2  # kept trying


@pytest.mark.parametrize("n", [61])
def test_snapshot_keeps_the_last_60_samples(n):
    hub = Hub(reducer.initial_state())
    loop = TelemetryLoop(hub, None, sampler=InjectedSampler())
    for _ in range(n):
        loop.tick()
    assert len(hub.state["telemetry"]) == 60


def test_tps_of_an_answer_streamed_between_two_samples_is_reported_once():
    hub = Hub(reducer.initial_state())
    loop = TelemetryLoop(hub, None, sampler=InjectedSampler())
    t = dict(model="m", dataset="d", task_id="a", attempt=1)
    nxt = dict(t, task_id="b")
    hub.fold([ev.RunStarted(run_id="r1", seq=1, models=[ev.PlanModel(name="m", backend="scripted")],
                            datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=["a", "b"])]),
              ev.TaskStarted(run_id="r1", seq=2, prompt="p", **t),
              ev.StageChanged(run_id="r1", seq=3, stage="cooling", at_s=0.0, **t)])
    assert loop.tick().tps == 0.0  # cooling: nothing flows
    # Between two samples task a streams, finishes, and task b is already cooling.
    hub.fold([ev.StageChanged(run_id="r1", seq=4, stage="streaming", at_s=1.1, **t),
              ev.TokenDelta(run_id="r1", seq=5, kind="visible", text="42", n_tokens=12, tps=80.0, **t),
              ev.TaskFinished(run_id="r1", seq=6, verdict="PASS", final=True, tokens_per_s=80.0, **t),
              ev.TaskStarted(run_id="r1", seq=7, prompt="p", **nxt),
              ev.StageChanged(run_id="r1", seq=8, stage="cooling", at_s=0.0, **nxt)])
    assert loop.tick().tps == 80.0  # the whole answer streamed since the last sample
    assert loop.tick().tps == 0.0  # reported once, not held
