#!/usr/bin/env bash
# Runs quorate's whole test suite on a fresh Debian machine: installs what the tests
# need (when run as root), builds the binaries the process tests start, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in iproute2 nftables haproxy util-linux bindfs tmux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: not root, so not installing ${need[*]}; tests that need them are skipped" >&2
  fi
fi

cargo build --workspace --bins
cargo test --workspace "$@"
