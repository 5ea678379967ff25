package fs_test

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// Regressions found by the model-based test (prove_model_test.go), each a
// short script run on the mount and on a local reference directory.

// script runs ops on the mount and on a local directory and fails on the
// first difference.
type script struct {
	t   *testing.T
	e   *env
	ref *opExec
	mnt *opChild
}

func newScript(t *testing.T) *script {
	e := newEnv(t, envOptions{})
	ref := newOpExec(t.TempDir())
	t.Cleanup(ref.closeAll)
	return &script{t: t, e: e, ref: ref, mnt: startOpChild(t, e.data, time.Minute)}
}

func (s *script) run(ops ...fsOp) {
	s.t.Helper()
	for _, o := range ops {
		want, got := s.ref.do(o), s.mnt.do(o)
		if d := resultDiff(want, got); d != "" {
			s.t.Fatalf("%v: %s", o, d)
		}
	}
}

// writeFile makes p hold n bytes of pattern(seed) and uploads it.
func (s *script) uploaded(p string, n int64, seed int64) {
	s.t.Helper()
	s.run(fsOp{Kind: "open", Path: p, Flags: os.O_WRONLY | os.O_CREATE | os.O_TRUNC, FD: 99},
		fsOp{Kind: "write", FD: 99, Off: -1, N: n, Seed: seed},
		fsOp{Kind: "close", FD: 99})
	s.e.drain(time.Minute)
}

// A file replaced by a rename, or unlinked, while open for writing: as on a
// local disk, its writes and its close succeed (the bytes go with it).
// Before, close(2) failed with EIO (the kernel's write-back of the orphan
// failed on ENOENT from getattr and write).
func TestProveWriteAfterDelete(t *testing.T) {
	s := newScript(t)
	s.uploaded("up", 5000, 9)
	s.run(
		// staged, replaced by a rename
		fsOp{Kind: "open", Path: "c", Flags: os.O_RDWR | os.O_CREATE | os.O_EXCL, FD: 1},
		fsOp{Kind: "write", FD: 1, Off: -1, N: 1441, Seed: 3},
		fsOp{Kind: "open", Path: "f", Flags: os.O_RDWR | os.O_CREATE, FD: 2},
		fsOp{Kind: "write", FD: 2, Off: -1, N: 100, Seed: 3},
		fsOp{Kind: "close", FD: 2},
		fsOp{Kind: "rename", Path: "f", Path2: "c"},
		fsOp{Kind: "write", FD: 1, Off: 6952, N: 2018454, Seed: 4},
		fsOp{Kind: "close", FD: 1},
		// staged, unlinked
		fsOp{Kind: "open", Path: "g", Flags: os.O_RDWR | os.O_CREATE, FD: 3},
		fsOp{Kind: "write", FD: 3, Off: -1, N: 3892, Seed: 5},
		fsOp{Kind: "unlink", Path: "g"},
		fsOp{Kind: "write", FD: 3, Off: -1, N: 2237, Seed: 6},
		fsOp{Kind: "close", FD: 3},
		// in Synapse only, opened for append (nothing staged yet), unlinked
		fsOp{Kind: "open", Path: "up", Flags: os.O_WRONLY | os.O_APPEND, FD: 4},
		fsOp{Kind: "unlink", Path: "up"},
		fsOp{Kind: "write", FD: 4, Off: -1, N: 1894, Seed: 7},
		fsOp{Kind: "close", FD: 4},
		fsOp{Kind: "readdir"},
	)
	s.e.drain(time.Minute)
	if n := len(s.e.em.Children(s.e.folder)); n != 1 {
		t.Errorf("got %d entities in the folder, want 1 (c)", n)
	}
}

// open(O_TRUNC) of an uploaded file, then writes with gaps: the gaps read
// as zeros. Before, the kernel filled the partial pages of the writes by
// reading through the handle, which still read Synapse's old content.
func TestProveTruncatedGapsAreZeros(t *testing.T) {
	s := newScript(t)
	s.uploaded("x", 10000, 3)
	s.run(fsOp{Kind: "readfile", Path: "x"},
		fsOp{Kind: "open", Path: "x", Flags: os.O_WRONLY | os.O_CREATE | os.O_TRUNC, FD: 2},
		fsOp{Kind: "write", FD: 2, Off: 6253, N: 3186, Seed: 4},
		fsOp{Kind: "write", FD: 2, Off: -1, N: 815, Seed: 5},
		fsOp{Kind: "write", FD: 2, Off: 2715, N: 3621, Seed: 6},
		fsOp{Kind: "close", FD: 2},
		fsOp{Kind: "readfile", Path: "x"},
	)
	s.e.drain(time.Minute)
	s.run(fsOp{Kind: "readfile", Path: "x"})
}

