package fs_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote/emulator"
)

// Files unlinked, or replaced by a rename, while a program holds them open:
// as on a local disk, reads return the bytes, writes succeed and read back
// through every open descriptor, and fstat shows the size with no links;
// nothing of such a file is uploaded. Each step runs on the mount and on a
// local directory, and the results must be equal (script, see
// prove_regress_test.go). "dropcache" makes the kernel write its dirty
// pages back (after the unlink, as the writeback cache does at close) and
// forget the file's pages, so that the reads after it reach synfs.

const (
	oRW    = os.O_RDWR | os.O_CREATE
	oNew   = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	oRead  = os.O_RDONLY
	oWrite = os.O_RDWR
)

func opOpen(p string, flags, fd int) fsOp { return fsOp{Kind: "open", Path: p, Flags: flags, FD: fd} }
func opWrite(fd int, off, n, seed int64) fsOp {
	return fsOp{Kind: "write", FD: fd, Off: off, N: n, Seed: seed}
}
func opRead(fd int, off, n int64) fsOp { return fsOp{Kind: "read", FD: fd, Off: off, N: n} }
func fdOp(kind string, fd int) fsOp    { return fsOp{Kind: kind, FD: fd} }

// synapseHolds checks that the test folder in Synapse holds exactly the
// reference directory's non-empty files, each with its MD5 as the current
// version.
func (s *script) synapseHolds() {
	s.t.Helper()
	ents, err := os.ReadDir(s.ref.root)
	if err != nil {
		s.t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.ref.root, e.Name()))
		if err != nil {
			s.t.Fatal(err)
		}
		if len(b) > 0 {
			want[e.Name()] = md5hex(b)
		}
	}
	got := s.e.em.Children(s.e.folder)
	for _, c := range got {
		if c.Kind != "file" {
			continue
		}
		v := c.Versions[len(c.Versions)-1]
		if sum, ok := want[c.Name]; !ok {
			s.t.Errorf("Synapse holds %s (%s), which the reference does not", c.Name, c.ID)
		} else if v.MD5 != sum {
			s.t.Errorf("Synapse holds %s with md5 %s, the reference %s", c.Name, v.MD5, sum)
		}
		delete(want, c.Name)
	}
	for name := range want {
		s.t.Errorf("%s is not in Synapse", name)
	}
}

func TestUnlinkOpenStagedFile(t *testing.T) {
	s := newScript(t)
	started := s.e.em.Stats().UploadsStarted
	s.run(
		opOpen("a", oRW, 1),
		opWrite(1, -1, 3<<20+1234, 1), // more than one cache chunk
		opOpen("a", oRead, 2),
		fsOp{Kind: "unlink", Path: "a"},
		opWrite(1, 100, 5000, 2), // in the kernel's page cache: written back after the unlink
		fdOp("dropcache", 1),
		opRead(1, 0, 4<<20),
		opRead(2, 0, 4<<20),
		fdOp("fstat", 1),
		fdOp("fstat", 2),
		fsOp{Kind: "ftruncate", FD: 1, N: 2<<20 + 7},
		opWrite(1, -1, 70000, 3),
		fdOp("dropcache", 1),
		fdOp("dropcache", 2),
		opRead(2, 2<<20-100, 200000),
		fdOp("fstat", 2),
		fsOp{Kind: "stat", Path: "a"},
		fsOp{Kind: "readdir"},
		// The name is free at once, for a new file.
		opOpen("a", oNew, 3),
		opWrite(3, -1, 4000, 4),
		fdOp("close", 3),
		opRead(1, 0, 100000),
		fdOp("close", 1),
		opRead(2, 3<<20, 100),
		fdOp("close", 2),
		fsOp{Kind: "readdir"},
		fsOp{Kind: "readfile", Path: "a"},
	)
	s.e.drain(time.Minute)
	s.synapseHolds()
	if n := s.e.em.Stats().UploadsStarted - started; n != 1 {
		t.Errorf("%d uploads started, want 1 (the new a)", n)
	}
	if u := awaitUsed(s.e.store, 0); u != 0 {
		t.Errorf("the cache still holds %d bytes after the last close and the upload", u)
	}
}

