# shellcheck shell=bash
# Helpers for the real-systemd tests: a cached Debian root, containers booted
# from it with systemd-nspawn, commands run inside them, network namespaces,
# and a teardown that leaves nothing behind. Sourced by packaging/tests/nspawn-*.sh.
#
# The host's PID 1 need not be systemd: containers are started with
# `systemd-nspawn --register=no --keep-unit -b` in the background and entered
# with nsenter through the container's PID 1 (the nspawn process's child).
#
# Cache: one root per (recipe, suite, package list, masked units), about 175 MB,
# in target/nspawn/bookworm/<key>; a root for an older key is not removed by
# itself (rm -rf target/nspawn). Cold: debootstrap, 40-110 s here; warm: none.
#
# Environment:
#   QUORATE_NSPAWN_CACHE   where roots are cached (default: <repo>/target/nspawn)
#   QUORATE_NSPAWN_MIRROR  Debian mirror (default: http://deb.debian.org/debian)
#   QUORATE_NSPAWN_KEEP=1  leave containers running on exit (debugging; prints how to clean up)

NSPAWN_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NSPAWN_REPO=$(cd "$NSPAWN_LIB_DIR/../.." && pwd)
NSPAWN_CACHE=${QUORATE_NSPAWN_CACHE:-$NSPAWN_REPO/target/nspawn}
NSPAWN_MIRROR=${QUORATE_NSPAWN_MIRROR:-http://deb.debian.org/debian}
NSPAWN_SUITE=bookworm
# Bump when the recipe below changes (not the package list): it is part of the cache key.
NSPAWN_RECIPE=2
# What the tests use inside the containers. The deb's own Depends are added by
# nspawn_root when it is given the deb.
NSPAWN_INCLUDE=(systemd systemd-sysv dbus curl iproute2 procps ca-certificates jq openssl adduser libc6 libgcc-s1)
# Units that only cost boot time or CPU in a throwaway container.
NSPAWN_MASK=(apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer
  systemd-networkd-wait-online.service console-getty.service getty@.service systemd-remount-fs.service)

NSPAWN_T0=${NSPAWN_T0:-$(date +%s.%N)}
NSPAWN_TSTEP=$NSPAWN_T0
NSPAWN_TMP=""
declare -A NSPAWN_PID=()   # container name -> nspawn pid
NSPAWN_NETNS=()            # netns created by this run
NSPAWN_FAILS=0
NSPAWN_PASSES=0

# ---- output ---------------------------------------------------------------

nspawn_log() { printf '# %s\n' "$*" >&2; }

# step NAME: print the time the previous step took and the time since the start.
step() {
  local now
  now=$(date +%s.%N)
  awk -v now="$now" -v t0="$NSPAWN_T0" -v ts="$NSPAWN_TSTEP" -v what="$*" \
    'BEGIN { printf "# [%6.1fs total, previous step %5.1fs] %s\n", now - t0, now - ts, what }' >&2
  NSPAWN_TSTEP=$now
}

die() { printf 'FATAL - %s\n' "$*" >&2; exit 1; }

# ---- the cached root --------------------------------------------------------

# deb_depends DEB: the package names the deb depends on (first alternative,
# no version constraints), one per line.
deb_depends() {
  local deps
  deps=$(dpkg-deb -f "$1" Depends Pre-Depends 2>/dev/null | sed -n 's/^[A-Za-z-]*: //p' | tr '\n' ',')
  [[ -z $deps ]] && deps=$(dpkg-deb -f "$1" Depends 2>/dev/null | tr '\n' ',')
  printf '%s' "$deps" | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' | grep -v '^$' || true
}

# nspawn_root [DEB...]: print the path of a Debian root holding NSPAWN_INCLUDE
# and the debs' dependencies; build and cache it the first time. The cache key
# is the suite plus the sorted package list, so a changed list gets a new root
# and a later run with the same list reuses it. The root is built in a temp
# dir and renamed into place, so an interrupted run never leaves half a root.
nspawn_root() {
  local pkgs=("${NSPAWN_INCLUDE[@]}") deb
  for deb in "$@"; do
    [[ -n $deb ]] || continue
    mapfile -t -O "${#pkgs[@]}" pkgs < <(deb_depends "$deb")
  done
  local list key dir
  list=$(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ',' | sed 's/,$//')
  key=$(printf '%s %s %s %s' "$NSPAWN_RECIPE" "$NSPAWN_SUITE" "$list" "${NSPAWN_MASK[*]}" | sha256sum | cut -c1-12)
  dir=$NSPAWN_CACHE/$NSPAWN_SUITE/$key
  mkdir -p "$NSPAWN_CACHE/$NSPAWN_SUITE"
  if [[ ! -f $dir/.complete ]]; then
    (
      flock 9
      if [[ -f $dir/.complete ]]; then exit 0; fi
      local tmp=$NSPAWN_CACHE/$NSPAWN_SUITE/.build-$key-$$
      # Leftovers of a build that was killed outright (we hold the lock: nobody
      # else is building).
      rm -rf "$NSPAWN_CACHE/$NSPAWN_SUITE/.build-"*
      trap 'rm -rf "$tmp"' EXIT
      nspawn_log "building the $NSPAWN_SUITE root $key ($list): debootstrap, a few minutes the first time"
      if ! debootstrap --variant=minbase --include="$list" "$NSPAWN_SUITE" "$tmp" "$NSPAWN_MIRROR" \
        >"$tmp.log" 2>&1; then
        tail -30 "$tmp.log" >&2
        exit 1
      fi
      # Ready for throwaway boots: no generated identity, no periodic jobs, no getty.
      # debootstrap copies the host's /etc/hostname; without one, systemd keeps the
      # hostname nspawn gives each container (--hostname).
      : >"$tmp/etc/machine-id"
      rm -f "$tmp/etc/hostname"
      rm -f "$tmp/var/lib/dbus/machine-id"
      local u
      for u in "${NSPAWN_MASK[@]}"; do ln -sf /dev/null "$tmp/etc/systemd/system/$u"; done
      echo "LANG=C.UTF-8" >"$tmp/etc/default/locale"
      chroot "$tmp" apt-get clean >/dev/null 2>&1 || true
      rm -rf "$tmp/var/lib/apt/lists/"* "$tmp/var/cache/apt/"*.bin
      printf '%s\n' "$list" >"$tmp/.packages"
      touch "$tmp/.complete"
      rm -rf "$dir" "$tmp.log"
      mv "$tmp" "$dir"
      trap - EXIT
    ) 9>"$NSPAWN_CACHE/$NSPAWN_SUITE/.lock" || die "debootstrap of $NSPAWN_SUITE failed (mirror $NSPAWN_MIRROR)"
  fi
  printf '%s\n' "$dir"
}

# ---- containers -------------------------------------------------------------

# nspawn_tmp: this run's scratch directory (made by nspawn_init, removed at teardown).
nspawn_tmp() { printf '%s\n' "$NSPAWN_TMP"; }

# nspawn_deb [DEB]: the deb to test: DEB, else $QUORATE_DEB, else the newest
# dist/quorate_*.deb; its absolute path, or a clear failure.
nspawn_deb() {
  local deb=${1:-${QUORATE_DEB:-}}
  if [[ -z $deb ]]; then
    deb=$(find "$NSPAWN_REPO/dist" -maxdepth 1 -name 'quorate_*.deb' -printf '%T@ %p\n' 2>/dev/null |
      sort -rn | head -1 | cut -d' ' -f2- || true)
  fi
  [[ -n $deb && -f $deb ]] || die "no deb: build one with packaging/build.sh or pass its path"
  realpath "$deb"
}


# ct_status NAME: the operator's first command in container NAME, as root with no
# flags (address and credentials from agent.toml): exits 0 for one primary, all
# healthy. On a failure, says whether finding the agent or the credentials is wrong.
ct_status() {
  local name=$1 rc=0
  ct "$name" timeout 10 quorate status >"$NSPAWN_TMP/status.out" 2>&1 || rc=$?
  sed 's/^/    /' "$NSPAWN_TMP/status.out"
  if [[ $rc == 0 ]]; then
    ok "quorate status on $name as root, no flags, reaches the agent and exits 0"
  else
    fail "quorate status on $name as root, no flags, reaches the agent and exits 0 (exit $rc)"
    ct "$name" timeout 10 quorate status --connect 127.0.0.1:7700 2>&1 | head -3 |
      sed 's/^/    with --connect: /' || true
  fi
}

# ct_boot NAME ROOT [nspawn options...]: boot ROOT as container NAME (also its
# hostname) in the background. The root stays read-only: --volatile=overlay
# puts a tmpfs overlay over it, so every container starts from the same clean
# cache and nothing it writes survives it. Pass e.g.
# --network-namespace-path=/run/netns/X, --private-network, --bind-ro=SRC:DST.
ct_boot() {
  local name=$1 root=$2
  shift 2
  local tmp
  tmp=$(nspawn_tmp)
  systemd-nspawn -D "$root" --register=no --keep-unit -b --volatile=overlay \
    --machine="$name" --hostname="$name" --console=passive \
    --setenv=SYSTEMD_LOG_COLOR=0 "$@" >"$tmp/$name.console" 2>&1 </dev/null &
  NSPAWN_PID[$name]=$!
}

# ct_leader NAME: the host pid of the container's PID 1 (the nspawn process's
# child in another pid namespace); waits for it to exist.
ct_leader() {
  local name=$1 npid=${NSPAWN_PID[$1]:-} i c
  [[ -n $npid ]] || { nspawn_log "no container $name"; return 1; }
  for ((i = 0; i < 300; i++)); do
    kill -0 "$npid" 2>/dev/null || { nspawn_log "nspawn for $name exited:"; cat "$(nspawn_tmp)/$name.console" >&2; return 1; }
    for c in $(pgrep -P "$npid" || true); do
      # In another pid namespace and already systemd: before the exec, the child's
      # root may not be the container's yet.
      if [[ $(readlink "/proc/$c/ns/pid") != "$(readlink /proc/self/ns/pid)" ]] &&
        [[ $(cat "/proc/$c/comm" 2>/dev/null) == systemd ]]; then
        printf '%s\n' "$c"
        return 0
      fi
    done
    sleep 0.1
  done
  nspawn_log "no PID 1 found for container $name"
  return 1
}

# ct NAME CMD...: run CMD in the container (all its namespaces, a clean
# environment); stdin/stdout/stderr pass through, the exit status is CMD's.
ct() {
  local name=$1 leader
  shift
  leader=$(ct_leader "$name") || return 125
  nsenter -t "$leader" -m -u -i -n -p -C -r -w -- \
    /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 HOME=/root "$@"
}

# ct_sh NAME SCRIPT: run a shell script in the container.
ct_sh() {
  local name=$1
  shift
  ct "$name" /bin/sh -c "$*"
}

# ct_wait NAME [TIMEOUT]: wait until the container's systemd has finished
# booting (running or degraded).
ct_wait() {
  local name=$1 timeout=${2:-90} state="" i
  ct_leader "$name" >/dev/null || return 1
  for ((i = 0; i < timeout * 5; i++)); do
    state=$(ct "$name" systemctl is-system-running 2>/dev/null || true)
    case $state in
      running | degraded) break ;;
    esac
    kill -0 "${NSPAWN_PID[$name]}" 2>/dev/null || { cat "$(nspawn_tmp)/$name.console" >&2; die "container $name died while booting"; }
    sleep 0.2
  done
  case $state in
    running) ;;
    degraded)
      # Not fatal (the tests judge quorate, not the container), but say why.
      local u
      for u in $(ct "$name" systemctl --failed --no-legend --plain | awk '{print $1}'); do
        nspawn_log "$name is degraded: $u failed:"
        ct "$name" journalctl -b --no-pager -o short-precise -u "$u" | tail -5 | sed 's/^/#     /' >&2
      done
      ;;
    *) die "container $name did not finish booting in ${timeout}s (state: ${state:-none})" ;;
  esac
}

