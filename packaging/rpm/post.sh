# quorate %post: the directories; on first install enable (never start) the unit.
# $1 is 1 on install, 2 or more on upgrade (the restart is in %postun).
if command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/quorate.conf || :
else
    mkdir -p /var/lib/quorate /etc/quorate
    chown quorate:quorate /var/lib/quorate
    chmod 0700 /var/lib/quorate
    chown root:quorate /etc/quorate
    chmod 0750 /etc/quorate
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    # systemctl enable works without a running systemd (it only writes symlinks).
    systemctl enable quorate.service >/dev/null 2>&1 || :
    cat <<'MSG'
quorate is installed and enabled, but not started. Next:
  1. edit /etc/quorate/agent.toml (cluster, node, peers, [tls]);
  2. issue certificates with `quorate ca init` and `quorate ca issue`
     (keys: chown root:quorate, chmod 0640);
  3. systemctl start quorate
MSG
fi
exit 0