func TestUnlinkOpenUploadedFile(t *testing.T) {
	s := newScript(t)
	s.uploaded("u", 3<<20+5000, 5)
	id := s.e.remoteFile(s.e.folder, "u").ID
	started := s.e.em.Stats().UploadsStarted
	s.run(
		opOpen("u", oRead, 1),
		opRead(1, 0, 64<<10),   // through the block cache
		opOpen("u", oWrite, 2), // lazy: nothing staged yet
		fsOp{Kind: "unlink", Path: "u"},
		fdOp("dropcache", 1),
		opRead(1, 0, 4<<20),
		fdOp("fstat", 1),
		opWrite(2, 1<<20, 10000, 6),
		fdOp("dropcache", 2),
		fdOp("dropcache", 1),
		opRead(1, 1<<20-50, 10100),
		opRead(2, 0, 4<<20),
		fdOp("fstat", 2),
		fsOp{Kind: "stat", Path: "u"},
		fsOp{Kind: "readdir"},
		fdOp("close", 2),
		opRead(1, 3<<20, 8000),
		fdOp("close", 1),
		fsOp{Kind: "readdir"},
	)
	s.e.drain(time.Minute)
	s.synapseHolds()
	if ent, ok := s.e.em.Entity(id); !ok || !ent.Trashed || len(ent.Versions) != 1 {
		t.Errorf("entity %s: %+v; want it in the trash with its one version", id, ent)
	}
	if n := s.e.em.Stats().UploadsStarted - started; n != 0 {
		t.Errorf("%d uploads started after the unlink, want none", n)
	}
	if u := awaitUsed(s.e.store, 0); u != 0 {
		t.Errorf("the cache still holds %d bytes after the last close", u)
	}
}

// A file replaced by a rename while open keeps its bytes for its
// descriptors, whether it was staged or only in Synapse, and whether the
// rename trashes its entity (an uploaded file moved over it) or versions
// it (a staged file moved over it).
func TestRenameOverOpenFile(t *testing.T) {
	s := newScript(t)
	s.uploaded("t1", 100000, 1)
	s.uploaded("src2", 50000, 2)
	s.uploaded("t2", 70000, 3)
	t1 := s.e.remoteFile(s.e.folder, "t1").ID
	t2 := s.e.remoteFile(s.e.folder, "t2").ID
	s.run(
		// A staged file over an uploaded one that a reader holds: the
		// entity gets the new content as a version; the reader keeps the old.
		opOpen("t1", oRead, 1),
		opRead(1, 0, 1000),
		opOpen("s1", oNew, 9),
		opWrite(9, -1, 80000, 4),
		fdOp("close", 9),
		fsOp{Kind: "rename", Path: "s1", Path2: "t1"},
		fdOp("dropcache", 1),
		opRead(1, 0, 200000),
		fdOp("fstat", 1),
		fsOp{Kind: "readfile", Path: "t1"},
		// An uploaded file over an uploaded one a writer holds (nothing
		// staged yet): the target goes to the trash; the writer goes on.
		opOpen("t2", oWrite, 2),
		fsOp{Kind: "rename", Path: "src2", Path2: "t2"},
		opWrite(2, 60000, 20000, 5),
		fdOp("dropcache", 2),
		opRead(2, 0, 200000),
		fdOp("fstat", 2),
		fsOp{Kind: "readfile", Path: "t2"},
		// A staged file over a staged one being written.
		opOpen("t3", oRW, 3),
		opWrite(3, -1, 30000, 6),
		opOpen("s3", oNew, 8),
		opWrite(8, -1, 40000, 7),
		fdOp("close", 8),
		fsOp{Kind: "rename", Path: "s3", Path2: "t3"},
		opWrite(3, -1, 30000, 8),
		fdOp("dropcache", 3),
		opRead(3, 0, 200000),
		fdOp("fstat", 3),
		fsOp{Kind: "readfile", Path: "t3"},
		fsOp{Kind: "readdir"},
		fdOp("close", 1),
		fdOp("close", 2),
		fdOp("close", 3),
		fsOp{Kind: "readdir"},
		fsOp{Kind: "readfile", Path: "t1"},
		fsOp{Kind: "readfile", Path: "t2"},
		fsOp{Kind: "readfile", Path: "t3"},
	)
	s.e.drain(time.Minute)
	s.synapseHolds()
	if ent, _ := s.e.em.Entity(t1); ent.Trashed || len(ent.Versions) != 2 {
		t.Errorf("t1 (%s): %+v; want two versions, not trashed", t1, ent)
	}
	if ent, _ := s.e.em.Entity(t2); !ent.Trashed {
		t.Errorf("t2 (%s) replaced by a move: %+v; want it in the trash", t2, ent)
	}
}

