package cache

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// maxPending is how many partly written chunks a file keeps in memory
// before writing them all to Badger.
const maxPending = 8

// File is the shared, reference-counted object for one staged file with
// open handles. OpenFile returns the same *File to every opener; each
// OpenFile is paired with one Release. Methods are safe for concurrent use.
//
// Writes are assembled into whole chunks in memory and written to Badger
// when a chunk is complete, when too many chunks are partly written, and on
// Flush. The record on disk is rewritten only by Flush (and by Truncate), so
// its Size never claims bytes whose chunks are not written. Before the first
// chunk after a Flush reaches Badger, the record is marked StateOpen with MD5
// "", so after a crash the file is uploaded with a recomputed MD5.
type File struct {
	s   *Store
	ino uint64

	// Written under the ino lock, read anywhere.
	gen        atomic.Uint64 // current generation
	flushedGen atomic.Uint64 // generation described by the record on disk
	size       atomic.Int64
	mtime      atomic.Int64 // Unix nanoseconds
	writers    atomic.Int32 // handles open for writing (BeginWrite .. EndWrite)

	// The ino lock (Store.lockIno) protects the fields below.
	refs     int
	pending  map[int64][]byte // chunk number → ChunkSize buffer; zero beyond size
	md5      hash.Hash        // running MD5 of bytes [0, md5Off)
	md5OK    bool             // writes so far were sequential from 0, so md5Off == size
	md5Off   int64
	marked   bool  // the record on disk is StateOpen with MD5 ""
	pstate   State // state of the record on disk
	acct     int64 // bytes of this file counted in Store.used
	done     bool  // uploaded while open; bytes kept for the handles only
	reindex  bool  // re-add the index entry at the next flush (after done)
	removed  bool  // Store.Remove deleted the file
	released bool  // the last handle was released
	// werr is the first write failure since the content was last
	// replaced (truncate to 0). Once set, writes fail with it at once and
	// the record is held as StateFailed with Incomplete set.
	werr error
}

// OpenFile returns the File for staged file ino, taking one reference.
func (s *Store) OpenFile(ino uint64) (*File, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	unlock := s.lockIno(ino)
	defer unlock()
	if f := s.openFile(ino); f != nil {
		f.refs++
		return f, nil
	}
	rec, err := s.readRecord(ino)
	if err != nil {
		return nil, err
	}
	if rec.State == StateDone {
		return nil, ErrNotFound
	}
	f := &File{
		s:       s,
		ino:     ino,
		refs:    1,
		pending: make(map[int64][]byte),
		marked:  rec.State == StateOpen && rec.MD5 == "",
		pstate:  rec.State,
		acct:    rec.Size,
	}
	if rec.Incomplete {
		f.werr = &WriteError{Reason: rec.Err, Err: causeOf(rec.Err)}
	}
	f.gen.Store(rec.Gen)
	f.flushedGen.Store(rec.Gen)
	f.size.Store(rec.Size)
	f.mtime.Store(rec.Mtime.UnixNano())
	if rec.Size == 0 {
		f.md5, f.md5OK = md5.New(), true
	}
	s.mu.Lock()
	s.files[ino] = f
	s.mu.Unlock()
	return f, nil
}

// Ino returns the file's ino.
func (f *File) Ino() uint64 { return f.ino }

// Size returns the current size, including bytes not yet flushed.
func (f *File) Size() int64 { return f.size.Load() }

// Gen returns the current generation, including changes not yet flushed.
func (f *File) Gen() uint64 { return f.gen.Load() }

// Mtime returns the current modification time.
func (f *File) Mtime() time.Time { return time.Unix(0, f.mtime.Load()) }

// usableLocked reports why f cannot be used, if it cannot.
func (f *File) usableLocked() error {
	switch {
	case f.released:
		return ErrClosed
	case f.removed:
		return ErrNotFound
	}
	return nil
}

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
	b := make([]byte, cs)
	if !whole && k*cs < limit {
		err := f.s.db.View(func(txn *badger.Txn) error {
			return readChunk(txn, f.ino, k, 0, b[:min(cs, limit-k*cs)])
		})
		if err != nil {
			return nil, err
		}
	}
	f.pending[k] = b
	return b, nil
}

