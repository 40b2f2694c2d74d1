#!/usr/bin/env python3
"""Thin shim, as the spec names it: `python run_benchmark.py --config FILE` == `benchwatch run --config FILE`."""
import sys

from benchwatch.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
