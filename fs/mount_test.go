package fs_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
)

// run runs a command and fails the test with its output when it fails.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func writeSource(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for rel, b := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCopySizes(t *testing.T) {
	e := newEnv(t, envOptions{})
	ps := int(remote.DefaultPartSize)
	sizes := map[string]int{
		"one-byte":        1,
		"under-part.bin":  ps - 1,
		"at-part.bin":     ps,
		"over-part.bin":   ps + 1,
		"hundred-MiB.bin": 100 << 20,
	}
	src := t.TempDir()
	want := map[string][]byte{}
	i := byte(1)
	for name, n := range sizes {
		want[name] = pattern(n, i)
		i++
	}
	writeSource(t, src, want)
	e.within(2*time.Minute, "cp", func() {
		for name := range want {
			run(t, "cp", filepath.Join(src, name), e.data+"/")
		}
	})
	// Staged files show at once with their local size, and read back.
	for name, b := range want {
		st, err := xStat(t, filepath.Join(e.data, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size != int64(len(b)) {
			t.Errorf("%s: got size %d, want %d", name, st.Size, len(b))
		}
	}
	e.drain(2 * time.Minute)
	for name, b := range want {
		ent := e.remoteFile(e.folder, name)
		v := ent.Versions[len(ent.Versions)-1]
		if v.MD5 != md5hex(b) || v.Size != int64(len(b)) {
			t.Errorf("%s: got md5 %s size %d in Synapse, want %s %d", name, v.MD5, v.Size, md5hex(b), len(b))
		}
		if len(ent.Versions) != 1 {
			t.Errorf("%s: got %d versions, want 1", name, len(ent.Versions))
		}
		if got := fileMD5(t, filepath.Join(e.data, name)); got != md5hex(b) {
			t.Errorf("%s: read back md5 %s after upload, want %s", name, got, md5hex(b))
		}
	}
	if got := e.em.Stats().EntityCreates["file"]; got != len(want) {
		t.Errorf("got %d file creates, want %d", got, len(want))
	}
}

func TestCopyTree(t *testing.T) {
	e := newEnv(t, envOptions{})
	src := filepath.Join(t.TempDir(), "batch-07")
	files := map[string][]byte{}
	n := 0
	for a := 0; a < 5; a++ {
		for b := 0; b < 4; b++ {
			for c := 0; c < 25; c++ {
				rel := filepath.Join("level"+string(rune('1'+a)), "sample-"+string(rune('a'+b)), "reads-"+itoa(c)+".txt")
				files[rel] = []byte(rel + strings.Repeat("x", n%7))
				n++
			}
		}
	}
	writeSource(t, src, files)
	e.within(3*time.Minute, "cp -r", func() { run(t, "cp", "-r", src, e.data+"/") })
	e.drain(3 * time.Minute)
	checkTree(t, e, e.folder, "batch-07", files)
}

func itoa(i int) string {
	return strings.TrimLeft(string([]byte{byte('0' + i/100), byte('0' + i/10%10), byte('0' + i%10)}), "")
}

// checkTree asserts that every file of files is in Synapse under folder
// root (below parent) exactly once, with the right MD5, and nothing else.
func checkTree(t *testing.T, e *env, parent, root string, files map[string][]byte) {
	t.Helper()
	top := e.remoteFile(parent, root)
	got := map[string]emulator.EntityInfo{}
	var walk func(id, prefix string)
	walk = func(id, prefix string) {
		seen := map[string]bool{}
		for _, c := range e.em.Children(id) {
			if seen[c.Name] {
				t.Errorf("duplicate name %s/%s", prefix, c.Name)
			}
			seen[c.Name] = true
			p := filepath.Join(prefix, c.Name)
			if c.Kind == "folder" {
				walk(c.ID, p)
			} else {
				got[p] = c
			}
		}
	}
	walk(top.ID, "")
	for rel, b := range files {
		c, ok := got[rel]
		if !ok {
			t.Errorf("%s: missing in Synapse", rel)
			continue
		}
		if v := c.Versions[len(c.Versions)-1]; v.MD5 != md5hex(b) || len(c.Versions) != 1 {
			t.Errorf("%s: got md5 %s with %d versions, want %s with 1", rel, v.MD5, len(c.Versions), md5hex(b))
		}
		delete(got, rel)
	}
	for rel := range got {
		t.Errorf("unexpected entity %s in Synapse", rel)
	}
}

func TestRsyncAndTar(t *testing.T) {
	e := newEnv(t, envOptions{})
	src := filepath.Join(t.TempDir(), "run1")
	files := map[string][]byte{
		"a.txt":          []byte("alpha"),
		"sub/b.txt":      pattern(3<<20, 9),
		"sub/deep/c.csv": []byte("1,2,3\n"),
	}
	writeSource(t, src, files)
	e.within(2*time.Minute, "rsync", func() { run(t, "rsync", "-a", src, e.data+"/") })
	tarball := filepath.Join(t.TempDir(), "run2.tar")
	run(t, "tar", "-C", filepath.Dir(src), "-cf", tarball, "--transform", "s/^run1/run2/", "run1")
	e.within(2*time.Minute, "tar -x", func() { run(t, "tar", "-C", e.data, "-xf", tarball) })
	e.drain(2 * time.Minute)
	checkTree(t, e, e.folder, "run1", files) // no rsync temp names left behind
	checkTree(t, e, e.folder, "run2", files)
}

func TestOverwriteMakesNewVersion(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := filepath.Join(e.data, "counts.tsv")
	if err := xWriteFile(t, p, []byte("v1\n")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	first := e.remoteFile(e.folder, "counts.tsv")
	if err := xWriteFile(t, p, []byte("version two\n")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	second := e.remoteFile(e.folder, "counts.tsv")
	if second.ID != first.ID {
		t.Fatalf("got entity %s after overwrite, want the same %s", second.ID, first.ID)
	}
	if len(second.Versions) != 2 || second.Versions[1].MD5 != md5hex([]byte("version two\n")) {
		t.Fatalf("got versions %+v, want 2 with the new MD5 last", second.Versions)
	}
	b, err := xReadFile(t, p)
	if err != nil || string(b) != "version two\n" {
		t.Fatalf("read back %q, %v", b, err)
	}
}

func TestRenameAndDeleteBeforeUpload(t *testing.T) {
	e := newEnv(t, envOptions{delay: time.Hour})
	tmp := filepath.Join(e.data, ".part.tmp")
	if err := xWriteFile(t, tmp, []byte("final bytes")); err != nil {
		t.Fatal(err)
	}
	if err := xRename(t, tmp, filepath.Join(e.data, "final.txt")); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(e.data, "gone.txt")
	if err := xWriteFile(t, gone, []byte("never uploaded")); err != nil {
		t.Fatal(err)
	}
	if err := xRemove(t, gone); err != nil {
		t.Fatal(err)
	}
	if _, err := xStat(t, gone); !os.IsNotExist(err) {
		t.Fatalf("got %v after unlink, want not-exist", err)
	}
	e.drain(time.Minute)
	ent := e.remoteFile(e.folder, "final.txt")
	if ent.Versions[0].MD5 != md5hex([]byte("final bytes")) {
		t.Errorf("final.txt: got md5 %s", ent.Versions[0].MD5)
	}
	for _, c := range e.em.Children(e.folder) {
		if c.Name == ".part.tmp" || c.Name == "gone.txt" {
			t.Errorf("entity %q should never have been created", c.Name)
		}
	}
	if got := e.em.Stats().UploadsStarted; got != 1 {
		t.Errorf("got %d uploads started, want 1", got)
	}
}

func TestStagedFileVisibleBeforeUpload(t *testing.T) {
	e := newEnv(t, envOptions{delay: time.Hour})
	b := pattern(3<<20+17, 3)
	p := filepath.Join(e.data, "staged.bin")
	if err := put(t, p, b); err != nil {
		t.Fatal(err)
	}
	ents, err := xReadDir(t, e.data)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range ents {
		found = found || d == "staged.bin"
	}
	if !found {
		t.Fatal("staged file missing from the listing")
	}
	got, err := get(t, p)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("read back %d bytes (err %v), want the %d written", len(got), err, len(b))
	}
	if n := len(e.em.Children(e.folder)); n != 0 {
		t.Fatalf("got %d entities before the write-back delay, want 0", n)
	}
	status, err := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	if err != nil || !strings.Contains(string(status), "staged.bin") {
		t.Fatalf("status file: %v\n%s", err, status)
	}
}

func TestBadNamesEINVAL(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, name := range []string{"semi;colon.txt", "hash#.txt", "ünïcode.txt", "tab\tname", "a&b", " lead"} {
		err := xCreate(t, filepath.Join(e.data, name))
		if got := errnoOf(err); got != syscall.EINVAL {
			t.Errorf("create %q: got %v, want EINVAL", name, err)
		}
		if err := xMkdir(t, filepath.Join(e.data, name+"dir")); errnoOf(err) != syscall.EINVAL {
			t.Errorf("mkdir %q: got %v, want EINVAL", name, err)
		}
	}
	ok := filepath.Join(e.data, "ok.txt")
	if err := xWriteFile(t, ok, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := xRename(t, ok, filepath.Join(e.data, "bad:name.txt")); errnoOf(err) != syscall.EINVAL {
		t.Errorf("rename to bad name: got %v, want EINVAL", err)
	}
	e.drain(time.Minute)
	if c := e.em.Children(e.folder); len(c) != 1 || c[0].Name != "ok.txt" {
		t.Errorf("got %+v in Synapse, want only ok.txt", c)
	}
}

func TestUncertifiedEACCES(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.em.AddUser("newbie", "newbie-token", false)
	if err := e.em.Grant(e.project, "newbie", "READ", "DOWNLOAD", "CREATE", "UPDATE", "DELETE"); err != nil {
		t.Fatal(err)
	}
	e2 := &env{t: t, em: e.em, srv: e.srv, project: e.project, folder: e.folder, cacheDir: t.TempDir()}
	e2.mount(envOptions{user: "newbie-token"})
	err := xCreate(t, filepath.Join(e2.data, "x.txt"))
	if errnoOf(err) != syscall.EACCES {
		t.Errorf("create as uncertified: got %v, want EACCES", err)
	}
	if err := xMkdir(t, filepath.Join(e2.data, "d")); errnoOf(err) != syscall.EACCES {
		t.Errorf("mkdir as uncertified: got %v, want EACCES", err)
	}
	if n := len(e.em.Children(e.folder)); n != 0 {
		t.Errorf("got %d entities, want 0", n)
	}
}

func TestNoPermissionEACCES(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.em.AddUser("reader", "reader-token", true)
	if err := e.em.Grant(e.project, "reader", "READ", "DOWNLOAD"); err != nil {
		t.Fatal(err)
	}
	e2 := &env{t: t, em: e.em, srv: e.srv, project: e.project, folder: e.folder, cacheDir: t.TempDir()}
	e2.mount(envOptions{user: "reader-token"})
	if err := xCreate(t, filepath.Join(e2.data, "x.txt")); errnoOf(err) != syscall.EACCES {
		t.Errorf("create without CREATE: got %v, want EACCES", err)
	}
	if err := xMkdir(t, filepath.Join(e2.data, "d")); errnoOf(err) != syscall.EACCES {
		t.Errorf("mkdir without CREATE: got %v, want EACCES", err)
	}
}

func TestEmptyFileKeptLocal(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := filepath.Join(e.data, "empty.txt")
	if err := xWriteFile(t, p, nil); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	if n := len(e.em.Children(e.folder)); n != 0 {
		t.Fatalf("got %d entities, want 0: Synapse refuses empty files", n)
	}
	st, err := xStat(t, p)
	if err != nil || st.Size != 0 {
		t.Fatalf("empty file: %v, %v", st, err)
	}
	status, _ := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	if !strings.Contains(string(status), "empty.txt") || !strings.Contains(string(status), "empty") {
		t.Fatalf("status does not explain the empty file:\n%s", status)
	}
	// Writing data into it later uploads it.
	if err := xWriteFile(t, p, []byte("now with data")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	e.remoteFile(e.folder, "empty.txt")
}

func TestCacheFullENOSPC(t *testing.T) {
	e := newEnv(t, envOptions{maxSize: 8 << 20, spaceWait: 3 * time.Second})
	// Synapse is down for part uploads: nothing drains, so the cache fills.
	remove := e.em.AddFault(emulator.Fault{Route: "PUT /s3/", Status: 503})
	b := pattern(12<<20, 4)
	err := put(t, filepath.Join(e.data, "big.bin"), b)
	if err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Fatalf("write past a full cache: got %v, want ENOSPC", err)
	}
	remove()
	// What cp managed to stage of big.bin is held, never uploaded, until
	// it is removed (TestFailedCopyIsNotUploaded); removing it frees the
	// cache.
	if err := xRemove(t, filepath.Join(e.data, "big.bin")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	// With Synapse back, files that together exceed the cache go through:
	// writers wait for the flusher to free space.
	for i := 0; i < 3; i++ {
		if err := put(t, filepath.Join(e.data, "part"+itoa(i)+".bin"), pattern(5<<20, byte(i))); err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
	}
	e.drain(time.Minute)
	for i := 0; i < 3; i++ {
		e.remoteFile(e.folder, "part"+itoa(i)+".bin")
	}
	if n := len(e.em.Children(e.folder)); n != 3 {
		t.Fatalf("got %d entities, want the 3 parts only", n)
	}
}

func TestFaultsEverythingArrivesOnce(t *testing.T) {
	e := newEnv(t, envOptions{emuOptions: emulator.Options{Throttle: true}})
	e.em.AddFault(emulator.Fault{Route: "PUT /s3/", Status: 503, Prob: 0.2})
	e.em.AddFault(emulator.Fault{Route: "POST /repo/v1/entity", Status: 429, Prob: 0.2})
	e.em.AddFault(emulator.Fault{Route: "POST /repo/v1/entity", DropAfterHandling: true, FirstN: 3})
	e.em.AddFault(emulator.Fault{Route: "PUT /file/v1/file/multipart/", DropAfterHandling: true, FirstN: 3})
	src := filepath.Join(t.TempDir(), "flaky")
	files := map[string][]byte{}
	for i := 0; i < 30; i++ {
		n := 1000 + i
		if i%10 == 0 {
			n = 9 << 20
		}
		files["f"+itoa(i)+".bin"] = pattern(n, byte(i))
	}
	writeSource(t, src, files)
	e.within(3*time.Minute, "cp -r", func() { run(t, "cp", "-r", src, e.data+"/") })
	e.drain(3 * time.Minute)
	checkTree(t, e, e.folder, "flaky", files)
	if st := e.em.Stats(); st.FaultsInjected < 5 {
		t.Errorf("got %d faults injected, want several: the test proves nothing", st.FaultsInjected)
	}
}

func TestRenameDuringUpload(t *testing.T) {
	e := newEnv(t, envOptions{})
	remove := e.em.AddFault(emulator.Fault{Route: "PUT /s3/", Latency: 300 * time.Millisecond})
	b := pattern(20<<20, 11)
	src := filepath.Join(e.data, "upload.tmp")
	if err := put(t, src, b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the upload to start", func() bool { return e.em.Stats().PartsPut > 0 })
	e.within(time.Minute, "rename", func() {
		if err := xRename(t, src, filepath.Join(e.data, "final.bin")); err != nil {
			t.Error(err)
		}
	})
	remove()
	e.drain(time.Minute)
	kids := e.em.Children(e.folder)
	if len(kids) != 1 || kids[0].Name != "final.bin" || len(kids[0].Versions) != 1 || kids[0].Versions[0].MD5 != md5hex(b) {
		t.Fatalf("got %+v, want only final.bin with one version", kids)
	}
}

func TestTruncateAndMtime(t *testing.T) {
	e := newEnv(t, envOptions{delay: time.Hour})
	p := filepath.Join(e.data, "t.txt")
	if err := xWriteFile(t, p, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := xTruncate(t, p, 4); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := xChtimes(t, p, mt); err != nil {
		t.Fatal(err)
	}
	if err := xChmod(t, p); err != nil {
		t.Fatalf("chmod must succeed (and change nothing): %v", err)
	}
	st, err := xStat(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != 4 || !st.Mtime.Equal(mt) {
		t.Fatalf("got size %d mtime %v, want 4 and %v", st.Size, st.Mtime, mt)
	}
	e.drain(time.Minute)
	if got := e.remoteFile(e.folder, "t.txt").Versions[0].MD5; got != md5hex([]byte("0123")) {
		t.Fatalf("got md5 %s in Synapse, want that of %q", got, "0123")
	}
}

func TestMkdirAndRmdir(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := filepath.Join(e.data, "assay", "level1")
	if err := xMkdirAll(t, d); err != nil {
		t.Fatal(err)
	}
	assay := e.remoteFile(e.folder, "assay")
	if assay.Kind != "folder" {
		t.Fatalf("got kind %q, want folder", assay.Kind)
	}
	if err := xMkdir(t, d); errnoOf(err) != syscall.EEXIST {
		t.Errorf("mkdir of an existing folder: got %v, want EEXIST", err)
	}
	if err := xRemove(t, filepath.Join(e.data, "assay")); errnoOf(err) != syscall.ENOTEMPTY {
		t.Errorf("rmdir of a non-empty folder: got %v, want ENOTEMPTY", err)
	}
	level1 := e.remoteFile(assay.ID, "level1")
	if err := xRemove(t, d); err != nil {
		t.Fatal(err)
	}
	if ent, ok := e.em.Entity(level1.ID); !ok || !ent.Trashed {
		t.Errorf("rmdir: got %+v, want the folder in the trash", ent)
	}
}

func TestLinksEPERM(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := xSymlink(t, "target", filepath.Join(e.data, "link")); errnoOf(err) != syscall.EPERM {
		t.Errorf("symlink: got %v, want EPERM", err)
	}
	p := filepath.Join(e.data, "a.txt")
	if err := xWriteFile(t, p, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := xLink(t, p, filepath.Join(e.data, "b.txt")); errnoOf(err) != syscall.EPERM {
		t.Errorf("link: got %v, want EPERM", err)
	}
}
