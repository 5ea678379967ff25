package cache

import (
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// SetState sets ino's state and failure text if its generation is still
// gen; otherwise it changes nothing and returns ErrChanged. Setting
// StateUploading counts an attempt and keeps the previous failure text.
// StateDone is set by Finish only.
func (s *Store) SetState(ino, gen uint64, st State, errText string) error {
	if st == StateDone || st < StateOpen || st > StateLocal {
		return fmt.Errorf("cache: SetState(%v) not allowed", st)
	}
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	f := s.openFile(ino)
	if f != nil && f.gen.Load() != gen {
		return ErrChanged
	}
	if st == StateUploading && s.isHeld(ino) {
		return ErrChanged // the caller queues it again
	}
	return s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		if rec.Unlinked {
			return ErrNotFound
		}
		if rec.Gen != gen || rec.State == StateDone {
			return ErrChanged
		}
		rec.State = st
		if st == StateUploading {
			rec.Attempts++
		} else {
			rec.Err = errText
		}
		if f != nil {
			f.pstate = st
		}
		return putRecord(txn, rec)
	})
}

// HoldUpload keeps staged file ino's upload from starting until release
// is called: meanwhile SetState to StateUploading fails with ErrChanged, and
// the flusher queues the file again. It fails with ErrUploading, holding
// nothing, when the upload is under way already. A rename holds it across
// its calls to Synapse, so that the file cannot start uploading under the
// name it is leaving (the entity would be left there). Under ino's lock,
// as SetState is, so one of the two sees the other.
func (s *Store) HoldUpload(ino uint64) (release func(), err error) {
	leave, err := s.enterIno(ino)
	if err != nil {
		return nil, err
	}
	defer leave()
	rec, err := s.readRecord(ino)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.Unlinked:
		return nil, ErrNotFound
	case rec.State == StateUploading:
		return nil, ErrUploading
	}
	s.mu.Lock()
	s.held[ino]++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.held[ino]--; s.held[ino] <= 0 {
				delete(s.held, ino)
			}
			s.mu.Unlock()
		})
	}, nil
}

func (s *Store) isHeld(ino uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[ino] > 0
}

// SetUpload records the multipart parameters u for ino (u may be nil to
// clear them).
func (s *Store) SetUpload(ino uint64, u *Upload) error {
	return s.editRecord(ino, func(rec *Record) { rec.Upload = u })
}

// editRecord changes one field of ino's record on disk: change runs on the
// record read under ino's lock, and the result is written back.
func (s *Store) editRecord(ino uint64, change func(rec *Record)) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	return s.editRecordLocked(ino, change)
}

// editRecordLocked is editRecord for a caller that holds ino's lock.
func (s *Store) editRecordLocked(ino uint64, change func(rec *Record)) error {
	return s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		change(rec)
		return putRecord(txn, rec)
	})
}

// Finish records that generation gen of ino has been uploaded. If ino has
// not changed since, its bytes are deleted (immediately, or at the last
// Release when handles are still open) and its space is given back;
// otherwise Finish returns ErrChanged and the caller uploads again.
func (s *Store) Finish(ino, gen uint64) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	rec, err := s.readRecord(ino)
	if err != nil {
		return err
	}
	if rec.Unlinked {
		return ErrNotFound // unlinked while its upload ran: it is not to be in Synapse
	}
	if rec.Gen != gen || rec.State == StateDone {
		return ErrChanged
	}
	f := s.openFile(ino)
	if f == nil {
		if err := s.deleteAll(rec); err != nil {
			return err
		}
		s.release(rec.Size)
		return nil
	}
	if f.gen.Load() != gen || f.flushedGen.Load() != gen || len(f.pending) > 0 {
		return ErrChanged
	}
	// Handles are open: keep the bytes for them, but the file is no longer
	// staged. A later write stages it again.
	err = s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		if err := deleteIndexIfOwned(txn, rec); err != nil {
			return err
		}
		rec.State = StateDone
		return putRecord(txn, rec)
	})
	if err != nil {
		return err
	}
	f.done = true
	f.pstate = StateDone
	s.release(f.acct)
	f.acct = 0
	return nil
}

// SetMtime sets staged file ino's modification time, whether or not it
// has open handles.
func (s *Store) SetMtime(ino uint64, t time.Time) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	if f := s.openFile(ino); f != nil && f.unflushedLocked() {
		// A writer has changed the file since its last flush, and that
		// writer's next flush (close, fsync, the last release) writes
		// the record with a new generation anyway: it records the time
		// too. Under the writeback cache the kernel sets a written
		// file's mtime just before each FLUSH; recording it here as
		// well cost every small file copied in a transaction of its
		// own. An upload of the older generation cannot take the time
		// meanwhile: the new generation stops it, and the next one
		// carries the time. (flushLocked writes f.mtime whenever it
		// writes the record, and unflushedLocked means it will.)
		f.mtime.Store(t.UnixNano())
		return nil
	}
	if err := s.editRecordLocked(ino, func(rec *Record) { rec.Mtime = t }); err != nil {
		return err
	}
	if f := s.openFile(ino); f != nil {
		f.mtime.Store(t.UnixNano())
	}
	return nil
}
