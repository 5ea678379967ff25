package cache

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// maxPending is how many partly written chunks a file keeps in memory
// before writing them all to Badger.
const maxPending = 8

// touchLocked records a change of content.
func (f *File) touchLocked() {
	f.gen.Add(1)
	f.mtime.Store(f.s.o.Now().UnixNano())
}

// restageLocked makes a file that was uploaded while open staged again,
// because it is about to change.
func (f *File) restageLocked(ctx context.Context) error {
	if !f.done {
		return nil
	}
	size := f.size.Load()
	if err := f.s.reserve(ctx, size); err != nil {
		return err
	}
	f.acct = size
	f.done = false
	f.reindex = true
	return nil
}

// growLocked raises the size to n, reserving space first. The chunk that
// holds the old end is brought into memory so that its bytes past the old
// end read as zeros whatever Badger still holds there.
func (f *File) growLocked(ctx context.Context, n int64) error {
	old := f.size.Load()
	if n <= old {
		return nil
	}
	if need := n - f.acct; need > 0 {
		if err := f.s.reserve(ctx, need); err != nil {
			return err
		}
		f.acct += need
	}
	if cs := f.s.chunk; old%cs != 0 {
		if _, err := f.chunkBufLocked(old/cs, old, false); err != nil {
			return err
		}
	}
	f.size.Store(n)
	return nil
}

// chunkBufLocked returns the in-memory buffer of chunk k, reading it from
// Badger (bytes below limit only) unless whole says it will be overwritten
// entirely.
func (f *File) chunkBufLocked(k, limit int64, whole bool) ([]byte, error) {
	if b, ok := f.pending[k]; ok {
		return b, nil
	}
	cs := f.s.chunk
	b, dirty := f.takeBuf()
	switch {
	case b == nil:
		b = alignedBuf(int(cs))
	case !whole:
		clear(b[:dirty])
	}
	if !whole && k*cs < limit {
		if err := f.readLocked(b[:min(cs, limit-k*cs)], k*cs); err != nil {
			return nil, err
		}
	}
	f.pending[k] = b
	return b, nil
}

// WriteAt writes p at off. It waits (up to SpaceWait, or until ctx is done)
// when MaxSize would be exceeded, then fails with ErrNoSpace.
func (f *File) WriteAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("cache: negative offset")
	}
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return 0, err
	}
	defer leave()
	if err := f.usableLocked(); err != nil {
		return 0, err
	}
	n, err := f.writeAtLocked(ctx, p, off)
	if err != nil && f.werr != nil {
		f.cutLocked(off)
	}
	return n, err
}

// cutLocked shrinks an incomplete file to off, where a write failed. The
// kernel sends a file's pages with several WRITEs in flight, so a WRITE
// past the failed one may have landed first, leaving a hole of zeros
// below the size; cut at the lowest failed offset, the file reads back
// as exactly what was staged: a prefix of what the program wrote.
func (f *File) cutLocked(off int64) {
	if off >= f.size.Load() {
		return
	}
	_ = f.drainLocked() // a failure is recorded already
	f.dropMD5Locked()
	if err := f.shrinkLocked(off, func(*Record) {}, func() {}); err != nil {
		f.s.log.Warn("cache: cutting an incomplete file to what was staged", "ino", f.ino, "err", err)
	}
}

