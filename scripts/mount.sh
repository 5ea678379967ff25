#!/usr/bin/env bash
# The one command: install fuse3 if needed, build synfs, and mount Synapse at
# MOUNTPOINT (default ~/synapse). With no token in ~/.synapseConfig or
# SYNAPSE_AUTH_TOKEN it mounts the embedded emulator with a demo project.
# Extra arguments go to `synfs mount`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
mkdir -p bin
go build -o bin/synfs ./cmd/synfs
mnt="${1:-$HOME/synapse}"
[ $# -gt 0 ] && shift
mkdir -p "$mnt"
cat >&2 <<MSG
synfs: mounting at $mnt. In another terminal, try:
  ls $mnt                                   # your projects
  cp some-file "$mnt/Demo Project/Data/"    # returns at disk speed; uploads in the background
  ls -l "$mnt/Demo Project/Data/"           # the file is there at once
  cat $mnt/.synfs/status                    # what is staged, uploading, failed
Press Ctrl-C here to unmount.
MSG
exec bin/synfs mount "$mnt" "$@"
