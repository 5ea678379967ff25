#!/usr/bin/env bash
# The performance figures of docs/benchmarks.md: builds synfs, runs the
# benchmarks (each once, -benchtime 1x) and prints a table of figure, value,
# baseline (measured in the same run), ratio and goal.
#
#   scripts/bench.sh              # everything (about 20 minutes, ~12 GB of temp disk)
#   BENCH=SmallFiles scripts/bench.sh   # only the fs benchmarks matching a pattern
#
# The fs benchmarks mount FUSE (they need /dev/fuse and root or fusermount3)
# and are skipped without it. The raw `go test` output is kept in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -t synfs-bench.XXXXXX)}"
BENCH="${BENCH:-.}"
go build ./... && go build -o bin/synfs ./cmd/synfs
# The staging benchmarks compare with rclone's mount (Debian: apt-get install -y rclone);
# without it they leave the rclone figures out.
if ! command -v rclone >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y rclone >/dev/null || echo "bench: rclone not installed: no rclone baseline" >&2
  else
    echo "bench: rclone not installed (sudo apt-get install -y rclone): no rclone baseline" >&2
  fi
fi
{
  go test -run '^$' -bench "$BENCH" -benchtime 1x -timeout 30m ./fs/
  if [ "$BENCH" = "." ]; then
    go test -run '^$' -bench 'UploadVsRawPUT' -benchtime 1x -timeout 10m ./remote/synapse/
    go test -run '^$' -bench 'SequentialWrite' -benchtime 1x -timeout 10m ./cache/
  fi
} 2>&1 | tee "$OUT"

