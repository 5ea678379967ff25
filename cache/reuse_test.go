package cache

import (
	"bytes"
	"testing"
	"time"
)

// TestReusedBuffersReadZeroInHoles: a chunk buffer given back by one file
// and taken by the next must read as zeros wherever the next file has not
// written, whether it came back from a small file's flush (partly dirty)
// or from the pipe (wholly dirty).
func TestReusedBuffersReadZeroInHoles(t *testing.T) {
	const cs = 64 << 10
	s := memStore(t, Options{ChunkSize: cs})
	before := s.bufs.reused.Load()
	for i := range 40 {
		// Dirty buffers to give back: a partial chunk, and whole chunks.
		for _, r := range []*Record{
			stage(t, s, "syn1", "partial", pattern(cs/2+i, uint64(i))),
			stage(t, s, "syn1", "whole", pattern(3*cs+100, uint64(i))),
		} {
			if err := s.Remove(r.Ino); err != nil {
				t.Fatal(err)
			}
		}
		// A file with holes: one byte in the second chunk, one past it.
		rec, f := create(t, s, "syn1", "holes")
		writeAt(t, f, []byte{7}, cs+10)
		writeAt(t, f, []byte{9}, 2*cs+cs/2)
		want := make([]byte, 2*cs+cs/2+1)
		want[cs+10], want[2*cs+cs/2] = 7, 9
		if got := readAll(t, f); !bytes.Equal(got, want) {
			t.Fatalf("round %d: open file's bytes differ from zeros with two bytes set", i)
		}
		if err := f.Release(); err != nil {
			t.Fatal(err)
		}
		if got, _ := committed(t, s, rec.Ino); !bytes.Equal(got, want) {
			t.Fatalf("round %d: committed bytes differ from zeros with two bytes set", i)
		}
		if err := s.Remove(rec.Ino); err != nil {
			t.Fatal(err)
		}
	}
	if s.bufs.reused.Load() == before {
		t.Fatal("no chunk buffer was reused: the test exercised nothing")
	}
}

// TestRecordCacheFollowsChanges: records served from the decoded-record
// cache always show the latest committed change, and a caller changing
// the record it got does not change what the next caller gets.
func TestRecordCacheFollowsChanges(t *testing.T) {
	s := memStore(t, Options{})
	rec := stage(t, s, "syn1", "a.txt", []byte("hello"))
	get := func() *Record {
		t.Helper()
		r, err := s.Get(rec.Ino)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// List and Lookup read through the same cache: each must agree with
	// Get after every change (each is called first, so a stale entry
	// would be there to be found).
	listed := func(parent, name string) *Record {
		t.Helper()
		recs, err := s.List(parent)
		if err != nil {
			t.Fatal(err)
		}
		var found *Record
		for i := range recs {
			if recs[i].Name == name {
				found = &recs[i]
			}
		}
		l, err := s.Lookup(parent, name)
		if found == nil || err != nil {
			t.Fatalf("%s/%s: listed %v, Lookup %v; want both", parent, name, found != nil, err)
		}
		g := get()
		if !found.Mtime.Equal(g.Mtime) || !l.Mtime.Equal(g.Mtime) || found.State != g.State || l.State != g.State || found.Err != g.Err || l.Err != g.Err {
			t.Fatalf("%s/%s: List %+v, Lookup %+v, Get %+v; want the same", parent, name, found, l, g)
		}
		return found
	}
	listed("syn1", "a.txt").Name = "changed through List"
	r := get()
	r.Name, r.Upload = "changed by a caller", &Upload{Gen: 99}
	if r2 := get(); r2.Name != "a.txt" || r2.Upload != nil {
		t.Fatalf("cached record changed by a caller: %+v", r2)
	}
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.SetMtime(rec.Ino, mt); err != nil {
		t.Fatal(err)
	}
	if got := get(); !got.Mtime.Equal(mt) {
		t.Fatalf("after SetMtime: mtime %v, want %v", got.Mtime, mt)
	}
	listed("syn1", "a.txt")
	if err := s.Rename(rec.Ino, "syn2", "b.txt", "dir"); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.ParentID != "syn2" || got.Name != "b.txt" {
		t.Fatalf("after Rename: %s/%s, want syn2/b.txt", got.ParentID, got.Name)
	}
	if recs, err := s.List("syn1"); err != nil || len(recs) != 0 {
		t.Fatalf("after Rename: List(syn1) = %d records, %v; want none", len(recs), err)
	}
	listed("syn2", "b.txt")
	g := get()
	if err := s.SetState(rec.Ino, g.Gen, StateFailed, "refused"); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.State != StateFailed || got.Err != "refused" {
		t.Fatalf("after SetState: %v %q, want failed \"refused\"", got.State, got.Err)
	}
	if got := listed("syn2", "b.txt"); got.State != StateFailed {
		t.Fatalf("after SetState: listed as %v, want failed", got.State)
	}
}
