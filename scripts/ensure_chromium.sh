#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed, for the browser test of `gsenv view`
# (tests/test_viewer.py drives it over the DevTools protocol). Debian 12 and 13 ship `chromium` in
# main, so the machine's own apt sources are used as they are (no source is added). Prints what it
# installs and why; does nothing (no apt-get update) when a Chromium is already on the PATH.
# Exit status 1 when none could be installed: the browser test then skips and says why.
set -euo pipefail

say() { echo "[gsenv setup] $*"; }

for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    say "Chromium: $(command -v "$name") found, nothing to install."; exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1 || [ ! -r /etc/os-release ]; then
  say "Chromium: none found and this is not a Debian system; install Chromium for the viewer's browser test."
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "Chromium: installing it needs root (no sudo found); the viewer's browser test will skip."; exit 1
  fi
fi

say "Chromium: installing chromium from your apt sources for the viewer's browser test (apt-get update first)"
$SUDO apt-get update -qq
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  say "Chromium: apt-get install chromium failed; the viewer's browser test will skip."; exit 1
fi
say "Chromium: installed $(dpkg-query -W -f='${Version}' chromium)."
