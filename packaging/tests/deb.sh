#!/usr/bin/env bash
# The deb on this machine, with dpkg (no running systemd needed): install, files,
# owners and modes, the user, the conffile, the binaries, man pages, completions, the
# unit (systemd-analyze verify), lintian; an upgrade from a lower version with an
# edited agent.toml and --force-confold; remove; purge.
#
# Runs as root and really installs, upgrades and purges the package `quorate` on this
# machine (a CI machine or a throwaway one): a quorate package already installed is
# purged first. The restart of a running agent on upgrade needs a running systemd
# and is tested in the nspawn tests.
#
#   packaging/tests/deb.sh      (QUORATE_DEB=path overrides the deb under test)
set -euo pipefail
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "deb.sh installs a package: run it as root"
need_file "$PKG_DEB"
cd "$PKG_REPO"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The version the upgrade starts from: lower than the one under test.
old_version=0.0.9
old_dir=$PKG_REPO/target/pkg-old
old_deb=$old_dir/quorate_${old_version}-1_amd64.deb

export DEBIAN_FRONTEND=noninteractive

# ---- a clean start -------------------------------------------------------------
if dpkg-query -W -f='${Status}' quorate 2>/dev/null | grep -qv 'not-installed'; then
  echo "# purging the quorate package left from an earlier run"
  dpkg -P quorate >/dev/null
fi
# So that the test sees the package create the user (the test's own machine).
if getent passwd quorate >/dev/null; then userdel quorate; fi
if getent group quorate >/dev/null; then groupdel quorate; fi

# ---- the control file --------------------------------------------------------------
depends=$(dpkg-deb -f "$PKG_DEB" Depends)
case ", $depends," in
  *", libc6 (>= 2.28),"*) ok "the deb asks for glibc 2.28, what its binaries need ($depends)" ;;
  *) fail "the deb asks for glibc 2.28, what its binaries need (Depends: $depends)" ;;
esac

# ---- install -------------------------------------------------------------------
echo "# install $(basename "$PKG_DEB")"
if dpkg -i "$PKG_DEB" >"$tmp/install.log" 2>&1; then
  ok "dpkg -i installs the deb"
else
  fail "dpkg -i installs the deb"; sed 's/^/#   /' "$tmp/install.log"
  finish; exit 1
fi
check "the first install says the agent is not started yet" grep -q "not started" "$tmp/install.log"
check "… and to edit /etc/quorate/agent.toml" grep -q "/etc/quorate/agent.toml" "$tmp/install.log"
check "… and to issue certificates with quorate ca" grep -q "quorate ca" "$tmp/install.log"
check "… and to systemctl start quorate" grep -q "systemctl start quorate" "$tmp/install.log"

for bin in /usr/bin/quorate-agent /usr/bin/quorate; do
  check_stat "$bin" "755 root:root"
done
check_stat /etc/quorate "750 root:quorate"
check_stat /etc/quorate/agent.toml "640 root:quorate"
check_stat /var/lib/quorate "700 quorate:quorate"
check_stat /lib/systemd/system/quorate.service "644 root:root"
check_stat /usr/lib/sysusers.d/quorate.conf "644 root:root"
check_stat /usr/lib/tmpfiles.d/quorate.conf "644 root:root"
check "the copyright file refers to the common Apache-2.0 licence" \
  grep -q /usr/share/common-licenses/Apache-2.0 /usr/share/doc/quorate/copyright
check "the changelog is /usr/share/doc/quorate/changelog.Debian.gz" \
  sh -c 'zcat /usr/share/doc/quorate/changelog.Debian.gz | head -1 | grep -q "^quorate ("'
check "the shipped agent.toml equals packaging/agent.toml" cmp /etc/quorate/agent.toml packaging/agent.toml

pw=$(getent passwd quorate || true)
if [ -n "$pw" ]; then
  ok "the user quorate exists ($pw)"
  IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
  check_eq "quorate's home is /var/lib/quorate" /var/lib/quorate "$home"
  case $shell in */nologin|/bin/false) ok "quorate has no login shell ($shell)" ;;
    *) fail "quorate has no login shell (got $shell)" ;; esac
  if [ "$uid" -lt 1000 ]; then ok "quorate is a system user (uid $uid)"; else fail "quorate is a system user (uid $uid)"; fi
