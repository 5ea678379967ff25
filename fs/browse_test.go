package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
)

// output runs a command (a child process) and returns its stdout.
func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// remount unmounts and mounts again on the same cache directory, with
// fresh in-memory state: what survives is what the cache keeps on disk.
func (e *env) remount(o envOptions) {
	e.t.Helper()
	e.unmount(devOf(e.mnt))
	e.mount(o)
}

// uploadBehind creates files in folder straight through the REST API, as
// another client would, so that the mount has never seen them.
func (e *env) uploadBehind(folder string, files map[string][]byte) {
	e.t.Helper()
	c := e.newClient(demoToken)
	for name, b := range files {
		if _, err := c.Upload(context.Background(), &remote.UploadRequest{ParentID: folder, Name: name, Size: int64(len(b)),
			MD5: md5hex(b), Source: bytes.NewReader(b)}); err != nil {
			e.t.Fatalf("upload %s: %v", name, err)
		}
	}
}

// lsSizes runs ls -l on dir and returns the size it shows per name.
func lsSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, line := range strings.Split(output(t, "ls", "-l", dir), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		n, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			t.Fatalf("ls -l line %q: %v", line, err)
		}
		out[f[len(f)-1]] = n
	}
	return out
}

const (
	routeChildren = "POST /repo/v1/entity/children"
	routeBundle   = "POST /repo/v1/entity/{id}/bundle2"
)

// TestListingRESTCalls pins what `ls -l` costs in REST calls: cold, one
// bundle2 per file plus the listing pages; again at once, nothing; after a
// remount, only the listing pages, because sizes are kept per version.
func TestListingRESTCalls(t *testing.T) {
	const n = 120 // three pages of 50
	// Listings stay fresh for the whole test, however slow the machine:
	// "warm" means within the TTL.
	o := envOptions{metaTTL: time.Minute}
	e := newEnv(t, o)
	if err := xMkdir(t, filepath.Join(e.data, "many")); err != nil {
		t.Fatal(err)
	}
	folder := e.remoteFile(e.folder, "many").ID
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("f%03d.txt", i)] = bytes.Repeat([]byte{'x'}, i+1)
	}
	e.uploadBehind(folder, files)
	e.remount(o) // forget the empty listing of "many"

	check := func(what string, wantBundles, maxPages int) {
		t.Helper()
		before := e.em.RequestCounts()
		got := lsSizes(t, filepath.Join(e.data, "many"))
		calls := e.em.RequestCounts().Sub(before)
		for name, b := range files {
			if got[name] != int64(len(b)) {
				t.Fatalf("%s: ls -l shows %s with size %d, want %d", what, name, got[name], len(b))
			}
		}
		if calls[routeBundle] != wantBundles || calls[routeChildren] > maxPages || calls.Total() != calls[routeBundle]+calls[routeChildren] {
			t.Fatalf("%s: ls -l of %d files made REST calls %v; want %d bundle2, at most %d listing pages, nothing else",
				what, n, calls, wantBundles, maxPages)
		}
		t.Logf("%s: %d REST calls for %d files (%v)", what, calls.Total(), n, calls)
	}
	// Cold: the root, the project, Data and "many" (3 pages) may be listed.
	check("cold", n, 6)
	check("warm", 0, 0)
	e.remount(o)
	check("after a remount", 0, 6)
}

