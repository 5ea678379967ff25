package cache

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

// backends runs fn against an in-memory and an on-disk store.
func backends(t *testing.T, o Options, fn func(t *testing.T, s *Store)) {
	t.Helper()
	for _, mem := range []bool{true, false} {
		name := "disk"
		if mem {
			name = "memory"
		}
		t.Run(name, func(t *testing.T) {
			oo := o
			oo.InMemory = mem
			if !mem {
				oo.Dir = filepath.Join(t.TempDir(), "cache")
			}
			fn(t, openStore(t, oo))
		})
	}
}

func openStore(t *testing.T, o Options) *Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func memStore(t *testing.T, o Options) *Store {
	o.InMemory = true
	return openStore(t, o)
}

func create(t *testing.T, s *Store, parent, name string) (*Record, *File) {
	t.Helper()
	rec, err := s.Create(parent, name, "", "")
	if err != nil {
		t.Fatalf("Create(%q, %q): %v", parent, name, err)
	}
	f, err := s.OpenFile(rec.Ino)
	if err != nil {
		t.Fatalf("OpenFile(%d): %v", rec.Ino, err)
	}
	return rec, f
}

// stage creates a staged file holding data and closes it.
func stage(t *testing.T, s *Store, parent, name string, data []byte) *Record {
	t.Helper()
	rec, f := create(t, s, parent, name)
	writeAt(t, f, data, 0)
	if err := f.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	return rec
}

func writeAt(t *testing.T, f *File, p []byte, off int64) {
	t.Helper()
	n, err := f.WriteAt(context.Background(), p, off)
	if err != nil || n != len(p) {
		t.Fatalf("WriteAt(%d bytes at %d) = %d, %v; want %d, nil", len(p), off, n, err, len(p))
	}
}

// readAll reads the whole file through f.
func readAll(t *testing.T, f *File) []byte {
	t.Helper()
	got := make([]byte, f.Size())
	n, err := f.ReadAt(got, 0)
	if err != nil && !(err == io.EOF && n == len(got)) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if n != len(got) {
		t.Fatalf("ReadAt read %d bytes, want %d", n, len(got))
	}
	return got
}

// committed reads ino's committed bytes through Store.Reader.
func committed(t *testing.T, s *Store, ino uint64) ([]byte, uint64) {
	t.Helper()
	r, size, gen, err := s.Reader(ino)
	if err != nil {
		t.Fatalf("Reader(%d): %v", ino, err)
	}
	got, err := io.ReadAll(io.NewSectionReader(r, 0, size))
	if err != nil {
		t.Fatalf("reading committed bytes of %d: %v", ino, err)
	}
	return got, gen
}

func md5hex(p []byte) string {
	s := md5.Sum(p)
	return hex.EncodeToString(s[:])
}

