package cache

import (
	"context"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// flushLocked writes the pending chunks and then the record in state st.
// A file whose content has not changed only moves from StateOpen to st; a
// state set by the uploader (Uploading, Failed, Empty) is left alone.
func (f *File) flushLocked(st State) error {
	if f.released || f.done {
		return nil
	}
	if err := f.drainLocked(); err != nil {
		_ = f.failWriteLocked(err) // sets f.werr
	}
	if f.werr != nil {
		st = StateFailed
	}
	gen := f.gen.Load()
	changed := gen != f.flushedGen.Load() || len(f.pending) > 0
	if !changed && (f.pstate != StateOpen || st == StateOpen) {
		return nil
	}
	size := f.size.Load()
	sum := ""
	if f.md5OK && f.md5Off == size && f.werr == nil && size-f.hashOff <= f.s.chunk {
		// The pipe hashed the whole chunks; the tail is at most one.
		tail := make([]byte, size-f.hashOff)
		if f.readLocked(tail, f.hashOff) == nil {
			sum = f.md5Sum(tail)
		}
	}
	// The chunks still pending go to the arena now; their pointers are
	// committed with the record, in one transaction.
	var chunks *arenaWrites
	if len(f.pending) > 0 {
		w, err := f.writeArenaLocked(f.pendingKeysLocked())
		if err != nil {
			if f.werr == nil {
				return err
			}
			// Already failed: keep the record as it is.
			return nil
		}
		chunks = w
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
		if chunks != nil {
			if err := chunks.set(txn); err != nil {
				return err
			}
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
		if chunks != nil {
			chunks.abandon(f)
		}
		return err
	}
	if chunks != nil {
		chunks.committedLocked(f)
	}
	f.flushedGen.Store(gen)
	f.pstate = st
	f.marked = st == StateOpen && sum == ""
	f.reindex = false
	return nil
}

// Flush writes buffered bytes and the record (size, MD5 when known,
// generation, mtime) as Dirty. It is called on close(2), whose handle is
// released just after (a dup may keep it open longer): writing Dirty now
// spares the release a commit that would only change the state. The record
// is exact on disk once written, and a later write marks it Open (MD5 "")
// before any of its bytes reach the arena (markLocked), so a crash can
// never find a Dirty record that does not describe its chunks. While a
// writer is open, Get and Records report Dirty as Open (overlay).
func (f *File) Flush() error {
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return err
	}
	defer leave()
	if err := f.usableLocked(); err != nil {
		return err
	}
	if err := f.flushLocked(StateDirty); err != nil {
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

// Sync is Flush followed by a sync of the arena and Badger to disk: when
// it returns the file's bytes survive a power loss.
func (f *File) Sync() error {
	if err := f.Flush(); err != nil {
		return err
	}
	done, err := f.s.enter()
	if err != nil {
		return err
	}
	defer done()
	if err := f.s.arena.Sync(); err != nil {
		return err
	}
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
	return f.s.editRecordLocked(f.ino, func(rec *Record) { rec.Mtime = t })
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
	// Chunks on their way to Badger land before any is deleted, and the
	// running MD5 is ours again.
	if err := f.drainLocked(); err != nil && !(size == 0 && f.werr != nil) {
		return f.failWriteLocked(err)
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
		f.dropMD5Locked()
		return nil
	}
	f.touchLocked()
	if size == 0 {
		f.resetMD5Locked()
	} else {
		f.dropMD5Locked()
	}
	return f.shrinkLocked(size, func(rec *Record) {
		rec.State, rec.MD5, rec.Gen = StateOpen, "", f.gen.Load()
		if rewrite {
			rec.Incomplete, rec.Err, rec.Attempts = false, "", 0
		}
	}, func() {
		f.marked, f.pstate = true, StateOpen
		if rewrite {
			f.werr = nil
		}
	})
}

// shrinkLocked cuts the file to size, below its size: pending chunks past
// it go, the tail of the chunk it ends in is zeroed, and the record, with
// edit applied, stops claiming the chunks past it (committed runs then)
// before they are deleted. Caller holds the ino lock with the pipe drained.
func (f *File) shrinkLocked(size int64, edit func(*Record), committed func()) error {
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
	err := s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, f.ino)
		if err != nil {
			return err
		}
		edit(rec)
		rec.Size = min(rec.Size, size)
		return putRecord(txn, rec)
	})
	if err != nil {
		return err
	}
	committed()
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