else
  fail "the user quorate exists"
fi
check "the group quorate exists" getent group quorate

conffiles=$(dpkg-query -W -f='${Conffiles}' quorate)
if grep -q '^ /etc/quorate/agent.toml ' <<<"$conffiles"; then
  ok "agent.toml is a conffile"
else
  fail "agent.toml is a conffile (dpkg says:$conffiles)"
fi

v=$(/usr/bin/quorate-agent --version 2>&1 || true)
check_eq "quorate-agent --version" "quorate-agent $PKG_VERSION" "$v"
check "quorate --version runs" /usr/bin/quorate --version

for page in /usr/share/man/man8/quorate-agent.8.gz /usr/share/man/man1/quorate.1.gz; do
  check_stat "$page" "644 root:root"
  check "$page is a man page (.TH)" sh -c "zcat '$page' | grep -q '^\.TH'"
done
if command -v man >/dev/null; then
  check_eq "man -w quorate-agent" /usr/share/man/man8/quorate-agent.8.gz "$(man -w quorate-agent 2>/dev/null || true)"
  check_eq "man -w quorate" /usr/share/man/man1/quorate.1.gz "$(man -w 1 quorate 2>/dev/null || true)"
else
  echo "# man is not installed: man pages checked by path only"
fi
for f in /usr/share/bash-completion/completions/quorate-agent /usr/share/bash-completion/completions/quorate \
  /usr/share/zsh/vendor-completions/_quorate-agent /usr/share/zsh/vendor-completions/_quorate \
  /usr/share/fish/vendor_completions.d/quorate-agent.fish /usr/share/fish/vendor_completions.d/quorate.fish; do
  check "completion $f" test -s "$f"
done
check "bash completion for quorate-agent is a bash completion" grep -q "complete .*quorate-agent" \
  /usr/share/bash-completion/completions/quorate-agent
check "bash completion for quorate loads in bash" \
  bash -c '. /usr/share/bash-completion/completions/quorate && complete -p quorate'

check "the unit is enabled (multi-user.target.wants)" \
  test -L /etc/systemd/system/multi-user.target.wants/quorate.service
check "the unit is not masked" test ! -e /etc/systemd/system/quorate.service
if systemd-analyze verify /lib/systemd/system/quorate.service >"$tmp/verify.log" 2>&1; then
  ok "systemd-analyze verify accepts the installed unit"
else
  fail "systemd-analyze verify accepts the installed unit"; sed 's/^/#   /' "$tmp/verify.log"
fi

# ---- lintian ---------------------------------------------------------------------
if command -v lintian >/dev/null; then
  lintian "$PKG_DEB" >"$tmp/lintian.log" 2>&1 || true
  grep -v '^running with root' "$tmp/lintian.log" | sed 's/^/#   lintian: /' || true
  check_eq "lintian reports no errors" 0 "$(grep -c '^E:' "$tmp/lintian.log" || true)"
  check_eq "lintian reports no warnings beyond the overridden ones (packaging/debian/lintian-overrides)" \
    0 "$(grep -c '^W:' "$tmp/lintian.log" || true)"
else
  fail "lintian is installed (apt-get install lintian)"
fi

# ---- remove, purge -------------------------------------------------------------------
echo "state" >/var/lib/quorate/test-state
echo "# remove"
check "dpkg -r removes the package" dpkg -r quorate
check "quorate-agent is gone after remove" test ! -e /usr/bin/quorate-agent
check "quorate is gone after remove" test ! -e /usr/bin/quorate
check "the unit is gone after remove" test ! -e /lib/systemd/system/quorate.service
check "remove keeps the user" getent passwd quorate
check "remove keeps the state" test -f /var/lib/quorate/test-state
check "remove keeps agent.toml" test -f /etc/quorate/agent.toml
check_eq "dpkg status after remove" "deinstall ok config-files" "$(dpkg-query -W -f='${Status}' quorate)"

