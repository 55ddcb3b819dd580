#!/bin/sh
# /usr/local/bin/nightly-export: run by nightly-export.service on every node; the
# export runs on the one node quorate names. It runs as root, since `quorate` reads the
# node's key, and hands the export itself to the application's user.
out=$(quorate task should-run nightly-export)
rc=$?
[ "$rc" -eq 1 ] && exit 0      # another node runs it
[ "$rc" -ne 0 ] && exit "$rc"  # 2: cannot tell (agent down, unknown task): do not run
export "${out?}"               # QUORATE_TERM=N: the fencing token
exec runuser -u scheduler -- /opt/scheduler/bin/export --fencing-token "$QUORATE_TERM"