// Appending to an uploaded file and reading it from another open file
// before the writer closes: the reader sees the appended bytes. Before, it
// read Synapse's old copy and zeros past its end.
func TestProveReadWhileAppending(t *testing.T) {
	s := newScript(t)
	s.uploaded("y", 4218, 2)
	s.run(fsOp{Kind: "open", Path: "y", Flags: os.O_WRONLY | os.O_APPEND, FD: 2},
		fsOp{Kind: "write", FD: 2, Off: -1, N: 1282181, Seed: 4},
		fsOp{Kind: "write", FD: 2, Off: -1, N: 943, Seed: 5},
		fsOp{Kind: "readfile", Path: "y"},
		fsOp{Kind: "close", FD: 2},
		fsOp{Kind: "readfile", Path: "y"},
	)
	s.e.drain(time.Minute)
	s.run(fsOp{Kind: "readfile", Path: "y"})
}

// A file renamed while a writer has it open and an earlier version of it
// is still uploading: the old name is gone at once and stays gone when
// that upload finishes, and the writer's bytes become a version of the
// moved file. Before, the uploaded record kept the old name, so the
// writer's close uploaded a second file under it.
func TestProveRenameDuringUploadWhileOpen(t *testing.T) {
	s := newScript(t)
	s.uploaded("f", 3000, 1)
	// The rename comes while the part is on its way. The second writer
	// writes only once that upload has finished: a write the kernel sends
	// earlier (its own writeback, under the memory pressure of a whole
	// test suite) changes the file under the upload, which then starts
	// again after that writer's close, and the wait below times out.
	var sending atomic.Bool
	remove := s.e.em.AddFault(emulator.Fault{Route: "PUT /s3/", Latency: 400 * time.Millisecond, Fired: func() { sending.Store(true) }})
	defer remove()
	s.run(fsOp{Kind: "open", Path: "f", Flags: os.O_RDWR, FD: 1},
		fsOp{Kind: "write", FD: 1, Off: 100, N: 200, Seed: 2},
		fsOp{Kind: "close", FD: 1})
	waitFor(t, 10*time.Second, "the upload's part to be sent", sending.Load)
	s.run(fsOp{Kind: "open", Path: "f", Flags: os.O_RDWR, FD: 2},
		fsOp{Kind: "rename", Path: "f", Path2: "g"},
		fsOp{Kind: "stat", Path: "f"})
	waitFor(t, 10*time.Second, "the upload to finish", func() bool { return s.e.em.Stats().UploadsCompleted >= 2 })
	for range 5 {
		s.run(fsOp{Kind: "stat", Path: "f"}, fsOp{Kind: "readdir"})
	}
	s.run(fsOp{Kind: "write", FD: 2, Off: 500, N: 200, Seed: 3},
		fsOp{Kind: "close", FD: 2})
	s.e.drain(time.Minute)
	s.run(fsOp{Kind: "readdir"}, fsOp{Kind: "readfile", Path: "g"})
	if ents := s.e.em.Children(s.e.folder); len(ents) != 1 || ents[0].Name != "g" {
		t.Errorf("Synapse holds %+v, want one file g", ents)
	}
}

// A file open for reading while another handle writes a new version of it
// that is uploaded: as on a local disk, the reader reads the new content.
// Before, the reader went on reading the version it had opened, and past
// that version's end the kernel, which knows the new size, filled the
// short read with zeros.
func TestProveReadAcrossOwnUpload(t *testing.T) {
	s := newScript(t)
	s.uploaded("f", 80<<10, 1)
	s.run(
		fsOp{Kind: "open", Path: "f", Flags: os.O_RDONLY, FD: 1},
		fsOp{Kind: "open", Path: "f", Flags: os.O_RDWR, FD: 3},
		fsOp{Kind: "read", FD: 1, Off: 0, N: 4096},
		fsOp{Kind: "open", Path: "f", Flags: os.O_WRONLY | os.O_TRUNC, FD: 2},
		fsOp{Kind: "write", FD: 2, Off: -1, N: 1_600_000, Seed: 2},
		fsOp{Kind: "close", FD: 2},
	)
	s.e.drain(time.Minute)
	s.run(
		fsOp{Kind: "read", FD: 1, Off: 70_000, N: 200_000},
		fsOp{Kind: "read", FD: 1, Off: 0, N: 4096},
		fsOp{Kind: "read", FD: 3, Off: 1_000_000, N: 300_000},
		fsOp{Kind: "close", FD: 1},
		fsOp{Kind: "close", FD: 3},
		fsOp{Kind: "readfile", Path: "f"},
	)
}

