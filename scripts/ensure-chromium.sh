#!/bin/sh
# Puts Debian's chromium at /usr/bin/chromium for the browser test (test/e2e/docs-browser.test.ts),
# installing it with apt-get when it is missing. Exit 0: it is there; 1: installing it failed;
# 2: it cannot be installed here (no apt-get, or neither root nor password-less sudo).
set -eu
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and there is no apt-get to install it; install Debian's chromium" >&2
  exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
  AS_ROOT=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  AS_ROOT="sudo -n"
else
  echo "ensure-chromium: $CHROMIUM is missing and installing it needs root: sudo apt-get install -y chromium" >&2
  exit 2
fi

echo "ensure-chromium: installing Debian's chromium (apt-get install -y chromium), once" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine: refresh them once if the first try fails.
$AS_ROOT apt-get install -y chromium >&2 || { $AS_ROOT apt-get update >&2 && $AS_ROOT apt-get install -y chromium >&2; } || exit 1
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: apt-get ran but $CHROMIUM is still missing" >&2; exit 1; }
