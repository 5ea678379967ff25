package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const benchBytes = 256 << 20

// BenchmarkSequentialWrite writes 256 MiB in 128 KiB writes (the kernel's
// FUSE write size) into an on-disk store, then Syncs.
func BenchmarkSequentialWrite(b *testing.B) {
	buf := pattern(128<<10, 1)
	b.SetBytes(benchBytes)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		s, err := Open(Options{Dir: filepath.Join(b.TempDir(), "c"), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		rec, _ := s.Create("syn1", "bench", "", "")
		f, _ := s.OpenFile(rec.Ino)
		b.StartTimer()
		for off := 0; off < benchBytes; off += len(buf) {
			if _, err := f.WriteAt(context.Background(), buf, int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.Release()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkSequentialWritePlainFile is the baseline: the same writes to a
// plain file, then fsync.
func BenchmarkSequentialWritePlainFile(b *testing.B) {
	buf := pattern(128<<10, 1)
	b.SetBytes(benchBytes)
	for b.Loop() {
		b.StopTimer()
		f, err := os.Create(filepath.Join(b.TempDir(), "plain"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for off := 0; off < benchBytes; off += len(buf) {
			if _, err := f.WriteAt(buf, int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.Close()
		b.StartTimer()
	}
}

// stageSmall stages one 4 KiB file as the mount does for a `cp`: CREATE
// (Create, OpenFile, BeginWrite), WRITE, SETATTR of the mtime, FLUSH,
// RELEASE (EndWrite, Release).
func stageSmall(b *testing.B, s *Store, parent, name string, buf []byte) {
	rec, err := s.Create(parent, name, "", "")
	if err != nil {
		b.Fatal(err)
	}
	f, err := s.OpenFile(rec.Ino)
	if err != nil {
		b.Fatal(err)
	}
	f.BeginWrite()
	if _, err := f.WriteAt(context.Background(), buf, 0); err != nil {
		b.Fatal(err)
	}
	if err := s.SetMtime(rec.Ino, time.Now()); err != nil {
		b.Fatal(err)
	}
	if err := f.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.EndWrite(); err != nil {
		b.Fatal(err)
	}
	if err := f.Release(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStageSmallFile is the cache's share of staging one small file
// (the daemon's CPU per file of `cp -r`, besides the FUSE requests).
func BenchmarkStageSmallFile(b *testing.B) {
	s := benchStore(b)
	buf := pattern(4<<10, 1)
	for i := 0; b.Loop(); i++ {
		stageSmall(b, s, "syn1", fmt.Sprintf("f%d", i), buf)
	}
}

// BenchmarkListStaged lists a folder of 1,500 staged files and looks each
// up, as a warm `ls -l` of it does (READDIR, then a LOOKUP per name).
func BenchmarkListStaged(b *testing.B) {
	s := benchStore(b)
	buf := pattern(4<<10, 1)
	for i := range 1500 {
		stageSmall(b, s, "syn1", fmt.Sprintf("f%d", i), buf)
	}
	for b.Loop() {
		recs, err := s.List("syn1")
		if err != nil || len(recs) != 1500 {
			b.Fatalf("List: %d records, %v", len(recs), err)
		}
		for _, r := range recs {
			if _, err := s.Lookup("syn1", r.Name); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchStore opens a Store on disk for a benchmark, closed at its end.
func benchStore(b *testing.B) *Store {
	s, err := Open(Options{Dir: filepath.Join(b.TempDir(), "c"), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
