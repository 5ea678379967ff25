package fs_test

import (
	"bufio"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// synfsBinary builds cmd/synfs once per test run.
func synfsBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "synfs-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "synfs")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/synfs").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build synfs: %v", buildErr)
	}
	return binPath
}

// daemon is synfs mount running as its own process.
type daemon struct {
	cmd *exec.Cmd
	mnt string
}

func startDaemon(t *testing.T, url, cacheDir, mnt string, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"mount", mnt, "--endpoint", url, "--cache-dir", cacheDir,
		"--config", "/dev/null", "--writeback-delay", "100ms", "--attr-ttl", "100ms",
		"--rest-concurrency", "16", "--rest-rate", "1000000"}, extra...)
	cmd := exec.Command(synfsBinary(t), args...)
	cmd.Env = append(os.Environ(), "SYNAPSE_AUTH_TOKEN="+demoToken)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, mnt: mnt}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		exec.Command("fusermount3", "-u", "-z", mnt).Run()
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			t.Log("daemon: " + line)
			if strings.Contains(line, "mounted") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("synfs mount did not come up in 30 s")
	}
	return d
}

// kill9 kills the daemon without warning and detaches its dead mount.
func (d *daemon) kill9(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
	if out, err := exec.Command("fusermount3", "-u", "-z", d.mnt).CombinedOutput(); err != nil {
		t.Logf("fusermount3 -u -z: %v %s", err, out)
	}
}

// stop unmounts cleanly with SIGTERM.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("synfs exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Error("synfs did not exit within 30 s of SIGTERM")
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newEmulator(t *testing.T, o emulator.Options) (*emulator.Server, string, string) {
	t.Helper()
	em, err := emulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	t.Cleanup(func() { srv.Close(); em.Close() })
	_, folder, err := em.Seed(demoToken)
	if err != nil {
		t.Fatal(err)
	}
	return em, srv.URL, folder
}

func TestCrashDuringCopy(t *testing.T) {
	requireFUSE(t)
	em, url, folder := newEmulator(t, emulator.Options{})
	cacheDir, mnt := t.TempDir(), t.TempDir()
	d := startDaemon(t, url, cacheDir, mnt)
	data := filepath.Join(mnt, "Demo Project", "Data")

	// Write files one by one; remember those whose close() returned.
	closed := map[string][]byte{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			name := "f" + itoa(i%1000) + "-" + itoa(i/1000) + ".bin"
			b := pattern(64<<10+i, byte(i))
			f, err := os.Create(filepath.Join(data, name))
			if err != nil {
				return
			}
			_, werr := f.Write(b)
			if cerr := f.Close(); werr != nil || cerr != nil {
				return
			}
			mu.Lock()
			closed[name] = b
			mu.Unlock()
		}
	}()
	waitFor(t, time.Minute, "100 files written", func() bool { mu.Lock(); defer mu.Unlock(); return len(closed) >= 100 })
	d.kill9(t)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("writer did not stop after the daemon died")
	}
	mu.Lock()
	want := closed
	mu.Unlock()
	t.Logf("%d files closed before kill -9", len(want))

	d = startDaemon(t, url, cacheDir, mnt)
	waitFor(t, 3*time.Minute, "every closed file in Synapse", func() bool {
		names := map[string]bool{}
		for _, c := range em.Children(folder) {
			names[c.Name] = true
		}
		for n := range want {
			if !names[n] {
				return false
			}
		}
		return true
	})
	d.stop(t)
	seen := map[string]int{}
	for _, c := range em.Children(folder) {
		seen[c.Name]++
		if b, ok := want[c.Name]; ok {
			v := c.Versions[len(c.Versions)-1]
			if v.MD5 != md5hex(b) {
				t.Errorf("%s: got md5 %s, want %s", c.Name, v.MD5, md5hex(b))
			}
			if len(c.Versions) != 1 {
				t.Errorf("%s: got %d versions, want 1", c.Name, len(c.Versions))
			}
		}
	}
	for n, k := range seen {
		if k != 1 {
			t.Errorf("%s: %d entities, want 1", n, k)
		}
	}
}

