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

// A file is held open by a reader while one version uploads, and a second
// writer appends a new one. The mount must then read the new version, not
// the first: the file node keeps its staged inode while handles are open,
// so the second upload still reaches it.
func TestReaderHeldAcrossVersionsReadsNewVersion(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := filepath.Join(e.data, "two.txt")
	sh := startShell(t, `echo A1 > "$1"; exec 4<"$1"; echo ready; read x; exec 4<&-; echo closed; read x`, p)
	sh.expect("ready")
	versions := func(want ...string) func() bool {
		return func() bool {
			for _, c := range e.em.Children(e.folder) {
				if c.Name != "two.txt" || len(c.Versions) != len(want) {
					continue
				}
				for i, w := range want {
					if c.Versions[i].MD5 != md5hex([]byte(w)) {
						return false
					}
				}
				return true
			}
			return false
		}
	}
	waitFor(t, time.Minute, "the first version to upload", versions("A1\n"))
	run(t, "bash", "-c", `echo A2 >> "$1"`, "bash", p)
	waitFor(t, time.Minute, "the second version to upload", versions("A1\n", "A1\nA2\n"))
	sh.next()
	sh.expect("closed")
	e.drain(time.Minute)
	want := []byte("A1\nA2\n")
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

// While a descriptor has a file open for writing, it is "open" (never
// "empty", though a shell's redirect closes a dup of it at once), nothing
// is uploaded, and a second writer's close does not upload a snapshot.
// The last close uploads one version.
func TestNoUploadWhileOpenForWriting(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := filepath.Join(e.data, "log.txt")
	sh := startShell(t, `exec 3>"$1"; echo ready; read x; echo A1 >&3; echo B1 >> "$1"; echo wrote; read x; echo A2 >&3; exec 3>&-; echo closed; read x`, p)
	barrier := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.fl.Flush(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []string{"ready", "wrote"} {
		sh.expect(step)
		barrier()
		status, _ := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
		if !strings.Contains(string(status), "open       /Demo Project/Data/log.txt") {
			t.Fatalf("after %s: status does not say the file is open:\n%s", step, status)
		}
		if n := len(e.em.Children(e.folder)); n != 0 {
			t.Fatalf("after %s: %d entities uploaded while the file is open for writing", step, n)
		}
		sh.next()
	}
	sh.expect("closed")
	e.drain(time.Minute)
	want := "A1\nA2\n" // descriptor 3 writes A2 at its own offset, over B1
	ent := e.remoteFile(e.folder, "log.txt")
	if len(ent.Versions) != 1 || ent.Versions[0].MD5 != md5hex([]byte(want)) {
		t.Fatalf("got versions %+v, want one of %q", ent.Versions, want)
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
	// What was staged is a prefix of the source, cut at the lowest offset
	// whose WRITE failed (cache.File.cutLocked). The kernel has several
	// WRITEs in flight and they are served concurrently, so later ones may
	// take the space first and the prefix may be empty.
	if st.Size < 0 || st.Size > 8<<20 {
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
