#!/usr/bin/env bash
# The one command: install fuse3 if needed, build synfs, and mount Synapse at
# MOUNTPOINT (default ~/synapse). With no token in ~/.synapseConfig or
# SYNAPSE_AUTH_TOKEN it mounts the embedded emulator with a demo project.
# Extra arguments go to `synfs mount`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --install
mkdir -p bin
if [ ! -x bin/synfs ]; then
  echo "synfs: first build: downloading modules and compiling (about a minute); packages as they build:" >&2
  go build -v -o bin/synfs ./cmd/synfs 2>&1 | sed -u 's/^/  /' >&2
else
  go build -o bin/synfs ./cmd/synfs
fi
mnt="${1:-$HOME/synapse}"
[ $# -gt 0 ] && shift
# A dead mount left by a killed synfs fails mkdir ("transport endpoint is not
# connected"): synfs mount cleans it up, or prints the command that does.
mkdir -p "$mnt" 2>/dev/null || true
cat >&2 <<MSG
synfs: mounting at $mnt. In another terminal, try:
  ls $mnt                                   # your projects
  cp some-file "$mnt/Demo Project/Data/"    # returns once staged; uploads in the background
  ls -l "$mnt/Demo Project/Data/"           # the file is there at once
  bin/synfs status $mnt                     # what is staged, uploading, failed, and why
  bin/synfs wait $mnt                       # returns when everything is in Synapse
Press Ctrl-C here to unmount (staged files upload at the next mount), or run
bin/synfs unmount $mnt to wait for the uploads first.
MSG
exec bin/synfs mount "$mnt" "$@"