func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func TestChunkBoundaries(t *testing.T) {
	const cs = 64
	backends(t, Options{ChunkSize: cs}, func(t *testing.T, s *Store) {
		for _, size := range []int{1, cs - 1, cs, cs + 1, 2 * cs, 3*cs + 5, 10*cs + 17} {
			for _, step := range []int{1, 7, cs, cs + 3, 1000} {
				data := pattern(size, uint64(size*1000+step))
				rec, f := create(t, s, "syn1", "f")
				for off := 0; off < size; off += step {
					writeAt(t, f, data[off:min(off+step, size)], int64(off))
				}
				if got := readAll(t, f); !bytes.Equal(got, data) {
					t.Fatalf("size %d step %d: ReadAt before flush differs", size, step)
				}
				if err := f.Flush(); err != nil {
					t.Fatalf("Flush: %v", err)
				}
				if err := f.Release(); err != nil {
					t.Fatalf("Release: %v", err)
				}
				got, _ := committed(t, s, rec.Ino)
				if !bytes.Equal(got, data) {
					t.Fatalf("size %d step %d: committed bytes differ", size, step)
				}
				r, err := s.Get(rec.Ino)
				if err != nil {
					t.Fatal(err)
				}
				if r.Size != int64(size) || r.MD5 != md5hex(data) || r.State != StateDirty {
					t.Fatalf("size %d step %d: record size %d md5 %q state %v; want %d %q dirty", size, step, r.Size, r.MD5, r.State, size, md5hex(data))
				}
				// Partial reads across chunk boundaries, and EOF.
				f2, err := s.OpenFile(rec.Ino)
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < size; off += 5 {
					buf := make([]byte, cs+2)
					n, err := f2.ReadAt(buf, int64(off))
					want := min(len(buf), size-off)
					if n != want || !bytes.Equal(buf[:n], data[off:off+n]) {
						t.Fatalf("ReadAt(%d) = %d bytes, want %d matching", off, n, want)
					}
					if (want < len(buf)) != (err == io.EOF) {
						t.Fatalf("ReadAt(%d) err = %v with %d of %d bytes", off, err, n, len(buf))
					}
				}
				if n, err := f2.ReadAt(make([]byte, 1), int64(size)); n != 0 || err != io.EOF {
					t.Fatalf("ReadAt at end = %d, %v; want 0, EOF", n, err)
				}
				f2.Release()
				if err := s.Remove(rec.Ino); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func TestRandomWrites(t *testing.T) {
	const cs = 32
	backends(t, Options{ChunkSize: cs}, func(t *testing.T, s *Store) {
		r := rand.New(rand.NewPCG(7, 7))
		var model []byte
		rec, f := create(t, s, "syn1", "rand")
		for i := range 400 {
			off := r.IntN(20 * cs)
			n := 1 + r.IntN(3*cs)
			p := pattern(n, uint64(i))
			writeAt(t, f, p, int64(off))
			if end := off + n; end > len(model) {
				model = append(model, make([]byte, end-len(model))...)
			}
			copy(model[off:], p)
			switch r.IntN(20) {
			case 0:
				if err := f.Flush(); err != nil {
					t.Fatal(err)
				}
			case 1:
				sz := r.IntN(22 * cs)
				if err := f.Truncate(context.Background(), int64(sz)); err != nil {
					t.Fatal(err)
				}
				if sz < len(model) {
					model = model[:sz]
				} else {
					model = append(model, make([]byte, sz-len(model))...)
				}
			}
			if i%37 == 0 {
				if got := readAll(t, f); !bytes.Equal(got, model) {
					t.Fatalf("step %d: content differs from model (size %d, want %d)", i, len(got), len(model))
				}
			}
		}
		if err := f.Release(); err != nil {
			t.Fatal(err)
		}
		got, gen := committed(t, s, rec.Ino)
		if !bytes.Equal(got, model) {
			t.Fatalf("committed content differs from model (size %d, want %d)", len(got), len(model))
		}
		r2, _ := s.Get(rec.Ino)
		if r2.MD5 != "" {
			t.Errorf("MD5 after random writes = %q, want \"\"", r2.MD5)
		}
		sum, gen2, err := s.ComputeMD5(rec.Ino)
		if err != nil || sum != md5hex(model) || gen2 != gen {
			t.Errorf("ComputeMD5 = %q, %d, %v; want %q, %d, nil", sum, gen2, err, md5hex(model), gen)
		}
		if u := s.Used(); u != int64(len(model)) {
			t.Errorf("Used() = %d, want %d", u, len(model))
		}
	})
}

func TestTruncate(t *testing.T) {
	const cs = 16
	backends(t, Options{ChunkSize: cs}, func(t *testing.T, s *Store) {
		ctx := context.Background()
		rec, f := create(t, s, "syn1", "t")
		ff := bytes.Repeat([]byte{0xff}, 3*cs)
		writeAt(t, f, ff, 0)
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		// Down into the middle of a chunk, then up: the tail must read as zeros.
		if err := f.Truncate(ctx, cs+cs/2); err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(ctx, 3*cs); err != nil {
			t.Fatal(err)
		}
		want := append(bytes.Repeat([]byte{0xff}, cs+cs/2), make([]byte, cs+cs/2)...)
		if got := readAll(t, f); !bytes.Equal(got, want) {
			t.Fatalf("after truncate down/up got %x, want %x", got, want)
		}
		if err := f.Release(); err != nil {
			t.Fatal(err)
		}
		if got, _ := committed(t, s, rec.Ino); !bytes.Equal(got, want) {
			t.Fatalf("committed after truncate got %x, want %x", got, want)
		}
		// Reopen: a write far past the end leaves a zero hole.
		f, err := s.OpenFile(rec.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(ctx, 5); err != nil {
			t.Fatal(err)
		}
		writeAt(t, f, []byte("xyz"), 5*cs)
		want = append(append(bytes.Repeat([]byte{0xff}, 5), make([]byte, 5*cs-5)...), "xyz"...)
		if got := readAll(t, f); !bytes.Equal(got, want) {
			t.Fatalf("after hole write got %x, want %x", got, want)
		}
		if err := f.Release(); err != nil {
			t.Fatal(err)
		}
		if got, _ := committed(t, s, rec.Ino); !bytes.Equal(got, want) {
			t.Fatalf("committed after hole write got %x, want %x", got, want)
		}
		// Truncate to 0 restarts the sequential MD5.
		f, _ = s.OpenFile(rec.Ino)
		if err := f.Truncate(ctx, 0); err != nil {
			t.Fatal(err)
		}
		writeAt(t, f, []byte("hello"), 0)
		f.Release()
		r, _ := s.Get(rec.Ino)
		if r.Size != 5 || r.MD5 != md5hex([]byte("hello")) {
			t.Fatalf("after O_TRUNC rewrite: size %d md5 %q; want 5 %q", r.Size, r.MD5, md5hex([]byte("hello")))
		}
		if u := s.Used(); u != 5 {
			t.Errorf("Used() = %d, want 5", u)
		}
	})
}

func TestMD5SequentialVsRecomputed(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 1024})
	data := pattern(10_000, 3)
	// Sequential: known at flush.
	rec, f := create(t, s, "p", "seq")
	writeAt(t, f, data[:4000], 0)
	writeAt(t, f, data[4000:], 4000)
	f.Release()
	r, _ := s.Get(rec.Ino)
	if r.MD5 != md5hex(data) {
		t.Errorf("sequential MD5 = %q, want %q", r.MD5, md5hex(data))
	}
	// Overwrite behind the end: unknown, recomputed.
	f, _ = s.OpenFile(rec.Ino)
	writeAt(t, f, []byte("Z"), 10)
	f.Release()
	data[10] = 'Z'
	r, _ = s.Get(rec.Ino)
	if r.MD5 != "" {
		t.Errorf("MD5 after overwrite = %q, want \"\"", r.MD5)
	}
	if sum, _, _ := s.ComputeMD5(rec.Ino); sum != md5hex(data) {
		t.Errorf("ComputeMD5 = %q, want %q", sum, md5hex(data))
	}
	// Append after reopen: unknown as well.
	f, _ = s.OpenFile(rec.Ino)
	writeAt(t, f, []byte("tail"), int64(len(data)))
	f.Release()
	if r, _ = s.Get(rec.Ino); r.MD5 != "" {
		t.Errorf("MD5 after append on reopen = %q, want \"\"", r.MD5)
	}
	// Reading a file does not change it.
	gen := r.Gen
	f, _ = s.OpenFile(rec.Ino)
	readAll(t, f)
	f.Release()
	if r, _ = s.Get(rec.Ino); r.Gen != gen {
		t.Errorf("Gen after a read-only open = %d, want %d", r.Gen, gen)
	}
}

func TestIndex(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, s *Store) {
		a, fa := create(t, s, "syn1", "a")
		writeAt(t, fa, []byte("aaa"), 0)
		fa.Release()
		b, fb := create(t, s, "syn1", "b")
		fb.Release()
		c, fc := create(t, s, "syn2", "a")
		fc.Release()
		if a.Ino == b.Ino || b.Ino == c.Ino {
			t.Fatalf("inos not distinct: %d %d %d", a.Ino, b.Ino, c.Ino)
		}
		ex, err := s.Create("syn1", "a", "", "")
		if !errors.Is(err, ErrExist) || ex == nil || ex.Ino != a.Ino {
			t.Fatalf("Create at a taken location = %v, %v; want record %d, ErrExist", ex, err, a.Ino)
		}
		if r, err := s.Lookup("syn1", "a"); err != nil || r.Ino != a.Ino || r.Size != 3 {
			t.Fatalf("Lookup(syn1, a) = %+v, %v", r, err)
		}
		if _, err := s.Lookup("syn1", "zzz"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup of a missing name: %v, want ErrNotFound", err)
		}
		names := func(parent string) string {
			l, err := s.List(parent)
			if err != nil {
				t.Fatal(err)
			}
			var ns []string
			for _, r := range l {
				ns = append(ns, r.Name)
			}
			return strings.Join(ns, ",")
		}
		if got := names("syn1"); got != "a,b" {
			t.Fatalf("List(syn1) = %q, want a,b", got)
		}
		if err := s.Rename(a.Ino, "syn1", "b", ""); !errors.Is(err, ErrExist) {
			t.Fatalf("Rename onto b: %v, want ErrExist", err)
		}
		before, _ := s.Get(a.Ino)
		if err := s.Rename(a.Ino, "syn2", "moved", ""); err != nil {
			t.Fatalf("Rename: %v", err)
		}
		after, _ := s.Get(a.Ino)
		if after.Gen <= before.Gen || after.ParentID != "syn2" || after.Name != "moved" {
			t.Fatalf("after Rename: gen %d→%d, at %s/%s", before.Gen, after.Gen, after.ParentID, after.Name)
		}
		if got := names("syn1"); got != "b" {
			t.Fatalf("List(syn1) after rename = %q, want b", got)
		}
		if got := names("syn2"); got != "a,moved" {
			t.Fatalf("List(syn2) after rename = %q, want a,moved", got)
		}
		if err := s.Remove(a.Ino); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(a.Ino); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Remove: %v, want ErrNotFound", err)
		}
		if got := names("syn2"); got != "a" {
			t.Fatalf("List(syn2) after remove = %q, want a", got)
		}
		if _, err := s.OpenFile(a.Ino); !errors.Is(err, ErrNotFound) {
			t.Fatalf("OpenFile after Remove: %v, want ErrNotFound", err)
		}
		if n := countChunks(t, s, a.Ino); n != 0 {
			t.Fatalf("%d chunks left after Remove", n)
		}
		if u := s.Used(); u != 0 {
			t.Fatalf("Used() after Remove = %d, want 0", u)
		}
	})
}

func countChunks(t *testing.T, s *Store, ino uint64) int {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badgerTxn) error {
		it := txn.NewIterator(badgerIterOpts(blockPrefix(ino)))
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFinish(t *testing.T) {
	backends(t, Options{ChunkSize: 8}, func(t *testing.T, s *Store) {
		rec, f := create(t, s, "syn1", "a")
		writeAt(t, f, []byte("0123456789"), 0)
		f.Release()
		_, gen := committed(t, s, rec.Ino)
		if err := s.SetState(rec.Ino, gen, StateUploading, ""); err != nil {
			t.Fatal(err)
		}
		// A write during the upload.
		f, _ = s.OpenFile(rec.Ino)
		writeAt(t, f, []byte("x"), 10)
		if err := s.Finish(rec.Ino, gen); !errors.Is(err, ErrChanged) {
			t.Fatalf("Finish while a write is unflushed: %v, want ErrChanged", err)
		}
		f.Release()
		if err := s.Finish(rec.Ino, gen); !errors.Is(err, ErrChanged) {
			t.Fatalf("Finish of a stale generation: %v, want ErrChanged", err)
		}
		if err := s.SetState(rec.Ino, gen, StateFailed, "x"); !errors.Is(err, ErrChanged) {
			t.Fatalf("SetState with a stale generation: %v, want ErrChanged", err)
		}
		if p, _ := s.Pending(); len(p) != 1 || p[0] != rec.Ino {
			t.Fatalf("Pending() = %v, want [%d]", p, rec.Ino)
		}
		got, gen := committed(t, s, rec.Ino)
		if string(got) != "0123456789x" {
			t.Fatalf("committed = %q", got)
		}
		if err := s.Finish(rec.Ino, gen); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if _, err := s.Get(rec.Ino); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Finish: %v, want ErrNotFound", err)
		}
		if _, err := s.Lookup("syn1", "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup after Finish: %v, want ErrNotFound", err)
		}
		if p, _ := s.Pending(); len(p) != 0 {
			t.Fatalf("Pending() after Finish = %v, want []", p)
		}
		if n := countChunks(t, s, rec.Ino); n != 0 {
			t.Fatalf("%d chunks left after Finish", n)
		}
		if u := s.Used(); u != 0 {
			t.Fatalf("Used() after Finish = %d, want 0", u)
		}
	})
}

