#!/usr/bin/env bash
# packaging/quorate.service without installing anything: `systemd-analyze verify`
# accepts it (against a copy whose binary paths point at the built binaries and whose
# man pages come from target/packaging/), the directives the service relies on are
# there, and the offline `systemd-analyze security` exposure score.
#
#   packaging/tests/unit.sh     (needs packaging/build.sh to have run)
set -euo pipefail
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

unit=$PKG_REPO/packaging/quorate.service
bin=${CARGO_TARGET_DIR:-$PKG_REPO/target}/x86_64-unknown-linux-gnu/release/quorate-agent
man_stage=$PKG_REPO/target/packaging/man
need_file "$bin"
need_file "$man_stage/quorate-agent.8.gz"
command -v systemd-analyze >/dev/null || die "systemd-analyze is missing (apt-get install systemd)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- systemd-analyze verify ---------------------------------------------------------
# verify checks that ExecStart= binaries exist and that Documentation= man pages open,
# so the copy points at the build and `man` looks in the staged pages.
mkdir -p "$tmp/unit" "$tmp/man/man1" "$tmp/man/man8"
sed "s|/usr/bin/quorate-agent|$bin|g" "$unit" >"$tmp/unit/quorate.service"
cp "$man_stage/quorate-agent.8.gz" "$tmp/man/man8/"
cp "$man_stage/quorate.1.gz" "$tmp/man/man1/"
if command -v man >/dev/null; then
  verify_env=(env MANPATH="$tmp/man")
else
  # Without man-db, verify cannot open any man page; check everything else.
  echo "# man is not installed: Documentation= not checked"
  sed -i '/^Documentation=/d' "$tmp/unit/quorate.service"
  verify_env=(env)
fi
if (cd "$tmp/unit" && "${verify_env[@]}" systemd-analyze verify ./quorate.service) >"$tmp/verify.log" 2>&1 \
  && ! grep -q . "$tmp/verify.log"; then
  ok "systemd-analyze verify accepts quorate.service, without a warning"
else
  fail "systemd-analyze verify accepts quorate.service, without a warning"
  sed 's/^/#   /' "$tmp/verify.log"
fi

# ---- the directives the agent and the packages rely on ------------------------------
has() { grep -qx "$1" "$unit"; }
# shellcheck disable=SC2016 # $MAINPID is systemd's, not the shell's
for line in \
  'Type=notify' 'NotifyAccess=main' \
  'ExecStart=/usr/bin/quorate-agent --config /etc/quorate/agent.toml' \
  'ExecReload=/usr/bin/quorate-agent --check-config --config /etc/quorate/agent.toml' \
  'ExecReload=/bin/kill -HUP $MAINPID' \
  'WatchdogSec=5s' 'Restart=on-failure' 'TimeoutStopSec=15s' \
  'User=quorate' 'Group=quorate' 'UMask=0077' 'StateDirectory=quorate' 'StateDirectoryMode=0700' \
  'OOMScoreAdjust=-500' 'CPUWeight=200' 'MemoryMin=16M' \
  'NoNewPrivileges=yes' 'CapabilityBoundingSet=' 'ProtectSystem=strict' 'ProtectHome=read-only' \
  'PrivateTmp=yes' 'PrivateDevices=yes' 'SystemCallFilter=@system-service' \
  'WantedBy=multi-user.target'; do
  check "quorate.service has $line" has "$line"
done
# The check must come before the HUP: a reload of an invalid file fails and the agent
# keeps running with the old config.
order=$(grep '^ExecReload=' "$unit" | sed 's/ .*//; s/.*\///' | tr '\n' ' ')
check_eq "ExecReload checks the config before it sends SIGHUP" "quorate-agent kill " "$order"

# ---- systemd-analyze security --------------------------------------------------------------
# --offline (systemd 250+) scores the file itself; the nspawn tests score the running
# service.
if systemd-analyze security --offline=yes "$tmp/unit/quorate.service" >"$tmp/security.log" 2>&1; then
  score=$(sed -n 's/.*Overall exposure level for quorate.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' "$tmp/security.log")
  echo "# systemd-analyze security --offline: exposure $score (0 best, 10 worst)"
  case $score in
    [0-2].*) ok "systemd-analyze security exposure is at most 2.9 ($score)" ;;
    *) fail "systemd-analyze security exposure is at most 2.9 ($score)"; sed 's/^/#   /' "$tmp/security.log" ;;
  esac
else
  echo "# systemd-analyze security --offline is not supported by this systemd: not scored"
fi

finish
