package fs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
)

// Desktop and editor habits: file managers' trash, junk files that must
// stay local, opening without writing, and honest listings and df.

func barrier(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.fl.Flush(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

// names lists the names of the live entities in folder.
func names(e *env, folder string) []string {
	var out []string
	for _, c := range e.em.Children(folder) {
		out = append(out, c.Name)
	}
	return out
}

func TestGIOSession(t *testing.T) {
	gio, err := exec.LookPath("gio")
	if err != nil {
		t.Skip("no gio (Debian package libglib2.0-bin)")
	}
	e := newEnv(t, envOptions{})
	src := filepath.Join(t.TempDir(), "report.csv")
	if err := os.WriteFile(src, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, gio, "copy", src, e.data+"/")
	run(t, gio, "move", filepath.Join(e.data, "report.csv"), filepath.Join(e.data, "final.csv"))
	run(t, gio, "copy", src, filepath.Join(e.data, "scratch.csv"))
	out, err := exec.Command(gio, "list", e.data).Output()
	if err != nil || !strings.Contains(string(out), "final.csv") || strings.Contains(string(out), "report.csv") {
		t.Fatalf("gio list: %q, %v", out, err)
	}
	out, err = exec.Command(gio, "info", "-a", "access::can-trash", filepath.Join(e.data, "final.csv")).Output()
	if err != nil || !strings.Contains(string(out), "access::can-trash: TRUE") {
		t.Fatalf("gio info: %q, %v", out, err)
	}
	e.drain(time.Minute)
	final := e.remoteFile(e.folder, "final.csv")
	scratch := e.remoteFile(e.folder, "scratch.csv")
	// gio save writes a temporary file and renames it over the original:
	// a new version of the same entity, and no temporary file in Synapse.
	save := exec.Command(gio, "save", filepath.Join(e.data, "final.csv"))
	save.Stdin = strings.NewReader("a,b\n1,2\n3,4\n")
	if out, err := save.CombinedOutput(); err != nil {
		t.Fatalf("gio save: %v %s", err, out)
	}
	e.drain(time.Minute)
	if got := e.remoteFile(e.folder, "final.csv"); got.ID != final.ID || len(got.Versions) != 2 {
		t.Fatalf("after gio save: %s with %d versions, want %s with 2", got.ID, len(got.Versions), final.ID)
	}

	// The file manager's Delete key.
	run(t, gio, "trash", filepath.Join(e.data, "final.csv"))
	if ent, _ := e.em.Entity(final.ID); !ent.Trashed {
		t.Fatalf("final.csv (%s) is not in Synapse's trash after gio trash", final.ID)
	}
	trash := filepath.Join(e.mnt, fmt.Sprintf(".Trash-%d", os.Getuid()))
	if _, err := xStat(t, filepath.Join(trash, "files", "final.csv")); err != nil {
		t.Fatalf("the trash does not list final.csv: %v", err)
	}
	info, err := xReadFile(t, filepath.Join(trash, "info", "final.csv.trashinfo"))
	if err != nil || !strings.Contains(string(info), "Path=Demo%20Project/Data/final.csv") {
		t.Fatalf("trashinfo: %q, %v", info, err)
	}
	// Emptying it is refused: Synapse's trash is emptied on synapse.org.
	if err := xRemove(t, filepath.Join(trash, "files", "final.csv")); errnoOf(err) != syscall.EPERM {
		t.Fatalf("emptying the trash: %v, want EPERM", err)
	}
	run(t, gio, "remove", filepath.Join(e.data, "scratch.csv"))
	if ent, _ := e.em.Entity(scratch.ID); !ent.Trashed {
		t.Fatalf("scratch.csv is not in Synapse's trash after gio remove")
	}
	if got := names(e, e.folder); len(got) != 0 {
		t.Fatalf("left in Synapse: %v, want nothing (no trash dir, no temporary files)", got)
	}
	if got := names(e, e.project); len(got) != 1 {
		t.Fatalf("project holds %v, want only Data", got)
	}
}

func TestEditorSession(t *testing.T) {
	// An editor renames its temporary file within milliseconds; the delay
	// (5 s by default) keeps the upload from starting before the rename.
	e := newEnv(t, envOptions{delay: 3 * time.Second})
	notes := filepath.Join(e.data, "notes.txt")
	if err := put(t, notes, []byte("v1\n")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	v1 := e.remoteFile(e.folder, "notes.txt")
	// A vim-style session: the swap file is written, and the editor is
	// killed, so it stays behind. So do a backup and a lock file.
	junk := map[string]string{".notes.txt.swp": "swap", "notes.txt~": "v1\n", ".~lock.notes.txt#": "lock", ".DS_Store": "x"}
	for name, body := range junk {
		if err := xWriteFile(t, filepath.Join(e.data, name), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	// The save: a temporary file renamed over the original.
	tmp := filepath.Join(e.data, ".notes.txt.tmp4913")
	if err := put(t, tmp, []byte("v2\n")); err != nil {
		t.Fatal(err)
	}
	if err := xRename(t, tmp, notes); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	if got := names(e, e.folder); len(got) != 1 || got[0] != "notes.txt" {
		t.Fatalf("entities in Synapse: %v, want notes.txt only", got)
	}
	if got := e.remoteFile(e.folder, "notes.txt"); got.ID != v1.ID || len(got.Versions) != 2 || got.Versions[1].MD5 != md5hex([]byte("v2\n")) {
		t.Fatalf("notes.txt after the save: %+v", got)
	}
	status, _ := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	for name, body := range junk {
		if !strings.Contains(string(status), "local      /Demo Project/Data/"+name) {
			t.Errorf("status does not list %s as local:\n%s", name, status)
		}
		if got, err := xReadFile(t, filepath.Join(e.data, name)); err != nil || string(got) != body {
			t.Errorf("%s reads %q, %v", name, got, err)
		}
	}
	// A junk name renamed to a real one uploads.
	if err := xRename(t, filepath.Join(e.data, "notes.txt~"), filepath.Join(e.data, "notes-old.txt")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	e.remoteFile(e.folder, "notes-old.txt")
}

func TestOpeningIsNotWriting(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := filepath.Join(e.data, "big.bin")
	b := pattern(3<<20, 9)
	if err := put(t, p, b); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	before := e.em.Stats()
	run(t, "touch", p)
	run(t, "bash", "-c", `exec 3<>"$1"; exec 3>&-`, "bash", p) // open "r+", close
	run(t, "flock", p, "true")
	barrier(t, e)
	recs, err := e.store.Records()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Fatalf("opening without writing staged %d file(s): %+v", len(recs), recs)
	}
	after := e.em.Stats()
	const get = "GET /s3/blob/{handleId}"
	if after.PartsPut != before.PartsPut || after.Requests[get] != before.Requests[get] {
		t.Fatalf("touch moved bytes: parts put %d→%d, downloads %d→%d", before.PartsPut, after.PartsPut, before.Requests[get], after.Requests[get])
	}
	if got := e.remoteFile(e.folder, "big.bin"); len(got.Versions) != 1 {
		t.Fatalf("touch made %d versions", len(got.Versions))
	}
	// Appending still copies the file and uploads a new version.
	run(t, "bash", "-c", `echo more >> "$1"`, "bash", p)
	e.drain(time.Minute)
	want := append(append([]byte{}, b...), "more\n"...)
	if got := e.remoteFile(e.folder, "big.bin"); len(got.Versions) != 2 || got.Versions[1].MD5 != md5hex(want) {
		t.Fatalf("after append: %+v", got.Versions)
	}
	if got := fileMD5(t, p); got != md5hex(want) {
		t.Fatalf("read back %s, want %s", got, md5hex(want))
	}
}

func TestListingsDfAndFallocate(t *testing.T) {
	e := newEnv(t, envOptions{delay: time.Hour})
	out, err := exec.Command("ls", "-a", e.data).Output()
	if err != nil || !strings.HasPrefix(string(out), ".\n..\n") {
		t.Fatalf("ls -a: %q, %v; want . and .. first", out, err)
	}
	if err := put(t, filepath.Join(e.data, "one.bin"), pattern(1<<20, 3)); err != nil {
		t.Fatal(err)
	}
	run(t, "fallocate", "-l", "2M", filepath.Join(e.data, "alloc.bin"))
	st, err := xStat(t, filepath.Join(e.data, "alloc.bin"))
	if err != nil || st.Size != 2<<20 {
		t.Fatalf("after fallocate: %d bytes, %v; want 2 MiB", st.Size, err)
	}
	run(t, "fallocate", "-n", "-l", "4M", filepath.Join(e.data, "alloc.bin"))
	if st, _ := xStat(t, filepath.Join(e.data, "alloc.bin")); st.Size != 2<<20 {
		t.Fatalf("fallocate --keep-size changed the size to %d", st.Size)
	}
	// df: used is what the cache holds; no inode counts.
	out, err = exec.Command("stat", "-f", "-c", "%b %f %S %c", e.mnt).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	blocks, _ := strconv.ParseInt(f[0], 10, 64)
	free, _ := strconv.ParseInt(f[1], 10, 64)
	bsize, _ := strconv.ParseInt(f[2], 10, 64)
	if used := (blocks - free) * bsize; used != 3<<20 {
		t.Fatalf("df used %d bytes, want the 3 MiB staged (%s)", used, out)
	}
	if f[3] != "0" {
		t.Fatalf("df -i files %s, want 0", f[3])
	}
	var recs []cache.Record
	if recs, err = e.store.Records(); err != nil || len(recs) != 2 {
		t.Fatalf("staged %d files, %v", len(recs), err)
	}
}
