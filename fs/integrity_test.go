package fs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// Regression tests for four ways data went wrong: a stale read after a
// second writer, a full cache disk killing the daemon, a failed copy
// uploaded truncated, and a cache directory deleted under the mount.

// shell is a bash process driven line by line: the test says when each
// step runs, so that one descriptor stays open across steps.
type shell struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startShell(t *testing.T, script string, args ...string) *shell {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"-c", script, "bash"}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	return &shell{t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
}

// expect waits for the shell to print want on a line of its own.
func (s *shell) expect(want string) {
	s.t.Helper()
	got := make(chan string, 1)
	go func() {
		line, _ := s.out.ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case line := <-got:
		if line != want {
			s.t.Fatalf("shell printed %q, want %q", line, want)
		}
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		s.t.Fatalf("shell did not print %q within a minute", want)
	}
}

func (s *shell) next() { io.WriteString(s.in, "go\n") }

// A file open for writing on one descriptor; a second writer appends and
// closes, and that version uploads; the first descriptor writes again and
// closes. The mount must then read the second version, not the first.
func TestSecondWriterThenFirstAgainReadsNewVersion(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := filepath.Join(e.data, "two.txt")
	sh := startShell(t, `exec 3>"$1"; echo A1 >&3; echo ready; read x; echo A2 >&3; exec 3>&-; echo closed; read x`, p)
	sh.expect("ready")
	run(t, "bash", "-c", `echo B1 >> "$1"`, "bash", p)
	// The first version (A1 B1) reaches Synapse while descriptor 3 is open.
	waitFor(t, time.Minute, "the first version to upload", func() bool {
		for _, c := range e.em.Children(e.folder) {
			if c.Name == "two.txt" && len(c.Versions) == 1 && c.Versions[0].MD5 == md5hex([]byte("A1\nB1\n")) {
				return true
			}
		}
		return false
	})
	sh.next()
	sh.expect("closed")
	e.drain(time.Minute)
	want := []byte("A1\nA2\n")
	ent := e.remoteFile(e.folder, "two.txt")
	if n := len(ent.Versions); n != 2 || ent.Versions[1].MD5 != md5hex(want) {
		t.Fatalf("Synapse has %d versions %+v, want 2 ending with %q", n, ent.Versions, want)
	}
	got, err := get(t, p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read through the mount: %q, %v; want %q", got, err, want)
	}
	// Past the page cache too.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err = exec.CommandContext(ctx, "dd", "if="+p, "iflag=direct", "bs=4096", "status=none").Output()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("O_DIRECT read through the mount: %q, %v; want %q", got, err, want)
	}
}

// A copy that fails with ENOSPC must not be uploaded under the real name,
// and the mount must show only the bytes that were staged.
func TestFailedCopyIsNotUploaded(t *testing.T) {
	e := newEnv(t, envOptions{maxSize: 8 << 20, spaceWait: 500 * time.Millisecond})
	p := filepath.Join(e.data, "c20.bin")
	src := pattern(20<<20, 7)
	err := put(t, p, src)
	if err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Fatalf("cp of 20 MiB into an 8 MiB cache: %v, want ENOSPC", err)
	}
	e.drain(time.Minute)
	for _, c := range e.em.Children(e.folder) {
		if c.Name == "c20.bin" {
			t.Fatalf("the failed copy reached Synapse: %+v", c)
		}
	}
	status, _ := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	if !strings.Contains(string(status), "c20.bin") || !strings.Contains(string(status), "failed") || !strings.Contains(string(status), "incomplete") {
		t.Fatalf("status does not show the failed copy:\n%s", status)
	}
	st, err := xStat(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size <= 0 || st.Size > 8<<20 {
		t.Fatalf("the mount shows %d bytes, want what was staged (at most 8 MiB)", st.Size)
	}
	got, err := get(t, p)
	if err != nil || !bytes.Equal(got, src[:st.Size]) {
		t.Fatalf("read back %d bytes (%v), want the first %d bytes of the source", len(got), err, st.Size)
	}
	// Nothing uploads it later either: not a restart of the queue, not a
	// write-open without truncation.
	e.fl.Start(context.Background())
	e.drain(time.Minute)
	if n := len(e.em.Children(e.folder)); n != 0 {
		t.Fatalf("got %d entities after requeueing, want none", n)
	}
	// Copying it again replaces it, and that copy uploads.
	again := pattern(3<<20, 8)
	if err := put(t, p, again); err != nil {
		t.Fatalf("second cp: %v", err)
	}
	e.drain(time.Minute)
	ent := e.remoteFile(e.folder, "c20.bin")
	if len(ent.Versions) != 1 || ent.Versions[0].MD5 != md5hex(again) {
		t.Fatalf("got %+v, want one version of the second copy", ent.Versions)
	}
}