# ct_push NAME SRC DST [MODE [OWNER]]: copy a host file into the container.
ct_push() {
  local name=$1 src=$2 dst=$3 mode=${4:-0644} owner=${5:-root:root}
  # shellcheck disable=SC2016 # expanded by the container's shell
  ct "$name" /bin/sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1" && chown "$3" "$1"' \
    sh "$dst" "$mode" "$owner" <"$src"
}

# ct_pull NAME SRC DST: copy a container file to the host.
ct_pull() { ct "$1" cat "$2" >"$3"; }

# ct_stop NAME: orderly poweroff (nspawn turns SIGTERM into SIGRTMIN+3 for
# systemd), then SIGKILL of the container's PID 1 (its whole pid namespace)
# and of nspawn if that takes too long.
ct_stop() {
  local name=$1 npid=${NSPAWN_PID[$1]:-} leader="" c i
  [[ -n $npid ]] || return 0
  for c in $(pgrep -P "$npid" || true); do
    [[ $(readlink "/proc/$c/ns/pid") != "$(readlink /proc/self/ns/pid)" ]] && leader=$c
  done
  if kill -0 "$npid" 2>/dev/null; then
    kill -TERM "$npid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$npid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$npid" 2>/dev/null; then
      nspawn_log "container $name did not power off in 10s; killing it"
      if [[ -n $leader ]]; then kill -KILL "$leader" 2>/dev/null || true; fi
      sleep 0.5
      kill -KILL "$npid" 2>/dev/null || true
    fi
  fi
  wait "$npid" 2>/dev/null || true
  unset "NSPAWN_PID[$name]"
}

