#!/usr/bin/env bash
# Builds quorate's release binaries against glibc 2.28 (so they run on RHEL 8 and
# newer) and packs them, with the unit, the default config, man pages and shell
# completions, into a deb (cargo-deb) and an rpm (cargo-generate-rpm) in dist/.
#
#   packaging/build.sh [--version V] [--out DIR] [--deb-only]
#
#   --version V   package version instead of the workspace's (also QUORATE_PKG_VERSION);
#                 the tests build a lower version from the same tree to test upgrades
#   --out DIR     where the packages go (also QUORATE_PKG_OUT; default dist/)
#   --deb-only    build no rpm
#
# Installs what it needs when missing: cargo-zigbuild and ziglang with pip, cargo-deb
# and cargo-generate-rpm with `cargo install --locked --debug`. A second run rebuilds nothing that
# did not change and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

version=${QUORATE_PKG_VERSION:-}
out=${QUORATE_PKG_OUT:-dist}
deb_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --deb-only) deb_only=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (try --help)" >&2; exit 64 ;;
  esac
done

# The zig-provided glibc 2.28 sysroot; cargo-zigbuild strips the suffix for the
# output directory.
zig_target=x86_64-unknown-linux-gnu.2.28
target=x86_64-unknown-linux-gnu
# Cargo's target directory: CARGO_TARGET_DIR when set (e.g. a cache kept across
# clones), as cargo, cargo-deb and cargo-generate-rpm all read it.
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
export CARGO_TARGET_DIR=$target_dir
release="$target_dir/$target/release"
# Generated man pages and completions: the package metadata names this path.
stage="$root/target/packaging"

workspace_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
version=${version:-$workspace_version}
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([~+.][0-9A-Za-z.~+]*)?$ ]]; then
  echo "build.sh: package version '$version' is not of the form X.Y.Z" >&2
  exit 64
fi

step_start=0
step() {
  step_start=$SECONDS
  printf '==> %s\n' "$*"
}
step_done() {
  printf '    %s: %ds\n' "$1" $((SECONDS - step_start))
}

# --- tools -----------------------------------------------------------------------
step "tools"
# The versions these scripts are tested with; an installed tool of another version
# is used as it is. pip's scripts directory holds cargo-zigbuild when pip installed it.
PATH=$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
# cargo-zigbuild and zig come as wheels from PyPI: seconds, where `cargo install
# cargo-zigbuild` compiles for minutes.
if ! command -v cargo-zigbuild >/dev/null; then
  echo "    installing cargo-zigbuild 0.24.1 (pip)"
  t=$SECONDS
  python3 -m pip install --quiet --root-user-action=ignore cargo-zigbuild==0.24.1
  echo "    cargo-zigbuild installed in $((SECONDS - t))s"
fi
# cargo-zigbuild finds zig as `zig` on PATH or as `python3 -m ziglang` (PyPI).
if ! command -v zig >/dev/null && ! python3 -m ziglang version >/dev/null 2>&1; then
  echo "    installing ziglang 0.17.1 (pip)"
  t=$SECONDS
  python3 -m pip install --quiet --root-user-action=ignore ziglang==0.17.1
  echo "    ziglang installed in $((SECONDS - t))s"
fi
# The packers only copy and compress a few megabytes once per build, so they are
# compiled unoptimised (--debug) into one shared target directory: about 1.7 minutes
# on a fresh machine instead of 5.
for tool in cargo-deb@3.8.0 cargo-generate-rpm@0.21.1; do
  if ! command -v "${tool%@*}" >/dev/null; then
    echo "    installing $tool (cargo install --locked --debug; once per machine)"
    t=$SECONDS
    CARGO_TARGET_DIR=$root/target/tools cargo install --locked --quiet --debug "$tool"
    echo "    $tool installed in $((SECONDS - t))s"
  fi
done
for cmd in gzip dpkg-shlibdeps; do
  command -v "$cmd" >/dev/null || {
    echo "build.sh: '$cmd' is missing (apt-get install dpkg-dev gzip)" >&2
    exit 69
  }
