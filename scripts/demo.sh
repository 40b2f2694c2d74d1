#!/usr/bin/env bash
# The one-command first look: set-up, then the bundled benchmark on the embedded model with the monitor live.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/init.sh
exec .venv/bin/benchwatch demo "$@"
