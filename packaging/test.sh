#!/usr/bin/env bash
# The packaging tests: builds the packages (unless dist/ is newer than every source
# file), checks that both ship the monitoring files under /usr/share/quorate (and, with
# promtool, that the shipped rules pass), then runs packaging/tests/unit.sh, rpm.sh,
# deb.sh and the real-systemd tests packaging/tests/nspawn*.sh, and prints how long
# each step took.
#
#   packaging/test.sh [--rebuild] [TEST...]     e.g. packaging/test.sh deb rpm
#
# As root it installs the Debian packages the tests need. deb.sh installs and purges
# the package quorate on this machine, and the nspawn tests boot containers: run it
# on a CI or throwaway machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

rebuild=0
only=()
for arg in "$@"; do
  case $arg in
    --rebuild) rebuild=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "test.sh: unknown option '$arg'" >&2; exit 64 ;;
    *) only+=("$arg") ;;
  esac
done

t0=$SECONDS
timings=()
# timed NAME COMMAND...: runs COMMAND, records its time and result, never exits.
failed=()
timed() {
  local name=$1 t=$SECONDS rc=0
  shift
  echo "=== $name"
  "$@" || rc=$?
  timings+=("$(printf '%-28s %4ds  %s' "$name" $((SECONDS - t)) "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")")")
  [ $rc = 0 ] || failed+=("$name")
  return 0
}
summary() {
  echo "=== packaging timings"
  printf '%s\n' "${timings[@]}"
  printf '%-28s %4ds\n' total $((SECONDS - t0))
}

# ---- what the tests need ---------------------------------------------------------------
need=()
for pkg in lintian rpm rpm2cpio cpio binutils dpkg-dev systemd man-db adduser procps \
  systemd-container debootstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    timed "apt-get install (${#need[@]} packages)" sh -c \
      "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${need[*]} >/dev/null"
  else
    echo "test.sh: missing ${need[*]}; run as root to install them" >&2
    exit 69
  fi
fi

# ---- the packages -----------------------------------------------------------------------
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
deb=dist/quorate_${version}-1_amd64.deb
rpm=dist/quorate-${version}-1.x86_64.rpm
stale() {
  [ "$rebuild" = 1 ] && return 0
  [ -f "$deb" ] && [ -f "$rpm" ] && [ -f target/packaging/man/quorate-agent.8.gz ] || return 0
  # Anything the packages are made of, newer than the older of the two packages.
  local oldest=$deb
  [ "$rpm" -ot "$deb" ] && oldest=$rpm
  local f
  while IFS= read -r -d '' f; do
    [ "$f" -nt "$oldest" ] && return 0
  done < <(git ls-files -z -- Cargo.toml Cargo.lock LICENSE CHANGELOG.md protocol agent tui packaging \
    ':!packaging/tests' ':!packaging/test.sh')
  return 1
}
if stale; then
  timed "packaging/build.sh" packaging/build.sh
else
  echo "=== packages in dist/ are newer than their sources: not rebuilt (--rebuild to force)"
fi
if [ ${#failed[@]} -gt 0 ]; then summary; exit 1; fi

export QUORATE_DEB=$root/$deb QUORATE_RPM=$root/$rpm

# ---- the monitoring files ---------------------------------------------------------------
# Both packages ship the alert rules and the dashboard under /usr/share/quorate, byte for
# byte as in packaging/monitoring/, and the rules the deb installs pass promtool.
monitoring() {
  local tmp f rc=0
  tmp=$(mktemp -d)
  dpkg-deb -x "$QUORATE_DEB" "$tmp/deb"
  mkdir -p "$tmp/rpm"
  (cd "$tmp/rpm" && rpm2cpio "$QUORATE_RPM" | cpio -idm --quiet)
  for f in quorate-alerts.yml grafana-dashboard.json; do
    for pkg in deb rpm; do
      if cmp -s "packaging/monitoring/$f" "$tmp/$pkg/usr/share/quorate/$f"; then
        echo "ok: the $pkg ships /usr/share/quorate/$f"
      else
        echo "FAIL: the $pkg lacks /usr/share/quorate/$f, or it differs from packaging/monitoring/$f"
        rc=1
      fi
    done
  done
  if command -v promtool >/dev/null; then
    promtool check rules "$tmp/deb/usr/share/quorate/quorate-alerts.yml" || rc=1
  else
    echo "promtool not installed (Debian package prometheus): the shipped rules are not checked"
  fi
  rm -rf "$tmp"
  return $rc
}
if [ ${#only[@]} -eq 0 ] || printf '%s\n' "${only[@]}" | grep -qx monitoring; then
  timed monitoring monitoring
fi

# ---- the tests ------------------------------------------------------------------------------
tests=(packaging/tests/unit.sh packaging/tests/rpm.sh packaging/tests/deb.sh)
for t in packaging/tests/nspawn*.sh; do
  [ -f "$t" ] && tests+=("$t")
done
for t in "${tests[@]}"; do
  name=$(basename "$t" .sh)
  if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx "$name"; then
    continue
  fi
  timed "$name" bash "$t"
done

summary
if [ ${#failed[@]} -gt 0 ]; then
  echo "packaging tests failed: ${failed[*]}" >&2
  exit 1
fi
