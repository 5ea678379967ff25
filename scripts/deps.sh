#!/usr/bin/env bash
# Installs what synfs needs on a Debian machine: fuse3 (fusermount3), and
# rsync for the tests. Does nothing when they are there.
set -euo pipefail
missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "synfs: installing ${missing[*]}" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -e /dev/fuse ]; then
  echo "synfs: /dev/fuse is missing: load the fuse module (modprobe fuse) or run where FUSE is available" >&2
  exit 1
fi
