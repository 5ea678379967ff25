package cache

import (
	"github.com/dgraph-io/badger/v4"
)

// Files unlinked while open. POSIX keeps a file that is unlinked (rm, or a
// rename over it) while a program holds it open: reads, writes and fstat
// go on through the open descriptors until the last close, and then it is
// gone. The Store does the same for a staged file: Remove of a file with
// open handles marks its record Unlinked instead of deleting it. Such a
// record has no index entry (its name is free at once) and no pending
// marker, Get, Lookup, List, Records and Reader do not return it, so the
// flusher never uploads it, and its chunks live on for the handles. The
// last Release deletes it; a restart (recover) deletes one a crash left.

// unlinkLocked unlinks f while handles hold it. Caller holds f's ino lock.
func (f *File) unlinkLocked() error {
	if f.unlinked {
		return nil
	}
	err := f.s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, f.ino)
		if err != nil {
			return err
		}
		if err := deleteIndexIfOwned(txn, rec); err != nil {
			return err
		}
		rec.Unlinked = true
		return putRecord(txn, rec)
	})
	if err != nil {
		return err
	}
	f.unlinked = true
	// An upload that is under way must not be taken as final: Finish and
	// the reader see a new generation.
	f.gen.Add(1)
	if f.done {
		// Uploaded while open: its bytes were no longer counted. They stay
		// uncounted; writes from now on reserve what they add.
		f.done = false
	}
	f.reindex = false
	return nil
}

// Unlinked reports whether the file was unlinked while open (Store.Remove):
// its handles still read and write it, it is never uploaded, and the last
// Release deletes it.
func (f *File) Unlinked() bool {
	leave, err := f.s.enterIno(f.ino)
	if err != nil {
		return false
	}
	defer leave()
	return f.unlinked
}

// CreateUnlinked stages a new, empty file that is unlinked from the start,
// and opens it (the caller Releases the File): the place of a file that
// exists only in Synapse and is unlinked while open, for its content to be
// copied into so that its open handles keep reading it after the entity is
// trashed. parentID and name are where it was, for log lines only.
func (s *Store) CreateUnlinked(parentID, name string) (*File, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	ino, err := s.allocIno()
	if err != nil {
		return nil, err
	}
	rec := &Record{Ino: ino, ParentID: parentID, Name: name, Gen: 1, Mtime: s.o.Now(), State: StateOpen, Unlinked: true}
	if err := s.update(func(txn *badger.Txn) error { return putRecord(txn, rec) }); err != nil {
		return nil, err
	}
	unlock := s.lockIno(ino)
	defer unlock()
	f := s.newFile(rec)
	f.unlinked = true
	return f, nil
}
