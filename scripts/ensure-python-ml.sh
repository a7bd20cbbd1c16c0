#!/bin/sh
# Puts Debian's python3-xgboost, python3-pandas, python3-torch and python3-onnx where /usr/bin/python3
# imports them, for the tests that check the service against the real libraries (XGBoost's own
# predict(), torch's own forward pass), installing them when missing. PyPI is not reachable here;
# Debian's packages are. Exit 0: they import; 1: installing them failed; 2: they cannot be
# installed here (apt-install.sh says why).
set -eu
PY=/usr/bin/python3
[ -x "$PY" ] && "$PY" -c 'import xgboost, pandas, torch, onnx' 2>/dev/null && exit 0
"$(dirname "$0")/apt-install.sh" ensure-python-ml python3-xgboost python3-pandas python3-torch python3-onnx
"$PY" -c 'import xgboost, pandas, torch, onnx' || { echo "ensure-python-ml: apt-get ran but $PY still cannot import them" >&2; exit 1; }