func TestFinishWhileOpen(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 8})
	rec, f := create(t, s, "syn1", "a")
	writeAt(t, f, []byte("hello world"), 0)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	_, gen := committed(t, s, rec.Ino)
	if err := s.Finish(rec.Ino, gen); err != nil {
		t.Fatalf("Finish with an open, synced handle: %v", err)
	}
	if _, err := s.Lookup("syn1", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup after Finish: %v, want ErrNotFound", err)
	}
	if u := s.Used(); u != 0 {
		t.Errorf("Used() after Finish = %d, want 0", u)
	}
	if got := readAll(t, f); string(got) != "hello world" {
		t.Errorf("open handle reads %q after Finish", got)
	}
	// Writing again stages the file again, at the same place.
	writeAt(t, f, []byte("!"), 11)
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Lookup("syn1", "a")
	if err != nil || r.Ino != rec.Ino || r.State != StateDirty || r.Size != 12 {
		t.Fatalf("Lookup after rewrite = %+v, %v", r, err)
	}
	if u := s.Used(); u != 12 {
		t.Errorf("Used() = %d, want 12", u)
	}
	// Finished while open and not changed: the last Release deletes it.
	f, _ = s.OpenFile(rec.Ino)
	_, gen = committed(t, s, rec.Ino)
	if err := s.Finish(rec.Ino, gen); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(rec.Ino); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the last Release: %v, want ErrNotFound", err)
	}
}

