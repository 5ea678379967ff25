package fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// cgroupV1Memory is where the cgroup v1 memory controller is mounted.
const cgroupV1Memory = "/sys/fs/cgroup/memory"

// newMemCgroup makes a cgroup v1 memory cgroup limited to limit bytes
// (memory and swap together where swap accounting is on) and removes it
// when b ends. It skips b where there is no such controller or it may not
// be used.
func newMemCgroup(b *testing.B, limit int64) string {
	b.Helper()
	if _, err := os.Stat(filepath.Join(cgroupV1Memory, "memory.limit_in_bytes")); err != nil {
		b.Skipf("no cgroup v1 memory controller at %s (%v): this benchmark needs one, and root", cgroupV1Memory, err)
	}
	dir := filepath.Join(cgroupV1Memory, fmt.Sprintf("synfs-bench-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Skipf("cannot make a memory cgroup (needs root): %v", err)
	}
	b.Cleanup(func() {
		// The daemon has exited; its page cache charges move to the parent.
		for range 50 {
			if os.Remove(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.Logf("could not remove cgroup %s", dir)
	})
	write := func(name, v string) error { return os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644) }
	if err := write("memory.limit_in_bytes", fmt.Sprint(limit)); err != nil {
		b.Fatal(err)
	}
	write("memory.memsw.limit_in_bytes", fmt.Sprint(limit)) // absent without swap accounting
	return dir
}

// cgroupStat reads fields of a cgroup v1 memory.stat.
func cgroupStat(dir string) map[string]int64 {
	out := map[string]int64{}
	b, _ := os.ReadFile(filepath.Join(dir, "memory.stat"))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			var n int64
			fmt.Sscan(f[1], &n)
			out[f[0]] = n
		}
	}
	return out
}

