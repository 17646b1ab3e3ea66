#!/usr/bin/env bash
# gsenv quickstart: the two commands of the README.
#   ./quickstart.sh demo    run the demo on the embedded default scene
#   ./quickstart.sh test    run the test suite (extra arguments go to pytest)
# Both create or reuse the project virtualenv .venv, install what is missing (torch, the package,
# a Vulkan driver SAPIEN accepts) and say what they install and why. Set GSENV_PYTHON to pick the
# interpreter (default python3, >= 3.10) and GSENV_VENV to put the virtualenv elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=${GSENV_VENV:-$ROOT/.venv}
PY=${GSENV_PYTHON:-python3}
say() { echo "[gsenv setup] $*"; }

cmd=${1:-}
case "$cmd" in
  demo|test) shift ;;
  *) echo "usage: ./quickstart.sh demo|test [args...]" >&2; exit 2 ;;
esac

bash "$ROOT/scripts/ensure_vulkan.sh"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PY" -m venv "$VENV" || { say "could not create a virtualenv: install python3-venv (apt-get install python3-venv)"; exit 1; }
fi
VPY="$VENV/bin/python"

if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    say "installing torch (CUDA machine: a CUDA build of torch)"
    "$VPY" -m pip install -q "torch>=2.1"
  else
    # An unpinned torch would pull a multi-GB CUDA build; this CPU wheel is what CPU machines need.
    say "installing torch==2.13.0 (CPU build: this machine has no NVIDIA GPU)"
    "$VPY" -m pip install -q torch==2.13.0
  fi
fi

# (Re)install the package when pyproject.toml changed since the last install (editable: code changes
# need no reinstall).
stamp="$VENV/.gsenv-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$VPY" -c "import gsenv" >/dev/null 2>&1; then
  say "installing gsenv and its dependencies into $VENV (pip install -e .[dev])"
  "$VPY" -m pip install -q --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$stamp"
fi

case "$cmd" in
  demo)
    if "$VPY" -c "import gsenv.tools.demo" >/dev/null 2>&1; then
      exec "$VENV/bin/gsenv" demo "$@"
    fi
    exec "$VENV/bin/gsenv" doctor ;;
  test)
    # the viewer's browser test needs a headless Chromium (Debian's package); without one it skips
    bash "$ROOT/scripts/ensure_chromium.sh" || say "no Chromium: the viewer's browser test will skip"
    # RLinf's env class drives ours in a test: its package without its (training) dependencies
    if ! "$VPY" -c "import rlinf.envs.maniskill.maniskill_env" >/dev/null 2>&1; then
      say "installing rlinf==0.3.0 (no dependencies) for the RLinf interface test"
      "$VPY" -m pip install -q --disable-pip-version-check --no-deps rlinf==0.3.0
    fi
    exec "$VPY" -m pytest "$ROOT/tests" "$@" ;;
esac
