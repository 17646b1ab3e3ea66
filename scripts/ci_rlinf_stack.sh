#!/usr/bin/env bash
# CI at the low end of gsenv's dependency window: RLinf's ManiSkill stack.
#
#   scripts/ci_rlinf_stack.sh [pytest options]
#
# runs the env / RLinf (env and SFT configs) / ManiSkillVectorEnv / smoke tests (and the gsplat-shim and splat tests, for
# gsplat 1.4.0; the openpi wire-format test against openpi-client, which pins numpy<2) there;
# GSENV_CI_TESTS replaces that list (e.g. GSENV_CI_TESTS=tests: the whole suite).
#
# Builds (once; cached by a hash of pyproject.toml, the pins and the interpreter) a virtualenv
# holding RLinf's pins, installs gsenv into it WITHOUT changing them (pip's plan is checked first:
# any change to a pinned package fails loudly), then runs the tests there. A warm run only
# re-points the editable gsenv at this checkout and checks the pins are intact.
#
# The stack: RLinf's requirements/install.sh (install_maniskill_libero_env: ManiSkill v3.0.0b22,
# which requires gymnasium==0.29.1) and requirements/embodied/envs/common.txt (sapien==3.0.1), with
# the CPU build of torch 2.13.0. Also pinned, as they are in that environment: numpy 1.26.4 (RLinf's
# rlinf-openpi and rlinf-libero require numpy<2), gsplat 1.4.0 (the research package ManiSkill-GS
# pins it), setuptools<81 (sapien 3.0.1 imports pkg_resources; RLinf overrides setuptools<75.9,
# torch 2.13 needs >=77.0.3). Override with GSENV_CI_STACK / GSENV_CI_EXTRA (space-separated).
#
# GSENV_CI_PYTHON picks the interpreter (default python3.11, RLinf's), GSENV_CI_CACHE the cache
# directory (default ${XDG_CACHE_HOME:-~/.cache}/gsenv-ci).
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."
ROOT=$PWD
say() { echo "[ci rlinf-stack] $*"; }
die() { echo "[ci rlinf-stack] ERROR: $*" >&2; exit 1; }
t_start=$(date +%s)

PY=${GSENV_CI_PYTHON:-python3.11}
CACHE=${GSENV_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gsenv-ci}
read -r -a STACK <<< "${GSENV_CI_STACK:-torch==2.13.0 mani_skill==3.0.0b22 gymnasium==0.29.1 sapien==3.0.1}"
read -r -a EXTRA <<< "${GSENV_CI_EXTRA:-numpy==1.26.4 gsplat==1.4.0 setuptools>=77.0.3,<81}"
OPENPI_CLIENT=openpi-client==0.1.2  # openpi's policy-server client (tests/test_openpi_wire.py)
HYDRA=hydra-core==1.3.2  # RLinf's config loader, as its openpi install pins it (tests/test_rlinf_sft_config.py)
PROTECTED="torch numpy gymnasium mani_skill sapien gsplat"  # installing gsenv must change none of these
DEFAULT_TESTS="tests/test_env.py tests/test_env_inputs.py tests/test_rlinf.py tests/test_rlinf_config.py"
DEFAULT_TESTS+=" tests/test_smoke.py"
DEFAULT_TESTS+=" tests/test_rlinf_sft_config.py"  # examples/rlinf SFT YAMLs through hydra and RLinf's code
DEFAULT_TESTS+=" tests/test_openpi_wire.py"  # our openpi encoding vs openpi-client's (installable only here)
DEFAULT_TESTS+=" tests/test_compat.py tests/test_splat_raster.py tests/test_splat_ply.py"  # gsplat 1.4 shims
read -r -a TESTS <<< "${GSENV_CI_TESTS:-$DEFAULT_TESTS}"

command -v "$PY" >/dev/null || die "no interpreter $PY (set GSENV_CI_PYTHON)"
RECIPE=3  # bump when the build steps below change
key=$( { cat pyproject.toml; echo "$RECIPE ${STACK[*]} ${EXTRA[*]} $OPENPI_CLIENT $HYDRA"; "$PY" -VV; } | sha256sum | cut -c1-16)
VENV=$CACHE/rlinf-stack-$key
VPY=$VENV/bin/python
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"; flock 9 2>/dev/null || true  # one build at a time per cache

bash scripts/ensure_vulkan.sh