// Deleting the cache directory under a running mount: close(2) must not
// report success for bytes that cannot survive the process; what was
// staged before still uploads; the status says what happened.
func TestCacheDirDeletedUnderMount(t *testing.T) {
	e := newEnv(t, envOptions{delay: 300 * time.Millisecond})
	if err := put(t, filepath.Join(e.data, "before.txt"), []byte("staged before")); err != nil {
		t.Fatal(err)
	}
	// A program has written a file and not yet closed it.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childOp+"=writehold", childOp+"_A="+filepath.Join(e.data, "open.txt"), childOp+"_B=written")
	in, _ := cmd.StdinPipe()
	outp, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(outp)
	if line, err := out.ReadString('\n'); line != "ready\n" {
		t.Fatalf("writer: %q, %v", line, err)
	}
	if err := os.RemoveAll(e.cacheDir); err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, "go\n")
	var res childResult
	if err := json.NewDecoder(out).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if syscall.Errno(res.Errno) != syscall.EROFS {
		t.Fatalf("close after the cache dir was deleted: errno %d (%s), want EROFS", res.Errno, res.Err)
	}
	err := put(t, filepath.Join(e.data, "after.txt"), []byte("written after"))
	if err == nil || !strings.Contains(err.Error(), "Read-only file system") {
		t.Fatalf("cp after the cache dir was deleted: %v, want EROFS", err)
	}
	e.drain(time.Minute)
	ent := e.remoteFile(e.folder, "before.txt")
	if ent.Versions[0].MD5 != md5hex([]byte("staged before")) {
		t.Fatalf("before.txt: %+v", ent.Versions)
	}
	for _, c := range e.em.Children(e.folder) {
		if c.Name != "before.txt" {
			t.Errorf("%s reached Synapse after the cache was lost", c.Name)
		}
	}
	status, _ := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	if !strings.Contains(string(status), "deleted or replaced") {
		t.Fatalf("status does not say the cache directory is gone:\n%s", status)
	}
}

// A cache on a small disk: the cap follows the disk, a copy larger than
// the disk fails with ENOSPC while the daemon lives, and the cache opens
// again (and drains) even after the disk is filled to the last byte.
func TestFullCacheDiskDaemonLives(t *testing.T) {
	requireFUSE(t)
	if os.Getuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	disk := t.TempDir()
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, "size=200m,mode=0700"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(disk, syscall.MNT_DETACH) })
	em, url, folder := newEmulator(t, emulator.Options{})
	cacheDir := filepath.Join(disk, "cache")
	mnt := t.TempDir()
	data := filepath.Join(mnt, "Demo Project", "Data")

	d := startDaemon(t, url, cacheDir, mnt, "--writeback-delay", "1h", "--space-wait", "500ms")
	small := pattern(5<<20, 1)
	if err := put(t, filepath.Join(data, "small.bin"), small); err != nil {
		t.Fatal(err)
	}
	err := put(t, filepath.Join(data, "big.bin"), pattern(300<<20, 2))
	if err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Fatalf("cp of 300 MiB onto a 200 MiB cache disk: %v, want ENOSPC", err)
	}
	if d.cmd.ProcessState != nil {
		t.Fatalf("synfs exited: %v", d.cmd.ProcessState)
	}
	if st, err := xStat(t, filepath.Join(data, "big.bin")); err != nil || st.Size >= 200<<20 {
		t.Fatalf("big.bin shows %d bytes (%v): more than was staged", st.Size, err)
	}
	if got, err := get(t, filepath.Join(data, "small.bin")); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("small.bin read back wrong: %d bytes, %v", len(got), err)
	}
	d.stop(t)

	// Fill the disk to the last byte, as another program might.
	fill := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(disk, "filler"), "bs=1M")
	fill.Run() // ends with ENOSPC
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err != nil || st.Bavail > 1 {
		t.Fatalf("the disk is not full: %d blocks free, %v", st.Bavail, err)
	}
	d = startDaemon(t, url, cacheDir, mnt)
	waitFor(t, time.Minute, "small.bin to upload from the full disk", func() bool {
		for _, c := range em.Children(folder) {
			if c.Name == "small.bin" && len(c.Versions) == 1 && c.Versions[0].MD5 == md5hex(small) {
				return true
			}
		}
		return false
	})
	for _, c := range em.Children(folder) {
		if c.Name == "big.bin" {
			t.Fatalf("the failed copy reached Synapse: %+v", c)
		}
	}
	if d.cmd.ProcessState != nil {
		t.Fatalf("synfs exited: %v", d.cmd.ProcessState)
	}
	d.stop(t)
}

// After a restart, the status file names staged files by their path, not
// by their folder's Synapse ID, before anything has been looked up.
func TestStatusNamesPathsAfterRestart(t *testing.T) {
	o := envOptions{delay: time.Hour}
	e := newEnv(t, o)
	if err := xMkdir(t, filepath.Join(e.data, "batch-01")); err != nil {
		t.Fatal(err)
	}
	if err := put(t, filepath.Join(e.data, "batch-01", "s1.txt"), []byte("sample")); err != nil {
		t.Fatal(err)
	}
	e.unmount(devOf(e.mnt))
	o.noStart = true // keep it staged: a restart uploads at once
	e.mount(o)
	status, err := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "/Demo Project/Data/batch-01/s1.txt (syn") {
		t.Fatalf("status after a restart does not name the path:\n%s", status)
	}
}
