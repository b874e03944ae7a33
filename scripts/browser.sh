#!/usr/bin/env bash
# Debian's chromium and chromedriver for the browser tests (Playwright drives this binary).
set -eu
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Install Chromium and put it on PATH (the browser tests drive it)." >&2
  exit 1
fi
echo "Installing Debian's chromium and chromium-driver for the browser tests."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