echo "# purge"
check "dpkg -P purges the package" dpkg -P quorate
check "purge removes /etc/quorate" test ! -e /etc/quorate
check "purge removes /var/lib/quorate" test ! -e /var/lib/quorate
check "purge removes the enablement symlink" test ! -e /etc/systemd/system/multi-user.target.wants/quorate.service
check "purge removes the mask" test ! -e /etc/systemd/system/quorate.service
check "purge keeps the user (Debian policy)" getent passwd quorate
left=0
while read -r path; do
  path=${path#.}
  [ -n "$path" ] || continue
  if [ -f "$path" ] || [ -L "$path" ]; then echo "#   left behind: $path"; left=1; fi
done < <(dpkg-deb --fsys-tarfile "$PKG_DEB" | tar -t)
check_eq "no file of the package is left after purge" 0 "$left"
check "dpkg knows nothing of quorate after purge" \
  sh -c "! dpkg-query -W -f='\${Status}' quorate 2>/dev/null | grep -q installed"

# ---- without systemd-sysusers and systemd-tmpfiles (a container without systemd) ----
# dpkg hands its PATH to the maintainer scripts: a PATH of links to every command but
# those two makes the postinst take its fallbacks (adduser, mkdir/chown/chmod).
echo "# install where systemd-sysusers and systemd-tmpfiles are missing"
userdel quorate 2>/dev/null || true
groupdel quorate 2>/dev/null || true
mkdir -p "$tmp/path"
for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  [ -d "$dir" ] || continue
  for cmd in "$dir"/*; do
    name=${cmd##*/}
    case $name in systemd-sysusers|systemd-tmpfiles) continue ;; esac
    [ -e "$tmp/path/$name" ] || ln -s "$cmd" "$tmp/path/$name"
  done
done
if PATH=$tmp/path dpkg -i "$PKG_DEB" >"$tmp/install-nosystemd.log" 2>&1; then
  ok "dpkg -i installs the deb without systemd-sysusers and systemd-tmpfiles"
else
  fail "dpkg -i installs the deb without systemd-sysusers and systemd-tmpfiles"
  sed 's/^/#   /' "$tmp/install-nosystemd.log"
fi
pw=$(getent passwd quorate || true)
case $pw in
  quorate:*:/var/lib/quorate:*nologin) ok "adduser made the user quorate ($pw)" ;;
  *) fail "adduser made the user quorate with home /var/lib/quorate and nologin (got '$pw')" ;;
esac
check_stat /etc/quorate "750 root:quorate"
check_stat /etc/quorate/agent.toml "640 root:quorate"
check_stat /var/lib/quorate "700 quorate:quorate"
check "dpkg -P purges it" dpkg -P quorate

# ---- upgrade from a lower version, the edited config kept --------------------------
echo "# upgrade $old_version -> $PKG_VERSION with an edited agent.toml and --force-confold"
if [ ! -f "$old_deb" ] || [ "$old_deb" -ot "$PKG_DEB" ]; then
  "$PKG_REPO/packaging/build.sh" --version "$old_version" --out "$old_dir" --deb-only >"$tmp/build-old.log" 2>&1 \
    || { sed 's/^/#   /' "$tmp/build-old.log"; die "could not build the $old_version deb"; }
fi
check "dpkg -i installs $old_version" dpkg -i "$old_deb"
printf '\n# edited by deb.sh\n' >>/etc/quorate/agent.toml
if dpkg --force-confold -i "$PKG_DEB" >"$tmp/upgrade.log" 2>&1; then
  ok "dpkg --force-confold -i upgrades to $PKG_VERSION"
else
  fail "dpkg --force-confold -i upgrades to $PKG_VERSION"; sed 's/^/#   /' "$tmp/upgrade.log"
fi
check_eq "the installed version after the upgrade" "${PKG_VERSION}-1" "$(dpkg-query -W -f='${Version}' quorate)"
check "the edit of agent.toml survives the upgrade" grep -q "^# edited by deb.sh" /etc/quorate/agent.toml
check_stat /etc/quorate/agent.toml "640 root:quorate"
check "the upgrade does not print the first-install note" sh -c "! grep -q 'not started' '$tmp/upgrade.log'"
check "the unit is still enabled after the upgrade" \
  test -L /etc/systemd/system/multi-user.target.wants/quorate.service
check "dpkg -P purges the upgraded package" dpkg -P quorate

finish