# ---- network namespaces -----------------------------------------------------

# netns_add NAME: create a network namespace (with lo up), removed at teardown.
netns_add() {
  ip netns add "$1"
  NSPAWN_NETNS+=("$1")
  ip -n "$1" link set lo up
}

# lab_switch SWITCH: a network namespace holding a bridge br0, the "switch".
lab_switch() {
  netns_add "$1"
  ip -n "$1" link add br0 type bridge
  ip -n "$1" link set br0 up
}

# lab_port SWITCH NS IFNAME ADDR/PREFIX: connect NS to the switch with a veth
# pair (eth0 inside NS, IFNAME on the bridge) and give eth0 ADDR.
lab_port() {
  local sw=$1 ns=$2 port=$3 addr=$4
  ip -n "$ns" link add eth0 type veth peer name "$port" netns "$sw"
  ip -n "$sw" link set "$port" master br0 up
  ip -n "$ns" addr add "$addr" dev eth0
  ip -n "$ns" link set eth0 up
}

# ---- teardown ---------------------------------------------------------------

nspawn_teardown() {
  local rc=$? name ns
  set +e
  if [[ ${QUORATE_NSPAWN_KEEP:-0} == 1 ]]; then
    nspawn_log "QUORATE_NSPAWN_KEEP=1: leaving containers ${!NSPAWN_PID[*]} (nspawn pids ${NSPAWN_PID[*]}) and netns ${NSPAWN_NETNS[*]}"
    return "$rc"
  fi
  for name in "${!NSPAWN_PID[@]}"; do ct_stop "$name"; done
  for ns in "${NSPAWN_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  [[ -n $NSPAWN_TMP ]] && rm -rf "$NSPAWN_TMP"
  step "teardown done"
  return "$rc"
}

