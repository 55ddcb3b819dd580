#!/usr/bin/env bash
# Runs quorate's whole test suite on a fresh Debian machine: installs what the tests
# need (when run as root), builds the binaries the process tests start, runs every Rust
# test, then (as root) the packaging tests: packaging/test.sh builds the deb and rpm,
# installs, upgrades and purges the deb here and boots systemd in nspawn containers.
#
#   scripts/test.sh [--no-packaging] [ARGS for cargo test...]
set -euo pipefail
cd "$(dirname "$0")/.."

packaging=1
cargo_args=()
for arg in "$@"; do
  case $arg in
    --no-packaging) packaging=0 ;;
    *) cargo_args+=("$arg") ;;
  esac
done

step() { echo "=== $(date -u +%H:%M:%S) $*"; }

need=()
for pkg in iproute2 nftables iptables haproxy nginx prometheus curl shellcheck util-linux bindfs tmux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    step "apt-get install ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: not root, so not installing ${need[*]}; tests that need them are skipped" >&2
  fi
fi

step "cargo build"
cargo build --workspace --bins
step "cargo test"
cargo test --workspace "${cargo_args[@]}"

if [ "$packaging" = 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    step "packaging tests"
    packaging/test.sh
  else
    echo "note: not root, so the packaging tests (packages, systemd in nspawn) are skipped" >&2
  fi
fi
step "done"
