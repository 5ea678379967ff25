package fs_test

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// Growth and memory benchmarks: how staging and upload time, the daemon's
// memory and the cache directory behave as files get larger or more
// numerous. One command each (see docs/benchmarks.md):
//
//	SYNFS_BENCH_GROWTH_GIB=1,4,16 SYNFS_BENCH_GROWTH_FILES=1000,10000 \
//	  go test -run '^$' -bench Growth -benchtime 1x -timeout 3h ./fs/
//	go test -run '^$' -bench MemoryCgroup -benchtime 1x -count 2 -timeout 1h ./fs/

// envList reads a comma-separated list of positive integers from the
// environment, or returns def.
func envList(name string, def ...int) []int {
	var out []int
	for _, f := range strings.Split(os.Getenv(name), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return def
	}
	return out
}

// patternMD5 is the MD5 of writePattern's bytes.
func patternMD5(size int64, seed byte) string {
	h := md5.New()
	writePattern(h, size, seed)
	return hex.EncodeToString(h.Sum(nil))
}

// ddInto writes size bytes of writePattern to dst with `dd bs=1M` as a
// child process fed from a pipe (no source file: a 16 GiB source would
// double the disk a run needs), and returns how long dd took, from its
// start until it exited (after its close of dst).
func ddInto(b *testing.B, d *benchDaemon, dst string, size int64, seed byte, timeout time.Duration) time.Duration {
	b.Helper()
	cmd := exec.Command("dd", "of="+dst, "bs=1M", "iflag=fullblock", "status=none")
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	fed := make(chan error, 1)
	go func() {
		err := writePattern(in, size, seed)
		in.Close()
		fed <- err
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		took := time.Since(start)
		if err != nil {
			b.Fatalf("dd of=%s: %v: %s", dst, err, out.String())
		}
		if err := <-fed; err != nil {
			b.Fatalf("feeding dd: %v", err)
		}
		return took
	case <-time.After(timeout):
		cmd.Process.Kill()
		if d != nil {
			abortConn(d.dev)
		}
		<-done
		b.Fatalf("dd of=%s did not finish within %v", dst, timeout)
		return 0
	}
}

// memPeaks samples a process's /proc status (and optionally a memory
// cgroup's usage) until stopped, keeping the peaks.
type memPeaks struct {
	VmRSS, RssAnon, RssFile int64 // bytes
	CgroupUsage             int64 // memory.usage_in_bytes of cgroup (v1), if set

	stop chan struct{}
	done chan struct{}
}

func sampleMem(pid int, cgroup string) *memPeaks {
	m := &memPeaks{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			f := procFields(pid, "VmRSS", "RssAnon", "RssFile")
			m.VmRSS = max(m.VmRSS, f["VmRSS"])
			m.RssAnon = max(m.RssAnon, f["RssAnon"])
			m.RssFile = max(m.RssFile, f["RssFile"])
			if cgroup != "" {
				m.CgroupUsage = max(m.CgroupUsage, readInt(filepath.Join(cgroup, "memory.usage_in_bytes")))
			}
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Stop ends the sampling; the peaks are final when it returns.
func (m *memPeaks) Stop() {
	close(m.stop)
	<-m.done
}

// procFields reads "Name:   N kB" fields of /proc/PID/status in bytes.
func procFields(pid int, names ...string) map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		for _, n := range names {
			if v, ok := strings.CutPrefix(l, n+":"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					k, _ := strconv.ParseInt(f[0], 10, 64)
					out[n] = k << 10
				}
			}
		}
	}
	return out
}

// procUsage is a process's CPU time (user + system) and the bytes it has
// made the disk read (read_bytes of /proc/PID/io: page cache misses).
type procUsage struct {
	cpu       time.Duration
	diskReads int64
}

func usageOf(pid int) procUsage {
	var u procUsage
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command name, which is in parentheses: utime
		// and stime are the 12th and 13th, in clock ticks (100 a second).
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			f := strings.Fields(string(b)[i+1:])
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				u.cpu = time.Duration(ut+st) * 10 * time.Millisecond
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "read_bytes: "); ok {
				u.diskReads, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	return u
}

