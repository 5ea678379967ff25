package cache

import (
	"bytes"
	"errors"
	"testing"
)

// A staged file removed while open is unlinked: its handles go on reading
// and writing it, it leaves its place and is never offered for upload, and
// the last Release deletes it and gives its space back.
func TestRemoveWhileOpenUnlinks(t *testing.T) {
	backends(t, Options{ChunkSize: 1024}, func(t *testing.T, s *Store) {
		data := pattern(3000, 1)
		rec, f := create(t, s, "syn1", "a")
		f.BeginWrite()
		writeAt(t, f, data, 0)
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(rec.Ino); err != nil {
			t.Fatalf("Remove while open: %v", err)
		}
		if !f.Unlinked() {
			t.Errorf("Unlinked() = false after Remove while open")
		}
		if _, err := s.Lookup("syn1", "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup after unlink: %v, want ErrNotFound", err)
		}
		if _, err := s.Get(rec.Ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after unlink: %v, want ErrNotFound", err)
		}
		if _, _, _, err := s.Reader(rec.Ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("Reader after unlink: %v, want ErrNotFound", err)
		}
		if err := s.Finish(rec.Ino, f.Gen()); !errors.Is(err, ErrNotFound) {
			t.Errorf("Finish after unlink: %v, want ErrNotFound", err)
		}
		// The name is free for a new file at once.
		b, fb := create(t, s, "syn1", "a")
		fb.Release()
		more := pattern(2500, 2)
		writeAt(t, f, more, 2000)
		data = append(data[:2000], more...)
		if err := f.Flush(); err != nil {
			t.Fatalf("Flush of the unlinked file: %v", err)
		}
		if got := readAll(t, f); !bytes.Equal(got, data) {
			t.Errorf("unlinked file reads %d bytes (md5 %s), want %d (md5 %s)", len(got), md5hex(got), len(data), md5hex(data))
		}
		if p, _ := s.Pending(); len(p) != 1 || p[0] != b.Ino {
			t.Errorf("Pending() = %v, want only the new file %d", p, b.Ino)
		}
		if recs, _ := s.Records(); len(recs) != 1 || recs[0].Ino != b.Ino {
			t.Errorf("Records() = %+v, want only the new file", recs)
		}
		if err := f.EndWrite(); err != nil {
			t.Fatal(err)
		}
		if err := f.Release(); err != nil {
			t.Fatalf("last Release: %v", err)
		}
		if n := countChunks(t, s, rec.Ino); n != 0 {
			t.Errorf("%d chunks left after the last Release", n)
		}
		if r, err := s.Lookup("syn1", "a"); err != nil || r.Ino != b.Ino {
			t.Errorf("Lookup of the new file: %+v, %v", r, err)
		}
		if u := s.Used(); u != 0 {
			t.Errorf("Used() = %d after the last Release, want 0", u)
		}
	})
}

// An unlinked file that a stop leaves behind (its handles died with the
// process) is deleted at the next start, never uploaded.
func TestUnlinkedDroppedAtReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, ChunkSize: 1024})
	rec, f := create(t, s, "syn1", "a")
	writeAt(t, f, pattern(5000, 3), 0)
	if err := s.Remove(rec.Ino); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, pattern(100, 4), 5000) // marks the record open again, as a chunk write does
	u, err := s.CreateUnlinked("syn1", "copy")
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, u, pattern(4000, 5), 0)
	if err := u.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, Options{Dir: dir, ChunkSize: 1024})
	if p, _ := s.Pending(); len(p) != 0 {
		t.Errorf("Pending() after reopen = %v, want none", p)
	}
	for _, ino := range []uint64{rec.Ino, u.Ino()} {
		if _, err := s.Get(ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%d) after reopen: %v, want ErrNotFound", ino, err)
		}
		if n := countChunks(t, s, ino); n != 0 {
			t.Errorf("%d chunks of %d left after reopen", n, ino)
		}
	}
	if u := s.Used(); u != 0 {
		t.Errorf("Used() after reopen = %d, want 0", u)
	}
}

// A file uploaded while open (Done) and then unlinked is not staged again
// by a later write: it stays unlinked and is never uploaded.
func TestUnlinkAfterFinishWhileOpen(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 1024})
	rec, f := create(t, s, "syn1", "a")
	writeAt(t, f, pattern(1500, 1), 0)
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	_, gen := committed(t, s, rec.Ino)
	if err := s.Finish(rec.Ino, gen); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(rec.Ino); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, pattern(10, 2), 0)
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("syn1", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup after a write to the unlinked file: %v, want ErrNotFound", err)
	}
	if p, _ := s.Pending(); len(p) != 0 {
		t.Errorf("Pending() = %v, want none", p)
	}
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	if u := s.Used(); u != 0 {
		t.Errorf("Used() = %d, want 0", u)
	}
}

// WhileAt runs its function only while the file is staged at that place.
func TestWhileAt(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 1024})
	rec, f := create(t, s, "syn1", "a")
	f.Release()
	ran := func(parent, name string) bool {
		t.Helper()
		did := false
		ok, err := s.WhileAt(rec.Ino, parent, name, func() { did = true })
		if err != nil || ok != did {
			t.Fatalf("WhileAt(%s, %s) = %v, %v (ran %v)", parent, name, ok, err, did)
		}
		return did
	}
	if !ran("syn1", "a") {
		t.Errorf("WhileAt at the file's place did not run")
	}
	if err := s.Rename(rec.Ino, "syn1", "b", ""); err != nil {
		t.Fatal(err)
	}
	if ran("syn1", "a") || !ran("syn1", "b") {
		t.Errorf("WhileAt after a rename: ran at the old place, or not at the new one")
	}
	f, err := s.OpenFile(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(rec.Ino); err != nil {
		t.Fatal(err)
	}
	if ran("syn1", "b") {
		t.Errorf("WhileAt ran for an unlinked file")
	}
	f.Release()
	if ran("syn1", "b") {
		t.Errorf("WhileAt ran for a removed file")
	}
}
