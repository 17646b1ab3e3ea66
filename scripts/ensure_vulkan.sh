#!/usr/bin/env bash
# Make sure a Vulkan driver that SAPIEN accepts is installed (SAPIEN needs Vulkan even for state-only
# envs). With an NVIDIA GPU that is the NVIDIA ICD; without one it is Mesa's lavapipe >= 25
# (SAPIEN refuses Debian 12's 22.x). Debian 12 gets 25.x from bookworm-backports: the apt source is
# derived from this machine's own /etc/apt sources (only the suite changes). Debian 13+ has it in main.
# Prints what it installs and why; does nothing (no apt-get update) when a good driver is present.
set -euo pipefail

say() { echo "[gsenv setup] $*"; }
MIN_MESA_MAJOR=25

mesa_major() {  # major version of the installed mesa-vulkan-drivers, or 0
  local v
  v=$(dpkg-query -W -f='${Status} ${Version}' mesa-vulkan-drivers 2>/dev/null | awk '/install ok installed/ {print $4}')
  v=${v#*:}                      # drop an epoch
  echo "${v%%.*}" | grep -E '^[0-9]+$' || echo 0
}

has_nvidia_icd() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || return 1
  ls /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
     /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json 2>/dev/null | grep -q . || return 1
}

have_libvulkan() { ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; }

if has_nvidia_icd && have_libvulkan; then
  say "Vulkan: NVIDIA driver found, nothing to install."; exit 0
fi
if [ "$(mesa_major)" -ge "$MIN_MESA_MAJOR" ] && have_libvulkan; then
  say "Vulkan: Mesa lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) found, nothing to install."; exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || [ ! -r /etc/os-release ]; then
  say "Vulkan: no driver SAPIEN accepts was found and this is not a Debian system."
  say "Install Mesa's lavapipe >= $MIN_MESA_MAJOR (CPU) or an NVIDIA driver with Vulkan, then rerun."; exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "Vulkan: Mesa lavapipe >= $MIN_MESA_MAJOR is needed and installing it needs root (no sudo found)."; exit 1
  fi
fi

. /etc/os-release
codename=${VERSION_CODENAME:-}
say "Vulkan: SAPIEN needs Mesa lavapipe >= $MIN_MESA_MAJOR on a machine without a GPU; found mesa-vulkan-drivers major $(mesa_major)."

target_args=()
if [ "${ID:-}" = debian ] && [ "${VERSION_ID:-0}" = 12 ]; then
  bp="${codename}-backports"
  list=/etc/apt/sources.list.d/gsenv-${bp}.sources
  if ! grep -rqs -- "$bp" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Copy the machine's own main-archive stanza and change only its suite.
    src=$(python3 - "$codename" "$bp" <<'PY'
import glob, re, sys
codename, bp = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                fields[m.group(1)] = m.group(2).strip()
        if codename in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
            out = [f"Types: deb", f"URIs: {fields['URIs']}", f"Suites: {bp}",
                   f"Components: {fields.get('Components', 'main')}"]
            if "Signed-By" in fields:
                out.append(f"Signed-By: {fields['Signed-By']}")
            print("\n".join(out)); sys.exit(0)
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "deb" and codename in parts:
            i = parts.index(codename)
            parts[i] = bp
            print(" ".join(parts)); sys.exit(0)
sys.exit("no apt source for suite " + codename + " found")
PY
)
    case "$src" in
      Types:*) ;;
      *) list=/etc/apt/sources.list.d/gsenv-${bp}.list ;;
    esac
    say "Vulkan: adding apt source $list (your main archive, suite $bp) for Mesa $MIN_MESA_MAJOR.x"
    echo "$src" | $SUDO tee "$list" >/dev/null
  fi
  target_args=(-t "$bp")
fi

say "Vulkan: installing mesa-vulkan-drivers libvulkan1 ${target_args[*]:-} (apt-get update first)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${target_args[@]}" mesa-vulkan-drivers libvulkan1 >/dev/null
if [ "$(mesa_major)" -lt "$MIN_MESA_MAJOR" ]; then
  say "Vulkan: installed mesa-vulkan-drivers is still $(mesa_major).x; SAPIEN needs >= $MIN_MESA_MAJOR. Install a newer Mesa and rerun."
  exit 1
fi
say "Vulkan: installed Mesa lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)."
