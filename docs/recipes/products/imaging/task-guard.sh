#!/bin/sh
# /usr/local/bin/task-guard: keeps a systemd unit running on the node that holds a
# quorate singleton task, and stopped everywhere else. One instance per resolver, on
# every archive node (task-guard@.service):
#   task-guard hl7-resolver hl7-resolver.service
# It asks the local agent's /task/NAME every half second: 200 starts the unit, any
# other answer (or none) stops it. A holder that is paused or cut off answers 503
# before another node may take the task, so the old unit is being stopped while the
# new one starts; the resolver's unit can read QUORATE_TERM, its fencing token, with
# EnvironmentFile=/run/task-guard/NAME.env. Needs curl.
set -u
task=$1
unit=$2
url=${QUORATE_TASK_URL:-http://127.0.0.1:7701}/task/$task
mkdir -p /run/task-guard
running=no
while :; do
    answer=$(curl -s --connect-timeout 0.3 --max-time 0.5 -w ' %{http_code}' "$url" \
        2>/dev/null || true)
    case "${answer##* }" in
    200)
        if [ "$running" = no ]; then
            term=$(printf '%s' "$answer" | sed -n 's/.*"term":\([0-9]*\).*/\1/p')
            echo "QUORATE_TERM=$term" >"/run/task-guard/$task.env"
            systemctl start "$unit" && running=yes
            echo "task-guard: $task is here (term $term): started $unit" >&2
        fi
        ;;
    *)
        if [ "$running" = yes ] || systemctl is-active --quiet "$unit"; then
            systemctl stop "$unit"
            running=no
            echo "task-guard: $task is not here: stopped $unit" >&2
        fi
        ;;
    esac
    sleep 0.5
done
