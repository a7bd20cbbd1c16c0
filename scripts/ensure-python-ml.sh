#!/bin/sh
# Puts Debian's python3-xgboost, python3-pandas, python3-torch and python3-onnx where /usr/bin/python3
# imports them, for the tests that check the service against the real libraries (XGBoost's own
# predict(), torch's own forward pass), installing them with apt-get when missing. PyPI is not
# reachable here; Debian's packages are. Exit 0: they import; 1: installing them failed; 2: they
# cannot be installed here (no apt-get, or neither root nor password-less sudo).
set -eu
PY=/usr/bin/python3
PACKAGES="python3-xgboost python3-pandas python3-torch python3-onnx"
[ -x "$PY" ] && "$PY" -c 'import xgboost, pandas, torch, onnx' 2>/dev/null && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-python-ml: $PACKAGES are missing and there is no apt-get to install them" >&2
  exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
  AS_ROOT=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  AS_ROOT="sudo -n"
else
  echo "ensure-python-ml: $PACKAGES are missing and installing them needs root: sudo apt-get install -y $PACKAGES" >&2
  exit 2
fi

echo "ensure-python-ml: installing Debian's $PACKAGES (apt-get install -y), once" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # the package list is meant to split
$AS_ROOT apt-get install -y $PACKAGES >&2 || { $AS_ROOT apt-get update >&2 && $AS_ROOT apt-get install -y $PACKAGES >&2; } || exit 1
"$PY" -c 'import xgboost, pandas, torch, onnx' || { echo "ensure-python-ml: apt-get ran but $PY still cannot import them" >&2; exit 1; }
