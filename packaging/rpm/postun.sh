# quorate %postun: on upgrade ($1 >= 1) restart the agent only if it runs; on SIGTERM
# it hands the primary over before it exits. Erase keeps the user, /var/lib/quorate
# and an edited agent.toml (as agent.toml.rpmsave).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart quorate.service >/dev/null 2>&1 || :
    fi
fi
exit 0