func TestCrashDuringMultipart(t *testing.T) {
	requireFUSE(t)
	em, url, folder := newEmulator(t, emulator.Options{})
	// Slow part uploads so that the kill lands mid-upload.
	remove := em.AddFault(emulator.Fault{Route: "PUT /s3/", Latency: 150 * time.Millisecond})
	cacheDir, mnt := t.TempDir(), t.TempDir()
	d := startDaemon(t, url, cacheDir, mnt, "--parts", "2")
	b := pattern(80<<20, 7) // 10 parts of 8 MiB
	if err := os.WriteFile(filepath.Join(mnt, "Demo Project", "Data", "big.bin"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "3 parts added", func() bool { return em.Stats().PartsAdded >= 3 })
	d.kill9(t)
	before := em.Stats()
	if before.UploadsCompleted != 0 {
		t.Fatalf("upload completed before the kill; the test needs a slower upload")
	}
	remove()
	d = startDaemon(t, url, cacheDir, mnt, "--parts", "2")
	waitFor(t, 2*time.Minute, "big.bin in Synapse", func() bool {
		for _, c := range em.Children(folder) {
			if c.Name == "big.bin" {
				return true
			}
		}
		return false
	})
	d.stop(t)
	after := em.Stats()
	ents := em.Children(folder)
	if len(ents) != 1 || len(ents[0].Versions) != 1 || ents[0].Versions[0].MD5 != md5hex(b) {
		t.Fatalf("got %+v, want one big.bin with one version and the right MD5", ents)
	}
	if after.UploadsStarted != 1 {
		t.Errorf("got %d multipart uploads started, want 1 (the restart resumes the same upload)", after.UploadsStarted)
	}
	// Parts already added are not sent again; at most those in flight (2) are.
	if resent := after.PartsPut - 10; resent > 2 {
		t.Errorf("got %d part PUTs for 10 parts, want at most 12", after.PartsPut)
	}
	_ = context.Background
}

// TestCrashKeepsStagedAnnotations: annotations set on a staged file survive
// kill -9 and arrive with the upload after the remount.
func TestCrashKeepsStagedAnnotations(t *testing.T) {
	requireFUSE(t)
	em, url, folder := newEmulator(t, emulator.Options{})
	cacheDir, mnt := t.TempDir(), t.TempDir()
	d := startDaemon(t, url, cacheDir, mnt, "--writeback-delay", "1h")
	p := filepath.Join(mnt, "Demo Project", "Data", "sample.fastq")
	if err := xWriteFile(t, p, []byte("@r1\nACGT\n+\nIIII\n")); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"user.assay": "rnaSeq", "user.reps": "[1, 2]"} {
		if err := xSetxattr(t, p, name, v); err != nil {
			t.Fatalf("setxattr %s on a staged file: %v", name, err)
		}
	}
	if got, err := xGetxattr(t, p, "user.reps"); err != nil || got != "[1, 2]" {
		t.Errorf("user.reps of the staged file: got %q, %v", got, err)
	}
	for _, c := range em.Children(folder) {
		if c.Name == "sample.fastq" {
			t.Fatal("the file was uploaded before the crash; the test needs it staged")
		}
	}
	d.kill9(t)

	startDaemon(t, url, cacheDir, mnt)
	var id string
	waitFor(t, time.Minute, "the upload after the remount", func() bool {
		for _, c := range em.Children(folder) {
			if c.Name == "sample.fastq" {
				id = c.ID
			}
		}
		return id != ""
	})
	waitFor(t, time.Minute, "the file to count as uploaded", func() bool {
		st, err := xGetxattr(t, p, "user.synfs.state")
		return err == nil && st == "uploaded"
	})
	info, _ := em.Entity(id)
	if a := info.Annotations; len(a["assay"]) != 1 || a["assay"][0] != "rnaSeq" || len(a["reps"]) != 2 {
		t.Errorf("annotations in Synapse once uploaded: got %v, want assay=rnaSeq, reps=[1 2]", a)
	}
	if got, err := xGetxattr(t, p, "user.synapse.id"); err != nil || got != id {
		t.Errorf("user.synapse.id after upload: got %q, %v; want %q", got, err, id)
	}
}