// TestAttrsSurviveUploadAndRemount checks that the mtime and mode a file
// was given (cp -p, rsync -a, chmod) are what stat shows after the upload
// and after a remount, and that a second rsync -a then changes nothing.
func TestAttrsSurviveUploadAndRemount(t *testing.T) {
	e := newEnv(t, envOptions{})
	src := filepath.Join(t.TempDir(), "tree")
	files := map[string][]byte{}
	for i := range 30 {
		files[fmt.Sprintf("d%d/f%02d.dat", i%3, i)] = pattern(100+i*37, byte(i))
	}
	writeSource(t, src, files)
	old := time.Date(2019, 3, 4, 5, 6, 7, 0, time.UTC)
	for rel := range files {
		p := filepath.Join(src, rel)
		if err := os.Chtimes(p, old, old.Add(time.Duration(len(rel))*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "d0/f00.dat"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.within(2*time.Minute, "rsync", func() { run(t, "rsync", "-a", src+"/", e.data+"/tree/") })
	e.drain(2 * time.Minute)
	checkStat := func(what string) {
		t.Helper()
		// One stat process for all files: a child process per file costs
		// a second each under the race detector.
		args := []string{"-c", "%s %.9Y %a %n"}
		for rel := range files {
			args = append(args, filepath.Join(e.data, "tree", rel))
		}
		for _, line := range strings.Split(strings.TrimSpace(output(t, "stat", args...)), "\n") {
			f := strings.SplitN(line, " ", 4)
			if len(f) != 4 {
				t.Fatalf("stat line %q", line)
			}
			size, _ := strconv.ParseInt(f[0], 10, 64)
			mtime, mode, name := f[1], f[2], f[3]
			rel, _ := filepath.Rel(filepath.Join(e.data, "tree"), name)
			want, err := os.Stat(filepath.Join(src, rel))
			if err != nil {
				t.Fatal(err)
			}
			wantMtime := fmt.Sprintf("%d.%09d", want.ModTime().Unix(), want.ModTime().Nanosecond())
			wantMode := strconv.FormatUint(uint64(want.Mode().Perm()), 8)
			if mtime != wantMtime || size != want.Size() || mode != wantMode {
				t.Fatalf("%s: %s has mtime %s, size %d, mode %s; want %s, %d, %s", what, rel, mtime, size, mode, wantMtime, want.Size(), wantMode)
			}
		}
	}
	checkStat("after the upload")
	e.remount(envOptions{})
	checkStat("after a remount")

	stats := e.em.Stats()
	var changed []string
	e.within(2*time.Minute, "second rsync", func() {
		for _, line := range strings.Split(output(t, "rsync", "-a", "--itemize-changes", src+"/", e.data+"/tree/"), "\n") {
			// Directories' own times are not kept (see docs/semantics.md).
			if line != "" && !strings.HasPrefix(line, ".d") {
				changed = append(changed, line)
			}
		}
	})
	if len(changed) > 0 {
		t.Fatalf("a second rsync -a after a remount changed files:\n%s", strings.Join(changed, "\n"))
	}
	e.drain(time.Minute)
	if after := e.em.Stats(); after.UploadsStarted != stats.UploadsStarted || after.EntityCreates["file"] != stats.EntityCreates["file"] {
		t.Fatalf("the second rsync uploaded: %d uploads and %d files created before, %d and %d after",
			stats.UploadsStarted, stats.EntityCreates["file"], after.UploadsStarted, after.EntityCreates["file"])
	}
}

// TestNameTooLong checks that every operation that takes a name fails with
// ENAMETOOLONG for a name over Synapse's 256 characters, and that statfs
// reports that limit.
func TestNameTooLong(t *testing.T) {
	e := newEnv(t, envOptions{})
	long := strings.Repeat("n", remote.MaxNameLen+1)
	ok256 := strings.Repeat("k", remote.MaxNameLen)
	p := func(name string) string { return filepath.Join(e.data, name) }
	if err := xWriteFile(t, p("ok.txt"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := xMkdir(t, p("okdir")); err != nil {
		t.Fatal(err)
	}
	ops := [][3]string{
		{"stat", p(long), ""},
		{"create", p(long), ""},
		{"mkdir", p(long), ""},
		{"rename", p("ok.txt"), p(long)},
		{"rename", p(long), p("other.txt")},
		{"unlink", p(long), ""},
		{"rmdir", p(long), ""},
		{"rename", p("okdir"), p(long)},
	}
	for i, got := range xBatch(t, ops) {
		if got != syscall.ENAMETOOLONG {
			t.Errorf("%s %s: got errno %v, want ENAMETOOLONG", ops[i][0], ops[i][1][len(e.data):], got)
		}
	}
	// 256 characters are fine.
	if got := xBatch(t, [][3]string{{"create", p(ok256), ""}}); got[0] != 0 {
		t.Errorf("create of a 256-character name: got errno %v, want success", got[0])
	}
	if got := strings.TrimSpace(output(t, "stat", "-f", "-c", "%l", e.data)); got != "256" {
		t.Errorf("statfs name length: got %s, want 256", got)
	}
}

// await polls cond until it holds, failing after d.
func await(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestChangesElsewhereShowAfterTTL checks that files added, overwritten
// and removed behind synfs's back (another client) show through the mount
// once the listing's TTL (1 s in tests) has passed, in readdir, lookup and
// stat, while a walk within the TTL lists the folder once.
func TestChangesElsewhereShowAfterTTL(t *testing.T) {
	e := newEnv(t, envOptions{})
	ls := func() string { return output(t, "ls", "-l", e.data) }
	if strings.Contains(ls(), "behind.txt") {
		t.Fatal("behind.txt listed before it exists")
	}
	start := time.Now()
	e.uploadBehind(e.folder, map[string][]byte{"behind.txt": []byte("one")})
	await(t, 5*time.Second, "a file added elsewhere shows in ls -l", func() bool { return strings.Contains(ls(), "behind.txt") })
	t.Logf("added file shown after %v", time.Since(start).Round(time.Millisecond))
	p := filepath.Join(e.data, "behind.txt")
	size := func() int64 {
		f, err := strconv.ParseInt(strings.TrimSpace(output(t, "stat", "-c", "%s", p)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if got := size(); got != 3 {
		t.Fatalf("size: got %d, want 3", got)
	}
	e.uploadBehind(e.folder, map[string][]byte{"behind.txt": []byte("a longer second version")})
	await(t, 5*time.Second, "a new version made elsewhere shows its size", func() bool { return size() == 23 })
	if got := string(output(t, "cat", p)); got != "a longer second version" {
		t.Fatalf("content: got %q, want the second version", got)
	}
	id := e.remoteFile(e.folder, "behind.txt").ID
	if err := e.newClient(demoToken).Delete(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	await(t, 5*time.Second, "a file removed elsewhere goes", func() bool {
		err := exec.Command("stat", p).Run()
		return err != nil && !strings.Contains(ls(), "behind.txt")
	})
}

// TestTarCompareAfterRemount extracts a tarball into the mount, waits for
// the uploads, remounts, and has tar --compare check sizes, contents,
// mtimes and modes of every file against the archive.
func TestTarCompareAfterRemount(t *testing.T) {
	e := newEnv(t, envOptions{})
	src := filepath.Join(t.TempDir(), "ball")
	files := map[string][]byte{"a.txt": []byte("alpha\n"), "sub/b.bin": pattern(70000, 4), "sub/c.csv": []byte("1,2\n")}
	writeSource(t, src, files)
	old := time.Date(2018, 7, 8, 9, 10, 11, 0, time.UTC)
	for rel := range files {
		if err := os.Chtimes(filepath.Join(src, rel), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "sub/c.csv"), 0o640); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "ball.tar")
	run(t, "tar", "-C", filepath.Dir(src), "-cf", tarball, "ball")
	e.within(2*time.Minute, "tar -x", func() { run(t, "tar", "-C", e.data, "-xf", tarball) })
	e.drain(time.Minute)
	e.remount(envOptions{})
	var out string
	var err error
	e.within(2*time.Minute, "tar --compare", func() {
		var b []byte
		b, err = exec.Command("tar", "-C", e.data, "--compare", "-f", tarball).CombinedOutput()
		out = string(b)
	})
	if err != nil && strings.TrimSpace(out) == "" {
		t.Fatalf("tar --compare: %v", err)
	}
	var diffs []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		// Directories' own times are not kept (docs/semantics.md).
		if l != "" && !strings.Contains(l, "ball: Mod time differs") && !strings.Contains(l, "ball/sub: Mod time differs") {
			diffs = append(diffs, l)
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("tar --compare after a remount:\n%s", strings.Join(diffs, "\n"))
	}
}

// TestAttrsSetDuringUpload sets an mtime and a mode while the file's
// upload is under way (its completion slowed down): the version the upload
// creates shows them, although the upload read the file's record before.
func TestAttrsSetDuringUpload(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.em.AddFault(emulator.Fault{Route: "PUT /file/v1/file/multipart/{uploadId}/complete", Latency: 8 * time.Second})
	p := filepath.Join(e.data, "late.txt")
	if err := xWriteFile(t, p, []byte("bytes")); err != nil {
		t.Fatal(err)
	}
	await(t, 10*time.Second, "the upload starts", func() bool { return e.em.Stats().UploadsStarted == 1 })
	mt := time.Date(2017, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := xChtimes(t, p, mt); err != nil {
		t.Fatal(err)
	}
	if err := xChmod(t, p); err != nil { // 0600
		t.Fatal(err)
	}
	if e.em.Stats().UploadsCompleted != 0 {
		t.Fatal("the upload ended before the attributes were set; the test proves nothing")
	}
	e.drain(time.Minute)
	e.remount(envOptions{})
	got := strings.Fields(output(t, "stat", "-c", "%Y %a", filepath.Join(e.data, "late.txt")))
	if len(got) != 2 || got[0] != strconv.FormatInt(mt.Unix(), 10) || got[1] != "600" {
		t.Fatalf("after the upload and a remount: mtime and mode %v, want %d and 600", got, mt.Unix())
	}
}

// TestOtherEntityTypesHidden puts a Link entity in a folder: readdir leaves
// it out, a lookup of its name is ENOENT, and creating a file of that name
// fails at once with EEXIST instead of at upload.
func TestOtherEntityTypesHidden(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := fmt.Sprintf(`{"concreteType":"org.sagebionetworks.repo.model.Link","name":"shortcut","parentId":%q,"linksTo":{"targetId":%q}}`, e.folder, e.project)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/repo/v1/entity", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+demoToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating a Link: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := xWriteFile(t, filepath.Join(e.data, "visible.txt"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	names, err := xReadDir(t, e.data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(names, "/"), "shortcut") || !strings.Contains(strings.Join(names, "/"), "visible.txt") {
		t.Fatalf("readdir: got %v, want visible.txt and no shortcut", names)
	}
	p := filepath.Join(e.data, "shortcut")
	got := xBatch(t, [][3]string{{"stat", p, ""}, {"create", p, ""}})
	if got[0] != syscall.ENOENT || got[1] != syscall.EEXIST {
		t.Fatalf("stat, create of a Link's name: got %v, %v; want ENOENT, EEXIST", got[0], got[1])
	}
}
