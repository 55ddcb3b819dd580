# quorate %pre: the system user must exist before the files owned by group quorate
# are unpacked. systemd-sysusers when present (the same line as the shipped
# sysusers.d/quorate.conf), else groupadd/useradd.
if command -v systemd-sysusers >/dev/null 2>&1; then
    echo 'u quorate - "quorate cluster agent" /var/lib/quorate' \
        | systemd-sysusers - >/dev/null 2>&1 || :
fi
getent group quorate >/dev/null || groupadd -r quorate
getent passwd quorate >/dev/null || \
    useradd -r -g quorate -d /var/lib/quorate -M -s /sbin/nologin \
        -c "quorate cluster agent" quorate
exit 0
