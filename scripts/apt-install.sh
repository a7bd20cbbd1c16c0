#!/bin/sh
# Installs Debian packages for a test's set-up, the one way the ensure-*.sh scripts do it:
#   scripts/apt-install.sh <who> <package>...
# <who> prefixes the messages. Exit 0: installed; 1: apt-get failed; 2: they cannot be installed
# here (no apt-get, or neither root nor password-less sudo), so the caller's tests skip and say why.
set -eu
WHO=$1
shift
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$WHO: $* missing and there is no apt-get to install them" >&2
  exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
  AS_ROOT=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  AS_ROOT="sudo -n"
else
  echo "$WHO: $* missing and installing them needs root: sudo apt-get install -y $*" >&2
  exit 2
fi
echo "$WHO: installing Debian's $* (apt-get install -y), once" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine: refresh them once if the first try fails.
$AS_ROOT apt-get install -y "$@" >&2 || { $AS_ROOT apt-get update >&2 && $AS_ROOT apt-get install -y "$@" >&2; } || exit 1
