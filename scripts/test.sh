#!/usr/bin/env bash
# The whole test suite, set-up included: `scripts/test.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/init.sh --for-tests
exec .venv/bin/python -m pytest "$@"
