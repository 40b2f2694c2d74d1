#!/usr/bin/env bash
# Refresh the docs' screenshots: run the browser tests that take them (headless Chromium against a real server
# and real runs), then copy the ones the docs show into docs/img/, scaled and reduced to a small palette.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
rm -f artifacts/screenshots/*.png
"$PY" -m pytest -q -x -p no:cacheprovider \
  tests/browser/test_demo_browser.py \
  tests/browser/test_monitor_chrome.py \
  tests/browser/test_monitor_live.py \
  tests/browser/test_report_browser.py
"$PY" scripts/docs_screenshots.py