# name==version of every PROTECTED package installed in the venv, one a line
versions() {
  "$VPY" - "$PROTECTED" <<'EOF'
import importlib.metadata as md, sys
for name in sys.argv[1].split():
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}==(absent)")
EOF
}

# fail if pip's plan (a --report JSON) installs any of the names in $2, or any CUDA (nvidia-*) package
check_plan() {
  "$VPY" - "$1" "$2" <<'EOF'
import json, re, sys
norm = lambda n: re.sub(r"[-_.]+", "_", n).lower()
protected = {norm(n) for n in sys.argv[2].split()}
plan = [f"{i['metadata']['name']}=={i['metadata']['version']}" for i in json.load(open(sys.argv[1]))["install"]]
bad = [p for p in plan if norm(p.split("==")[0]) in protected or norm(p).startswith("nvidia_")]
if bad:
    print("[ci rlinf-stack] pip would install " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
}

if [ ! -f "$VENV/.complete" ]; then
  t0=$(date +%s)
  say "building $VENV (cold: first run, or pyproject.toml, the pins or the interpreter changed)"
  rm -rf "$VENV"
  find "$CACHE" -maxdepth 1 -name 'rlinf-stack-*' -type d -exec rm -rf {} +  # keep one stack only
  "$PY" -m venv "$VENV"
  # torch first, alone, checked: a plain `torch` from PyPI is a multi-GB CUDA build
  "$VPY" -m pip install -q --disable-pip-version-check --dry-run --report "$VENV/plan-torch.json" "${STACK[0]}"
  check_plan "$VENV/plan-torch.json" "" || die "${STACK[0]} would pull CUDA packages: make its CPU wheel" \
    "available to pip (PIP_FIND_LINKS, or PyTorch's CPU wheel index as PIP_INDEX_URL)"
  "$VPY" -m pip install -q --disable-pip-version-check "${STACK[0]}"
  say "installing RLinf's stack: ${STACK[*]} ${EXTRA[*]}"
  "$VPY" -m pip install -q --disable-pip-version-check "${STACK[@]}" "${EXTRA[@]}"
  versions > "$VENV/stack.txt"
  say "stack: $(tr '\n' ' ' < "$VENV/stack.txt")"
  "$VPY" -m pip install -q --disable-pip-version-check --dry-run --report "$VENV/plan-gsenv.json" -e ".[dev]"
  check_plan "$VENV/plan-gsenv.json" "$PROTECTED" || die "installing gsenv would change RLinf's stack (plan: $VENV/plan-gsenv.json)"
  "$VPY" -m pip install -q --disable-pip-version-check -e ".[dev]"
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps rlinf==0.3.0
  # openpi-client pins numpy<2, so only this venv can hold it: gsenv eval's wire format is checked against it
  "$VPY" -m pip install -q --disable-pip-version-check --dry-run --report "$VENV/plan-openpi.json" "$OPENPI_CLIENT"
  check_plan "$VENV/plan-openpi.json" "$PROTECTED" || die "installing $OPENPI_CLIENT would change RLinf's stack"
  "$VPY" -m pip install -q --disable-pip-version-check "$OPENPI_CLIENT"
  # hydra composes RLinf's YAMLs (its run scripts use hydra.main): the SFT YAMLs are loaded through it
  "$VPY" -m pip install -q --disable-pip-version-check --dry-run --report "$VENV/plan-hydra.json" "$HYDRA"
  check_plan "$VENV/plan-hydra.json" "$PROTECTED" || die "installing $HYDRA would change RLinf's stack"
  "$VPY" -m pip install -q --disable-pip-version-check "$HYDRA"
  diff <(versions) "$VENV/stack.txt" >&2 || die "installing gsenv changed RLinf's stack (above: < now, > before)"
  touch "$VENV/.complete"
  say "built in $(( $(date +%s) - t0 )) s"
else
  say "reusing $VENV"
  diff <(versions) "$VENV/stack.txt" >&2 || die "the cached venv's stack changed (above: < now, > built): delete $VENV"
  # the cached editable install may point at another checkout: point it at this one (no dependencies)
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
fi

say "$(tr '\n' ' ' < "$VENV/stack.txt")"
t0=$(date +%s)
"$VPY" -m pytest -p no:cacheprovider "${TESTS[@]}" "$@"
say "tests in $(( $(date +%s) - t0 )) s; total $(( $(date +%s) - t_start )) s"
