package cache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// Removing or truncating a staged file gives its disk space back at once
// (no value-log GC needed), and the freed slots are reused.
func TestArenaFreesAndReusesSpace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := openStore(t, Options{Dir: dir})
	data := pattern(8<<20, 3)
	rec := stage(t, s, "p", "big", data)
	if got := s.Stats().DataBytes; got < 8<<20 {
		t.Fatalf("arena holds %d bytes for an 8 MiB file", got)
	}
	f, err := s.OpenFile(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(context.Background(), 3<<20+5); err != nil {
		t.Fatal(err)
	}
	f.Release()
	// The arena's size in blocks (st_blocks) also counts the file system's
	// reservations for dirty pages not yet written back (ext4's delayed
	// allocation): the cut chunk is rewritten through the page cache into a
	// slot first written with direct I/O. Once, in a loaded CI run, the
	// count was 4 KiB over the bound, which that would explain (not
	// confirmed). Sync, so that the figure is the blocks in use.
	if err := s.arena.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().DataBytes; got > 4<<20 {
		t.Fatalf("after truncating to 3 MiB the arena holds %d bytes", got)
	}
	if b, _ := committed(t, s, rec.Ino); !bytes.Equal(b, data[:3<<20+5]) {
		t.Fatal("truncated file reads back wrong")
	}
	if err := s.Remove(rec.Ino); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().DataBytes; got != 0 {
		t.Fatalf("after Remove the arena holds %d bytes", got)
	}
	// The next file takes the freed slots: the arena file does not grow.
	fi, _ := os.Stat(filepath.Join(dir, arenaName))
	rec2 := stage(t, s, "p", "next", data[:4<<20])
	fi2, _ := os.Stat(filepath.Join(dir, arenaName))
	if fi2.Size() > fi.Size() {
		t.Fatalf("arena file grew from %d to %d bytes with free slots", fi.Size(), fi2.Size())
	}
	if b, _ := committed(t, s, rec2.Ino); !bytes.Equal(b, data[:4<<20]) {
		t.Fatal("file in reused slots reads back wrong")
	}
}

// Slots no pointer names (a chunk written, then a crash before its pointer
// was committed) are punched out and reused at the next Open.
func TestArenaRecoversLeakedSlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := openStore(t, Options{Dir: dir})
	data := pattern(2<<20, 4)
	rec := stage(t, s, "p", "kept", data)
	// A chunk written far out, never committed.
	if _, err := s.arena.WriteAt(pattern(slotSize, 5), 9*slotSize); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, Options{Dir: dir})
	if got := s.Stats().DataBytes; got > 2<<20+64<<10 {
		t.Fatalf("after reopening the arena holds %d bytes, want about 2 MiB", got)
	}
	if fi, _ := os.Stat(filepath.Join(dir, arenaName)); fi.Size() != 2*slotSize {
		t.Fatalf("arena file is %d bytes long, want it cut after the last slot in use", fi.Size())
	}
	if b, _ := committed(t, s, rec.Ino); !bytes.Equal(b, data) {
		t.Fatal("staged file reads back wrong after reopening")
	}
}

// A cache written by a synfs that kept chunk bytes in Badger (c/ keys)
// opens with its staged files intact: the bytes move to the arena.
func TestArenaMigratesChunksFromBadger(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := openStore(t, Options{Dir: dir, ChunkSize: 4096})
	data := pattern(10_000, 6)
	rec := stage(t, s, "p", "old", data)
	// Rewrite the store in the old format: bytes in c/ keys, no pointers.
	err := s.db.Update(func(txn *badger.Txn) error {
		for k := int64(0); k*4096 < int64(len(data)); k++ {
			if err := txn.Set(chunkKey(rec.Ino, k), data[k*4096:min((k+1)*4096, int64(len(data)))]); err != nil {
				return err
			}
			if err := txn.Delete(blockKey(rec.Ino, k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, Options{Dir: dir, ChunkSize: 4096})
	if b, _ := committed(t, s, rec.Ino); !bytes.Equal(b, data) {
		t.Fatal("migrated file reads back wrong")
	}
	left := 0
	s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabChunk)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			left++
		}
		return nil
	})
	if left != 0 {
		t.Fatalf("%d c/ keys left after the migration", left)
	}
	if got, err := s.Get(rec.Ino); err != nil || got.State != StateDirty || got.Size != int64(len(data)) {
		t.Fatalf("record after migration: %+v, %v", got, err)
	}
}

