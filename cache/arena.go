package cache

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// The chunk arena. File bytes live outside Badger, in one sparse file,
// Dir/chunks.data, cut into slots of MaxChunkSize bytes; Badger holds
// only a 12-byte pointer per chunk (b/<ino><chunk> → slot, length).
// Writing a chunk is one pwrite into the page cache, where Badger's value
// log cost a copy into a freshly mapped page (zeroed by the kernel first),
// a CRC and a second copy; freeing a chunk punches a hole, so the disk
// space comes back at once instead of after a value-log GC.
//
// One file with one descriptor, not a file per staged file: the
// descriptor keeps every staged byte readable for upload even if the
// cache directory is deleted under a running mount (health.go), whatever
// the number of staged files.
//
// Crash safety rests on order: a chunk's bytes are written before the
// pointer that names them is committed, and a slot is reused only after
// the pointer's deletion is committed. At Open, every slot no pointer
// names is free and its blocks are punched out (recoverArena).
const (
	arenaName = "chunks.data"
	slotSize  = MaxChunkSize
	ptrLen    = 12 // slot:8 length:4
)

// arena is where chunk bytes are kept: a file, or memory (InMemory).
type arena interface {
	WriteAt(p []byte, off int64) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	// Punch frees the storage of [off, off+n); it then reads as zeros.
	Punch(off, n int64) error
	// Truncate drops everything from size on.
	Truncate(size int64) error
	Sync() error
	// Allocated returns the bytes of storage in use.
	Allocated() int64
	Close() error
}

// fileArena is the arena file. A hole punch that the file system does not
// support leaves the blocks allocated; they are reused.
//
// Chunks are written with direct I/O where the file system allows it (a
// second descriptor opened O_DIRECT): the bytes go from the chunk buffer
// to the disk without a copy into the page cache. Through FUSE the staged
// bytes already sit in the kernel's cache of the mounted file; a second
// cached copy cost more CPU than everything else in staging (a profile of
// a 2 GiB cp: 4.3 of 8.5 s in pwrite) and memory the machine could use.
// Reads, punches and syncs use the first descriptor; the kernel keeps the
// two coherent (a direct write drops the cached pages of its range).
// Small chunks (under directMin: small files, the tails of large ones) and
// writes direct I/O cannot take (an unaligned buffer or offset, or a file
// system that answers EINVAL) go through the page cache as before: a
// direct write waits for the disk, which costs a small file more than the
// copy it saves (1,000 × 4 KiB: 1.36–1.38 s direct, 0.97–1.03 s buffered).
type fileArena struct {
	f      *os.File
	d      *os.File    // O_DIRECT; nil when the file system refused it
	direct atomic.Bool // d is still worth trying
}

// dioAlign is the alignment direct I/O wants of buffers, offsets and
// lengths: 4096 covers every logical block size Linux supports below it.
const dioAlign = 4096

// directMin is the smallest chunk written with direct I/O.
const directMin = 256 << 10

func openFileArena(dir string) (*fileArena, error) {
	name := filepath.Join(dir, arenaName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	a := &fileArena{f: f}
	if d, err := os.OpenFile(name, os.O_WRONLY|unix.O_DIRECT, 0); err == nil {
		a.d = d
		a.direct.Store(true)
	}
	return a, nil
}

func (a *fileArena) WriteAt(p []byte, off int64) (int, error) {
	if n, ok, err := a.writeDirect(p, off); ok {
		return n, err
	}
	n, err := a.f.WriteAt(p, off)
	return n, noSpace(err)
}

// writeDirect writes p at off through the O_DIRECT descriptor, rounded up
// to dioAlign with whatever bytes follow p in its buffer (a slot's bytes
// past its chunk's length are never read; the rounded write stays in the
// slot, since len(p) <= slotSize, a multiple of dioAlign). ok false means it did not
// try, or the file system refused, and the write must be buffered.
func (a *fileArena) writeDirect(p []byte, off int64) (n int, ok bool, err error) {
	r := (len(p) + dioAlign - 1) &^ (dioAlign - 1)
	if !a.direct.Load() || len(p) < directMin || off%dioAlign != 0 || r > cap(p) ||
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))%dioAlign != 0 {
		return 0, false, nil
	}
	if _, err := a.d.WriteAt(p[:r], off); err != nil {
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP) {
			a.direct.Store(false) // the file system does not take direct I/O
			return 0, false, nil
		}
		return 0, true, noSpace(err)
	}
	return len(p), true, nil
}

