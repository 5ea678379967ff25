package cache

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
)

// duBytes is the disk space allocated under dir.
func duBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Sys().(*syscall.Stat_t).Blocks * 512
		}
		return nil
	})
	return n
}

// TestGCAfterDrain stages a few hundred MiB on disk, "uploads" them, and
// checks that value-log GC brings the directory back under 64 MiB.
func TestGCAfterDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	const files, size = 8, 32 << 20
	buf := pattern(128<<10, 5)
	var inos []uint64
	for i := range files {
		rec, f := create(t, s, "syn1", string(rune('a'+i)))
		for off := 0; off < size; off += len(buf) {
			if _, err := f.WriteAt(context.Background(), buf, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Release(); err != nil {
			t.Fatal(err)
		}
		inos = append(inos, rec.Ino)
	}
	full := duBytes(t, dir)
	for _, ino := range inos {
		_, gen := committed(t, s, ino)
		if err := s.Finish(ino, gen); err != nil {
			t.Fatal(err)
		}
	}
	s.GC()
	drained := duBytes(t, dir)
	t.Logf("cache dir: %d MiB staged, %d MiB after drain and GC", full>>20, drained>>20)
	if full < files*size {
		t.Errorf("staged %d bytes on disk, want at least %d", full, files*size)
	}
	if drained > 64<<20 {
		t.Errorf("cache dir is %d MiB after drain, want ≤ 64 MiB", drained>>20)
	}
	st := s.Stats()
	if st.Used != 0 || st.VlogBytes > 64<<20 {
		t.Errorf("Stats after drain: used %d, vlog %d", st.Used, st.VlogBytes)
	}
}
