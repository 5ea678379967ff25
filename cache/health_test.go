package cache

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCacheDirGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	s := openStore(t, Options{Dir: dir})
	done, f := create(t, s, "p", "done")
	writeAt(t, f, []byte("kept while synfs runs"), 0)
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Release()
	if err := s.Health(); err != nil {
		t.Fatalf("Health before: %v", err)
	}
	rec, g := create(t, s, "p", "open")
	writeAt(t, g, []byte("written, not yet closed"), 0)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// close(2) must not report success for bytes that cannot survive.
	if err := g.Flush(); !errors.Is(err, ErrCacheGone) {
		t.Fatalf("Flush after the cache dir was deleted: %v, want ErrCacheGone", err)
	}
	if _, err := g.WriteAt(context.Background(), []byte("more"), 0); !errors.Is(err, ErrCacheGone) {
		t.Fatalf("write after: %v, want ErrCacheGone", err)
	}
	g.Release()
	if got, err := s.Get(rec.Ino); err != nil || got.State != StateFailed || !got.Incomplete {
		t.Fatalf("record of the open file: %+v, %v; want failed and incomplete", got, err)
	}
	if _, err := s.Create("p", "new", "", ""); !errors.Is(err, ErrCacheGone) {
		t.Fatalf("Create after: %v, want ErrCacheGone", err)
	}
	if err := s.Health(); !errors.Is(err, ErrCacheGone) {
		t.Fatalf("Health after: %v, want ErrCacheGone", err)
	}
	// What was staged before can still be read, so it can be uploaded.
	r, size, _, err := s.Reader(done.Ino)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.NewSectionReader(r, 0, size))
	if err != nil || string(b) != "kept while synfs runs" {
		t.Fatalf("read after: %q, %v", b, err)
	}
}

func TestCacheDirReplacedIsNoticed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	s := openStore(t, Options{Dir: dir})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lockName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The watcher notices within a second or two, with no write at all.
	deadline := time.Now().Add(10 * time.Second)
	for s.writable() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not notice a replaced cache directory")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDiskHeadroom(t *testing.T) {
	dir := t.TempDir()
	free, _, err := statDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A headroom above what is free: the disk is "full" for staging. Far
	// above (1 TiB): tests running beside this one free space meanwhile.
	s := openStore(t, Options{Dir: dir, SpaceWait: 20 * time.Millisecond, DiskHeadroom: free + 1<<40, Reserve: -1})
	_, f := create(t, s, "p", "a")
	defer f.Release()
	if _, err := f.WriteAt(context.Background(), []byte("x"), 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write past the disk's headroom: %v, want ErrNoSpace", err)
	}
	if err := s.Health(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Health: %v, want ErrNoSpace", err)
	}
	if _, avail := s.Space(); avail != 0 {
		t.Fatalf("Space avail = %d, want 0", avail)
	}
}

func TestReserveFile(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, Reserve: 1 << 20, DiskHeadroom: 1 << 20})
	p := filepath.Join(dir, reserveName)
	fi, err := os.Stat(p)
	if err != nil {
		t.Skipf("no reserve file (fallocate unsupported here?): %v", err)
	}
	if fi.Size() != 1<<20 {
		t.Fatalf("reserve size %d", fi.Size())
	}
	if !s.releaseReserve("test") {
		t.Fatal("releaseReserve found nothing")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("reserve still there: %v", err)
	}
	s.watchDisk() // plenty of room: made again
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("reserve not made again: %v", err)
	}
}