func (f *File) writeAtLocked(ctx context.Context, p []byte, off int64) (int, error) {
	if f.werr != nil {
		return 0, f.werr
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.pipeErr(); err != nil {
		return 0, f.failWriteLocked(err)
	}
	if err := f.s.writable(); err != nil {
		return 0, f.failWriteLocked(err)
	}
	if err := f.restageLocked(ctx); err != nil {
		return 0, f.failWriteLocked(err)
	}
	end := off + int64(len(p))
	old := f.size.Load()
	if err := f.growLocked(ctx, end); err != nil {
		return 0, f.failWriteLocked(err)
	}
	f.touchLocked()
	if f.md5OK && !f.noteWrittenLocked(off, end) {
		f.dropMD5Locked()
	}
	cs := f.s.chunk
	for pos := off; pos < end; {
		k := pos / cs
		in := pos - k*cs
		n := min(cs-in, end-pos)
		b, err := f.chunkBufLocked(k, old, n == cs)
		if err != nil {
			return 0, f.failWriteLocked(err)
		}
		copy(b[in:in+n], p[pos-off:])
		// A chunk goes to the pipe when a write reaches its end, or when
		// a write fills in the last of its bytes elsewhere: the kernel's
		// WRITEs are not aligned to chunks, and arrive out of order.
		if in+n == cs || (f.md5OK && k*cs >= f.hashOff && f.writtenLocked(k*cs, (k+1)*cs)) {
			if err := f.completeLocked(k, b); err != nil {
				return 0, f.failWriteLocked(err)
			}
		}
		pos += n
	}
	if len(f.pending) > maxPending {
		if err := f.writeChunksLocked(f.pendingKeysLocked()); err != nil {
			return 0, f.failWriteLocked(err)
		}
	}
	return len(p), nil
}

// completeLocked hands chunk k, just completed by a write, to the pipe:
// it leaves the pending chunks, and the write returns without waiting for
// Badger or the MD5. The record is marked first, as writeChunksLocked does.
func (f *File) completeLocked(k int64, b []byte) error {
	if err := f.markLocked(); err != nil {
		return err
	}
	hash, keep := f.hashChunkLocked(k, b)
	delete(f.pending, k)
	f.handOffLocked(k, b, hash, keep)
	if hash {
		f.hashAheadLocked()
	}
	return nil
}

// markLocked rewrites the record to StateOpen with MD5 "" and the current
// gen, unless it already is: from then until the next Flush, a crash leaves
// a record that claims no MD5 for chunks it does not describe.
func (f *File) markLocked() error {
	if f.marked {
		return nil
	}
	rec, err := f.s.readRecord(f.ino)
	if err != nil {
		return err
	}
	rec.MD5, rec.Gen = "", f.gen.Load()
	if !rec.Incomplete {
		rec.State = StateOpen
	}
	err = f.s.update(func(txn *badger.Txn) error { return putRecord(txn, rec) })
	if err != nil {
		return err
	}
	f.marked, f.pstate = true, rec.State
	return nil
}

// WriteError is a failed write to a staged file: the file no longer holds
// what the program wrote. errors.Is matches the cause (ErrNoSpace,
// ErrCacheGone, ...).
type WriteError struct {
	Reason string // plain text, as kept in Record.Err
	Err    error  // the cause; nil after a restart
}

func (e *WriteError) Error() string { return e.Reason }

func (e *WriteError) Unwrap() error { return e.Err }

// failWriteLocked makes err, a failed write or grow, stick to the file: the
// content is now incomplete, so it must never be uploaded as if it were
// whole. The record is marked at once (state Failed, Incomplete), so that
// not even a crash before the close lets the flusher take it for complete.
// It returns the error for the caller to return.
func (f *File) failWriteLocked(err error) error {
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrNotFound) {
		return err
	}
	if f.werr != nil {
		return f.werr
	}
	we := &WriteError{Err: err, Reason: "incomplete: a write failed (" + describeWriteErr(err) +
		"), so the file is not uploaded; copy it again or remove it"}
	f.werr = we
	f.gen.Add(1)
	gen := f.gen.Load()
	mark := func(size int64) error {
		return f.s.editRecordLocked(f.ino, func(rec *Record) {
			rec.State, rec.Err, rec.Incomplete, rec.Gen, rec.MD5 = StateFailed, we.Reason, true, gen, ""
			if size >= 0 {
				rec.Size = size
			}
		})
	}
	// First the mark, so that no crash lets the flusher take the file for
	// whole; then the bytes that were accepted, and the size they make, so
	// that the file reads back as what was staged.
	if perr := mark(-1); perr != nil {
		f.s.log.Warn("cache: recording a failed write", "ino", f.ino, "err", perr)
		return we
	}
	f.flushedGen.Store(gen)
	f.pstate, f.marked = StateFailed, true
	_ = f.drainLocked() // the failure is recorded already
	if len(f.pending) == 0 || f.writeChunksLocked(f.pendingKeysLocked()) == nil {
		_ = mark(f.size.Load())
	}
	return we
}

// Failed returns the write failure that made the file incomplete, or nil.
func (f *File) Failed() error {
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return err
	}
	defer leave()
	return f.werr
}

// causeOf recovers the cause of a failed write from its recorded reason,
// after a restart.
func causeOf(reason string) error {
	for _, err := range []error{ErrNoSpace, ErrCacheGone} {
		if strings.Contains(reason, "("+describeWriteErr(err)+")") {
			return err
		}
	}
	return ErrIncomplete
}