// readChunk copies chunk k's bytes from offset in into dst, and zeros the
// part of dst the chunk does not cover.
func readChunk(txn *badger.Txn, ino uint64, k, in int64, dst []byte) error {
	item, err := txn.Get(chunkKey(ino, k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		clear(dst)
		return nil
	}
	if err != nil {
		return err
	}
	return item.Value(func(v []byte) error {
		n := 0
		if in < int64(len(v)) {
			n = copy(dst, v[in:])
		}
		clear(dst[n:])
		return nil
	})
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
	if f.werr != nil {
		return 0, f.werr
	}
	if len(p) == 0 {
		return 0, nil
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
	if f.md5OK {
		if off == f.md5Off {
			f.md5.Write(p)
			f.md5Off = end
		} else {
			f.md5OK = false
		}
	}
	cs := f.s.chunk
	var full []int64
	for pos := off; pos < end; {
		k := pos / cs
		in := pos - k*cs
		n := min(cs-in, end-pos)
		b, err := f.chunkBufLocked(k, old, n == cs)
		if err != nil {
			return 0, f.failWriteLocked(err)
		}
		copy(b[in:in+n], p[pos-off:])
		if in+n == cs {
			full = append(full, k)
		}
		pos += n
	}
	if len(f.pending) > maxPending {
		full = f.pendingKeysLocked()
	}
	if len(full) > 0 {
		if err := f.writeChunksLocked(full); err != nil {
			return 0, f.failWriteLocked(err)
		}
	}
	return len(p), nil
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
		return f.s.update(func(txn *badger.Txn) error {
			rec, err := getRecord(txn, f.ino)
			if err != nil {
				return err
			}
			rec.State, rec.Err, rec.Incomplete, rec.Gen, rec.MD5 = StateFailed, we.Reason, true, gen, ""
			if size >= 0 {
				rec.Size = size
			}
			return putRecord(txn, rec)
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

// Removed reports whether Store.Remove deleted the file while it was open
// (an unlink, or a rename over it): its handles write into nothing.
func (f *File) Removed() bool {
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return false
	}
	defer leave()
	return f.removed
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
// record first if it is not marked yet.
func (f *File) writeChunksLocked(ks []int64) error {
	s := f.s
	var mark *Record
	if !f.marked {
		rec, err := s.readRecord(f.ino)
		if err != nil {
			return err
		}
		rec.MD5, rec.Gen = "", f.gen.Load()
		if !rec.Incomplete {
			rec.State = StateOpen
		}
		mark = rec
	}
	size := f.size.Load()
	err := s.batch(func(wb *badger.WriteBatch) error {
		if mark != nil {
			if err := putRecord(wb, mark); err != nil {
				return err
			}
		}
		for _, k := range ks {
			b := f.pending[k]
			if n := min(s.chunk, size-k*s.chunk); n > 0 {
				if err := wb.Set(chunkKey(f.ino, k), b[:n]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if mark != nil {
		f.marked, f.pstate = true, mark.State
	}
	for _, k := range ks {
		delete(f.pending, k)
	}
	return nil
}

// flushLocked writes the pending chunks and then the record in state st.
// A file whose content has not changed only moves from StateOpen to st; a
// state set by the uploader (Uploading, Failed, Empty) is left alone.
func (f *File) flushLocked(st State) error {
	if f.removed || f.released || f.done {
		return nil
	}
	if f.werr != nil {
		st = StateFailed
	}
	gen := f.gen.Load()
	changed := gen != f.flushedGen.Load() || len(f.pending) > 0
	if !changed && (f.pstate != StateOpen || st == StateOpen) {
		return nil
	}
	if len(f.pending) > 0 {
		if err := f.writeChunksLocked(f.pendingKeysLocked()); err != nil {
			if f.werr == nil {
				return err
			}
			// Already failed: keep the record as it is.
			return nil
		}
	}
	size := f.size.Load()
	sum := ""
	if f.md5OK && f.md5Off == size && f.werr == nil {
		sum = hex.EncodeToString(f.md5.Sum(nil))
	}
	reindex := f.reindex
	var failed *WriteError
	if f.werr != nil {
		failed, _ = f.werr.(*WriteError)
	}
	err := f.s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, f.ino)
		if err != nil {
			return err
		}
		if rec.Gen != gen {
			rec.Attempts = 0
		}
		rec.Size, rec.MD5, rec.Gen, rec.State = size, sum, gen, st
		rec.Mtime = time.Unix(0, f.mtime.Load())
		if failed != nil {
			rec.Incomplete, rec.Err = true, failed.Reason
		}
		if reindex {
			k := indexKey(rec.ParentID, rec.Name)
			other, err := getIndex(txn, k)
			free := errors.Is(err, ErrNotFound) || (err == nil && other == f.ino)
			if err == nil && other != f.ino {
				if _, err := getRecord(txn, other); errors.Is(err, ErrNotFound) {
					free = true
				}
			}
			if free {
				if err := txn.Set(k, encodeIno(f.ino)); err != nil {
					return err
				}
			}
		}
		return putRecord(txn, rec)
	})
	if err != nil {
		return err
	}
	f.flushedGen.Store(gen)
	f.pstate = st
	f.marked = st == StateOpen && sum == ""
	f.reindex = false
	return nil
}

// Flush writes buffered bytes and the record (size, MD5 when known,
// generation, mtime). It is called on close(2). The state stays Open while
// a writer has the file open (the closing descriptor's handle may live on
// in a dup), and becomes Dirty otherwise: the last EndWrite makes it so.
func (f *File) Flush() error {
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return err
	}
	defer leave()
	if err := f.usableLocked(); err != nil {
		return err
	}
	st := StateDirty
	if f.writers.Load() > 0 {
		st = StateOpen
	}
	if err := f.flushLocked(st); err != nil {
		return err
	}
	if f.werr != nil {
		return f.werr
	}
	// The promise of close(2): the bytes are in a cache that survives the
	// process. A cache directory deleted under the mount cannot keep them.
	if err := f.s.checkDir(); err != nil {
		return f.failWriteLocked(err)
	}
	return nil
}

// Sync is Flush followed by a sync of Badger to disk: when it returns
// the file's bytes survive a power loss.
func (f *File) Sync() error {
	if err := f.Flush(); err != nil {
		return err
	}
	done, err := f.s.enter()
	if err != nil {
		return err
	}
	defer done()
	return f.s.db.Sync()
}

// SetMtime sets the modification time and records it at once.
func (f *File) SetMtime(t time.Time) error {
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return err
	}
	defer leave()
	if err := f.usableLocked(); err != nil {
		return err
	}
	f.mtime.Store(t.UnixNano())
	return f.s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, f.ino)
		if err != nil {
			return err
		}
		rec.Mtime = t
		return putRecord(txn, rec)
	})
}

// ReadAt reads from the file as written so far, buffered bytes included.
// It returns io.EOF when p reaches past the end.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
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
	size := f.size.Load()
	if off >= size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), size-off)
	cs := f.s.chunk
	err = f.s.db.View(func(txn *badger.Txn) error {
		for pos := off; pos < off+want; {
			k := pos / cs
			in := pos - k*cs
			n := min(cs-in, off+want-pos)
			dst := p[pos-off : pos-off+n]
			if b, ok := f.pending[k]; ok {
				copy(dst, b[in:in+n])
			} else if err := readChunk(txn, f.ino, k, in, dst); err != nil {
				return err
			}
			pos += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// Truncate changes the size. Growing reserves space like WriteAt and
// reads as zeros; shrinking deletes the chunks past the end at once.
func (f *File) Truncate(ctx context.Context, size int64) error {
	if size < 0 {
		return errors.New("cache: negative size")
	}
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return err
	}
	defer leave()
	if err := f.usableLocked(); err != nil {
		return err
	}
	old := f.size.Load()
	rewrite := size == 0 && f.werr != nil
	if f.werr != nil && !rewrite {
		return f.werr
	}
	if size == old && !rewrite {
		return nil
	}
	if err := f.s.writable(); err != nil {
		return f.failWriteLocked(err)
	}
	if err := f.restageLocked(ctx); err != nil {
		return f.failWriteLocked(err)
	}
	if size > old {
		if err := f.growLocked(ctx, size); err != nil {
			return f.failWriteLocked(err)
		}
		f.touchLocked()
		f.md5OK = false
		return nil
	}
	f.touchLocked()
	if size == 0 {
		f.md5, f.md5OK, f.md5Off = md5.New(), true, 0
	} else {
		f.md5OK = false
	}
	s := f.s
	cs := s.chunk
	first := (size + cs - 1) / cs // first chunk wholly past the new end
	for k := range f.pending {
		if k >= first {
			delete(f.pending, k)
		}
	}
	if in := size % cs; in != 0 {
		b, err := f.chunkBufLocked(size/cs, size, false)
		if err != nil {
			return err
		}
		clear(b[in:])
	}
	// The record first: it must not claim the chunks about to go.
	err = s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, f.ino)
		if err != nil {
			return err
		}
		rec.State, rec.MD5, rec.Gen = StateOpen, "", f.gen.Load()
		rec.Size = min(rec.Size, size)
		if rewrite {
			rec.Incomplete, rec.Err, rec.Attempts = false, "", 0
		}
		return putRecord(txn, rec)
	})
	if err != nil {
		return err
	}
	f.marked, f.pstate = true, StateOpen
	if rewrite {
		f.werr = nil
	}
	if err := s.deleteChunksFrom(f.ino, first); err != nil {
		return err
	}
	f.size.Store(size)
	if f.acct > size {
		s.release(f.acct - size)
		f.acct = size
	}
	return nil
}

