#!/usr/bin/env bash
# Checks what synfs needs and prints what to install:
#   - a Go toolchain at the version go.mod names (a Go >= 1.21 fetches it by itself
#     through the module proxy, GOTOOLCHAIN=auto);
#   - fusermount3 (Debian/Ubuntu package fuse3) and /dev/fuse;
#   - rsync (the tests use it).
# With --install it installs the Debian packages with apt-get (scripts/mount.sh and
# scripts/test.sh do this); Go it cannot install. Exit 0 when everything is there.
set -uo pipefail
cd "$(dirname "$0")/.."
install=false
[ "${1:-}" = "--install" ] && install=true
want_go=$(awk '$1 == "go" { print $2; exit }' go.mod)
problems=0

say() { echo "synfs deps: $*" >&2; }

# version_ge A B: A >= B for dotted versions.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

if ! command -v go >/dev/null 2>&1; then
  say "missing: Go $want_go. Install it from https://go.dev/dl/ (Debian's golang package is older), and put go on PATH."
  problems=1
else
  have_go=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  local_go=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed 's/^go//')
  if version_ge "${have_go:-0}" "$want_go"; then
    [ "$have_go" = "$local_go" ] || say "ok: Go $have_go (fetched by the installed Go $local_go for go.mod)"
  elif version_ge "${local_go:-0}" "1.21"; then
    say "Go $local_go will fetch Go $want_go through the module proxy on the first build (GOTOOLCHAIN=auto)"
  else
    say "too old: Go ${local_go:-?}; synfs needs Go $want_go. Install it from https://go.dev/dl/."
    problems=1
  fi
fi

missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
if [ ${#missing[@]} -gt 0 ]; then
  if $install; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing ${missing[*]}"
    $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
      || { say "could not install ${missing[*]}: run: sudo apt-get install ${missing[*]}"; problems=1; }
  else
    say "missing: ${missing[*]}. Install with: sudo apt-get install ${missing[*]}  (fuse3 provides fusermount3; on Fedora: sudo dnf install fuse3)"
    problems=1
  fi
fi
if [ ! -e /dev/fuse ]; then
  say "missing: /dev/fuse. Load the module (sudo modprobe fuse), or run where FUSE is available (a container needs --device /dev/fuse --cap-add SYS_ADMIN)"
  problems=1
fi
exit $problems