func TestReaderDetectsChange(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 4})
	rec, f := create(t, s, "p", "n")
	writeAt(t, f, []byte("abcdefgh"), 0)
	f.Flush()
	r, _, _, err := s.Reader(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := r.ReadAt(buf, 0); err != nil || string(buf) != "abcd" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	writeAt(t, f, []byte("WXYZ"), 0) // a whole chunk: written to Badger at once
	if _, err := r.ReadAt(buf, 0); !errors.Is(err, ErrChanged) {
		t.Fatalf("ReadAt after a write = %v, want ErrChanged", err)
	}
	f.Release()
	if _, err := r.ReadAt(buf, 0); !errors.Is(err, ErrChanged) {
		t.Fatalf("ReadAt after flush = %v, want ErrChanged", err)
	}
	s.Remove(rec.Ino)
	if _, err := r.ReadAt(buf, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadAt after Remove = %v, want ErrNotFound", err)
	}
}

func TestSharedFileObject(t *testing.T) {
	s := memStore(t, Options{})
	rec, f1 := create(t, s, "p", "n")
	f2, err := s.OpenFile(rec.Ino)
	if err != nil || f2 != f1 {
		t.Fatalf("second OpenFile = %p, %v; want the same object %p", f2, err, f1)
	}
	// Two writers: the file stays Open until the last one ends.
	f1.BeginWrite()
	f2.BeginWrite()
	writeAt(t, f1, []byte("abc"), 0)
	if err := f1.Flush(); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(rec.Ino); r.State != StateOpen || !s.Writing(rec.Ino) {
		t.Errorf("state after Flush with writers open = %v (writing %v), want open", r.State, s.Writing(rec.Ino))
	}
	if err := f1.EndWrite(); err != nil {
		t.Fatal(err)
	}
	f1.Release()
	if r, _ := s.Get(rec.Ino); r.State != StateOpen {
		t.Errorf("state with one writer left = %v, want open", r.State)
	}
	if err := f2.EndWrite(); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(rec.Ino); r.State != StateDirty || s.Writing(rec.Ino) {
		t.Errorf("state after the last writer = %v, want dirty", r.State)
	}
	if got := readAll(t, f2); string(got) != "abc" {
		t.Errorf("other handle reads %q, want abc", got)
	}
	mt := time.Unix(1234567, 0)
	if err := s.SetMtime(rec.Ino, mt); err != nil || !f2.Mtime().Equal(mt) {
		t.Errorf("SetMtime: %v; open file's mtime %v, want %v", err, f2.Mtime(), mt)
	}
	f2.Release()
	if r, _ := s.Get(rec.Ino); r.State != StateDirty || !r.Mtime.Equal(mt) {
		t.Errorf("after the last Release: state %v mtime %v, want dirty %v", r.State, r.Mtime, mt)
	}
	if err := f2.Release(); !errors.Is(err, ErrClosed) {
		t.Errorf("extra Release = %v, want ErrClosed", err)
	}
}