// readInt reads a file holding one integer; 0 if it cannot.
func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// awaitDrained waits up to 3 minutes for the cache directory to shrink to
// 64 MiB or less (the store frees uploaded chunks and runs its value-log
// GC after 64 MiB freed and every minute), and returns its size and how
// long that took.
func awaitDrained(dir string) (int64, time.Duration) {
	start := time.Now()
	for {
		n := duBytes(dir)
		if n <= 64*mib || time.Since(start) > 3*time.Minute {
			return n, time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// growthRow is one size's figures, for the summary.
type growthRow struct {
	name              string
	units             float64 // GiB or files
	stage, upload, lo time.Duration
	cpu               time.Duration // the daemon's, staging and upload
	cacheAfter        int64
}

// BenchmarkGrowth: staging and upload time of one large file of each size
// in SYNFS_BENCH_GROWTH_GIB (GiB, default 1) and of each count of 4 KiB
// files in SYNFS_BENCH_GROWTH_FILES (default 1000), each with a fresh
// daemon, cache and emulator. Staging is `dd` into the mount (large) or
// `cp -r` (small) until it exits; upload is from then until Synapse holds
// everything (--writeback-delay 100ms, so uploads start at once). The
// baseline is the same bytes written to a local directory on the cache's
// disk (`dd` + `sync`, `cp -r` + `sync`) in the same run. Then it waits for
// the cache directory to drain. The summary compares each size's cost per
// GiB or per file with the smallest size's: flat means no super-linear
// term. Large files keep the emulator's data on disk; small files keep it
// in memory, because the emulator rewrites a snapshot of all its metadata
// on disk after every change (a cost that grows with the file count and
// is the emulator's, not synfs's).
func BenchmarkGrowth(b *testing.B) {
	requireFUSE(b)
	var large, small []growthRow
	for _, g := range envList("SYNFS_BENCH_GROWTH_GIB", 1) {
		b.Run(fmt.Sprintf("large/%dGiB", g), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				large = append(large, growthLarge(b, int64(g)*gib, byte(g+i)))
			}
		})
	}
	for _, n := range envList("SYNFS_BENCH_GROWTH_FILES", 1000) {
		b.Run(fmt.Sprintf("small/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				small = append(small, growthSmall(b, n))
			}
		})
	}
	summarize := func(rows []growthRow, unit string, scale float64) {
		if len(rows) == 0 {
			return
		}
		r0 := rows[0]
		per := func(d time.Duration, r growthRow) float64 { return d.Seconds() / r.units * scale }
		for _, r := range rows {
			tot, tot0 := r.stage+r.upload, r0.stage+r0.upload
			fmt.Printf("growth: %-12s stage %6.3f s/%s (x%.2f of %s), upload %6.3f s/%s (x%.2f), total %6.3f s/%s (x%.2f), daemon CPU %6.3f s/%s (x%.2f), local %6.3f s/%s, local/stage %.2f, cache after drain %.1f MiB\n",
				r.name, per(r.stage, r), unit, per(r.stage, r)/per(r0.stage, r0), r0.name,
				per(r.upload, r), unit, per(r.upload, r)/per(r0.upload, r0),
				per(tot, r), unit, per(tot, r)/per(tot0, r0),
				per(r.cpu, r), unit, per(r.cpu, r)/per(r0.cpu, r0),
				per(r.lo, r), unit, r.lo.Seconds()/r.stage.Seconds(), float64(r.cacheAfter)/mib)
		}
	}
	summarize(large, "GiB", 1)
	summarize(small, "1000 files", 1000)
	if len(large)+len(small) == 0 {
		fmt.Println("growth: no sizes selected")
	}
}

func growthLarge(b *testing.B, size int64, seed byte) growthRow {
	work := b.TempDir() // on the cache's disk; deleted after this size
	sum := patternMD5(size, seed)
	timeout := time.Duration(size/gib+1) * 3 * time.Minute

	local := filepath.Join(work, "local.bin")
	runCmd(b, nil, time.Minute, "sync")
	lo := ddInto(b, nil, local, size, seed, timeout)
	lo += runCmd(b, nil, timeout, "sync")
	os.Remove(local)
	runCmd(b, nil, time.Minute, "sync")

	e := newBenchEmu(b, emulator.Options{DataDir: filepath.Join(work, "emulator")})
	cacheDir := filepath.Join(work, "cache")
	d := startBenchDaemon(b, e, cacheDir, "--writeback-delay", "100ms",
		"--rest-concurrency", "16", "--rest-rate", "1000000")
	pid := d.cmd.Process.Pid
	mem := sampleMem(pid, "")
	name := "big.bin"
	u0 := usageOf(pid)
	stage := ddInto(b, d, filepath.Join(d.data, name), size, seed, timeout)
	staged := time.Now()
	u1 := usageOf(pid)
	end := poll(b, timeout, name+" uploaded", func() bool { return e.uploaded(e.folder, name, size) })
	u2 := usageOf(pid)
	mem.Stop()
	if ent, _ := e.child(e.folder, name); ent.Versions[0].MD5 != sum {
		b.Fatalf("%s: md5 %s, want %s", name, ent.Versions[0].MD5, sum)
	}
	cacheAfter, drain := awaitDrained(cacheDir)
	r := growthRow{name: fmt.Sprintf("%d GiB", size/gib), units: float64(size) / gib,
		stage: stage, upload: end.Sub(staged), lo: lo, cpu: u2.cpu - u0.cpu, cacheAfter: cacheAfter}
	g := r.units
	b.ReportMetric(r.stage.Seconds(), "stage-s")
	b.ReportMetric(r.upload.Seconds(), "upload-s")
	b.ReportMetric(r.stage.Seconds()/g, "stage-s/GiB")
	b.ReportMetric(r.upload.Seconds()/g, "upload-s/GiB")
	b.ReportMetric(lo.Seconds()/g, "local-s/GiB")
	b.ReportMetric((u1.cpu-u0.cpu).Seconds()/g, "daemon-stage-cpu-s/GiB")
	b.ReportMetric((u2.cpu-u1.cpu).Seconds()/g, "daemon-upload-cpu-s/GiB")
	b.ReportMetric(float64(u2.diskReads-u1.diskReads)/mib/g, "upload-disk-read-MiB/GiB")
	b.ReportMetric(lo.Seconds()/r.stage.Seconds(), "ratio")
	b.ReportMetric(float64(cacheAfter)/mib, "cache-after-MiB")
	b.ReportMetric(drain.Seconds(), "drain-s")
	b.ReportMetric(float64(mem.RssAnon)/mib, "peak-RssAnon-MiB")
	b.ReportMetric(float64(mem.VmRSS)/mib, "peak-VmRSS-MiB")
	return r
}

