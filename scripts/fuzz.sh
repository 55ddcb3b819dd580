#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/: the decoders and parsers that read input
# from outside) for SECONDS_PER_TARGET seconds each, one after the other, starting from
# its committed corpus (fuzz/corpus/TARGET). Fails on any crash, panic, broken
# invariant, timeout or memory blow-up, and prints the executions per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     # default 15
#   QUORATE_FUZZ_TARGET_DIR=/var/cache/quorate-fuzz scripts/fuzz.sh   # keep the build
#
# New corpus entries go to a scratch directory that is removed at the end: the
# committed corpus only changes by hand (add a regression input there when you fix a
# crash). A crashing input is kept in fuzz/artifacts/TARGET/ (ignored by git), and the
# line to reproduce it is printed.
#
# Installs cargo-fuzz (`cargo install --locked`) if it is missing. The toolchain is the
# pinned stable one: cargo-fuzz passes flags that stable rustc takes only with
# RUSTC_BOOTSTRAP=1. Built without a sanitizer (`-s none`): the code fuzzed is safe
# Rust, which has nothing for AddressSanitizer to find that a panic would not show, and
# the build costs half as much (docs/benchmarks.md, "Fuzzing"); debug assertions and
# overflow checks stay on.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-15}
case $secs in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
CARGO_FUZZ_VERSION=0.13.2
# What the targets are built with, the same for `build` and `run` (so `run` does not
# build again). QUORATE_FUZZ_TARGET_DIR keeps the build somewhere that outlives the
# clone (a CI machine's cache): a warm build takes seconds, a cold one minutes.
host=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${QUORATE_FUZZ_TARGET_DIR:-fuzz/target}
build=(-s none -a --target "$host" --target-dir "$target_dir")
bin="$target_dir/$host/release"

step() { echo "=== $(date -u +%H:%M:%S) fuzz: $*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  # A debug build: cargo-fuzz only drives cargo and the fuzzer, and builds in a third
  # of the time.
  cargo install --locked --debug cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

step "building the targets"
cargo fuzz build "${build[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

mapfile -t targets < <(cargo fuzz list)
results=()
failed=()
for t in "${targets[@]}"; do
  step "$t for ${secs}s"
  mkdir -p "$scratch/$t" "fuzz/artifacts/$t"
  log="$scratch/$t.log"
  # The binary itself, not `cargo fuzz run`, so that its peak RSS is its own. libFuzzer
  # writes new inputs to the first directory only; the committed corpus, second, is
  # read. -timeout: an input taking 10 s is a hang; -rss_limit_mb: a decoder that takes
  # 2 GiB is a bug (the decoders stay under 2 MiB per message). TMPDIR: what a target
  # makes there (config_file's CA) goes with the scratch directory.
  if TMPDIR="$scratch" "$bin/$t" "$scratch/$t" "fuzz/corpus/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    # The fuzzer's own report: the panic message, the input and how to reproduce it.
    grep -v '^#[0-9]' "$log" | tail -n 40 >&2
  fi
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  results+=("$(printf '%-22s %-7s %12s %10s %10s' "$t" "$status" \
    "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
    "$(stat peak_rss_mb)")")
done

echo
printf '%-22s %-7s %12s %10s %10s\n' target result executions "exec/s" "peak MiB"
printf '%s\n' "${results[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/; reproduce with" \
    "$bin/TARGET fuzz/artifacts/TARGET/crash-…)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs}s each, no crash"