// A file in Synapse opened read-write and truncated through that handle
// before any write: the truncated file is staged and uploads while the
// handle is still open (nothing was written through it yet). Reads through
// the handle must then follow the new version, and the gap a later write
// leaves past the new end reads as zeros. Before, the handle read the old
// version, whose bytes past the new end the kernel kept in the page and
// showed once the write extended the file.
func TestProveTruncateUploadedWhileOpen(t *testing.T) {
	s := newScript(t)
	s.uploaded("t", 44958, 1)
	s.run(
		fsOp{Kind: "open", Path: "t", Flags: os.O_RDWR, FD: 1},
		fsOp{Kind: "ftruncate", FD: 1, N: 10560},
	)
	s.e.drain(time.Minute)
	s.run(
		fsOp{Kind: "read", FD: 1, Off: 7825, N: 68081},
		fsOp{Kind: "write", FD: 1, Off: 15510, N: 1011, Seed: 2},
		fsOp{Kind: "read", FD: 1, Off: 7891, N: 87721},
		fsOp{Kind: "close", FD: 1},
		fsOp{Kind: "readfile", Path: "t"},
	)
}

// A lookup, a rename and an unlink of a file whose upload has just ended,
// before the file system heard of it (OnUploaded, held back here): the
// staged record is gone and the folder's listing, cached before the upload,
// does not name the entity. Before, all three failed with ENOENT for up to
// the listing's TTL; now the listing learns the entity before the record
// goes (FS.Created).
func TestProveLookupAsUploadEnds(t *testing.T) {
	e := newEnv(t, envOptions{metaTTL: time.Minute, uploadedLag: 5 * time.Second})
	ref := newOpExec(t.TempDir())
	t.Cleanup(ref.closeAll)
	s := &script{t: t, e: e, ref: ref, mnt: startOpChild(t, e.data, time.Minute)}
	s.run(fsOp{Kind: "readdir"}) // the listing is cached, empty
	s.run(fsOp{Kind: "open", Path: "a", Flags: os.O_WRONLY | os.O_CREATE | os.O_TRUNC, FD: 1},
		fsOp{Kind: "write", FD: 1, Off: -1, N: 3000, Seed: 1},
		fsOp{Kind: "close", FD: 1},
		fsOp{Kind: "open", Path: "b", Flags: os.O_WRONLY | os.O_CREATE | os.O_TRUNC, FD: 2},
		fsOp{Kind: "write", FD: 2, Off: -1, N: 2000, Seed: 2},
		fsOp{Kind: "close", FD: 2})
	waitFor(t, 5*time.Second, "both uploads to end", func() bool {
		recs, err := e.store.Records()
		return err == nil && len(recs) == 0 && len(e.em.Children(e.folder)) == 2
	})
	time.Sleep(200 * time.Millisecond) // the kernel's entries (100 ms) expire
	s.run(fsOp{Kind: "stat", Path: "a"},
		fsOp{Kind: "readdir"},
		fsOp{Kind: "rename", Path: "a", Path2: "c"},
		fsOp{Kind: "unlink", Path: "b"},
		fsOp{Kind: "readdir"},
		fsOp{Kind: "readfile", Path: "c"})
	// When the file system hears of the uploads at last, the names the
	// rename and the unlink took away stay away.
	e.drain(time.Minute)
	s.run(fsOp{Kind: "stat", Path: "a"}, fsOp{Kind: "stat", Path: "b"}, fsOp{Kind: "readdir"})
	if ents := e.em.Children(e.folder); len(ents) != 1 || ents[0].Name != "c" {
		t.Errorf("Synapse holds %+v, want one file c", ents)
	}
}

// An open of a file whose upload has just ended, by a name the kernel
// still holds (so no lookup comes first), before the file system heard of
// the upload (OnUploaded, held back): the node's staged record is gone.
// Before, the open failed with ENOENT, since the node did not know its
// entity yet; now it learns it before the record goes (FS.Created).
func TestProveOpenAsUploadEnds(t *testing.T) {
	e := newEnv(t, envOptions{metaTTL: time.Minute, attrValid: time.Minute, uploadedLag: 5 * time.Second})
	ref := newOpExec(t.TempDir())
	t.Cleanup(ref.closeAll)
	s := &script{t: t, e: e, ref: ref, mnt: startOpChild(t, e.data, time.Minute)}
	s.run(fsOp{Kind: "open", Path: "a", Flags: os.O_WRONLY | os.O_CREATE | os.O_TRUNC, FD: 1},
		fsOp{Kind: "write", FD: 1, Off: -1, N: 3000, Seed: 1},
		fsOp{Kind: "close", FD: 1},
		fsOp{Kind: "stat", Path: "a"})
	waitFor(t, 5*time.Second, "the upload to end", func() bool {
		recs, err := e.store.Records()
		return err == nil && len(recs) == 0 && len(e.em.Children(e.folder)) == 1
	})
	s.run(fsOp{Kind: "readfile", Path: "a"},
		fsOp{Kind: "open", Path: "a", Flags: os.O_RDWR, FD: 2},
		fsOp{Kind: "write", FD: 2, Off: 10, N: 100, Seed: 2},
		fsOp{Kind: "close", FD: 2},
		fsOp{Kind: "readfile", Path: "a"})
	e.drain(time.Minute)
	s.run(fsOp{Kind: "readfile", Path: "a"})
}
