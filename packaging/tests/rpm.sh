#!/usr/bin/env bash
# The rpm, read with rpm on this (Debian) machine: the same payload as the deb, the
# user and directory setup in its scripts, agent.toml as %config(noreplace) 0640
# root:quorate, and binaries (in both packages) that need at most GLIBC_2.28, so
# they run on RHEL/Rocky/Alma 8.
#
#   packaging/tests/rpm.sh      (QUORATE_RPM / QUORATE_DEB override the packages)
set -euo pipefail
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

need_file "$PKG_RPM"
need_file "$PKG_DEB"
command -v rpm >/dev/null || die "rpm is missing (apt-get install rpm)"
command -v objdump >/dev/null || die "objdump is missing (apt-get install binutils)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- payload: the same files as the deb --------------------------------------------
# Differences by design: the unit's directory (/lib on Debian 12, /usr/lib on RHEL),
# zsh's completion directory (vendor-completions on Debian, site-functions on RHEL),
# and the licence and changelog in each distribution's place.
rpm -qpl "$PKG_RPM" 2>/dev/null | sed \
  -e 's|^/usr/share/zsh/site-functions/|/usr/share/zsh/COMPLETIONS/|' \
  | grep -v -e '^/usr/share/licenses/quorate/LICENSE$' -e '^/usr/share/doc/quorate/CHANGELOG.md$' \
  | sort >"$tmp/rpm.files"
dpkg-deb --fsys-tarfile "$PKG_DEB" | tar -tv | awk '$1 !~ /^d/ { print $NF }' | sed \
  -e 's|^\./|/|' \
  -e 's|^/lib/systemd/system/|/usr/lib/systemd/system/|' \
  -e 's|^/usr/share/zsh/vendor-completions/|/usr/share/zsh/COMPLETIONS/|' \
  | grep -v -e '^/usr/share/doc/quorate/copyright$' -e '^/usr/share/doc/quorate/changelog.Debian.gz$' \
    -e '^/usr/share/lintian/overrides/quorate$' \
  | sort >"$tmp/deb.files"
if diff -u "$tmp/deb.files" "$tmp/rpm.files" >"$tmp/files.diff"; then
  ok "rpm -qpl lists the deb's files ($(wc -l <"$tmp/rpm.files") files)"
else
  fail "rpm -qpl lists the deb's files (- deb only, + rpm only):"; sed 's/^/#   /' "$tmp/files.diff"
fi
rpm -qpl "$PKG_RPM" 2>/dev/null >"$tmp/rpm.all"
for f in /usr/lib/systemd/system/quorate.service /usr/share/zsh/site-functions/_quorate \
  /usr/share/licenses/quorate/LICENSE /usr/share/doc/quorate/CHANGELOG.md; do
  check "the rpm has $f" grep -qx "$f" "$tmp/rpm.all"
done

# ---- config file -------------------------------------------------------------------
check "rpm -qp --configfiles lists /etc/quorate/agent.toml" \
  sh -c "rpm -qp --configfiles '$PKG_RPM' 2>/dev/null | grep -qx /etc/quorate/agent.toml"
flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' \
  "$PKG_RPM" 2>/dev/null | awk '$NF == "/etc/quorate/agent.toml"')
check_eq "agent.toml is %config(noreplace), -rw-r----- root:quorate" \
  "cn -rw-r----- root:quorate /etc/quorate/agent.toml" "$flags"

# ---- scripts: user, directories, enable, try-restart ---------------------------------
rpm -qp --scripts "$PKG_RPM" 2>/dev/null >"$tmp/scripts"
# One file per scriptlet: $tmp/preinstall.sh, postinstall.sh, preuninstall.sh, postuninstall.sh.
awk -v dir="$tmp" '/^[a-z]+ scriptlet/ { out = dir "/" $1 ".sh"; next } out { print > out }' "$tmp/scripts"
for s in preinstall postinstall preuninstall postuninstall; do
  check "the rpm has a $s scriptlet, valid sh" sh -n "$tmp/$s.sh"
done
check "%pre creates the user with systemd-sysusers when present" grep -q systemd-sysusers "$tmp/preinstall.sh"
check "%pre falls back to useradd -r" grep -q 'useradd -r' "$tmp/preinstall.sh"
check "%post applies the tmpfiles entries" grep -q 'systemd-tmpfiles --create' "$tmp/postinstall.sh"
check "%post creates /var/lib/quorate 0700 without systemd-tmpfiles" grep -q 'chmod 0700 /var/lib/quorate' "$tmp/postinstall.sh"
check "%post enables the unit on first install" grep -q 'systemctl enable quorate.service' "$tmp/postinstall.sh"
check "%post never starts the unit" sh -c "! grep -Eq '^[[:space:]]*systemctl (start|restart)' '$tmp/postinstall.sh'"
check "%preun stops the unit on erase" grep -q 'systemctl stop quorate.service' "$tmp/preuninstall.sh"
check "%postun try-restarts on upgrade" grep -q 'systemctl try-restart quorate.service' "$tmp/postuninstall.sh"