func TestMaxSize(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 16, MaxSize: 100, SpaceWait: time.Minute})
	a, fa := create(t, s, "p", "a")
	writeAt(t, fa, make([]byte, 80), 0)
	fa.Release()
	_, fb := create(t, s, "p", "b")
	res := make(chan error, 1)
	go func() {
		_, err := fb.WriteAt(context.Background(), make([]byte, 50), 0)
		res <- err
	}()
	waitFor(t, "a writer waiting for space", func() bool { return s.Stats().Waiting == 1 })
	select {
	case err := <-res:
		t.Fatalf("write over MaxSize returned %v before space was freed", err)
	default:
	}
	_, gen := committed(t, s, a.Ino)
	if err := s.Finish(a.Ino, gen); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("blocked write after Finish: %v", err)
	}
	if u := s.Used(); u != 50 {
		t.Errorf("Used() = %d, want 50", u)
	}
	fb.Release()
}

func TestNoSpace(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 16, MaxSize: 100, SpaceWait: 20 * time.Millisecond})
	bg := context.Background()
	rec, f := create(t, s, "p", "a")
	writeAt(t, f, make([]byte, 100), 0)
	// Overwrites inside the file need no space.
	writeAt(t, f, []byte{1, 2, 3}, 10)
	// Shrinking gives space back.
	if err := f.Truncate(bg, 50); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, make([]byte, 50), 50)
	if u := s.Used(); u != 100 {
		t.Errorf("Used() = %d, want 100", u)
	}
	if _, err := f.WriteAt(bg, []byte{1}, 100); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write over MaxSize: %v, want ErrNoSpace", err)
	}
	// The file no longer holds what was written: it is held as failed at
	// once (before any close), and every later write or close says so.
	got, err := s.Get(rec.Ino)
	if err != nil || got.State != StateFailed || !got.Incomplete || got.Err == "" {
		t.Fatalf("record after a failed write: %+v, %v; want failed, incomplete, with a reason", got, err)
	}
	if _, err := f.WriteAt(bg, []byte{1}, 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write after a failed write: %v, want ErrNoSpace", err)
	}
	if err := f.Truncate(bg, 10); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("truncate after a failed write: %v, want ErrNoSpace", err)
	}
	if err := f.Flush(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("flush after a failed write: %v, want ErrNoSpace", err)
	}
	if got, _ := s.Get(rec.Ino); got.State != StateFailed || !got.Incomplete {
		t.Fatalf("record after flush: %+v, want failed and incomplete", got)
	}
	// Truncating to zero starts the content over.
	if err := f.Truncate(bg, 0); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, []byte("whole"), 0)
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(rec.Ino); got.State != StateDirty || got.Incomplete || got.Err != "" || got.Size != 5 {
		t.Fatalf("record after a rewrite: %+v, want dirty, 5 bytes, no error", got)
	}
	// A write that waits for space and is cancelled fails with the cause.
	_, g := create(t, s, "p", "b")
	writeAt(t, g, make([]byte, 95), 0)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := g.WriteAt(ctx, make([]byte, 10), 95); !errors.Is(err, context.Canceled) {
		t.Fatalf("write with a cancelled ctx: %v, want context.Canceled", err)
	}
	f.Release()
	g.Release()
}

