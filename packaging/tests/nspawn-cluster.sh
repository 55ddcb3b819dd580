#!/bin/bash
# A three-node cluster from packages alone: three Debian bookworm containers
# (systemd-nspawn, root cached under target/nspawn), each in a network namespace
# of this test's own, joined by a bridge in a fourth ("the switch"), 10.77.0.1-3/24.
# Each installs the deb and is configured only by editing /etc/quorate/agent.toml
# (node, advertise, peers, [tls]) with certificates from one `quorate ca`, then
# `systemctl enable --now quorate`. Exactly one node must answer /primary 200,
# the others 503, and all agree on it in /cluster; when the primary's service is
# stopped, another node takes over.
#
# Usage (root): packaging/tests/nspawn-cluster.sh [DEB]
#   DEB defaults to $QUORATE_DEB, else the newest dist/quorate_*.deb.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib-nspawn.sh
source "$here/lib-nspawn.sh"

deb=$(nspawn_deb "${1:-}")

NODES=(n1 n2 n3)
declare -A ADDR=([n1]=10.77.0.1 [n2]=10.77.0.2 [n3]=10.77.0.3)
HTTP=http://127.0.0.1:7701
lab=qrt$$ # netns names: qrt<pid>-sw, qrt<pid>-n1…

nspawn_init
step "nspawn-cluster: deb $(basename "$deb")"

root=$(nspawn_root "$deb")
step "root ready: $root"

lab_switch "$lab-sw"
for n in "${NODES[@]}"; do
  netns_add "$lab-$n"
  lab_port "$lab-sw" "$lab-$n" "p-$n" "${ADDR[$n]}/24"
done
for n in "${NODES[@]}"; do
  ct_boot "$n" "$root" --network-namespace-path="/run/netns/$lab-$n" \
    --bind-ro="$(dirname "$deb"):/mnt/dist"
done
for n in "${NODES[@]}"; do ct_wait "$n"; done
step "3 containers booted, each in its own network namespace"

# The lab network works: a TCP connect from n1 to n3's closed port is refused
# (not timed out).
probe=$(ct n1 timeout 5 bash -c 'exec 3<>/dev/tcp/10.77.0.3/1' 2>&1 || true)
[[ $probe == *refused* ]] || die "n1 cannot reach 10.77.0.3 over the lab bridge: $probe"

# ---- install everywhere (in parallel) -----------------------------------------------

pids=()
for n in "${NODES[@]}"; do
  ct "$n" dpkg -i "/mnt/dist/$(basename "$deb")" >"$NSPAWN_TMP/dpkg.$n.log" 2>&1 &
  pids+=($!)
done
for i in "${!NODES[@]}"; do
  n=${NODES[$i]}
  if wait "${pids[$i]}"; then
    ok "$n: dpkg -i installs the deb"
  else
    sed 's/^/    /' "$NSPAWN_TMP/dpkg.$n.log"
    fail "$n: dpkg -i installs the deb"
    exit 1
  fi
done
step "installed on 3 nodes"

# ---- one CA, made on n1; each node gets its certificate, its key and ca.pem ---------

ct n1 quorate ca init --dir /root/quorate-ca >/dev/null
for n in "${NODES[@]}"; do ct n1 quorate ca issue --dir /root/quorate-ca "$n" >/dev/null; done
ct_pull n1 /root/quorate-ca/ca.pem "$NSPAWN_TMP/ca.pem"
for n in "${NODES[@]}"; do
  ct_pull n1 "/root/quorate-ca/$n.pem" "$NSPAWN_TMP/$n.pem"
  ct_pull n1 "/root/quorate-ca/$n.key" "$NSPAWN_TMP/$n.key"
  # As docs/install.md says: the directory and files root:quorate, the key 0640.
  ct "$n" install -d -m 0750 -o root -g quorate /etc/quorate/tls
  ct_push "$n" "$NSPAWN_TMP/ca.pem" /etc/quorate/tls/ca.pem 0644 root:quorate
  ct_push "$n" "$NSPAWN_TMP/$n.pem" "/etc/quorate/tls/$n.pem" 0644 root:quorate
  ct_push "$n" "$NSPAWN_TMP/$n.key" "/etc/quorate/tls/$n.key" 0640 root:quorate
done

for n in "${NODES[@]}"; do
  peers=()
  for p in "${NODES[@]}"; do [[ $p == "$n" ]] || peers+=("\"${ADDR[$p]}:7700\""); done
  ct_toml_set "$n" "" cluster '"lab"'
  ct_toml_set "$n" "" node "\"$n\""
  ct_toml_set "$n" "" advertise "\"${ADDR[$n]}:7700\""
  list=$(printf '%s, ' "${peers[@]}")
  ct_toml_set "$n" "" peers "[${list%, }]"
  ct_toml_set "$n" tls ca '"/etc/quorate/tls/ca.pem"'
  ct_toml_set "$n" tls cert "\"/etc/quorate/tls/$n.pem\""
  ct_toml_set "$n" tls key "\"/etc/quorate/tls/$n.key\""
  if ! ct "$n" runuser -u quorate -- quorate-agent --check-config >"$NSPAWN_TMP/check.$n.log" 2>&1; then
    sed 's/^/    /' "$NSPAWN_TMP/check.$n.log"
    ct "$n" cat /etc/quorate/agent.toml | sed 's/^/    | /'
    fail "$n: agent.toml passes --check-config (as quorate)"
  fi
