#!/bin/bash
# The packaged service on a real systemd: one Debian bookworm container
# (systemd-nspawn, root cached under target/nspawn), the deb installed with dpkg,
# a one-node config made only by editing /etc/quorate/agent.toml and with
# `quorate ca`, then what an operator expects from systemd: start returns at
# READY, reload applies live changes and refuses bad ones without a new PID, a
# renewed certificate is served after a reload, the watchdog restarts a wedged
# agent, warnings reach `journalctl -p warning`, an upgrade (dpkg --force-confold)
# restarts the running agent and keeps the edited config, stop is clean.
#
# Usage (root): packaging/tests/nspawn-service.sh [DEB]
#   DEB defaults to $QUORATE_DEB, else the newest dist/quorate_*.deb.
# Prints TAP-like `ok - …` / `FAIL - …` lines and step times; exits 1 on any FAIL.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib-nspawn.sh
source "$here/lib-nspawn.sh"

deb=$(nspawn_deb "${1:-}")

C=svc
HTTP=http://127.0.0.1:7701

nspawn_init
step "nspawn-service: deb $(basename "$deb")"

root=$(nspawn_root "$deb")
step "root ready: $root"

# A lower version of the same tree, for the upgrade (deb.sh builds the same one).
old_version=0.0.9
old_dir=$NSPAWN_REPO/target/pkg-old
old_deb=$old_dir/quorate_${old_version}-1_amd64.deb
if [[ ! -f $old_deb || $old_deb -ot $deb ]]; then
  "$NSPAWN_REPO/packaging/build.sh" --version "$old_version" --out "$old_dir" --deb-only \
    >"$NSPAWN_TMP/build-old.log" 2>&1 || { sed 's/^/    /' "$NSPAWN_TMP/build-old.log"; die "cannot build the $old_version deb"; }
fi

# A private network namespace (lo only): port 7700/7701 are the container's own.
ct_boot "$C" "$root" --private-network --bind-ro="$(dirname "$deb"):/mnt/dist" \
  --bind-ro="$old_dir:/mnt/old"
ct_wait "$C"
step "container booted"

# ---- helpers ------------------------------------------------------------------

# prop NAME: a property of quorate.service.
prop() { ct "$C" systemctl show -P "$1" quorate.service; }
mainpid() { prop MainPID; }
# since: a timestamp for journalctl --since (the container's clock is the host's).
since() { printf '@%s' "$(date +%s.%N | cut -c1-14)"; }
journal_since() { ct "$C" journalctl -u quorate --no-pager -o cat --since "$1" "${@:2}"; }
# app_check: this node's checks.app in /cluster.
app_check() {
  ct "$C" curl -fsS --max-time 2 "$HTTP/cluster" 2>/dev/null |
    jq -r '(.nodes[] | select(.node == "n1") | .checks.app) // "missing"' 2>/dev/null || echo unreachable
}
# wait_for SECONDS CMD...: poll CMD until it succeeds, for at most SECONDS.
wait_for() {
  local end=$((SECONDS + $1))
  shift
  while true; do
    "$@" >/dev/null 2>&1 && return 0
    ((SECONDS < end)) || return 1
    sleep 0.2
  done
}
app_is() { [[ $(app_check) == "$1" ]]; }
active_running() { [[ $(prop ActiveState)/$(prop SubState) == active/running ]]; }
reload() { ct "$C" timeout 30 systemctl reload quorate; }
# ensure_running: each section tests one thing; if an earlier failure left the
# service down, start it again (and say so) rather than fail everything after.
ensure_running() {
  active_running && [[ $(mainpid) -gt 1 ]] && return 0
  printf '# quorate is not running (%s): restarting it for the next check\n' "$(prop ActiveState)/$(prop SubState)"
  ct "$C" timeout 100 systemctl restart quorate || true
  wait_for 10 ct "$C" curl -fsS --max-time 2 "$HTTP/ready" || true
  active_running && [[ $(mainpid) -gt 1 ]]
}
# signal SIG PID: kill(1) in the container, never with a PID of 0 or 1 (which
# would signal the caller's process group or the container's init).
signal() {
  [[ $2 =~ ^[0-9]+$ && $2 -gt 1 ]] || { printf '# refusing to send SIG%s to PID %s\n' "$1" "$2"; return 1; }
  ct "$C" kill "-$1" "$2"
}