// TestFailedWriteCutsToPrefix: the kernel sends a file's pages with
// several WRITEs in flight, so one past a failing WRITE can land first.
// The file is then cut at the lowest failed offset: it reads back, open
// and committed, as exactly the bytes staged before it, never with a hole.
func TestFailedWriteCutsToPrefix(t *testing.T) {
	const cs = 16
	s := memStore(t, Options{ChunkSize: cs, MaxSize: 4 * cs, SpaceWait: 20 * time.Millisecond})
	bg := context.Background()
	src := pattern(6*cs, 3)
	rec, f := create(t, s, "p", "a")
	writeAt(t, f, src[:cs], 0)
	writeAt(t, f, src[2*cs:3*cs], 2*cs) // ahead of the WRITE for [cs, 2cs)
	if _, err := f.WriteAt(bg, src[5*cs:], 5*cs); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write past MaxSize: %v, want ErrNoSpace", err)
	}
	if _, err := f.WriteAt(bg, src[cs:2*cs], cs); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("late write below it: %v, want ErrNoSpace", err)
	}
	if got := readAll(t, f); !bytes.Equal(got, src[:cs]) {
		t.Fatalf("open file reads %d bytes, want the %d staged before the lowest failed write", len(got), cs)
	}
	f.Release()
	if got, _ := committed(t, s, rec.Ino); !bytes.Equal(got, src[:cs]) {
		t.Fatalf("committed %d bytes, want the first %d", len(got), cs)
	}
	if r, err := s.Get(rec.Ino); err != nil || r.Size != cs || !r.Incomplete {
		t.Fatalf("record %+v, %v: want %d bytes, incomplete", r, err, cs)
	}
	if u := s.Used(); u != cs {
		t.Errorf("Used() = %d, want %d: the cut-off bytes are given back", u, cs)
	}
}

func TestIncompleteSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, ChunkSize: 16, MaxSize: 64, SpaceWait: 10 * time.Millisecond, DiskHeadroom: -1})
	rec, f := create(t, s, "p", "a")
	if _, err := f.WriteAt(context.Background(), make([]byte, 100), 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write over MaxSize: %v, want ErrNoSpace", err)
	}
	f.Release()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, Options{Dir: dir, ChunkSize: 16, MaxSize: 64, DiskHeadroom: -1})
	got, err := s.Get(rec.Ino)
	if err != nil || got.State != StateFailed || !got.Incomplete {
		t.Fatalf("after reopen: %+v, %v; want failed and incomplete", got, err)
	}
	f, err = s.OpenFile(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if _, err := f.WriteAt(context.Background(), []byte{1}, 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write to an incomplete file after reopen: %v, want ErrNoSpace", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDirPermsAndLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Options{Dir: dir})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("cache dir mode = %o, want 700", perm)
	}
	_, err = Open(Options{Dir: dir, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "in use by another synfs") {
		t.Fatalf("second Open = %v, want \"in use by another synfs\"", err)
	}
	s.Close()
	s2, err := Open(Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()

	fresh := filepath.Join(t.TempDir(), "a", "b")
	s3 := openStore(t, Options{Dir: fresh})
	s3.Close()
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("new cache dir: %v, mode %o; want 700", err, fi.Mode().Perm())
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, ChunkSize: 1024})
	data := pattern(5000, 9)
	a, f := create(t, s, "syn1", "a")
	writeAt(t, f, data, 0)
	f.Release()
	b, f := create(t, s, "syn1", "b")
	writeAt(t, f, data[:100], 0)
	f.Flush() // still open when the store closes
	e, f2 := create(t, s, "syn1", "empty")
	f2.Release()
	if _, gen := committed(t, s, e.Ino); s.SetState(e.Ino, gen, StateEmpty, "empty") != nil {
		t.Fatal("SetState(Empty) failed")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(context.Background(), []byte("x"), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteAt after Close: %v, want ErrClosed", err)
	}

	s = openStore(t, Options{Dir: dir, ChunkSize: 1024})
	p, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || p[0] != a.Ino || p[1] != b.Ino {
		t.Fatalf("Pending() after reopen = %v, want [%d %d]", p, a.Ino, b.Ino)
	}
	if got, _ := committed(t, s, a.Ino); !bytes.Equal(got, data) {
		t.Errorf("file a differs after reopen")
	}
	ra, _ := s.Get(a.Ino)
	if ra.MD5 != md5hex(data) || ra.State != StateDirty {
		t.Errorf("a after reopen: md5 %q state %v; want %q dirty", ra.MD5, ra.State, md5hex(data))
	}
	rb, _ := s.Get(b.Ino)
	if rb.State != StateDirty || rb.MD5 != md5hex(data[:100]) {
		t.Errorf("b (open at close) after reopen: state %v md5 %q; want dirty, %q", rb.State, rb.MD5, md5hex(data[:100]))
	}
	if got, _ := committed(t, s, b.Ino); !bytes.Equal(got, data[:100]) {
		t.Errorf("file b differs after reopen")
	}
	if u := s.Used(); u != 5100 {
		t.Errorf("Used() after reopen = %d, want 5100", u)
	}
	c, err := s.Create("syn1", "c", "", "")
	if err != nil || c.Ino <= e.Ino {
		t.Errorf("Create after reopen = ino %d, %v; want an ino above %d", c.Ino, err, e.Ino)
	}
}

// A held upload cannot start; an upload under way cannot be held.
func TestHoldUpload(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, s *Store) {
		rec := stage(t, s, "syn1", "a", []byte("0123456789"))
		_, gen := committed(t, s, rec.Ino)
		release, err := s.HoldUpload(rec.Ino)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.HoldUpload(rec.Ino) // holds nest
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetState(rec.Ino, gen, StateUploading, ""); !errors.Is(err, ErrChanged) {
			t.Fatalf("SetState(Uploading) while held: %v, want ErrChanged", err)
		}
		if err := s.SetState(rec.Ino, gen, StateFailed, "x"); err != nil {
			t.Fatalf("SetState(Failed) while held: %v", err)
		}
		release()
		release() // once only
		if err := s.SetState(rec.Ino, gen, StateUploading, ""); !errors.Is(err, ErrChanged) {
			t.Fatalf("SetState(Uploading) while still held once: %v, want ErrChanged", err)
		}
		again()
		if err := s.SetState(rec.Ino, gen, StateUploading, ""); err != nil {
			t.Fatalf("SetState(Uploading) once released: %v", err)
		}
		if _, err := s.HoldUpload(rec.Ino); !errors.Is(err, ErrUploading) {
			t.Fatalf("HoldUpload while uploading: %v, want ErrUploading", err)
		}
		if _, err := s.HoldUpload(9999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("HoldUpload of no file: %v, want ErrNotFound", err)
		}
	})
}