nspawn_init() {
  [[ $(id -u) == 0 ]] || die "needs root (systemd-nspawn, ip netns)"
  command -v systemd-nspawn >/dev/null || die "systemd-nspawn missing (apt-get install systemd-container)"
  command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"
  NSPAWN_TMP=$(mktemp -d /tmp/quorate-nspawn.XXXXXX)
  trap nspawn_teardown EXIT
  trap 'exit 130' INT TERM
}

# ---- assertions ---------------------------------------------------------------

# ct_diag NAME: what an operator looks at when the service misbehaves.
ct_diag() {
  local name=$1
  {
    echo "---- [$name] systemctl status quorate"
    ct "$name" systemctl status quorate --no-pager -l -n 0 2>&1 | sed 's/^/    /'
    echo "---- [$name] journalctl -u quorate (last 50)"
    ct "$name" journalctl -u quorate --no-pager -o short-precise 2>&1 | tail -50 | sed 's/^/    /'
    echo "----"
  } >&2 || true
}

# ok MSG / fail MSG [CONTAINER...]: TAP-style results; fail prints diagnostics
# of the named containers.
ok() {
  NSPAWN_PASSES=$((NSPAWN_PASSES + 1))
  printf 'ok - %s\n' "$*"
}
fail() {
  local msg=$1 name
  shift
  NSPAWN_FAILS=$((NSPAWN_FAILS + 1))
  printf 'FAIL - %s\n' "$msg"
  for name in "$@"; do ct_diag "$name"; done
}

