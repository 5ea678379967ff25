package cache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
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
