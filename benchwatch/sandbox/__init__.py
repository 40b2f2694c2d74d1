"""Run untrusted Python (a model's answer) where it cannot forge its verdict or leave anything behind.

Two processes per evaluation (docs/sandbox.md has the whole story):

- the **candidate** (candidate.py) runs the model's program under bubblewrap (bwrap.py: minimal read-only
  filesystem, private tmpfs, no network of any family, own PID namespace, own unprivileged uid), inside a
  cgroup holding the evaluation's total memory and process count (cgroups.py), with CPU, file-size and
  open-file rlimits and a wall-clock limit enforced from here;
- the **verifier** (verifier.py), a warm trusted process under a uid of its own, holds the tests and the
  prompt's helpers, calls the candidate's functions over one pair of pipes (plain data, codec.py) and computes
  the verdict.

`isolation()` probes once what this host allows and names the mode: "full" (bubblewrap + cgroup), "bwrap"
(bubblewrap, per-process limits), "rlimits" (no namespaces). The opt-in same-process mode (harness.py) runs
program and tests in one interpreter inside the same sandbox; its verdict can be forged and says so.
"""
from . import cgroups
from .evaluation import (UID_RANGE, Limits, Outcome, SandboxError, instrument_tests, isolation, run, shutdown,
                         spare_uids)

__all__ = ["UID_RANGE", "Limits", "Outcome", "SandboxError", "cgroups", "instrument_tests", "isolation", "run",
           "shutdown", "spare_uids"]
