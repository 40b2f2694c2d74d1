#!/usr/bin/env bash
# Idempotent set-up for benchwatch: a virtual environment at .venv with the package (editable, dev extras),
# llama-cpp-python built portable, Chromium for the browser tests, and ECharts copied into the served assets.
# Re-running it when nothing changed takes seconds: each step checks before it works.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV=$ROOT/.venv
STAMP_DIR=$VENV/.benchwatch
log() { printf '[init] %s\n' "$*" >&2; }
# Run a noisy install step quietly; show its output only if it fails.
quiet() {
  local out; out=$(mktemp)
  if ! "$@" >"$out" 2>&1; then cat "$out" >&2; rm -f "$out"; log "failed: $*"; exit 1; fi
  rm -f "$out"
}

# 1. Debian packages: Chromium for the browser tests and screenshots (never a downloaded browser), npm
#    for the monitor's front-end packages and bubblewrap for the code sandbox (docs/sandbox.md), each only
#    when missing. `--for-tests` (scripts/test.sh) adds the servers the scale-out tests start on loopback:
#    PostgreSQL and Redis, and Prometheus for the /metrics test. The tests start their own throw-away
#    servers, so the packages' services are kept from starting while they install (policy-rc.d says no).
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
if [ "${1:-}" = "--for-tests" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${need[*]} from Debian's packages"
    quiet apt-get update -qq
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive quiet apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}"
    [ -n "$policy" ] && rm -f "$policy" && trap - EXIT
  else
    log "warning: missing ${need[*]} and apt-get is not usable (run as root or install them)"
  fi
fi

# 2. The virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
mkdir -p "$STAMP_DIR"
VPY=$VENV/bin/python

# 3. llama-cpp-python, built portable: the default native build emits AMX instructions that these
#    virtualised CPUs advertise but refuse (SIGILL). pip caches the built wheel, so a rebuild is rare.
if ! "$VPY" -c "import llama_cpp" >/dev/null 2>&1; then
  log "building llama-cpp-python (portable; about 6 minutes on 2 cores the first time)"
  quiet "$VPY" -m pip install --upgrade pip wheel
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    quiet "$VPY" -m pip install "llama-cpp-python>=0.3"
fi

# 4. The package itself, editable, with its dev extras; redone only when pyproject.toml changes.
HASH=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$STAMP_DIR/pyproject" 2>/dev/null)" != "$HASH" ]; then
  log "installing benchwatch (editable, dev extras)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    quiet "$VPY" -m pip install -e ".[dev]"
  echo "$HASH" > "$STAMP_DIR/pyproject"
fi

# 5. Front-end packages (ECharts) from the npm registry, pinned by package-lock.json, copied into /js/.
ASSETS=$ROOT/benchwatch/web/static/js/vendor
if [ ! -f "$ASSETS/echarts.min.js" ] || [ package-lock.json -nt "$ASSETS/echarts.min.js" ]; then
  if command -v npm >/dev/null 2>&1; then
    log "installing ECharts from the npm registry"
    npm ci --silent --no-audit --no-fund >/dev/null
    mkdir -p "$ASSETS"
    cp node_modules/echarts/dist/echarts.min.js "$ASSETS/echarts.min.js"
  else
    log "warning: npm is missing: the monitor's charts will say ECharts is not installed"
  fi
fi
log "ready: activate with 'source .venv/bin/activate'"