// TestSetMtimeWithWriterOpen: a time set between a writer's writes and its
// flush is recorded by that flush; one set while the writer has changed
// nothing (a touch while the upload is under way) is recorded at once, and
// leaves the upload's state alone.
func TestSetMtimeWithWriterOpen(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 16})
	rec, f := create(t, s, "p", "a")
	f.BeginWrite()
	writeAt(t, f, []byte("abc"), 0)
	t1, t2 := time.Unix(1111111, 0), time.Unix(2222222, 0)
	if err := s.SetMtime(rec.Ino, t1); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(rec.Ino); !r.Mtime.Equal(t1) {
		t.Errorf("Get after SetMtime: mtime %v, want %v", r.Mtime, t1)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.readRecord(rec.Ino); !r.Mtime.Equal(t1) || r.Size != 3 {
		t.Errorf("record after Flush: mtime %v size %d, want %v, 3", r.Mtime, r.Size, t1)
	}
	if err := f.EndWrite(); err != nil {
		t.Fatal(err)
	}
	f.Release()

	// Closed and being uploaded; a writer opens it and changes nothing.
	r, _ := s.Get(rec.Ino)
	if err := s.SetState(rec.Ino, r.Gen, StateUploading, ""); err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFile(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	f.BeginWrite()
	if err := s.SetMtime(rec.Ino, t2); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.readRecord(rec.Ino); !r.Mtime.Equal(t2) || r.State != StateUploading {
		t.Errorf("record after SetMtime during the upload: mtime %v state %v, want %v uploading", r.Mtime, r.State, t2)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.EndWrite(); err != nil {
		t.Fatal(err)
	}
	f.Release()
	if r, _ := s.readRecord(rec.Ino); r.State != StateUploading {
		t.Errorf("record after the touch's close: state %v, want uploading (untouched)", r.State)
	}
}

// A new file costs two Badger commits, its creation and its close: the
// close's flush records the content as Dirty, and the release after it
// has nothing left to write. Between the two, with the writer still open,
// the file reads as Open.
func TestNewFileCommitsTwice(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 1 << 20})
	create(t, s, "p", "first") // reserves a block of inos: one commit per 1,024 files
	before := s.updates.Load()
	rec, f := create(t, s, "p", "a")
	f.BeginWrite()
	writeAt(t, f, bytes.Repeat([]byte("x"), 4096), 0)
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(rec.Ino); r.State != StateOpen {
		t.Errorf("state after the flush, writer open: %v, want Open", r.State)
	}
	if err := f.EndWrite(); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	if n := s.updates.Load() - before; n != 2 {
		t.Errorf("%d commits for a new file, want 2 (create, close)", n)
	}
	r, _ := s.Get(rec.Ino)
	if r.State != StateDirty || r.Size != 4096 || r.MD5 == "" {
		t.Errorf("record after release: state %v size %d MD5 %q; want Dirty, 4096, set", r.State, r.Size, r.MD5)
	}
}
