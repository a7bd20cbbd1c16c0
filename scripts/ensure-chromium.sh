#!/bin/sh
# Puts Debian's chromium at /usr/bin/chromium for the browser test (test/e2e/docs-browser.test.ts),
# installing it when it is missing (apt-install.sh: exit 0 there, 1 install failed, 2 cannot install here).
set -eu
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
"$(dirname "$0")/apt-install.sh" ensure-chromium chromium
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: apt-get ran but $CHROMIUM is still missing" >&2; exit 1; }