# summary: print the counts and return non-zero if anything failed.
summary() {
  printf '# %d passed, %d failed\n' "$NSPAWN_PASSES" "$NSPAWN_FAILS"
  [[ $NSPAWN_FAILS == 0 ]]
}

# ---- editing agent.toml as an operator would ------------------------------------

# toml_set FILE SECTION KEY VALUE: set KEY = VALUE (VALUE is written as given,
# quotes included) in [SECTION] ("" for the top level), the way an operator
# edits the shipped file: a commented-out `# key = …` line of that section is
# replaced, a commented-out `# [section]` header is uncommented when the
# section is not there yet, and a missing key or section is added.
toml_set() {
  local file=$1 section=$2 key=$3 value=$4 out
  out=$(awk -v want="$section" -v key="$key" -v val="$value" '
    function header(line,   s) {
      # "[x]", "[[x]]", "# [x]", "#[x]" (only a header alone on its line)
      s = line
      if (s !~ /^[[:space:]]*#?[[:space:]]*\[\[?[A-Za-z0-9_.-]+\]\]?[[:space:]]*$/) return ""
      sub(/^[[:space:]]*#?[[:space:]]*/, "", s); sub(/[[:space:]]*$/, "", s)
      return s
    }
    function commented(line) { return line ~ /^[[:space:]]*#/ }
    function keyline(line,   re) {
      re = "^[[:space:]]*" key "[[:space:]]*="
      return line ~ re
    }
    function ckeyline(line,   re) {
      re = "^[[:space:]]*#[[:space:]]*" key "[[:space:]]*="
      return line ~ re
    }
    FNR == 1 { pass++ ; cur = "" }
    pass == 1 {
      h = header($0)
      if (h != "") { cur = h; if (!commented($0) && h == "[" want "]") real = 1; next }
      if (cur == (want == "" ? "" : "[" want "]") || (want == "" && cur == "")) {
        if (keyline($0)) { if (!haskey) haskey = FNR }
        else if (ckeyline($0)) { if (!hasckey) hasckey = FNR }
      }
      next
    }
    pass == 2 {
      if (want == "" && FNR == 1 && !haskey && !hasckey) print key " = " val
      h = header($0)
      if (h != "") {
        cur = h
        if (h == "[" want "]" && commented($0) && !real && !uncommented) {
          print "[" want "]"; uncommented = 1; insec = 1
          if (!haskey && !hasckey) print key " = " val
          next
        }
        if (h == "[" want "]" && !commented($0)) {
          print; insec = 1
          if (!haskey && !hasckey) print key " = " val
          next
        }
      }
      if (FNR == haskey) { print key " = " val; next }
      if (!haskey && FNR == hasckey) { print key " = " val; next }
      print
    }
    END {
      if (want != "" && !real && !uncommented) { print ""; print "[" want "]"; print key " = " val }
    }' "$file" "$file") || return 1
  printf '%s\n' "$out" >"$file"
}

# ct_toml_set NAME SECTION KEY VALUE: toml_set on the container's
# /etc/quorate/agent.toml (edited in place: owner and mode stay).
ct_toml_set() {
  local name=$1 f
  f=$(nspawn_tmp)/agent.toml.$name
  ct "$name" cat /etc/quorate/agent.toml >"$f"
  toml_set "$f" "$2" "$3" "$4"
  ct "$name" /bin/sh -c 'cat >/etc/quorate/agent.toml' <"$f"
}