# ---- glibc: at most 2.28 -----------------------------------------------------------------
mkdir -p "$tmp/rpmroot" "$tmp/debroot"
# rpm2cpio of Debian 12 (rpm 4.18) exits 1 after writing a complete archive; what
# counts is that cpio reads it and the binaries come out.
rpm2cpio "$PKG_RPM" >"$tmp/payload.cpio" || true
(cd "$tmp/rpmroot" && cpio -idm --quiet <"$tmp/payload.cpio") || die "cannot unpack $PKG_RPM"
dpkg-deb -x "$PKG_DEB" "$tmp/debroot"
for pkg in rpm deb; do
  for bin in quorate-agent quorate; do
    f=$tmp/${pkg}root/usr/bin/$bin
    highest=$(objdump -T "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    echo "# $pkg: /usr/bin/$bin needs GLIBC_$highest at most"
    if [ -n "$highest" ] && [ "$(printf '%s\n2.28\n' "$highest" | sort -V | tail -1)" = 2.28 ]; then
      ok "$pkg's $bin needs GLIBC_2.28 or older (GLIBC_$highest)"
    else
      fail "$pkg's $bin needs GLIBC_2.28 or older (GLIBC_$highest)"
    fi
  done
done
check "the deb and the rpm ship the same binaries" \
  sh -c "cmp '$tmp/rpmroot/usr/bin/quorate-agent' '$tmp/debroot/usr/bin/quorate-agent' && cmp '$tmp/rpmroot/usr/bin/quorate' '$tmp/debroot/usr/bin/quorate'"
req=$(rpm -qpR "$PKG_RPM" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
check_eq "the rpm's Requires name no glibc above 2.28" 2.28 "$(printf '%s\n2.28\n' "$req" | sort -V | tail -1)"

# ---- install, upgrade and erase with rpm on this machine --------------------------------
# rpm runs the scriptlets for real (systemd-sysusers or useradd, systemd-tmpfiles,
# systemctl enable) with a private database; --nodeps because this is Debian. Only as
# root, and only when the deb is not installed (deb.sh purges it).
if [ "$(id -u)" != 0 ]; then
  echo "# not root: rpm install not tested"
  finish
  exit
fi
if dpkg-query -W -f='${Status}' quorate 2>/dev/null | grep -q ' installed'; then
  die "the deb quorate is installed: purge it first (dpkg -P quorate)"
fi
old_version=0.0.9
old_dir=$PKG_REPO/target/pkg-old
old_rpm=$old_dir/quorate-${old_version}-1.x86_64.rpm
if [ ! -f "$old_rpm" ] || [ "$old_rpm" -ot "$PKG_RPM" ]; then
  "$PKG_REPO/packaging/build.sh" --version "$old_version" --out "$old_dir" >"$tmp/build-old.log" 2>&1 \
    || { sed 's/^/#   /' "$tmp/build-old.log"; die "could not build the $old_version rpm"; }
fi
db=$tmp/rpmdb
mkdir -p "$db"
rpmq() { rpm --dbpath "$db" "$@" 2> >(grep -v -e 'should not be used directly' -e 'know what you are doing' >&2); }
echo "# rpm -i $(basename "$old_rpm"), edit agent.toml, rpm -U $(basename "$PKG_RPM"), rpm -e"
if rpmq -i --nodeps "$old_rpm" >"$tmp/rpm-install.log" 2>&1; then
  ok "rpm -i installs $old_version (scriptlets run)"
else
  fail "rpm -i installs $old_version"; sed 's/^/#   /' "$tmp/rpm-install.log"
fi
check "the first install says the agent is not started yet" grep -q "not started" "$tmp/rpm-install.log"
check "the user quorate exists" getent passwd quorate
check_stat /etc/quorate "750 root:quorate"
check_stat /etc/quorate/agent.toml "640 root:quorate"
check_stat /var/lib/quorate "700 quorate:quorate"
check_stat /usr/lib/systemd/system/quorate.service "644 root:root"
check "the unit is enabled (multi-user.target.wants)" \
  test -L /etc/systemd/system/multi-user.target.wants/quorate.service
printf '\n# edited by rpm.sh\n' >>/etc/quorate/agent.toml
if rpmq -U --nodeps "$PKG_RPM" >"$tmp/rpm-upgrade.log" 2>&1; then
  ok "rpm -U upgrades to $PKG_VERSION"
else
  fail "rpm -U upgrades to $PKG_VERSION"; sed 's/^/#   /' "$tmp/rpm-upgrade.log"
fi
check_eq "the installed version after the upgrade" "$PKG_VERSION-1" "$(rpmq -q --qf '%{VERSION}-%{RELEASE}' quorate)"
check "the edit of agent.toml survives the upgrade" grep -q "^# edited by rpm.sh" /etc/quorate/agent.toml
check "the upgrade does not print the first-install note" sh -c "! grep -q 'not started' '$tmp/rpm-upgrade.log'"
echo state >/var/lib/quorate/test-state
check "rpm -e erases it" rpmq -e --nodeps quorate
check "quorate-agent is gone after erase" test ! -e /usr/bin/quorate-agent
check "the unit is gone after erase" test ! -e /usr/lib/systemd/system/quorate.service
check "erase disables the unit" test ! -e /etc/systemd/system/multi-user.target.wants/quorate.service
check "erase keeps the edited agent.toml as agent.toml.rpmsave" test -f /etc/quorate/agent.toml.rpmsave
check "erase keeps the state" test -f /var/lib/quorate/test-state
check "erase keeps the user" getent passwd quorate
# Leave the machine as deb.sh expects it.
rm -rf /etc/quorate /var/lib/quorate

finish
