# shellcheck shell=bash
# Helpers for the packaging tests on the host (deb.sh, rpm.sh, unit.sh): TAP-like
# `ok - …` / `FAIL - …` lines, a failure count that sets the exit status, and the
# paths of the built packages. Sourced, never run.

PKG_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PKG_REPO=$(cd "$PKG_TESTS_DIR/../.." && pwd)
PKG_FAILS=0
PKG_PASSES=0

# The workspace version: the version of the packages build.sh makes by default.
PKG_VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$PKG_REPO/Cargo.toml")
# shellcheck disable=SC2034 # PKG_DEB and PKG_RPM are for the scripts that source this
PKG_DEB=${QUORATE_DEB:-$PKG_REPO/dist/quorate_${PKG_VERSION}-1_amd64.deb}
# shellcheck disable=SC2034
PKG_RPM=${QUORATE_RPM:-$PKG_REPO/dist/quorate-${PKG_VERSION}-1.x86_64.rpm}

ok() { printf 'ok - %s\n' "$*"; PKG_PASSES=$((PKG_PASSES + 1)); }
fail() { printf 'FAIL - %s\n' "$*"; PKG_FAILS=$((PKG_FAILS + 1)); }
die() { printf 'FATAL - %s\n' "$*" >&2; exit 1; }

# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1 (expected '$2', got '$3')"; fi
}

# check_stat PATH 'MODE USER:GROUP' (MODE in octal without a leading 0, as stat %a)
check_stat() {
  local got
  got=$(stat -c '%a %U:%G' "$1" 2>/dev/null || echo missing)
  check_eq "$1 is $2" "$2" "$got"
}

# finish: print the summary and exit non-zero when anything failed.
finish() {
  printf '# %s: %d passed, %d failed\n' "$(basename "$0")" "$PKG_PASSES" "$PKG_FAILS"
  [ "$PKG_FAILS" -eq 0 ]
}

need_file() {
  [ -f "$1" ] || die "$1 is missing: build it with packaging/build.sh"
}
