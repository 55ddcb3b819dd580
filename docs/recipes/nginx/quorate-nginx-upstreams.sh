#!/bin/sh
# quorate-nginx-upstreams: nginx (open source) follows quorate's view of the cluster.
# Install as /usr/local/sbin/quorate-nginx-upstreams; it needs curl.
#
# Every INTERVAL it asks each node's agent for /primary and /health, writes
#   $DIR/app-primary.conf  upstream app_primary: the node whose /primary answers 200
#   $DIR/app-tier.conf     upstream app_tier: every node, `down` unless /health is 200
# and, when either file changed, checks and reloads nginx. Run it on the nginx host
# (quorate-nginx-upstreams.service); `--once` writes the files and reloads nothing
# (before nginx starts).
#
# Environment (defaults in brackets):
#   QUORATE_NODES     the node list [/etc/nginx/quorate/nodes]: NAME AGENT APP a line
#   QUORATE_DIR       where the upstream files go [/etc/nginx/quorate]
#   QUORATE_INTERVAL  seconds between rounds [1]
#   QUORATE_RELOAD    the reload command [nginx -t -q && nginx -s reload]
#
# Rules: it changes app_primary only when exactly one node answers /primary with 200
# (none, during an election, or two, read a moment apart across a handover: the file
# stays as it is and the next round decides). It changes nothing in a round where no
# agent answered at all (this host cut off: no news is not bad news). A drained node
# answers /health 404: it becomes `down` in app_tier, and the reload lets requests in
# flight finish on it.

set -u

nodes=${QUORATE_NODES:-/etc/nginx/quorate/nodes}
dir=${QUORATE_DIR:-/etc/nginx/quorate}
interval=${QUORATE_INTERVAL:-1}
reload=${QUORATE_RELOAD:-nginx -t -q && nginx -s reload}

log() {
    printf '%s\n' "quorate-nginx-upstreams: $*" >&2
}

command -v curl >/dev/null || {
    log "needs curl"
    exit 1
}

# The HTTP status of GET http://AGENT/PATH, or 000 when nothing answered.
status() {
    curl -s -o /dev/null -w '%{http_code}' --connect-timeout 0.5 --max-time 1 \
        "http://$1$2" 2>/dev/null || true
}

# Moves $1.new over $1 if they differ; exit status 0 when the file changed.
install_if_changed() {
    if [ -f "$1" ] && cmp -s "$1.new" "$1"; then
        rm -f "$1.new"
        return 1
    fi
    mv "$1.new" "$1"
}

# One round: asks every node, writes the files; exit status 0 when one changed.
render() {
    primaries=0
    answered=0
    primary_app=""
    primary_name=""
    {
        echo "# Written by quorate-nginx-upstreams; do not edit."
        echo "upstream app_tier {"
    } >"$dir/app-tier.conf.new"
    while read -r name agent app; do
        case "$name" in '' | '#'*) continue ;; esac
        p=$(status "$agent" /primary)
        h=$(status "$agent" /health)
        [ "$h" != 000 ] && answered=$((answered + 1))
        if [ "$p" = 200 ]; then
            primaries=$((primaries + 1))
            primary_app=$app
            primary_name=$name
        fi
        if [ "$h" = 200 ]; then
            echo "    server $app max_fails=1 fail_timeout=5s;  # $name"
        else
            echo "    server $app down;  # $name: /health $h"
        fi
    done <"$nodes" >>"$dir/app-tier.conf.new"
    echo "}" >>"$dir/app-tier.conf.new"

    if [ "$answered" -eq 0 ]; then
        rm -f "$dir/app-tier.conf.new"
        log "no agent answered: files left as they are"
        return 1
    fi
    changed=1
    install_if_changed "$dir/app-tier.conf" && changed=0
    if [ "$primaries" -eq 1 ]; then
        {
            echo "# Written by quorate-nginx-upstreams; do not edit."
            echo "upstream app_primary {"
            echo "    server $primary_app;  # $primary_name"
            echo "}"
        } >"$dir/app-primary.conf.new"
        if install_if_changed "$dir/app-primary.conf"; then
            changed=0
            log "app_primary: $primary_name ($primary_app)"
        fi
    elif [ ! -f "$dir/app-primary.conf" ]; then
        # No primary yet and no file: an upstream nginx accepts, sending nowhere.
        {
            echo "# Written by quorate-nginx-upstreams; do not edit."
            echo "upstream app_primary {"
            echo "    server 127.0.0.1:9 down;  # no primary yet"
            echo "}"
        } >"$dir/app-primary.conf"
        changed=0
    fi
    return "$changed"
}

if [ "${1:-}" = --once ]; then
    render
    exit 0
fi
while :; do
    if render; then
        sh -c "$reload" || log "reload failed: $reload"
    fi
    sleep "$interval"
done