// BeginWrite records a handle open for writing: while one is, the file is
// Open, not waiting for upload.
func (f *File) BeginWrite() { f.writers.Add(1) }

// EndWrite records that a handle open for writing is closed (release). The
// last one flushes the file as Dirty, ready for upload.
func (f *File) EndWrite() error {
	if f.writers.Add(-1) > 0 {
		return nil
	}
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return err
	}
	defer leave()
	if f.usableLocked() != nil || f.writers.Load() > 0 {
		return nil
	}
	return f.flushLocked(StateDirty)
}

// Writing reports whether staged file ino has a handle open for writing.
func (s *Store) Writing(ino uint64) bool {
	f := s.openFile(ino)
	return f != nil && f.writers.Load() > 0
}

// Release drops one reference. The last one flushes the file and marks it
// Dirty (or, if it was uploaded while open and not changed since, deletes
// its bytes).
func (f *File) Release() error {
	s := f.s
	done, err := s.enter()
	if err != nil {
		return err
	}
	defer done()
	unlock := s.lockIno(f.ino)
	defer unlock()
	if f.released {
		return ErrClosed
	}
	f.refs--
	if f.refs > 0 {
		return nil
	}
	switch {
	case f.removed:
	case f.done:
		var rec *Record
		if rec, err = s.readRecord(f.ino); err == nil {
			err = s.deleteAll(rec)
		} else if errors.Is(err, ErrNotFound) {
			err = nil
		}
	default:
		err = f.flushLocked(StateDirty)
	}
	f.released = true
	f.pending = nil
	s.mu.Lock()
	delete(s.files, f.ino)
	s.mu.Unlock()
	return err
}

// genOrZero returns f's generation, or 0 for a nil f.
func (f *File) genOrZero() uint64 {
	if f == nil {
		return 0
	}
	return f.gen.Load()
}
