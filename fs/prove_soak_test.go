package fs_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// The soak (the long profile, not run by CI): for SYNFS_SOAK (e.g. 30m),
// batches of 500 small files are copied into a synfs mount process with
// faults on, and each is drained with synfs wait. Every file must reach
// Synapse once with its MD5; the mount's threads, open files and cache
// directory must come back to what they were after the first batch, and its
// RSS must stop growing (a plateau in the second half of the run).
//
//	SYNFS_SOAK=30m go test -run 'TestProve' -timeout 3h -v ./fs/
//
// SYNFS_SOAK also lengthens the other parts: 10 crash rounds, 20 model
// seeds, a one-minute outage.

func soakDuration() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("SYNFS_SOAK"))
	return d
}

func init() {
	if soakDuration() > 0 {
		for k, v := range map[string]string{"SYNFS_PROVE_CRASH_ROUNDS": "10", "SYNFS_PROVE_SEEDS": "20", "SYNFS_PROVE_OUTAGE": "1m"} {
			if os.Getenv(k) == "" {
				os.Setenv(k, v)
			}
		}
	}
}

// procSample is what the soak watches of the mount process.
type procSample struct {
	rss, threads, fds, cache int64
}

func (s procSample) String() string {
	return fmt.Sprintf("RSS %d MiB, %d threads, %d open files, cache dir %d MiB", s.rss>>20, s.threads, s.fds, s.cache>>20)
}

func sampleProc(t *testing.T, pid int, cacheDir string) procSample {
	t.Helper()
	var s procSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			s.rss = n << 10
		case "Threads:":
			s.threads = n
		}
	}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	s.fds = int64(len(ents))
	filepath.WalkDir(cacheDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil && !strings.HasSuffix(p, "reserve") {
				s.cache += info.Size()
			}
		}
		return nil
	})
	return s
}

func TestProveSoak(t *testing.T) {
	d := soakDuration()
	if d == 0 {
		t.Skip("the soak runs with SYNFS_SOAK=30m (see docs/testing.md)")
	}
	requireFUSE(t)
	seed := proveSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x50a4))
	em, url, folder := newEmulator(t, emulator.Options{FaultSeed: seed})
	for _, spec := range []string{"/repo/v1/:503:p=0.05", "/file/v1/:503:p=0.05", "PUT /s3/:drop-after-bytes=4096:p=0.05",
		"POST /repo/v1/entity:drop-after-handling:p=0.05", "PUT /file/v1/file/multipart/{uploadId}/complete:drop-after-handling:p=0.05"} {
		f, err := emulator.ParseFault(spec)
		if err != nil {
			t.Fatal(err)
		}
		em.AddFault(f)
	}
	cacheDir, mnt := t.TempDir(), t.TempDir()
	dm := startDaemon(t, url, cacheDir, mnt)
	pid := dm.cmd.Process.Pid
	data := filepath.Join(mnt, "Demo Project", "Data")
	want := map[string]string{} // path under Data -> md5
	var base, mid procSample
	var peak procSample
	deadline := time.Now().Add(d)
	batches := 0
	for batch := 0; batch == 0 || time.Now().Before(deadline); batch++ {
		src := t.TempDir()
		for i := range 500 {
			b := pattern(1+rng.IntN(16<<10), byte(rng.IntN(250)+1))
			b[0], b[len(b)-1] = byte(i), byte(batch)
			name := fmt.Sprintf("s%03d.dat", i)
			if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
			want[path.Join(fmt.Sprintf("b%04d", batch), name)] = md5hex(b)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childOp+"=copytree", childOp+"_A="+src, childOp+"_B="+filepath.Join(data, fmt.Sprintf("b%04d", batch)))
		if out, err := cmd.Output(); err != nil || strings.Count(string(out), "\n") != 500 {
			t.Fatalf("batch %d: copy: %v (%d of 500 closed)", batch, err, strings.Count(string(out), "\n"))
		}
		if out, err := exec.Command(synfsBinary(t), "wait", mnt, "--timeout", "10m").CombinedOutput(); err != nil {
			t.Fatalf("batch %d: synfs wait: %v\n%s", batch, err, out)
		}
		os.RemoveAll(src)
		s := sampleProc(t, pid, cacheDir)
		if batch == 0 {
			base = s
		}
		if mid.rss == 0 && time.Now().After(deadline.Add(-d/2)) {
			mid = s
		}
		peak.rss, peak.threads, peak.fds, peak.cache = max(peak.rss, s.rss), max(peak.threads, s.threads), max(peak.fds, s.fds), max(peak.cache, s.cache)
		if batch%10 == 0 {
			t.Logf("batch %d drained: %v", batch, s)
		}
		batches = batch + 1
	}
	// The kernel keeps an inode (and so synfs a node) for every file it
	// has seen until memory runs short: make it forget them, as memory
	// pressure would, before comparing; then give the Go runtime time to
	// return the freed memory.
	held := sampleProc(t, pid, cacheDir)
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Logf("cannot drop the kernel's dentries and inodes (%v): RSS includes the nodes it holds", err)
	}
	time.Sleep(time.Minute)
	end := sampleProc(t, pid, cacheDir)
	t.Logf("before the kernel forgot its inodes: %v", held)
	t.Logf("after %d batches (%d files): baseline %v; halfway %v; end %v; peak %v", batches, len(want), base, mid, end, peak)
	// Badger's memtables and caches, and the Go heap's slack, take RSS
	// from the first batch's level to a plateau; a leak keeps growing.
	// So the second half of the run must not add more than a quarter to
	// the RSS of its middle.
	if end.rss > mid.rss*5/4+32<<20 {
		t.Errorf("RSS grew from %d MiB halfway to %d MiB at the end (baseline %d MiB)", mid.rss>>20, end.rss>>20, base.rss>>20)
	}
	if end.threads > base.threads+8 || end.fds > base.fds+16 {
		t.Errorf("threads %d → %d, open files %d → %d", base.threads, end.threads, base.fds, end.fds)
	}
	if end.cache > base.cache+64<<20 {
		t.Errorf("cache dir grew from %d to %d MiB", base.cache>>20, end.cache>>20)
	}
	dm.stop(t)
	got := map[string][]string{}
	for _, b := range em.Children(folder) {
		for _, c := range em.Children(b.ID) {
			got[path.Join(b.Name, c.Name)] = append(got[path.Join(b.Name, c.Name)], c.Versions[len(c.Versions)-1].MD5)
		}
	}
	lost := 0
	for p, sum := range want {
		if g := got[p]; len(g) != 1 || g[0] != sum {
			lost++
			if lost < 10 {
				t.Errorf("%s: got %v in Synapse, want one file with md5 %s", p, g, sum)
			}
		}
	}
	st := em.Stats()
	t.Logf("seed %d: %d files in %d batches over %v: %d not in Synapse as written; %d faults injected, %d uploads started",
		seed, len(want), batches, d, lost, st.FaultsInjected, st.UploadsStarted)
}
