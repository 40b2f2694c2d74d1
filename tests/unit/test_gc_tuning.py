"""The collector settings of benchwatch's long-running processes (benchwatch/gc_tuning.py), in a process of
their own so this one's collector is left as it is."""
import subprocess
import sys

from tests.conftest import cli_env


def test_setup_objects_are_frozen_and_the_young_generation_waits_longer():
    code = ("import gc\nfrom benchwatch.gc_tuning import YOUNG_THRESHOLD, freeze_long_lived\n"
            "before = gc.get_threshold()\nfreeze_long_lived()\n"
            "print(gc.get_freeze_count() > 1000, gc.get_threshold()[0] == YOUNG_THRESHOLD, "
            "gc.get_threshold()[1:] == before[1:], gc.isenabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert out.stdout.split() == ["True"] * 4, out.stderr
