package cache

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

const crashEnv = "SYNFS_CACHE_CRASH_DIR"

// TestCrashResume stages files in a child process that exits without
// closing the store, then reopens the store and checks what survived.
func TestCrashResume(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashResume$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	data := pattern(10_000, 42)
	s := openStore(t, Options{Dir: dir, ChunkSize: 1024})
	p, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3 {
		t.Fatalf("Pending() after crash = %v, want 3 files", p)
	}
	closed, err := s.Lookup("syn1", "closed")
	if err != nil {
		t.Fatal(err)
	}
	if closed.State != StateDirty || closed.Size != 3000 || closed.MD5 != md5hex(data[:3000]) {
		t.Errorf("closed file: state %v size %d md5 %q; want dirty 3000 %q", closed.State, closed.Size, closed.MD5, md5hex(data[:3000]))
	}
	if got, _ := committed(t, s, closed.Ino); !bytes.Equal(got, data[:3000]) {
		t.Errorf("closed file's bytes differ after crash")
	}
	open, err := s.Lookup("syn1", "open")
	if err != nil {
		t.Fatal(err)
	}
	// Synced at 5000 bytes, then written on to 10000 without a flush: the
	// record keeps the synced size, and its MD5 must be recomputed.
	if open.State != StateDirty || open.Size != 5000 || open.MD5 != "" {
		t.Errorf("open file: state %v size %d md5 %q; want dirty 5000 \"\"", open.State, open.Size, open.MD5)
	}
	if got, _ := committed(t, s, open.Ino); !bytes.Equal(got, data[:5000]) {
		t.Errorf("open file's bytes differ after crash")
	}
	if n := countChunks(t, s, open.Ino); n != 5 {
		t.Errorf("open file has %d chunks after recovery, want 5 (none past its size)", n)
	}
	if sum, _, err := s.ComputeMD5(open.Ino); err != nil || sum != md5hex(data[:5000]) {
		t.Errorf("ComputeMD5 = %q, %v; want %q", sum, err, md5hex(data[:5000]))
	}
	// The file grows again with zeros, not with the lost bytes.
	f, err := s.OpenFile(open.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(context.Background(), 9000); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, data[:5000]...), make([]byte, 4000)...)
	if got := readAll(t, f); !bytes.Equal(got, want) {
		t.Errorf("regrown file shows bytes written after the last flush")
	}
	f.Release()
	// A time set between a writer's writes and its flush is recorded by
	// that flush; one set on a closed file, at once.
	touched, err := s.Lookup("syn1", "touched")
	if err != nil {
		t.Fatal(err)
	}
	if !touched.Mtime.Equal(crashMtime(1)) || touched.Size != 2000 {
		t.Errorf("touched file: mtime %v size %d; want %v, 2000", touched.Mtime, touched.Size, crashMtime(1))
	}
	if got, _ := committed(t, s, touched.Ino); !bytes.Equal(got, data[:2000]) {
		t.Errorf("touched file's bytes differ after crash")
	}
	if !closed.Mtime.Equal(crashMtime(3)) {
		t.Errorf("closed file: mtime %v, want %v (set after its close)", closed.Mtime, crashMtime(3))
	}
}

// crashMtime is the i-th modification time the crash child sets.
func crashMtime(i int) time.Time { return time.Date(2020, 1, i, 12, 0, 0, 0, time.UTC) }

func crashChild(dir string) {
	s, err := Open(Options{Dir: dir, ChunkSize: 1024, Logger: quiet})
	if err != nil {
		panic(err)
	}
	data := pattern(10_000, 42)
	ctx := context.Background()
	rec, _ := s.Create("syn1", "closed", "", "")
	f, _ := s.OpenFile(rec.Ino)
	must(f.WriteAt(ctx, data[:3000], 0))
	must(0, f.Release())
	closedIno := rec.Ino

	rec, _ = s.Create("syn1", "touched", "", "")
	f, _ = s.OpenFile(rec.Ino)
	f.BeginWrite()
	must(f.WriteAt(ctx, data[:2000], 0))
	must(0, s.SetMtime(rec.Ino, crashMtime(1)))
	must(0, f.Flush())
	must(0, s.SetMtime(closedIno, crashMtime(3)))

	rec, _ = s.Create("syn1", "open", "", "")
	f, _ = s.OpenFile(rec.Ino)
	must(f.WriteAt(ctx, data[:5000], 0))
	must(0, f.Sync())
	for off := 5000; off < 10_000; off += 1000 {
		must(f.WriteAt(ctx, data[off:off+1000], int64(off)))
	}
	os.Exit(0) // no Close, no Flush
}

func must(_ int, err error) {
	if err != nil {
		panic(err)
	}
}
