#!/usr/bin/env bash
# The browser tests' set-up: headless Chromium and its driver from Debian's packages (never a
# browser download at run time; Playwright drives /usr/bin/chromium). Needs root when missing.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
/usr/bin/chromium --version