done
step_done tools

# --- binaries --------------------------------------------------------------------
step "release binaries for $zig_target (cargo zigbuild)"
cargo zigbuild --locked --release --target "$zig_target" --bins \
  -p quorate-agent -p quorate-tui
for bin in quorate-agent quorate; do
  [ -x "$release/$bin" ] || {
    echo "build.sh: cargo zigbuild did not produce $release/$bin" >&2
    exit 1
  }
done
step_done binaries

# --- man pages, completions, changelog ---------------------------------------------
step "man pages and completions"
rm -rf "$stage"
mkdir -p "$stage/man" "$stage/completions"
# generate BIN KIND: the binary's own generator (clap_mangen / clap_complete).
generate() {
  "$release/$1" --generate "$2" || {
    echo "build.sh: '$1 --generate $2' failed" >&2
    exit 1
  }
}
for bin in quorate-agent quorate; do
  section=1
  [ "$bin" = quorate-agent ] && section=8
  # -n: no name or time stamp in the gzip header, so the output is reproducible.
  generate "$bin" man | gzip -9n >"$stage/man/$bin.$section.gz"
  generate "$bin" bash >"$stage/completions/$bin.bash"
  generate "$bin" zsh >"$stage/completions/_$bin"
  generate "$bin" fish >"$stage/completions/$bin.fish"
done
for f in "$stage"/man/* "$stage"/completions/*; do
  [ -s "$f" ] || { echo "build.sh: generated $f is empty" >&2; exit 1; }
done

# The shipped config must be what the agent calls its default.
if ! diff -u packaging/agent.toml <("$release/quorate-agent" --print-default-config) >"$stage/agent.toml.diff"; then
  echo "build.sh: packaging/agent.toml differs from \`quorate-agent --print-default-config\`:" >&2
  head -40 "$stage/agent.toml.diff" >&2
  echo "build.sh: regenerate it with: $release/quorate-agent --print-default-config > packaging/agent.toml" >&2
  exit 1
fi

# Debian changelog: the packaged one, with an entry on top when a different version
# is built (the tests' lower version for the upgrade test).
top=$(sed -n '1s/^quorate (\([^)]*\)-[0-9]*).*/\1/p' packaging/debian/changelog)
{
  if [ "$top" != "$version" ]; then
    printf 'quorate (%s-1) unstable; urgency=medium\n\n' "$version"
    printf '  * Build of version %s from the %s tree (packaging/build.sh --version).\n\n' "$version" "$workspace_version"
    printf ' -- quorate maintainers <maintainers@example.invalid>  %s\n\n' "$(date -R)"
  fi
  cat packaging/debian/changelog
} >"$stage/changelog.Debian"
step_done "man pages and completions"

# --- packages ------------------------------------------------------------------------
mkdir -p "$out"
step "deb (cargo deb)"
# cargo-deb warns about every asset under target/ that is not target/release/; the
# staged files are meant to be there, so that one warning is dropped.
cargo deb --no-build --target "$target" -p quorate-agent --deb-version "$version-1" -o "$out" \
  2> >(grep -v "Only source paths starting with exactly 'target/release/'" >&2)
deb="$out/quorate_${version}-1_amd64.deb"
[ -f "$deb" ] || { echo "build.sh: cargo deb did not write $deb" >&2; exit 1; }
step_done deb

if [ "$deb_only" = 1 ]; then
  echo "built $deb"
  exit 0
fi

step "rpm (cargo generate-rpm)"
cargo generate-rpm -p agent --target "$target" -o "$out" \
  --payload-compress xz --set-metadata "version = \"$version\""
rpm="$out/quorate-${version}-1.x86_64.rpm"
[ -f "$rpm" ] || { echo "build.sh: cargo generate-rpm did not write $rpm" >&2; exit 1; }
step_done rpm

echo "built $deb"
echo "built $rpm"