# ---- install and configure --------------------------------------------------------

if ct "$C" dpkg -i "/mnt/dist/$(basename "$deb")" >"$NSPAWN_TMP/dpkg.log" 2>&1; then
  ok "dpkg -i installs the deb"
else
  sed 's/^/    /' "$NSPAWN_TMP/dpkg.log"
  fail "dpkg -i installs the deb"
  exit 1
fi
if [[ $(prop UnitFileState) == enabled && $(prop ActiveState) == inactive ]]; then
  ok "a first install enables quorate.service and does not start it"
else
  fail "a first install enables quorate.service and does not start it (UnitFileState=$(prop UnitFileState) ActiveState=$(prop ActiveState))"
fi
step "installed"

# The CA lives apart from the agent's files (an operator keeps ca.key off the
# nodes); the node gets its certificate, its key and ca.pem.
issue_cert() { # issue_cert CA_DIR: a fresh n1 certificate and key from the CA in CA_DIR
  ct "$C" rm -f "$1/n1.pem" "$1/n1.key"
  ct "$C" quorate ca issue --dir "$1" n1 >/dev/null
}
install_tls() { # install_tls CA_DIR: ca.pem, n1.pem, n1.key into /etc/quorate/tls as docs/install.md says
  ct_sh "$C" "set -e
    install -d -m 0750 -o root -g quorate /etc/quorate/tls
    cp $1/ca.pem $1/n1.pem $1/n1.key /etc/quorate/tls/
    chown root:quorate /etc/quorate/tls/*
    chmod 0640 /etc/quorate/tls/n1.key
    chmod 0644 /etc/quorate/tls/ca.pem /etc/quorate/tls/n1.pem"
}
ct "$C" quorate ca init --dir /root/quorate-ca >/dev/null
issue_cert /root/quorate-ca
install_tls /root/quorate-ca

ct_toml_set "$C" "" cluster '"lab"'
ct_toml_set "$C" "" node '"n1"'
ct_toml_set "$C" "" advertise '"127.0.0.1:7700"'
ct_toml_set "$C" "" peers '[]'
ct_toml_set "$C" tls ca '"/etc/quorate/tls/ca.pem"'
ct_toml_set "$C" tls cert '"/etc/quorate/tls/n1.pem"'
ct_toml_set "$C" tls key '"/etc/quorate/tls/n1.key"'
ct "$C" cp -p /etc/quorate/agent.toml /root/agent.toml.good
# As the agent will read the files (docs/install.md).
if ct "$C" runuser -u quorate -- quorate-agent --check-config >"$NSPAWN_TMP/check.log" 2>&1; then
  ok "the shipped agent.toml passes --check-config (as quorate) once cluster, node, advertise, peers and [tls] are filled in"
else
  sed 's/^/    /' "$NSPAWN_TMP/check.log"
  ct "$C" cat /etc/quorate/agent.toml | sed 's/^/    | /'
  fail "the shipped agent.toml passes --check-config (as quorate) once cluster, node, advertise, peers and [tls] are filled in"
fi
step "configured"

# ---- start: returns at READY --------------------------------------------------------

t0=$(date +%s.%N)
if ct "$C" timeout 100 systemctl start quorate; then
  # No sleep: right after start returns, the unit is running and /ready answers.
  st=$(prop ActiveState)/$(prop SubState)
  code=$(ct "$C" curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "$HTTP/ready" || true)
  took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [[ $st == active/running && $code == 200 ]]; then
    ok "systemctl start returns at READY (${took}s): active (running) and /ready 200 right after"
  else
    fail "systemctl start returns at READY (${took}s): got $st and /ready $code right after" "$C"
  fi
else
  fail "systemctl start quorate succeeds" "$C"
fi
status_text=$(prop StatusText)
if [[ -n $status_text ]]; then
  ok "STATUS= is set: \"$status_text\""
else
  fail "STATUS= is set (StatusText is empty)"
fi
wait_for 10 ct "$C" curl -fsS --max-time 2 "$HTTP/ready" || true
wait_for 10 ct "$C" curl -fsS --max-time 2 "$HTTP/primary" || true
ct_status "$C"
step "started"

# ---- reload: a changed check, same PID ---------------------------------------------

ensure_running || true
pid=$(mainpid)
before=$(app_check)
ct_toml_set "$C" app check '"tcp://127.0.0.1:9"'
if reload && wait_for 15 app_is fail && [[ $(mainpid) == "$pid" ]] && active_running; then
  ok "reload with a new [app] check: checks.app $before -> fail in /cluster, same MainPID $pid"
else
  fail "reload with a new [app] check: checks.app $before -> $(app_check), MainPID $pid -> $(mainpid)" "$C"
fi
step "reload: changed check"

# ---- reload of an invalid file: fails, nothing changes ---------------------------------

ensure_running || true
pid=$(mainpid)
ct "$C" cp -p /etc/quorate/agent.toml /root/agent.toml.valid
ct_sh "$C" 'echo "this is = = not toml [" >>/etc/quorate/agent.toml'
if ! active_running; then
  fail "systemctl reload of an invalid file fails (quorate is not running: nothing to test)"
elif reload 2>"$NSPAWN_TMP/reload.err"; then
  fail "systemctl reload of an invalid file fails (it returned 0)" "$C"
else
  ok "systemctl reload of an invalid file fails: $(head -1 "$NSPAWN_TMP/reload.err")"
fi
sleep 1.5 # a wrongly applied config would show within an app-check interval
if [[ $(mainpid) == "$pid" ]] && active_running && app_is fail; then
  ok "after the failed reload the agent keeps its config (checks.app still fail) and MainPID $pid"
else
  fail "after the failed reload: MainPID $pid -> $(mainpid), $(prop ActiveState)/$(prop SubState), checks.app $(app_check)" "$C"
fi
ct "$C" cp -p /root/agent.toml.valid /etc/quorate/agent.toml
# The agent still applies later reloads: a check that passes (the agent's own HTTP port).
ensure_running || true
pid=$(mainpid)
ct_toml_set "$C" app check '"tcp://127.0.0.1:7701"'
if reload && wait_for 15 app_is ok && [[ $(mainpid) == "$pid" ]]; then
  ok "a valid reload after the failed one applies: checks.app fail -> ok, same MainPID"
else
  fail "a valid reload after the failed one: checks.app $(app_check), MainPID $pid -> $(mainpid)" "$C"
fi
step "reload: invalid file"

# ---- reload after the certificate was renewed ------------------------------------
# What tells an old certificate from a new one without a TLS client for QUIC: the
# renewal here also rotates the CA. Until the reload, `quorate status` (which
# trusts the new ca.pem) cannot verify the certificate the agent presents;
# after it, it can. If `quorate ca renew` exists it is exercised first on the
# same CA (the common case), and the agent must survive that reload too.

ensure_running || true
pid=$(mainpid)
if ct "$C" quorate ca --help 2>/dev/null | grep -q '^ *renew'; then
  mark=$(since)
  if ct "$C" quorate ca renew --dir /root/quorate-ca n1 >/dev/null && install_tls /root/quorate-ca &&
    reload && wait_for 10 ct "$C" timeout 5 runuser -u quorate -- quorate status --connect 127.0.0.1:7700 &&
    [[ $(mainpid) == "$pid" ]]; then
    ok "quorate ca renew + reload: quorate status works, same MainPID"
  else
    fail "quorate ca renew + reload: quorate status or the PID changed ($pid -> $(mainpid))" "$C"
  fi
  journal_since "$mark" | grep -i 'certif' | sed 's/^/    journal: /' || true
else
  printf '# quorate ca renew does not exist yet; the renewal below re-issues\n'
fi
ct "$C" quorate ca init --dir /root/quorate-ca2 >/dev/null
issue_cert /root/quorate-ca2
install_tls /root/quorate-ca2
ensure_running || true
pid=$(mainpid)
# This checks the certificates only: as the agent's user (who may read the
# key), with --connect (not how quorate finds the agent; checked after start).
status() { ct "$C" timeout 5 runuser -u quorate -- quorate status --connect 127.0.0.1:7700; }
out=$(status 2>&1 || true)
if status >/dev/null 2>&1; then
  fail "before the reload, quorate status with the new CA cannot verify the agent (it could: the test proves nothing)"
elif grep -qiE 'certif|handshake|verif|issuer|unknown ?ca' <<<"$out"; then
  ok "before the reload, quorate status with the new CA cannot verify the agent's old certificate"
else
  fail "before the reload, quorate status fails for a reason other than the certificate: $(head -1 <<<"$out")"
fi
printf '    status: %s\n' "$(head -1 <<<"$out")"
mark=$(since)
if reload && wait_for 10 status && [[ $(mainpid) == "$pid" ]]; then
  ok "reload after the certificate was renewed serves the new one: quorate status verifies it, same MainPID"
else
  fail "reload after the certificate was renewed: quorate status fails or MainPID $pid -> $(mainpid)" "$C"
  status 2>&1 | head -3 | sed 's/^/    status: /' || true
fi
journal_since "$mark" | grep -i 'certif' | sed 's/^/    journal: /' || true
step "reload: renewed certificate"

# ---- reload of a restart-only key: refused by name, agent keeps running --------------

ensure_running || true
pid=$(mainpid)
ct "$C" cp -p /etc/quorate/agent.toml /root/agent.toml.valid
ct_toml_set "$C" timing lease '"250ms"'
mark=$(since)
reload || true
sleep 0.5
if [[ $(mainpid) == "$pid" ]] && active_running &&
  journal_since "$mark" -p warning | grep -q 'lease'; then
  ok "reload with a restart-only key ([timing] lease): a warning naming it in journalctl -p warning, same MainPID"
  journal_since "$mark" -p warning | grep 'lease' | head -2 | sed 's/^/    journal: /'
else
  fail "reload with a restart-only key ([timing] lease): no warning naming lease at -p warning, or MainPID $pid -> $(mainpid)" "$C"
fi
ct "$C" cp -p /root/agent.toml.valid /etc/quorate/agent.toml
reload || true
step "reload: restart-only key"

# ---- a provoked warning: the event-loop stall after SIGSTOP/SIGCONT -----------------

ensure_running || true
pid=$(mainpid)
mark=$(since)
signal STOP "$pid" || true
sleep 1
signal CONT "$pid" || true
# shellcheck disable=SC2016 # expanded by eval, in each try
if wait_for 5 eval 'journal_since "$mark" -p warning | grep -q stall'; then
  ok "journalctl -u quorate -p warning shows the provoked stall warning"
  journal_since "$mark" -p warning | grep stall | head -1 | sed 's/^/    journal: /'
else
  fail "journalctl -u quorate -p warning shows the provoked stall warning (SIGSTOP 1s)" "$C"
fi
step "warning: stall"

# ---- the watchdog restarts a wedged agent ------------------------------------------

wd_usec=$(prop WatchdogUSec)
wd_s=$(awk -v v="$wd_usec" 'BEGIN {
  n = v + 0
  if (v ~ /min/) n *= 60; else if (v ~ /ms/) n /= 1000; else if (v ~ /us/) n /= 1000000
  printf "%d", (n == int(n) ? n : int(n) + 1) }')
if [[ $wd_s == 0 ]]; then
  fail "the unit sets WatchdogSec (WatchdogUSec=$wd_usec)"
else
  if ((wd_s > 10)); then
    # Shorter for the test, with a drop-in as an operator would.
    ct_sh "$C" 'mkdir -p /etc/systemd/system/quorate.service.d &&
      printf "[Service]\nWatchdogSec=3s\n" >/etc/systemd/system/quorate.service.d/watchdog.conf &&
      systemctl daemon-reload && systemctl restart quorate'
    wd_s=3
  fi
  ensure_running || true
  pid=$(mainpid)
  restarts=$(prop NRestarts)
  mark=$(since)
  signal STOP "$pid" || true
  sleep $((wd_s + 1))
  # shellcheck disable=SC2016 # expanded by eval, in each try
  if wait_for $((wd_s + 25)) eval '[[ $(mainpid) != "$pid" && $(mainpid) != 0 ]] && active_running' &&
    [[ $(prop NRestarts) -gt $restarts ]] &&
    ct "$C" journalctl -u quorate --no-pager --since "$mark" | grep -qi 'watchdog timeout'; then
    ok "SIGSTOP for longer than WatchdogSec=${wd_s}s: systemd restarts it (MainPID $pid -> $(mainpid), NRestarts $restarts -> $(prop NRestarts), journal: watchdog timeout)"
  else
    signal CONT "$pid" 2>/dev/null || true
    fail "SIGSTOP for longer than WatchdogSec=${wd_s}s: MainPID $pid -> $(mainpid), NRestarts $restarts -> $(prop NRestarts)" "$C"
  fi
  if wait_for 20 ct "$C" curl -fsS --max-time 2 "$HTTP/ready"; then
    ok "after the watchdog restart /ready answers 200 again"
  else
    fail "after the watchdog restart /ready answers 200 again" "$C"
  fi
fi
step "watchdog"

# ---- upgrade: a running agent is restarted, the edited agent.toml survives ------------

# As an unattended upgrade runs: --force-confold keeps the operator's agent.toml.
# Down to the lower version first, then up again, each with the agent running.
ensure_running || true
for to in "/mnt/old/$(basename "$old_deb")" "/mnt/dist/$(basename "$deb")"; do
  pid=$(mainpid)
  mark=$(since)
  # shellcheck disable=SC2016 # expanded by eval, in each try
  if ct "$C" dpkg --force-confold -i "$to" >"$NSPAWN_TMP/upgrade.log" 2>&1 &&
    wait_for 20 eval '[[ $(mainpid) != "$pid" && $(mainpid) != 0 ]] && active_running' &&
    wait_for 20 ct "$C" curl -fsS --max-time 2 "$HTTP/ready"; then
    ok "dpkg --force-confold -i $(basename "$to") restarts the running agent (MainPID $pid -> $(mainpid)), /ready 200 after"
  else
    sed 's/^/    /' "$NSPAWN_TMP/upgrade.log"
    fail "dpkg --force-confold -i $(basename "$to") restarts the running agent: MainPID $pid -> $(mainpid), $(prop ActiveState)/$(prop SubState)" "$C"
  fi
done
# shellcheck disable=SC2016 # ${Version} is dpkg-query's, not the shell's
installed=$(ct "$C" dpkg-query -W -f='${Version}' quorate)
if ct "$C" grep -q '^node = "n1"' /etc/quorate/agent.toml &&
  [[ $installed != "${old_version}-1" ]] &&
  journal_since "$mark" | grep -q 'leaving the cluster'; then
  ok "after the upgrade the edited agent.toml is kept, the new version is installed, and the old agent left cleanly (SIGTERM)"
else
  fail "after the upgrade: agent.toml edit kept? version $installed, clean leave in the journal?" "$C"
fi
step "upgrade"

# ---- the security exposure score (printed, not judged) -------------------------------

score=$(ct "$C" systemd-analyze security quorate.service --no-pager 2>&1 | tail -1 || true)
printf '# systemd-analyze security quorate.service: %s\n' "$score"

# ---- stop: clean -------------------------------------------------------------------

ensure_running || true
mark=$(since)
if ct "$C" timeout 30 systemctl stop quorate; then
  st=$(prop ActiveState) res=$(prop Result) code=$(prop ExecMainCode) status=$(prop ExecMainStatus)
  if [[ $st == inactive && $res == success && $code == 1 && $status == 0 ]] &&
    journal_since "$mark" | grep -qiE 'leaving the cluster|said goodbye|left the cluster'; then
    ok "systemctl stop ends it cleanly: inactive, exit status 0, the journal says it left the cluster"
    journal_since "$mark" | grep -iE 'leaving the cluster|said goodbye|left the cluster' | head -2 | sed 's/^/    journal: /'
  else
    fail "systemctl stop ends it cleanly: $st, Result=$res, ExecMainCode=$code (1 = exited), ExecMainStatus=$status" "$C"
  fi
else
  fail "systemctl stop quorate returns 0" "$C"
fi
step "stopped"

summary