echo
echo "raw output: $OUT ($(nproc) cores)"
awk '
/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name)
  for (i = 3; i < NF; i += 2) m[name SUBSEP $(i+1)] = $i
  seen[name] = 1
}
function has(n, u) { return ((n SUBSEP u) in m) }
function v(n, u) { return m[n SUBSEP u] + 0 }
function row(fig, val, base, ratio, goal, met) {
  printf "| %-44s | %-18s | %-18s | %-7s | %-16s | %-4s |\n", fig, val, base, ratio, goal, met
}
function yn(c) { return c ? "yes" : "NO" }
END {
  row("figure", "value", "baseline", "ratio", "goal", "met")
  row("---", "---", "---", "---", "---", "---")
  n = "BenchmarkCopy2GiB"
  if (has(n, "ratio")) {
    r = v(n, "mount-MB/s") / v(n, "local-MB/s")
    row("1. cp 2 GiB into mount (MB/s)", sprintf("%.0f", v(n, "mount-MB/s")),
        sprintf("%.0f cp+sync local", v(n, "local-MB/s")), sprintf("%.2f", r), "ratio >= 0.8", yn(r >= 0.8))
    r = v(n, "mount+sync-MB/s") / v(n, "local-MB/s")
    row("   cp + sync 2 GiB into mount (MB/s)", sprintf("%.0f", v(n, "mount+sync-MB/s")),
        sprintf("%.0f cp+sync local", v(n, "local-MB/s")), sprintf("%.2f", r), "(info)", "")
    if (has(n, "rclone-MB/s")) {
      r = v(n, "mount-MB/s") / v(n, "rclone-MB/s")
      row("   cp 2 GiB into mount vs rclone (MB/s)", sprintf("%.0f", v(n, "mount-MB/s")),
          sprintf("%.0f rclone mount", v(n, "rclone-MB/s")), sprintf("%.2f", r), "ratio > 1", yn(r > 1))
    }
  }
  n = "BenchmarkCopySmallFiles"
  if (has(n, "ratio")) {
    row("1. cp -r 1000 x 4 KiB into mount (s)", sprintf("%.2f", v(n, "mount-s")),
        sprintf("%.2f cp+sync local", v(n, "local-s")), sprintf("%.2f", v(n, "ratio")), "ratio >= 0.8", yn(v(n, "ratio") >= 0.8))
    if (has(n, "rclone-s"))
      row("   same vs rclone (s)", sprintf("%.2f", v(n, "mount-s")), sprintf("%.2f rclone mount", v(n, "rclone-s")),
          sprintf("%.2f", v(n, "rclone/mount")), "ratio > 1", yn(v(n, "rclone/mount") > 1))
  }
  split("loopback link1Gbit", ls, " ")
  for (k = 1; k <= 2; k++) {
    n = "BenchmarkCopyToUploaded1GiB/" ls[k]
    if (!has(n, "ratio")) continue
    row("2. 1 GiB cp start -> uploaded, " ls[k] " (s)", sprintf("%.2f", v(n, "synfs-s")),
        sprintf("%.2f cp+raw PUT", v(n, "baseline-s")), sprintf("%.2f", v(n, "ratio")), "ratio <= 1.2", yn(v(n, "ratio") <= 1.2))
  }
  split("emulator emulatorDisk latency20ms latency20msTransfers16 synapseLimits", cs, " ")
  for (k = 1; k <= 5; k++) {
    n = "BenchmarkSmallFiles/" cs[k]
    if (!has(n, "files")) continue
    f = v(n, "files")
    if (cs[k] == "emulator" || cs[k] == "emulatorDisk") {
      row(sprintf("3. %d x 4 KiB cp -r -> uploaded, %s (s)", f, cs[k]), sprintf("%.2f", v(n, "synfs-s")),
          sprintf("%.2f client lib", v(n, "baseline-s")), sprintf("%.2f", v(n, "ratio")), "<= 3 s", yn(v(n, "synfs-s") <= 3))
    } else {
      goal = (cs[k] ~ /^latency20ms/) ? ">= 100 files/s" : "(info)"
      met = (cs[k] ~ /^latency20ms/) ? yn(v(n, "files/s") >= 100) : ""
      row(sprintf("3. %d x 4 KiB, %s (files/s)", f, cs[k]), sprintf("%.1f", v(n, "files/s")),
          sprintf("%.1f client lib", v(n, "baseline-files/s")), sprintf("%.2f", v(n, "baseline-files/s") / v(n, "files/s")), goal, met)
    }
  }
  n = "BenchmarkMemory4GiB"
  if (has(n, "VmHWM-MiB")) {
    p = v(n, "VmHWM-MiB"); if (v(n, "peak-RSS-MiB") > p) p = v(n, "peak-RSS-MiB")
    row("4. daemon peak RSS, 4 GiB copy (MiB)", sprintf("%.0f", p), sprintf("%.0f idle", v(n, "idle-RSS-MiB")),
        sprintf("%.1f", p / v(n, "idle-RSS-MiB")), "<= 200 MiB", yn(p <= 200))
    row("4. daemon peak RssAnon (heap etc., MiB)", sprintf("%.0f", v(n, "peak-RssAnon-MiB")), sprintf("%.0f idle RSS", v(n, "idle-RSS-MiB")),
        sprintf("%.1f", v(n, "peak-RssAnon-MiB") / v(n, "idle-RSS-MiB")), "(info)", "")
    row("4. cache dir after drain + GC (MiB)", sprintf("%.1f", v(n, "cache-after-MiB")),
        sprintf("%.1f before copy", v(n, "cache-before-MiB")), "-", "<= 64 MiB", yn(v(n, "cache-after-MiB") <= 64))
  }
  split("1500 10000 1500synapseLimits", bs, " ")
  for (k = 1; k <= 3; k++) {
    n = "BenchmarkBrowse/" bs[k]
    if (!has(n, "files")) continue
    row(sprintf("5. ls -l %s cold (s)", bs[k]), sprintf("%.2f", v(n, "cold-s")),
        sprintf("%.2f client lib", v(n, "baseline-s")), sprintf("%.2f", v(n, "ratio")),
        (bs[k] == "1500") ? "<= 1.5 s" : "(info)", (bs[k] == "1500") ? yn(v(n, "cold-s") <= 1.5) : "")
    row(sprintf("5. ls -l %s warm (s)", bs[k]), sprintf("%.3f", v(n, "warm-s")), "-", "-",
        (bs[k] == "1500") ? "<= 0.1 s" : "(info)", (bs[k] == "1500") ? yn(v(n, "warm-s") <= 0.1) : "")
    row(sprintf("5. ls -l %s REST calls/entry cold", bs[k]), sprintf("%.3f", v(n, "cold-calls/entry")), "-", "-", "<= 1", yn(v(n, "cold-calls/entry") <= 1))
    row(sprintf("5. ls -l %s REST calls/entry remount", bs[k]), sprintf("%.3f", v(n, "remount-calls/entry")),
        sprintf("%.2f s", v(n, "remount-s")), "-", "<= 0.05", yn(v(n, "remount-calls/entry") <= 0.05))
  }
  for (k = 1; k <= 2; k++) {
    n = "BenchmarkSequentialRead512MiB/" ls[k]
    if (!has(n, "ratio")) continue
    row("6. sequential read 512 MiB, " ls[k] " (MB/s)", sprintf("%.0f", v(n, "mount-MB/s")), sprintf("%.0f raw GET", v(n, "raw-MB/s")),
        sprintf("%.2f", v(n, "ratio")), "ratio >= 0.9", yn(v(n, "ratio") >= 0.9))
    row("6. first byte of a 1-byte read, " ls[k] " (ms)", sprintf("%.1f", v(n, "first-byte-ms")), sprintf("%.1f raw", v(n, "raw-first-byte-ms")), "-", "(info)", "")
  }
  n = "BenchmarkRoundTrip"
  if (has(n, "ratio"))
    row("   FUSE round trip: sync 4 KiB write (us)", sprintf("%.0f", v(n, "mount-us/write")), sprintf("%.0f local disk", v(n, "local-us/write")),
        sprintf("%.2f", v(n, "ratio")), "(info)", "")
  n = "BenchmarkReadMemory4GiB"
  if (has(n, "peak-RSS-MiB")) {
    row("7. daemon peak RSS reading 4 GiB (MiB)", sprintf("%.0f", v(n, "peak-RSS-MiB")), sprintf("%.0f idle", v(n, "idle-RSS-MiB")),
        "-", "<= 200 MiB", yn(v(n, "peak-RSS-MiB") <= 200))
  }
  n = "BenchmarkMemoryCgroup"
  if (has(n, "ratio")) {
    row("4. 4 GiB copy+upload, 256 MiB cgroup (MB/s)", sprintf("%.0f", v(n, "cgroup-MB/s")), sprintf("%.0f unconstrained", v(n, "free-MB/s")),
        sprintf("%.2f", v(n, "ratio")), "ratio >= 0.8", yn(v(n, "ratio") >= 0.8))
    row("4. in the cgroup: peak VmRSS / RssAnon (MiB)", sprintf("%.0f / %.0f", v(n, "cgroup-VmRSS-MiB"), v(n, "cgroup-RssAnon-MiB")),
        sprintf("%.0f / %.0f free", v(n, "free-VmRSS-MiB"), v(n, "free-RssAnon-MiB")), "-", "no OOM kill", yn(v(n, "oom-kills") == 0))
  }
  for (n in seen) {
    if (n !~ /^BenchmarkGrowth\//) continue
    u = has(n, "stage-s/GiB") ? "GiB" : "1000files"
    g = n; sub(/^BenchmarkGrowth\//, "", g)
    row(sprintf("8. %s: stage, upload (s/%s)", g, u), sprintf("%.2f, %.2f", v(n, "stage-s/" u), v(n, "upload-s/" u)),
        sprintf("%.2f local", v(n, "local-s/" u)), sprintf("%.2f", v(n, "ratio")), "flat (see log)", "")
    row(sprintf("8. %s: cache dir after drain (MiB)", g), sprintf("%.1f", v(n, "cache-after-MiB")), "-", "-", "<= 64 MiB", yn(v(n, "cache-after-MiB") <= 64))
  }
  split("loopback link1Gbit", ls, " ")
  for (k = 1; k <= 2; k++) {
    n = "BenchmarkUploadVsRawPUT/" ls[k]
    if (!has(n, "ratio")) continue
    row(sprintf("Client.Upload 1 GiB, %s (MB/s)", ls[k]), sprintf("%.0f", v(n, "upload-MB/s")), sprintf("%.0f raw PUT", v(n, "raw-MB/s")),
        sprintf("%.2f", v(n, "ratio")), "ratio >= 0.9", yn(v(n, "ratio") >= 0.9))
    row(sprintf("Client.Upload CPU, %s (s/GiB, client+emulator)", ls[k]), sprintf("%.2f", v(n, "upload-cpu-s/GiB")), sprintf("%.2f raw PUT", v(n, "raw-cpu-s/GiB")),
        sprintf("%.2f", v(n, "cpu-ratio")), "(info)", "")
  }
  a = "BenchmarkSequentialWrite"; p = "BenchmarkSequentialWritePlainFile"
  if (has(a, "MB/s") && has(p, "MB/s")) {
    row("cache store 256 MiB write + Sync (MB/s)", sprintf("%.0f", v(a, "MB/s")), sprintf("%.0f plain file", v(p, "MB/s")),
        sprintf("%.2f", v(a, "MB/s") / v(p, "MB/s")), "(info)", "")
  }
}' "$OUT"