// mv of a file a program is writing: its descriptors keep working, and
// its final bytes upload once, under the new name.
func TestRenameOpenFile(t *testing.T) {
	s := newScript(t)
	s.uploaded("u", 40000, 1)
	u := s.e.remoteFile(s.e.folder, "u").ID
	started := s.e.em.Stats().UploadsStarted
	s.run(
		// a new file
		opOpen("a", oRW, 1),
		opWrite(1, -1, 2<<20+10, 2),
		fsOp{Kind: "rename", Path: "a", Path2: "b"},
		opWrite(1, 1000, 5000, 3),
		fdOp("dropcache", 1),
		opRead(1, 0, 3<<20),
		fdOp("fstat", 1),
		// an uploaded file, opened for writing, moved to another folder
		fsOp{Kind: "mkdir", Path: "d"},
		opOpen("u", oWrite, 2),
		opWrite(2, 100, 3000, 4),
		fsOp{Kind: "rename", Path: "u", Path2: "d/v"},
		opWrite(2, -1, 1000, 5),
		fdOp("dropcache", 2),
		opRead(2, 0, 100000),
		fdOp("fstat", 2),
		fsOp{Kind: "readdir"},
		fdOp("close", 1),
		fdOp("close", 2),
		fsOp{Kind: "readfile", Path: "b"},
		fsOp{Kind: "readfile", Path: "d/v"},
	)
	s.e.drain(time.Minute)
	s.synapseHolds()
	if n := s.e.em.Stats().UploadsStarted - started; n != 2 {
		t.Errorf("%d uploads started, want 2 (b, and the new version of u as d/v)", n)
	}
	var dir string
	for _, c := range s.e.em.Children(s.e.folder) {
		if c.Name == "d" {
			dir = c.ID
		}
	}
	if v := s.e.remoteFile(dir, "v"); v.ID != u || len(v.Versions) != 2 {
		t.Errorf("d/v: %+v; want entity %s with two versions", v, u)
	}
	ref, _ := os.ReadFile(filepath.Join(s.ref.root, "d", "v"))
	if v := s.e.remoteFile(dir, "v"); v.Versions[1].MD5 != md5hex(ref) {
		t.Errorf("d/v in Synapse has md5 %s, the reference %s", v.Versions[1].MD5, md5hex(ref))
	}
}

// A file uploaded while a reader held it (its bytes kept for the reader),
// opened for writing again and then unlinked: the writer's bytes stay with
// the unlinked file. Before, the write staged the file again under its old
// name, so the removed name came back (in listings at once, and in Synapse
// after the writer's close).
func TestUnlinkUploadedWhileHeld(t *testing.T) {
	s := newScript(t)
	s.run(
		opOpen("a", oRW, 1),
		opWrite(1, -1, 20000, 1),
		opOpen("a", oRead, 2),
		fdOp("close", 1),
	)
	s.e.drain(time.Minute) // uploaded; the bytes stay for the reader
	started := s.e.em.Stats().UploadsStarted
	s.run(
		opOpen("a", oWrite, 3),
		fsOp{Kind: "unlink", Path: "a"},
		opWrite(3, 100, 5000, 2),
		fdOp("dropcache", 3),
		opRead(2, 0, 30000),
		fdOp("fstat", 3),
		fdOp("close", 3),
		fsOp{Kind: "readdir"},
		fsOp{Kind: "stat", Path: "a"},
		opRead(2, 0, 30000),
		fdOp("close", 2),
		fsOp{Kind: "readdir"},
	)
	s.e.drain(time.Minute)
	s.synapseHolds()
	if n := s.e.em.Stats().UploadsStarted - started; n != 0 {
		t.Errorf("%d uploads started after the unlink, want none", n)
	}
}

// awaitUsed waits up to 10 s for the cache's staged bytes to come to want
// and returns what they are: the kernel sends the RELEASE that frees an
// unlinked file's bytes after close(2) has returned.
func awaitUsed(st *cache.Store, want int64) int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := st.Used()
		if u == want || time.Now().After(deadline) {
			return u
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rm of a file whose entity's create is on its way to Synapse: the create
// is carried out after the mount's upload gave up on it (a transit fault),
// and still no entity may stay behind. rm waits for the cancelled upload
// to return, and the upload for the create's answer, before it looks.
func TestRemoveWhileCreateInTransit(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := xReadDir(t, e.data); err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{}, 1)
	e.em.AddFault(emulator.Fault{Route: "POST /repo/v1/entity", Transit: 2 * time.Second, FirstN: 1,
		Fired: func() { sent <- struct{}{} }})
	p := filepath.Join(e.data, "a.txt")
	if err := put(t, p, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("the upload sent no create")
	}
	if _, err := quick(t, 15*time.Second, "rm while the create is in transit", "remove", p, ""); err != nil {
		t.Fatalf("rm: %v", err)
	}
	waitFor(t, 10*time.Second, "the create in transit to be handled", func() bool {
		return e.em.RequestCounts()["POST /repo/v1/entity"] >= 1
	})
	e.drain(time.Minute)
	for _, c := range e.em.Children(e.folder) {
		if c.Name == "a.txt" {
			t.Fatalf("a.txt (%s) is in Synapse after rm succeeded", c.ID)
		}
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after rm: %v, want ENOENT", err)
	}
}