// oomKills reads oom_kill from a cgroup v1 memory.oom_control.
func oomKills(dir string) int64 {
	b, _ := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

// memRun is one copy-and-upload of the cgroup benchmark.
type memRun struct {
	stage, total time.Duration
	cpu          time.Duration // the daemon's CPU time, copy and upload
	diskReads    int64         // bytes the daemon read from disk during the upload
	mem          *memPeaks
	maxUsage     int64 // memory.max_usage_in_bytes
	failcnt      int64 // memory.failcnt: times the limit was hit
	ooms         int64
	stat         map[string]int64 // memory.stat at the end
	cacheAfter   int64
}

// BenchmarkMemoryCgroup: the daemon stages and uploads a 4 GiB file
// (SYNFS_BENCH_CGROUP_GIB) once unconstrained and once inside a cgroup v1
// memory cgroup limited to 256 MiB (SYNFS_BENCH_CGROUP_MIB), each with a
// fresh cache; the daemon is started inside the cgroup (a shell that
// joins it and execs synfs), so that all its memory, page cache included,
// is charged there. Reported: the throughput from the start of the copy
// until the file is in Synapse with its MD5, for both, and their ratio
// (goal >= 0.8); peak VmRSS, RssAnon and RssFile of the daemon (sampled
// every 20 ms), the cgroup's peak usage (memory.max_usage_in_bytes),
// failcnt and OOM kills (goal: none, and the daemon still running), and
// the daemon's CPU time and the bytes it read from disk during the upload
// (in a cgroup smaller than the file the staged bytes are no longer in
// the page cache when they are uploaded). The
// emulator and the feeding of `dd` run in the benchmark process, outside
// the cgroup. Skipped where there is no cgroup v1 memory controller.
func BenchmarkMemoryCgroup(b *testing.B) {
	requireFUSE(b)
	size := int64(envInt("SYNFS_BENCH_CGROUP_GIB", 4)) * gib
	limit := int64(envInt("SYNFS_BENCH_CGROUP_MIB", 256)) * mib
	e := newBenchEmu(b, emulator.Options{})
	run := func(b *testing.B, i int, cg string, seed byte) memRun {
		cacheDir := filepath.Join(b.TempDir(), "cache")
		var wrap []string
		if cg != "" {
			wrap = []string{"sh", "-c", `echo $$ > "$1/cgroup.procs" && shift && exec "$@"`, "sh", cg}
		}
		d := startBenchDaemonVia(b, e, cacheDir, wrap, "--writeback-delay", "100ms",
			"--rest-concurrency", "16", "--rest-rate", "1000000")
		defer stopDaemon(d)
		pid := d.cmd.Process.Pid
		if cg != "" {
			in, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
			if !strings.Contains("\n"+string(in), fmt.Sprintf("\n%d\n", pid)) {
				b.Fatalf("daemon %d is not in %s (%q)", pid, cg, in)
			}
		}
		sum := patternMD5(size, seed)
		name := fmt.Sprintf("mem%d-%d.bin", i, seed)
		mem := sampleMem(pid, cg)
		u0 := usageOf(pid)
		start := time.Now()
		stage := ddInto(b, d, filepath.Join(d.data, name), size, seed, 20*time.Minute)
		u1 := usageOf(pid)
		end := poll(b, 20*time.Minute, name+" uploaded", func() bool {
			select {
			case <-d.exited:
				b.Fatalf("the daemon exited (OOM kills in its cgroup: %d): %s", oomKills(cg), tail(d.log))
			default:
			}
			return e.uploaded(e.folder, name, size)
		})
		u2 := usageOf(pid)
		mem.Stop()
		if ent, _ := e.child(e.folder, name); ent.Versions[0].MD5 != sum {
			b.Fatalf("%s: md5 %s, want %s", name, ent.Versions[0].MD5, sum)
		}
		r := memRun{stage: stage, total: end.Sub(start), mem: mem, cpu: u2.cpu - u0.cpu, diskReads: u2.diskReads - u1.diskReads}
		if cg != "" {
			r.maxUsage = readInt(filepath.Join(cg, "memory.max_usage_in_bytes"))
			r.failcnt = readInt(filepath.Join(cg, "memory.failcnt"))
			r.ooms = oomKills(cg)
			r.stat = cgroupStat(cg)
		}
		r.cacheAfter, _ = awaitDrained(cacheDir)
		select {
		case <-d.exited:
			b.Fatalf("the daemon exited (OOM kills: %d): %s", r.ooms, tail(d.log))
		default:
		}
		return r
	}
	for i := 0; i < b.N; i++ {
		free := run(b, i, "", 11)
		cg := newMemCgroup(b, limit)
		boxed := run(b, i, cg, 12)
		if boxed.ooms > 0 {
			b.Errorf("%d OOM kills in the cgroup", boxed.ooms)
		}
		mbs := func(r memRun) float64 { return mbps(size, r.total) }
		b.ReportMetric(mbs(free), "free-MB/s")
		b.ReportMetric(mbs(boxed), "cgroup-MB/s")
		b.ReportMetric(mbs(boxed)/mbs(free), "ratio")
		b.ReportMetric(mbps(size, free.stage), "free-cp-MB/s")
		b.ReportMetric(mbps(size, boxed.stage), "cgroup-cp-MB/s")
		b.ReportMetric(float64(free.mem.VmRSS)/mib, "free-VmRSS-MiB")
		b.ReportMetric(float64(free.mem.RssAnon)/mib, "free-RssAnon-MiB")
		b.ReportMetric(float64(free.mem.RssFile)/mib, "free-RssFile-MiB")
		b.ReportMetric(float64(boxed.mem.VmRSS)/mib, "cgroup-VmRSS-MiB")
		b.ReportMetric(float64(boxed.mem.RssAnon)/mib, "cgroup-RssAnon-MiB")
		b.ReportMetric(float64(boxed.mem.RssFile)/mib, "cgroup-RssFile-MiB")
		b.ReportMetric(float64(boxed.maxUsage)/mib, "cgroup-max-usage-MiB")
		b.ReportMetric(float64(boxed.failcnt), "cgroup-failcnt")
		b.ReportMetric(float64(boxed.ooms), "oom-kills")
		b.ReportMetric(free.cpu.Seconds(), "free-daemon-cpu-s")
		b.ReportMetric(boxed.cpu.Seconds(), "cgroup-daemon-cpu-s")
		b.ReportMetric(float64(free.diskReads)/mib, "free-upload-disk-read-MiB")
		b.ReportMetric(float64(boxed.diskReads)/mib, "cgroup-upload-disk-read-MiB")
		b.ReportMetric(float64(max(free.cacheAfter, boxed.cacheAfter))/mib, "cache-after-MiB")
		fmt.Printf("memory cgroup (limit %d MiB) at the end: rss %d MiB, cache %d MiB, mapped_file %d MiB, dirty %d MiB, writeback %d MiB, pgmajfault %d\n",
			limit/mib, boxed.stat["rss"]/mib, boxed.stat["cache"]/mib, boxed.stat["mapped_file"]/mib,
			boxed.stat["dirty"]/mib, boxed.stat["writeback"]/mib, boxed.stat["pgmajfault"])
	}
}