func describeWriteErr(err error) string {
	switch {
	case errors.Is(err, ErrNoSpace):
		return "the write cache is full"
	case errors.Is(err, ErrCacheGone):
		return "the cache directory is gone"
	}
	return err.Error()
}

func (f *File) pendingKeysLocked() []int64 {
	ks := make([]int64, 0, len(f.pending))
	for k := range f.pending {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// writeChunksLocked writes chunks ks from memory to Badger, marking the
// record first if it is not marked yet. It drains the pipe first, so that
// an older copy of one of ks cannot land after it.
func (f *File) writeChunksLocked(ks []int64) error {
	w, err := f.writeArenaLocked(ks)
	if err != nil {
		return err
	}
	var mark *Record
	if !f.marked {
		rec, err := f.s.readRecord(f.ino)
		if err != nil {
			w.abandon(f)
			return err
		}
		rec.MD5, rec.Gen = "", f.gen.Load()
		if !rec.Incomplete {
			rec.State = StateOpen
		}
		mark = rec
	}
	err = f.s.batch(func(wb *badger.WriteBatch) error {
		if mark != nil {
			if err := putRecord(wb, mark); err != nil {
				return err
			}
		}
		return w.set(wb)
	})
	if err != nil {
		w.abandon(f)
		return err
	}
	if mark != nil {
		f.marked, f.pstate = true, mark.State
	}
	w.committedLocked(f)
	return nil
}

// arenaWrites are chunks written to their arena slots whose pointers are
// not committed yet: the caller commits them (set) with whatever else its
// transaction holds, then calls committedLocked, or abandon if the commit
// failed.
type arenaWrites struct {
	ks    []int64  // the chunks, all leaving the pending ones
	size  int64    // the file's size when they were written
	keys  [][]byte // b/ keys of the chunks within the size,
	ptrs  [][]byte // and their pointers
	fresh []int64  // chunks whose slots are new, given back by abandon
}

// writeArenaLocked writes pending chunks ks into their arena slots. It
// drains the pipe first, so that an older copy of one of ks cannot land
// after it, and marks the record before a slot is rewritten in place.
// Chunks past the size are only dropped.
func (f *File) writeArenaLocked(ks []int64) (*arenaWrites, error) {
	if err := f.drainLocked(); err != nil {
		return nil, err
	}
	if err := f.markBeforeInPlaceLocked(ks); err != nil {
		return nil, err
	}
	s := f.s
	w := &arenaWrites{ks: ks, size: f.size.Load()}
	for _, k := range ks {
		b := f.pending[k]
		if n := min(s.chunk, w.size-k*s.chunk); n > 0 {
			ptr, isNew, err := f.writeChunk(k, b[:n])
			if isNew {
				w.fresh = append(w.fresh, k)
			}
			if err != nil {
				w.abandon(f)
				return nil, err
			}
			w.keys = append(w.keys, blockKey(f.ino, k))
			w.ptrs = append(w.ptrs, ptr)
		}
	}
	return w, nil
}

// set adds the chunks' pointers to w.
func (a *arenaWrites) set(w kv) error {
	for i, k := range a.keys {
		if err := w.Set(k, a.ptrs[i]); err != nil {
			return err
		}
	}
	return nil
}

// abandon gives back the slots the chunks took new; the chunks stay
// pending.
func (a *arenaWrites) abandon(f *File) { f.unclaim(a.fresh) }

// committedLocked drops the chunks from the pending ones once their
// pointers are committed.
func (a *arenaWrites) committedLocked(f *File) {
	s := f.s
	for _, k := range a.ks {
		// The bytes are in the arena and nothing else refers to the
		// buffer; past the size it is zero (pending chunks are).
		s.bufs.put(f.pending[k], int(min(s.chunk, a.size-k*s.chunk)))
		delete(f.pending, k)
	}
}

// markBeforeInPlaceLocked marks the record (markLocked) before chunks ks
// are written, if one of them has a slot already: its bytes are rewritten
// in place and reach the arena before any commit, so a crash in between
// must find a record that claims no MD5. Chunks without a slot go to new
// slots, which no record names until their pointers are committed.
func (f *File) markBeforeInPlaceLocked(ks []int64) error {
	if f.marked {
		return nil
	}
	for _, k := range ks {
		_, has, err := f.lookupSlot(k)
		if err != nil {
			return err
		}
		if has {
			return f.markLocked()
		}
	}
	return nil
}