// noSpace marks a full disk or quota as ErrNoSpace.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", ErrNoSpace, err)
	}
	return err
}

// alignedBuf returns n bytes whose first is aligned to dioAlign, so a
// chunk buffer can be written with direct I/O.
func alignedBuf(n int) []byte {
	b := make([]byte, n+dioAlign)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (dioAlign - 1))
	return b[off : off+n]
}

// ReadAt reads p at off; bytes past the end of the file read as zeros.
func (a *fileArena) ReadAt(p []byte, off int64) (int, error) {
	n, err := a.f.ReadAt(p, off)
	if err != nil && n < len(p) {
		if !errors.Is(err, io.EOF) {
			return n, err
		}
		clear(p[n:])
	}
	return len(p), nil
}

func (a *fileArena) Punch(off, n int64) error {
	err := unix.Fallocate(int(a.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	return err
}

func (a *fileArena) Truncate(size int64) error { return a.f.Truncate(size) }

func (a *fileArena) Sync() error { return unix.Fdatasync(int(a.f.Fd())) }

func (a *fileArena) Allocated() int64 {
	var st unix.Stat_t
	if unix.Fstat(int(a.f.Fd()), &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

func (a *fileArena) Close() error {
	err := a.f.Close()
	if a.d != nil {
		err = errors.Join(err, a.d.Close())
	}
	return err
}

// memArena keeps slots in memory. Reads and writes never cross a slot.
type memArena struct {
	mu    sync.Mutex
	slots map[int64][]byte
}

func (a *memArena) WriteAt(p []byte, off int64) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, in := off/slotSize, off%slotSize
	b := a.slots[s]
	if need := in + int64(len(p)); int64(len(b)) < need {
		b = append(b, make([]byte, need-int64(len(b)))...)
	}
	copy(b[in:], p)
	a.slots[s] = b
	return len(p), nil
}

func (a *memArena) ReadAt(p []byte, off int64) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, in := off/slotSize, off%slotSize
	n := 0
	if b := a.slots[s]; in < int64(len(b)) {
		n = copy(p, b[in:])
	}
	clear(p[n:])
	return len(p), nil
}

func (a *memArena) Punch(off, n int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for s := off / slotSize; s*slotSize < off+n; s++ {
		delete(a.slots, s)
	}
	return nil
}

func (a *memArena) Truncate(size int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for s := range a.slots {
		if s*slotSize >= size {
			delete(a.slots, s)
		}
	}
	return nil
}

func (a *memArena) Sync() error { return nil }

func (a *memArena) Allocated() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, b := range a.slots {
		n += int64(len(b))
	}
	return n
}

func (a *memArena) Close() error { return nil }

// slotHeap is a min-heap of free slots: the lowest is reused first, so
// the arena file stays as short as the data it holds allows.
type slotHeap []uint64

func (h slotHeap) Len() int           { return len(h) }
func (h slotHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h slotHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *slotHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *slotHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// slots allocates arena slots.
type slots struct {
	mu   sync.Mutex // a leaf
	next uint64     // slots [next, ∞) were never handed out
	free slotHeap
}

func (sl *slots) alloc() uint64 {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if len(sl.free) > 0 {
		return heap.Pop(&sl.free).(uint64)
	}
	sl.next++
	return sl.next - 1
}

func (sl *slots) release(ss ...uint64) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	for _, s := range ss {
		heap.Push(&sl.free, s)
	}
}

// chunkPtr is the value of a b/ key: where a chunk's bytes are and how
// many there are (a chunk is cut at the file's size when written; bytes
// past n read as zeros).
type chunkPtr struct {
	slot uint64
	n    int
}

func (p chunkPtr) encode() []byte {
	v := make([]byte, ptrLen)
	binary.BigEndian.PutUint64(v, p.slot)
	binary.BigEndian.PutUint32(v[8:], uint32(p.n))
	return v
}

func decodeChunkPtr(v []byte) (chunkPtr, error) {
	if len(v) != ptrLen {
		return chunkPtr{}, fmt.Errorf("cache: corrupt chunk pointer (%d bytes)", len(v))
	}
	p := chunkPtr{slot: binary.BigEndian.Uint64(v), n: int(binary.BigEndian.Uint32(v[8:]))}
	if p.n > slotSize || p.slot > 1<<40 {
		return chunkPtr{}, fmt.Errorf("cache: corrupt chunk pointer (slot %d, %d bytes)", p.slot, p.n)
	}
	return p, nil
}

// getChunkPtr returns chunk k's pointer, or ok false if it has none.
func getChunkPtr(txn *badger.Txn, ino uint64, k int64) (p chunkPtr, ok bool, err error) {
	item, err := txn.Get(blockKey(ino, k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return chunkPtr{}, false, nil
	}
	if err != nil {
		return chunkPtr{}, false, err
	}
	err = item.Value(func(v []byte) error {
		p, err = decodeChunkPtr(v)
		return err
	})
	return p, err == nil, err
}

// readChunk copies chunk k's bytes from offset in into dst, and zeros the
// part of dst the chunk does not cover.
func (s *Store) readChunk(txn *badger.Txn, ino uint64, k, in int64, dst []byte) error {
	p, ok, err := getChunkPtr(txn, ino, k)
	if err != nil {
		return err
	}
	n := 0
	if ok && in < int64(p.n) {
		n = int(min(int64(len(dst)), int64(p.n)-in))
		if _, err := s.arena.ReadAt(dst[:n], int64(p.slot)*slotSize+in); err != nil {
			return fmt.Errorf("cache: read chunk: %w", err)
		}
	}
	clear(dst[n:])
	return nil
}

// chunkSlot returns the slot that holds (or is to hold) chunk k of f: the
// one it has, or a new one. The second result says the slot is new, so a
// failed commit must give it back. Only the pipe, or a holder of the ino
// lock with the pipe drained, writes f's chunks, so two writers never ask
// for the same chunk at once.
func (f *File) chunkSlot(k int64) (uint64, bool, error) {
	slot, ok, err := f.lookupSlot(k)
	if err != nil || ok {
		return slot, false, err
	}
	slot = f.s.slots.alloc()
	f.smu.Lock()
	f.slots[k] = slot
	f.smu.Unlock()
	return slot, true, nil
}

// lookupSlot returns the slot chunk k of f has, if it has one: the one
// this File handed out or looked up before, or the one its committed
// pointer names (remembered from then on).
func (f *File) lookupSlot(k int64) (uint64, bool, error) {
	f.smu.Lock()
	s, ok := f.slots[k]
	f.smu.Unlock()
	if ok {
		return s, true, nil
	}
	var p chunkPtr
	err := f.s.db.View(func(txn *badger.Txn) error {
		var err error
		p, ok, err = getChunkPtr(txn, f.ino, k)
		return err
	})
	if err != nil || !ok {
		return 0, false, err
	}
	f.smu.Lock()
	f.slots[k] = p.slot
	f.smu.Unlock()
	return p.slot, true, nil
}

// forgetSlots drops f's memory of the slots of chunks from and up (they
// are being freed). A nil f is ignored.
func (f *File) forgetSlots(from int64) {
	if f == nil {
		return
	}
	f.smu.Lock()
	defer f.smu.Unlock()
	for k := range f.slots {
		if k >= from {
			delete(f.slots, k)
		}
	}
}

// unclaim forgets the slots chunkSlot handed out for ks, whose pointers
// may not have been committed. It does not free them: a batch that failed
// may have committed some pointers, and a later copy of the chunk may have
// reused the slot. Leaked slots are found free at the next Open.
func (f *File) unclaim(ks []int64) {
	if len(ks) == 0 {
		return
	}
	f.smu.Lock()
	defer f.smu.Unlock()
	for _, k := range ks {
		delete(f.slots, k)
	}
}

// writeChunk writes b, chunk k of f, into its slot and returns the
// pointer to commit. fresh says the slot is new.
func (f *File) writeChunk(k int64, b []byte) (ptr []byte, fresh bool, err error) {
	slot, fresh, err := f.chunkSlot(k)
	if err != nil {
		return nil, false, err
	}
	if _, err := f.s.arena.WriteAt(b, int64(slot)*slotSize); err != nil {
		return nil, fresh, fmt.Errorf("cache: write chunk: %w", err)
	}
	return chunkPtr{slot: slot, n: len(b)}.encode(), fresh, nil
}

// freeSlots punches the slots' blocks out and makes them free. Their
// pointers must be deleted (committed) already.
func (s *Store) freeSlots(ss []uint64) {
	if len(ss) == 0 {
		return
	}
	for _, sl := range ss {
		if err := s.arena.Punch(int64(sl)*slotSize, slotSize); err != nil {
			s.log.Warn("cache: freeing chunk space", "err", err)
		}
	}
	s.slots.release(ss...)
}

// recoverArena runs at Open, before migrateChunks and recover (which free
// slots through the allocator it sets up): the slots the pointers name
// are in use, every other one is free, and its blocks (left by a crash
// between a pointer's deletion and the hole punch, or by a chunk written
// and never committed) are punched out; the file is cut after the last
// slot in use.
func (s *Store) recoverArena() error {
	used := map[uint64]bool{}
	var top uint64    // one past the highest slot in use
	var dups [][]byte // pointers to a slot another pointer names
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabBlock), PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				p, err := decodeChunkPtr(v)
				if err != nil {
					return err
				}
				if used[p.slot] {
					// Only a power loss between syncs can leave this
					// (the page cache wrote Badger's log out of order).
					dups = append(dups, it.Item().KeyCopy(nil))
					return nil
				}
				used[p.slot] = true
				top = max(top, p.slot+1)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range dups {
		ino, chunk, _ := parseBlockKey(k)
		s.log.Error("cache: two staged chunks claim one place in "+arenaName+" (after a power loss?): the second reads as zeros and its file's MD5 is recomputed",
			"ino", ino, "chunk", chunk)
		err := s.update(func(txn *badger.Txn) error {
			if rec, err := getRecord(txn, ino); err == nil {
				rec.MD5 = ""
				if err := putRecord(txn, rec); err != nil {
					return err
				}
			}
			return txn.Delete(k)
		})
		if err != nil {
			return err
		}
	}
	if err := s.arena.Truncate(int64(top) * slotSize); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	s.slots.next = top
	for sl := uint64(0); sl < top; {
		if used[sl] {
			sl++
			continue
		}
		start := sl
		for sl < top && !used[sl] {
			s.slots.free = append(s.slots.free, sl)
			sl++
		}
		if err := s.arena.Punch(int64(start)*slotSize, int64(sl-start)*slotSize); err != nil {
			s.log.Warn("cache: freeing chunk space", "err", err)
		}
	}
	heap.Init(&s.slots.free)
	return nil
}

// migrateChunks moves chunk bytes kept in Badger by earlier versions of
// synfs (c/ keys) into the arena, a few at a time, each move one
// transaction: the pointer is set and the old key deleted together.
func (s *Store) migrateChunks() error {
	moved := 0
	for {
		type old struct {
			key []byte
			val []byte
		}
		var batch []old
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabChunk), PrefetchValues: false})
			defer it.Close()
			for it.Rewind(); it.Valid() && len(batch) < 16; it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				batch = append(batch, old{it.Item().KeyCopy(nil), v})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		for _, o := range batch {
			ino, k, ok := parseChunkKey(o.key)
			if !ok || len(o.val) > slotSize {
				s.log.Error("cache: dropping a corrupt chunk of the old format", "key", fmt.Sprintf("%x", o.key), "bytes", len(o.val))
				if err := s.update(func(txn *badger.Txn) error { return txn.Delete(o.key) }); err != nil {
					return err
				}
				continue
			}
			slot := s.slots.alloc()
			if _, err := s.arena.WriteAt(o.val, int64(slot)*slotSize); err != nil {
				return fmt.Errorf("cache: moving staged bytes to %s: %w", arenaName, err)
			}
			err := s.update(func(txn *badger.Txn) error {
				if err := txn.Set(blockKey(ino, k), chunkPtr{slot: slot, n: len(o.val)}.encode()); err != nil {
					return err
				}
				return txn.Delete(o.key)
			})
			if err != nil {
				return err
			}
			moved++
		}
	}
	if moved > 0 {
		s.log.Info("cache: moved staged bytes out of the database into "+arenaName, "chunks", moved)
		s.noteFreed(int64(moved) * slotSize)
	}
	return nil
}
