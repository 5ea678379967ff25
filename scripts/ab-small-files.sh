#!/bin/bash
# ab-small-files.sh SYNFS_A SYNFS_B [ROUNDS]: times `cp -r` of 1,000 files of 4 KiB
# into a fresh mount of each synfs binary in turn, ROUNDS times (default 5), against one
# emulator (in memory, served by SYNFS_A). Prints "binary seconds daemon-CPU-seconds" per copy. Needs root
# and /dev/fuse. Used for the before/after figures in docs/benchmarks.md.
set -euo pipefail
a=$1 b=$2 rounds=${3:-5}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cleanup() {
	fusermount3 -u -z "$work/mnt" 2>/dev/null || true
	[ -n "${emu:-}" ] && kill "$emu" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/src"
for i in $(seq 1 1000); do head -c 4096 /dev/urandom > "$work/src/f$i"; done
"$a" emulator -addr "127.0.0.1:$port" -token ab > "$work/emu.log" 2>&1 &
emu=$!
sleep 1
for r in $(seq 1 "$rounds"); do
	for bin in "$a" "$b"; do
		rm -rf "$work/cache" "$work/mnt"
		mkdir "$work/mnt"
		out=$(SYNAPSE_AUTH_TOKEN=ab "$bin" mount "$work/mnt" --endpoint "http://127.0.0.1:$port" \
			--cache-dir "$work/cache" --config /dev/null --daemon --writeback-delay 1h 2>&1)
		pid=$(echo "$out" | sed -n 's/.*as process \([0-9]*\).*/\1/p')
		d="$work/mnt/Demo Project/Data/r$r"
		mkdir -p "$d"
		ls "$d" > /dev/null
		sync
		c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
		s=$(date +%s.%N)
		cp -r "$work/src" "$d/"
		e=$(date +%s.%N)
		c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
		echo "$bin $(echo "$e - $s" | bc) $(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l | cut -c1-5)"
		fusermount3 -u "$work/mnt"
		while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	done
done
