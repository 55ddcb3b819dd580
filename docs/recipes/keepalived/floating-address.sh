#!/bin/sh
# floating-address: moves one IP address to the primary, for clients that cannot use
# a load balancer. Install as /etc/quorate/hooks/floating-address and name it in
# agent.toml for all three hooks (on_primary, on_secondary, on_fault).
#
# CAVEAT: the address is NOT fenced by the primary's lease. quorate guarantees that
# no two nodes answer /primary with 200 at once; it cannot guarantee when a hook runs.
# A primary that is paused, cut off or slow to run on_fault keeps the address while
# the new primary adds it: for that time two hosts claim it, and clients and switches
# follow whichever announced it last. Fence writes with the term (QUORATE_TERM, the
# X-Quorate-Term header) if two writers would do harm.
#
# Settings come from /etc/quorate/floating-address.env (shell syntax):
#   ADDRESS=10.0.0.100/24   the floating address, with its prefix length
#   DEVICE=eth0             the interface it goes on
# QUORATE_FLOATING_CONF names another file (for tests; the agent passes only PATH and
# QUORATE_* variables to hooks).
#
# The packaged service runs hooks as the quorate user without privileges: this hook
# needs the drop-in dropin-floating-address.conf beside it in the repository,
# installed as /etc/systemd/system/quorate.service.d/floating-address.conf.

set -eu

conf=${QUORATE_FLOATING_CONF:-/etc/quorate/floating-address.env}
# shellcheck source=/dev/null
. "$conf"
: "${ADDRESS:?ADDRESS is not set in $conf}"
: "${DEVICE:?DEVICE is not set in $conf}"

log() {
    printf '%s\n' "floating-address ($QUORATE_HOOK, term ${QUORATE_TERM:-?}): $*" >&2
}

has_address() {
    ip -o addr show dev "$DEVICE" | grep -qF -e " inet $ADDRESS " -e " inet6 $ADDRESS "
}

case "${QUORATE_HOOK:?run me as a quorate hook}" in
on_primary)
    if has_address; then
        log "$ADDRESS already on $DEVICE"
    else
        ip addr add "$ADDRESS" dev "$DEVICE"
        log "added $ADDRESS to $DEVICE"
    fi
    # Tell the neighbours at once (iputils arping; IPv4 only). Without it they learn
    # the new place when their ARP cache entry expires.
    if command -v arping >/dev/null 2>&1; then
        arping -q -U -c 3 -I "$DEVICE" "${ADDRESS%/*}" || log "arping failed"
    else
        log "arping not installed: no gratuitous ARP sent"
    fi
    ;;
on_secondary | on_fault)
    if has_address; then
        ip addr del "$ADDRESS" dev "$DEVICE"
        log "removed $ADDRESS from $DEVICE"
    fi
    ;;
*)
    log "unknown hook"
    exit 2
    ;;
esac