// checkArena fails the test if a chunk is rewritten in place while the
// record of ino still claims an MD5: a crash right after such a write
// would leave a record whose MD5 is not its bytes'.
type checkArena struct {
	arena
	t        *testing.T
	s        *Store
	ino      uint64
	inPlace  map[int64]bool // offsets of slots written before
	rewrites *int
}

func (a checkArena) WriteAt(p []byte, off int64) (int, error) {
	if a.inPlace[off] {
		*a.rewrites++
		if rec, err := a.s.Get(a.ino); err == nil && rec.MD5 != "" {
			a.t.Errorf("chunk at %d rewritten in place while the record claims MD5 %s", off, rec.MD5)
		}
	}
	a.inPlace[off] = true
	return a.arena.WriteAt(p, off)
}

func TestInPlaceRewriteMarksRecordFirst(t *testing.T) {
	s := memStore(t, Options{ChunkSize: 1024})
	rec, f := create(t, s, "p", "grown")
	n := 0
	ca := checkArena{arena: s.arena, t: t, s: s, ino: rec.Ino, inPlace: map[int64]bool{}, rewrites: &n}
	s.arena = ca
	writeAt(t, f, pattern(1500, 1), 0)
	f.Release()
	if r, _ := s.Get(rec.Ino); r.MD5 == "" {
		t.Fatal("no MD5 after the first close")
	}
	// Append into the partial last chunk: rewritten in its slot at the close.
	f, err := s.OpenFile(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, []byte("x"), 1500)
	f.Release()
	if n == 0 {
		t.Fatal("no chunk was rewritten in place")
	}
}

// resident reports how many of the pages of [off, off+n) of file name are
// in the page cache.
func resident(t *testing.T, name string, off, n int64) int {
	t.Helper()
	fd, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	m, err := unix.Mmap(int(fd.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (int(n)+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return in
}

// A chunk in an aligned buffer is written with direct I/O: it reads back,
// and leaves no copy in the page cache (staged bytes are already cached
// once, in the mounted file). A small chunk, or one in an unaligned
// buffer, is written through the page cache. A direct write over cached pages is what a read sees next.
func TestArenaWritesDirect(t *testing.T) {
	dir := t.TempDir()
	a, err := openFileArena(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.d == nil {
		t.Skip("the file system here refuses O_DIRECT")
	}
	name := filepath.Join(dir, arenaName)
	buf := alignedBuf(slotSize)
	copy(buf, pattern(slotSize, 1))
	const n = 300<<10 + 5 // not a multiple of the block size
	if _, err := a.WriteAt(buf[:n], slotSize); err != nil {
		t.Fatal(err)
	}
	if !a.direct.Load() {
		t.Skip("the file system here answered EINVAL to a direct write")
	}
	if got := resident(t, name, slotSize, n); got != 0 {
		t.Errorf("after a direct write %d pages of the chunk are in the page cache, want 0", got)
	}
	got := make([]byte, n)
	if _, err := a.ReadAt(got, slotSize); err != nil || !bytes.Equal(got, buf[:n]) {
		t.Fatalf("direct chunk reads back wrong (%v)", err)
	}

	// Small: buffered, and cached.
	if _, err := a.WriteAt(buf[:4096], 3*slotSize); err != nil {
		t.Fatal(err)
	}
	if got := resident(t, name, 3*slotSize, 4096); got != 1 {
		t.Errorf("a 4 KiB chunk left %d pages in the page cache, want 1 (small chunks are buffered)", got)
	}

	// Unaligned: buffered, and cached.
	odd := make([]byte, n+1)[1:]
	copy(odd, pattern(n, 2))
	if _, err := a.WriteAt(odd, 2*slotSize); err != nil {
		t.Fatal(err)
	}
	if got := resident(t, name, 2*slotSize, n); got == 0 {
		t.Errorf("a buffered write left no page in the page cache")
	}
	if _, err := a.ReadAt(got, 2*slotSize); err != nil || !bytes.Equal(got, odd) {
		t.Fatalf("buffered chunk reads back wrong (%v)", err)
	}

	// Slot 1 is cached now (read back above); rewrite it directly.
	copy(buf, pattern(slotSize, 3))
	if _, err := a.WriteAt(buf[:n], slotSize); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadAt(got, slotSize); err != nil || !bytes.Equal(got, buf[:n]) {
		t.Fatalf("a direct rewrite of cached pages reads back the old bytes (%v)", err)
	}
	if !a.direct.Load() {
		t.Error("direct I/O was given up")
	}
}
