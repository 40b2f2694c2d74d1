"""Check benchwatch's NVML readings against nvidia-smi on a machine with an NVIDIA GPU.

    python bench/check_nvml.py [--samples 5]

Prints each sample of benchwatch.telemetry.nvml.NvmlReader (GPU utilisation, hottest die) beside what
`nvidia-smi --query-gpu` reports at the same moment, and which temperature call the library offered. Loads
nvml.py by its path, so only `pynvml` (nvidia-ml-py) is needed, not the rest of benchwatch's dependencies.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import time
from pathlib import Path

NVML_PY = Path(__file__).resolve().parents[1] / "benchwatch" / "telemetry" / "nvml.py"


def load_reader_class() -> type:
    spec = importlib.util.spec_from_file_location("benchwatch_nvml", NVML_PY)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.NvmlReader


def smi() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,utilization.gpu,temperature.gpu",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().replace("\n", " | ") or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi unavailable: {exc}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5)
    args = ap.parse_args()
    import pynvml
    reader = load_reader_class()()
    values, unavailable = reader.read()
    if reader._nvml is not None:
        print(f"NVML driver {pynvml.nvmlSystemGetDriverVersion()}, {len(reader._handles)} GPU(s); "
              f"nvmlDeviceGetTemperatureV offered: {hasattr(pynvml, 'nvmlDeviceGetTemperatureV')}")
    for i in range(args.samples):
        values, unavailable = reader.read()
        print(f"sample {i}: benchwatch gpu_pct={values['gpu_pct']} gpu_temp_c={values['gpu_temp_c']} "
              f"unavailable={unavailable or '-'}; nvidia-smi: {smi()}")
        time.sleep(1)
    reader.close()


if __name__ == "__main__":
    main()
