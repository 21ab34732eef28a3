#!/usr/bin/env bash
# One entry point for the two set-up commands in the README:
#   bash scripts/dev.sh main   -> install everything (idempotent), then run the main job on embedded defaults
#   bash scripts/dev.sh test   -> install everything (idempotent), then run the whole test suite
# The install is deterministic: Python 3.11 venv in .venv, every package pinned by requirements/lock-py311.txt, the
# project with every extra but [gpu] ('.[all,dev]').
# TORCH_VARIANT=cpu|cu126|cu128|cu130|... takes torch from PyTorch's own index for that build
# (https://download.pytorch.org/whl/<variant>) at the lock's version; unset, pip finds the lock's CPU build as our
# machines keep it on disk.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${YOLOV12_VENV:-.venv}
LOCK=requirements/lock-py311.txt
NO_DEPS=requirements/no-deps-py311.txt
TORCH_VARIANT=${TORCH_VARIANT:-}
TORCH_INDEX=https://download.pytorch.org/whl

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 is required (the pinned CPU torch wheel is built for 3.11); set PYTHON=/path/to/python3.11" >&2
  return 1
}

install_packages() {
  local pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
  if [ -z "$TORCH_VARIANT" ]; then
    "${pip[@]}" -c "$LOCK" -e '.[all,dev]'
    "${pip[@]}" --no-deps --require-hashes -r "$NO_DEPS"
    return 0
  fi
  # The lock's torch pin names our CPU build (2.13.0+cpu); PyTorch's index names each build the same way
  # (2.13.0+cu128, ...), so the pin becomes that build and PyTorch's index joins PyPI for it.
  local version constraints status=0
  version=$(sed -n 's/^torch==\([0-9][0-9.]*\).*/\1/p' "$LOCK")
  constraints=$(mktemp)
  grep -v '^torch==' "$LOCK" > "$constraints"
  echo "torch==$version+$TORCH_VARIANT" >> "$constraints"
  "${pip[@]}" --extra-index-url "$TORCH_INDEX/$TORCH_VARIANT" -c "$constraints" -e '.[all,dev]' || status=$?
  rm -f "$constraints"
  [ "$status" -ne 0 ] || "${pip[@]}" --no-deps --require-hashes -r "$NO_DEPS" || status=$?
  return "$status"
}

install() {
  local stamp="$VENV/.installed" want
  case "$TORCH_VARIANT" in
    "" | cpu | cu[0-9]* | rocm[0-9]* | xpu) ;;
    *) echo "error: TORCH_VARIANT='$TORCH_VARIANT' is not a PyTorch build: cpu, cu126, cu128, cu130, rocm6.4, ..." >&2
       return 2 ;;
  esac
  want=$({ cat pyproject.toml "$LOCK" "$NO_DEPS"; [ -z "$TORCH_VARIANT" ] || echo "TORCH_VARIANT=$TORCH_VARIANT"; } \
    | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "==> installing yolov12-platform[all,dev] into $VENV (pinned by $LOCK${TORCH_VARIANT:+, torch +$TORCH_VARIANT})"
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24" >/dev/null
  install_packages
  echo "$want" > "$stamp"
}

decline_openvino_telemetry() {
  # OpenVINO sends usage telemetry on every `import openvino` and conversion unless told not to: each event forks a
  # process from a background thread (seen: 7 forks per export), inside processes that run Ray, gRPC and torch
  # threads. This machine is offline and such forks are a known source of crashes, so record the opt-out that
  # OpenVINO documents (`opt_in_out --opt_out` writes the same file, but sends an event first). An existing
  # choice in that file is left alone.
  local consent="$HOME/intel/openvino_telemetry"
  [ -e "$consent" ] && return 0
  if mkdir -p "$(dirname "$consent")" 2>/dev/null && (echo 0 > "$consent") 2>/dev/null; then
    echo "==> OpenVINO telemetry: opted out in $consent (write 1 there to opt in)"
  else
    echo "warning: cannot write $consent; OpenVINO will try to send telemetry (and its test fails)" >&2
  fi
}

prepare() {
  install
  decline_openvino_telemetry
}

ensure_browser() {
  # The web demo's test drives a real headless Chromium (Debian's package; Playwright uses it, downloads nothing).
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium for the browser test of the demo"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
  else
    echo "warning: chromium is not installed and cannot be installed here (needs root + apt-get);" \
      "the demo's browser test will be skipped" >&2
  fi
}

run_tests() {
  echo "==> lint (ruff)"
  # shellcheck disable=SC2046 # the word splitting of the existing paths is intended
  "$VENV/bin/python" -m ruff check $(ls -d yolov12 pipelines serve tune fuzz tests benchmarks scripts app.py main_job.py 2>/dev/null)
  echo "==> tests (pytest)"
  # faulthandler: a native crash (also one at interpreter exit, after pytest's own handler is gone) prints the
  # Python stacks of every thread instead of only "Segmentation fault".
  # Three pytest-xdist workers (PYTEST_WORKERS=N sets another count, 0 runs in one process), each taking whole
  # test files (a module's Ray cluster fixture starts once). Many tests wait (on a cluster starting, a server, a
  # subprocess): with two workers a 2-core machine was busy about half of the run (CPU time / wall time 1.0), so a
  # third worker fills the waits. Each worker's torch threads are its share of the cores (tests/conftest.py).
  # A worker process that dies (seen on 2-core machines: a SIGSEGV, read from the dead worker's exit status, with
  # no Python traceback, at a random test after Ray-based modules ran in that worker; the faulting native code is
  # not identified) is replaced, the run goes on (tests/support/xdist_scheduling.py: pytest-xdist's own file
  # scheduler could hang after a crash), and the test it was running is reported as crashed. Those
  # tests, and only when they are the run's only failures, run once more in a fresh process: the run fails if one
  # fails again, and the crash stays in the log above.
  local log rc
  log=$(mktemp)
  set +e
  # COLUMNS: the summary lines keep their whole message (crashed_tests reads them).
  COLUMNS=1000 PYTHONFAULTHANDLER=1 "$VENV/bin/python" -m pytest -n "${PYTEST_WORKERS:-3}" --dist loadfile \
    --max-worker-restart=2 --durations=30 "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi
  if [ "$rc" -eq 1 ]; then
    local crashed=()
    mapfile -t crashed < <(crashed_tests "$log")
    if [ "${#crashed[@]}" -gt 0 ]; then
      echo "==> tests whose worker process died, once more in a fresh process: ${crashed[*]}"
      set +e
      PYTHONFAULTHANDLER=1 "$VENV/bin/python" -m pytest -p no:cacheprovider "${crashed[@]}"
      rc=$?
      set -e
    fi
  fi
  rm -f "$log"
  return "$rc"
}

# The node ids (one per line) of the tests whose xdist worker died, when they are all the failures in pytest's
# summary in $1; nothing otherwise: a test that failed by itself is never run again.
crashed_tests() {
  local summary pattern="^FAILED (.*) - worker 'gw[0-9]+' crashed while running"
  summary=$(grep -E '^(FAILED|ERROR) ' "$1" || true)
  [ -n "$summary" ] || return 0
  if grep -qvE "$pattern" <<<"$summary"; then return 0; fi
  sed -E "s/$pattern.*/\\1/" <<<"$summary" | sort -u
}

case "${1:-}" in
  main) shift; prepare; exec "$VENV/bin/python" main_job.py "$@" ;;
  test) shift; prepare; ensure_browser; run_tests "$@" ;;
  install) prepare ;;
  *) echo "usage: bash scripts/dev.sh {main|test|install} [args...]" >&2; exit 2 ;;
esac