func growthSmall(b *testing.B, n int) growthRow {
	work := b.TempDir()
	src := filepath.Join(work, "small")
	os.MkdirAll(src, 0o755)
	sums := map[string]string{}
	for k := 0; k < n; k++ {
		body := pattern(4<<10, byte(k))
		binary.LittleEndian.PutUint32(body, uint32(k))
		name := fmt.Sprintf("f%05d.dat", k)
		s := md5.Sum(body)
		sums[name] = hex.EncodeToString(s[:])
		if err := os.WriteFile(filepath.Join(src, name), body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	timeout := time.Duration(n/1000+1) * 3 * time.Minute
	runCmd(b, nil, time.Minute, "sync")
	lo := runCmd(b, nil, timeout, "cp", "-r", src, filepath.Join(work, "local"))
	lo += runCmd(b, nil, timeout, "sync")
	os.RemoveAll(filepath.Join(work, "local"))

	e := newBenchEmu(b, emulator.Options{DataDir: "-"})
	cacheDir := filepath.Join(work, "cache")
	d := startBenchDaemon(b, e, cacheDir, "--writeback-delay", "100ms",
		"--rest-concurrency", "16", "--rest-rate", "1000000")
	os.ReadDir(d.data) // warm: the folder's listing and permissions
	pid := d.cmd.Process.Pid
	mem := sampleMem(pid, "")
	files := func() int { return e.em.Stats().EntityCreates["file"] }
	before := files()
	u0 := usageOf(pid)
	start := time.Now()
	stage := runCmd(b, d, timeout, "cp", "-r", src, d.data)
	staged := start.Add(stage)
	end := poll(b, timeout, "all files uploaded", func() bool { return files()-before >= n })
	u1 := usageOf(pid)
	mem.Stop()
	f, ok := e.child(e.folder, "small")
	if !ok {
		b.Fatal("no folder small")
	}
	got := 0
	for _, c := range e.em.Children(f.ID) {
		if len(c.Versions) == 1 && c.Versions[0].MD5 == sums[c.Name] {
			got++
		}
	}
	if got != n {
		b.Fatalf("%d of %d files in Synapse with the right MD5", got, n)
	}
	cacheAfter, drain := awaitDrained(cacheDir)
	r := growthRow{name: fmt.Sprintf("%d files", n), units: float64(n),
		stage: stage, upload: end.Sub(staged), lo: lo, cpu: u1.cpu - u0.cpu, cacheAfter: cacheAfter}
	k := float64(n) / 1000
	b.ReportMetric(r.stage.Seconds(), "stage-s")
	b.ReportMetric(r.upload.Seconds(), "upload-s")
	b.ReportMetric(r.stage.Seconds()/k, "stage-s/1000files")
	b.ReportMetric(r.upload.Seconds()/k, "upload-s/1000files")
	b.ReportMetric(end.Sub(start).Seconds()/k, "total-s/1000files")
	b.ReportMetric(lo.Seconds()/k, "local-s/1000files")
	b.ReportMetric((u1.cpu-u0.cpu).Seconds()/k, "daemon-cpu-s/1000files")
	b.ReportMetric(lo.Seconds()/r.stage.Seconds(), "ratio")
	b.ReportMetric(float64(cacheAfter)/mib, "cache-after-MiB")
	b.ReportMetric(drain.Seconds(), "drain-s")
	b.ReportMetric(float64(mem.RssAnon)/mib, "peak-RssAnon-MiB")
	b.ReportMetric(float64(mem.VmRSS)/mib, "peak-VmRSS-MiB")
	return r
}

// stopDaemon ends d (SIGTERM, then SIGKILL after 30 s) and waits for it.
func stopDaemon(d *benchDaemon) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}
