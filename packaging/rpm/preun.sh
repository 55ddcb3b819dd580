# quorate %preun: on erase ($1 = 0) stop and disable the agent; not on upgrade.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop quorate.service >/dev/null 2>&1 || :
    fi
    systemctl disable quorate.service >/dev/null 2>&1 || :
fi
exit 0