done
step "CA, certificates and agent.toml on 3 nodes"

# ---- enable --now on every node at once -------------------------------------------

pids=()
for n in "${NODES[@]}"; do
  ct "$n" timeout 100 systemctl enable --now quorate >"$NSPAWN_TMP/start.$n.log" 2>&1 &
  pids+=($!)
done
for i in "${!NODES[@]}"; do
  n=${NODES[$i]}
  if wait "${pids[$i]}" && [[ $(ct "$n" systemctl is-active quorate) == active ]]; then
    ok "$n: systemctl enable --now quorate"
  else
    cat "$NSPAWN_TMP/start.$n.log"
    fail "$n: systemctl enable --now quorate" "$n"
  fi
done
step "started on 3 nodes"

# ---- exactly one primary, agreed by all ---------------------------------------------

# primary_code NODE: the HTTP status of NODE's /primary ("000" if no answer).
primary_code() { ct "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$HTTP/primary" || true; }
# cluster_primary NODE: the primary NODE names in /cluster.
cluster_primary() {
  ct "$1" curl -fsS --max-time 2 "$HTTP/cluster" 2>/dev/null | jq -r '.primary // "none"' 2>/dev/null || echo unreachable
}
# one_primary NODE...: exactly one of NODEs answers /primary 200, the rest 503,
# and every one of them names it in /cluster. Sets PRIMARY and VIEW.
one_primary() {
  local n code winners=() agree=1
  VIEW=""
  for n in "$@"; do
    code=$(primary_code "$n")
    VIEW+="$n:/primary=$code "
    [[ $code == 200 ]] && winners+=("$n")
    [[ $code == 200 || $code == 503 ]] || return 1
  done
  [[ ${#winners[@]} == 1 ]] || return 1
  PRIMARY=${winners[0]}
  for n in "$@"; do
    local said
    said=$(cluster_primary "$n")
    VIEW+="$n:/cluster.primary=$said "
    [[ $said == "$PRIMARY" ]] || agree=0
  done
  [[ $agree == 1 ]]
}
# wait_one_primary SECONDS NODE...: one_primary, polled for at most SECONDS.
wait_one_primary() {
  local end=$((SECONDS + $1))
  shift
  while true; do
    one_primary "$@" && return 0
    ((SECONDS < end)) || return 1
    sleep 0.25
  done
}

PRIMARY="" VIEW=""
if wait_one_primary 30 "${NODES[@]}"; then
  ok "exactly one primary ($PRIMARY): /primary 200 there, 503 on the others, all agree in /cluster"
  printf '#   %s\n' "$VIEW"
else
  fail "exactly one primary, agreed by all: $VIEW" "${NODES[@]}"
fi
step "elected"
ct_status "${NODES[0]}"

# ---- upgrade the primary's package: it hands over first, then restarts ------------------

# A reinstall is an upgrade to dpkg (postinst configure with the installed version):
# the unit is try-restarted, and on SIGTERM the agent hands the primary over.
if [[ -n $PRIMARY ]]; then
  old=$PRIMARY
  rest=()
  for n in "${NODES[@]}"; do [[ $n == "$old" ]] || rest+=("$n"); done
  if ct "$old" dpkg --force-confold -i "/mnt/dist/$(basename "$deb")" >"$NSPAWN_TMP/upgrade.log" 2>&1 &&
    ct "$old" journalctl -u quorate --no-pager -o cat | grep -q 'handed over'; then
    ok "dpkg -i on the primary $old restarts its agent, which hands the primary over first"
    ct "$old" journalctl -u quorate --no-pager -o cat | grep 'handed over' | tail -1 | sed 's/^/    journal: /'
  else
    sed 's/^/    /' "$NSPAWN_TMP/upgrade.log"
    fail "dpkg -i on the primary $old: no handover in its journal" "$old"
  fi
  PRIMARY=""
  if wait_one_primary 30 "${NODES[@]}"; then
    ok "after the upgrade one primary ($PRIMARY), agreed by all three, $old back in the cluster"
  else
    fail "after the upgrade, one primary agreed by all: $VIEW" "${NODES[@]}"
  fi
fi
step "upgrade"

# ---- stop the primary's service: another takes over ------------------------------------

if [[ -n $PRIMARY ]]; then
  old=$PRIMARY
  rest=()
  for n in "${NODES[@]}"; do [[ $n == "$old" ]] || rest+=("$n"); done
  t0=$(date +%s.%N)
  ct "$old" timeout 30 systemctl stop quorate
  PRIMARY=""
  if wait_one_primary 30 "${rest[@]}" && [[ $PRIMARY != "$old" ]]; then
    took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    ok "systemctl stop on the primary $old: $PRIMARY takes over (${took}s after stop was called, agreed by ${rest[*]})"
    printf '#   %s\n' "$VIEW"
  else
    fail "after stopping the primary $old, one of ${rest[*]} takes over: $VIEW" "${rest[@]}"
  fi
  state=$(ct "${rest[0]}" curl -fsS --max-time 2 "$HTTP/cluster" 2>/dev/null |
    jq -r --arg n "$old" '(.nodes[] | select(.node == $n) | .state) // "missing"' 2>/dev/null || echo unreachable)
  if [[ $state == left ]]; then
    ok "the stopped node $old is shown as left"
  else
    fail "the stopped node $old is shown as left (state: $state)"
  fi
fi
step "failover"

summary
