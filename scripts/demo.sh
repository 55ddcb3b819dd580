#!/usr/bin/env bash
# Builds quorate and starts a live local demo cluster (3 agents on loopback, own CA).
# Extra arguments go to `quorate demo`, e.g. `scripts/demo.sh --nodes 5`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
exec target/release/quorate demo "$@"
