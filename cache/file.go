package cache

import (
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// File is the shared, reference-counted object for one staged file with
// open handles. OpenFile returns the same *File to every opener; each
// OpenFile is paired with one Release. Methods are safe for concurrent use.
//
// Writes are assembled into whole chunks in memory. A complete chunk is
// handed to the file's pipe (pipe.go), which hashes and commits it to
// Badger off the write path; partly written chunks are written when too
// many are pending, and on Flush, which first waits for the pipe. The record on disk is rewritten only by Flush (and by Truncate), so
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
	md5      hash.Hash        // running MD5 of bytes [0, hashOff); the pipe's while it has work
	md5OK    bool             // every byte so far was written once (hashorder.go)
	md5Off   int64            // bytes [0, md5Off) are written
	spans    []span           // written ranges past md5Off, in order
	ahead    map[int64][]byte // whole chunks past hashOff, waiting for the ones before
	behind   map[int64]bool   // more such chunks, past maxAhead: read back when their turn comes
	readBack int              // chunks read back for the running MD5 (tests)
	hashOff  int64            // bytes given to md5 (whole chunks, through the pipe)
	pipe     pipe             // whole chunks on their way to the arena (pipe.go)
	smu      sync.Mutex       // protects slots; a leaf
	slots    map[int64]uint64 // arena slot of each chunk this File wrote or looked up (arena.go)
	marked   bool             // the record on disk is StateOpen with MD5 ""
	pstate   State            // state of the record on disk
	acct     int64            // bytes of this file counted in Store.used
	done     bool             // uploaded while open; bytes kept for the handles only
	reindex  bool             // re-add the index entry at the next flush (after done)
	unlinked bool             // unlinked while open (Store.Remove): never uploaded, deleted at the last Release
	released bool             // the last handle was released
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
	if rec.State == StateDone || rec.Unlinked {
		return nil, ErrNotFound
	}
	return s.newFile(rec), nil
}

// newFile makes and registers the File of rec, with one reference. Caller
// holds rec.Ino's lock.
func (s *Store) newFile(rec *Record) *File {
	ino := rec.Ino
	f := &File{
		s:       s,
		ino:     ino,
		refs:    1,
		pending: make(map[int64][]byte),
		slots:   make(map[int64]uint64),
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
		f.resetMD5Locked()
	}
	s.mu.Lock()
	s.files[ino] = f
	s.mu.Unlock()
	return f
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
	if f.released {
		return ErrClosed
	}
	return nil
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
	if err := f.readLocked(p[:want], off); err != nil {
		return 0, err
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// readLocked fills p from off with the file's bytes: pending chunks, then
// chunks in the pipe, then Badger. Caller holds the ino lock and keeps p
// within the size.
func (f *File) readLocked(p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	cs := f.s.chunk
	// Before the transaction: a chunk the pipe commits from now on is
	// read from its buffer.
	flying := f.inFlight(off/cs, (off+int64(len(p))-1)/cs)
	return f.s.db.View(func(txn *badger.Txn) error {
		for pos := off; pos < off+int64(len(p)); {
			k := pos / cs
			in := pos - k*cs
			n := min(cs-in, off+int64(len(p))-pos)
			dst := p[pos-off : pos-off+n]
			if b, ok := f.pending[k]; ok {
				copy(dst, b[in:in+n])
			} else if b, ok := flying[k]; ok {
				copy(dst, b[in:in+n])
			} else {
				if err := f.s.readChunk(txn, f.ino, k, in, dst); err != nil {
					return err
				}
			}
			pos += n
		}
		return nil
	})
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

// unflushedLocked reports whether a writer has the file open and has
// changed its content since the last flush, which will then write the
// record with a new generation. Caller holds the ino lock.
func (f *File) unflushedLocked() bool {
	return f.writers.Load() > 0 && !f.released && !f.done && !f.unlinked && f.werr == nil &&
		(f.gen.Load() != f.flushedGen.Load() || len(f.pending) > 0)
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
	if f.unlinked || f.done {
		_ = f.drainLocked() // the bytes are deleted below: no chunk may land after
	}
	switch {
	case f.unlinked:
		var rec *Record
		if rec, err = s.readRecord(f.ino); err == nil {
			err = s.deleteAll(rec)
		} else if errors.Is(err, ErrNotFound) {
			err = nil
		}
		s.release(f.acct)
		f.acct = 0
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
