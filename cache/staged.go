package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// allocIno returns a fresh ino. Inos are reserved on disk in blocks of
// 1024, so a restart skips at most the rest of a block.
func (s *Store) allocIno() (uint64, error) {
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	if s.nextIno >= s.inoLimit {
		limit := s.nextIno + 1024
		if err := s.update(func(txn *badger.Txn) error { return txn.Set(keyNextIno, encodeIno(limit)) }); err != nil {
			return 0, err
		}
		s.inoLimit = limit
	}
	ino := s.nextIno
	s.nextIno++
	return ino, nil
}

// Create stages a new, empty file called name in parentID, overwriting File
// entity entityID when it is not "". dir is the folder's path under the
// mount, kept for status displays. If a staged file already occupies that
// location, Create returns it together with ErrExist.
func (s *Store) Create(parentID, name, entityID, dir string) (*Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	if err := s.checkDir(); err != nil {
		return nil, err
	}
	ino, err := s.allocIno()
	if err != nil {
		return nil, err
	}
	rec := &Record{
		Ino: ino, ParentID: parentID, Name: name, EntityID: entityID, Dir: dir,
		Gen: 1, Mtime: s.o.Now(), State: StateOpen,
	}
	var existing *Record
	err = s.update(func(txn *badger.Txn) error {
		existing = nil
		k := indexKey(parentID, name)
		old, err := getIndex(txn, k)
		if err == nil {
			if existing, err = getRecord(txn, old); err == nil {
				return ErrExist
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
			// A dangling entry: take the location over.
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := txn.Set(k, encodeIno(ino)); err != nil {
			return err
		}
		return putRecord(txn, rec)
	})
	if errors.Is(err, ErrExist) {
		return existing, ErrExist
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Get returns ino's record. For a file with open handles, Size and Mtime are
// the current in-memory values.
func (s *Store) Get(ino uint64) (*Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	rec, err := s.readRecord(ino)
	if err != nil {
		return nil, err
	}
	if rec.Unlinked {
		return nil, ErrNotFound
	}
	s.overlay(rec)
	return rec, nil
}

func (s *Store) overlay(rec *Record) {
	s.mu.Lock()
	f := s.files[rec.Ino]
	s.mu.Unlock()
	if f != nil {
		rec.Size = f.Size()
		rec.Mtime = time.Unix(0, f.mtime.Load())
		if rec.State == StateDirty && f.writers.Load() > 0 {
			rec.State = StateOpen // flushed, but still open for writing
		}
	}
}

// Lookup returns the staged file at parentID/name, in any state but Done,
// or ErrNotFound.
func (s *Store) Lookup(parentID, name string) (*Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var rec *Record
	err = s.db.View(func(txn *badger.Txn) error {
		ino, err := getIndex(txn, indexKey(parentID, name))
		if err != nil {
			return err
		}
		rec, err = s.viewRecord(txn, ino)
		return err
	})
	if err != nil {
		return nil, err
	}
	if rec.State == StateDone || rec.Unlinked {
		return nil, ErrNotFound
	}
	s.overlay(rec)
	return rec, nil
}

// List returns the staged files in folder parentID (any state but Done),
// sorted by name.
func (s *Store) List(parentID string) ([]Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []Record
	err = s.db.View(func(txn *badger.Txn) error {
		p := indexPrefix(parentID)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
		defer it.Close()
		var inos []uint64
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				ino, ok := decodeIno(v)
				if !ok {
					return fmt.Errorf("cache: corrupt index entry %q", it.Item().Key())
				}
				inos = append(inos, ino)
				return nil
			})
			if err != nil {
				return err
			}
		}
		for _, ino := range inos {
			rec, err := s.viewRecord(txn, ino)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if rec.State != StateDone && !rec.Unlinked {
				out = append(out, *rec)
			}
		}
		return nil
	})
	for i := range out {
		s.overlay(&out[i])
	}
	return out, err
}

// Rename moves staged file ino to parentID/name (dir is the folder's path
// under the mount) and bumps its generation, so that an upload under the
// old name is not taken as final. It fails with ErrExist when another
// staged file occupies the target.
func (s *Store) Rename(ino uint64, parentID, name, dir string) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	f := s.openFile(ino)
	var newGen uint64
	err = s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		if rec.Unlinked {
			return ErrNotFound
		}
		if rec.State == StateDone {
			// Uploaded and kept for handles still open; not indexed. A
			// later write stages it again, indexed under its new place.
			rec.ParentID, rec.Name, rec.Dir = parentID, name, dir
			newGen = 0
			return putRecord(txn, rec)
		}
		if rec.ParentID == parentID && rec.Name == name {
			newGen = 0
			return nil
		}
		k := indexKey(parentID, name)
		other, err := getIndex(txn, k)
		switch {
		case err == nil && other != ino:
			if _, err := getRecord(txn, other); err == nil {
				return ErrExist
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		if err := deleteIndexIfOwned(txn, rec); err != nil {
			return err
		}
		if err := txn.Set(k, encodeIno(ino)); err != nil {
			return err
		}
		rec.ParentID, rec.Name, rec.Dir = parentID, name, dir
		rec.Gen = max(rec.Gen, f.genOrZero()) + 1
		rec.Attempts = 0
		newGen = rec.Gen
		return putRecord(txn, rec)
	})
	if err != nil || newGen == 0 || f == nil {
		return err
	}
	clean := f.gen.Load() == f.flushedGen.Load()
	f.gen.Store(newGen)
	if clean {
		f.flushedGen.Store(newGen)
	}
	return nil
}

// Remove deletes staged file ino: record, index entry, chunks and upload
// parameters. A file with open handles is unlinked instead (see unlinkLocked):
// it leaves its place and is never uploaded, but its handles go on reading and
// writing it, as on a local disk, until the last Release deletes it.
func (s *Store) Remove(ino uint64) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	rec, err := s.readRecord(ino)
	if err != nil {
		return err
	}
	if f := s.openFile(ino); f != nil {
		return f.unlinkLocked()
	}
	acct := rec.Size
	if rec.State == StateDone || rec.Unlinked {
		acct = 0
	}
	if err := s.deleteAll(rec); err != nil {
		return err
	}
	s.release(acct)
	return nil
}

// deleteAll removes rec, its marker and index entry in one transaction,
// then its chunks. Caller must hold rec.Ino's lock (or be recover).
func (s *Store) deleteAll(rec *Record) error {
	err := s.update(func(txn *badger.Txn) error {
		if err := deleteIndexIfOwned(txn, rec); err != nil {
			return err
		}
		if err := txn.Delete(pendingKey(rec.Ino)); err != nil {
			return err
		}
		return txn.Delete(recordKey(rec.Ino))
	})
	if err != nil {
		return err
	}
	return s.deleteChunksFrom(rec.Ino, 0)
}

// deleteChunksFrom deletes ino's chunks numbered from and up: their
// pointers, then their arena slots. Caller holds ino's lock (or is
// recover), with the pipe of ino's open File drained.
func (s *Store) deleteChunksFrom(ino uint64, from int64) error {
	var keys [][]byte
	var freed []uint64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: blockPrefix(ino), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(blockKey(ino, from)); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
			err := it.Item().Value(func(v []byte) error {
				p, err := decodeChunkPtr(v)
				if err == nil {
					freed = append(freed, p.slot)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	// The open File must not write into a slot about to be freed.
	s.openFile(ino).forgetSlots(from)
	if err != nil || len(keys) == 0 {
		return err
	}
	err = s.batch(func(wb *badger.WriteBatch) error {
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.freeSlots(freed)
	return nil
}

// Records returns every staged file's record (any state but Done), in ino
// order, for status displays.
func (s *Store) Records() ([]Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []Record
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabRecord), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec Record
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
			if rec.State != StateDone && !rec.Unlinked {
				out = append(out, rec)
			}
		}
		return nil
	})
	for i := range out {
		s.overlay(&out[i])
	}
	return out, err
}

// Pending returns the inos of every file that still needs uploading (states
// Open, Dirty, Uploading and Failed), from a key-only scan.
func (s *Store) Pending() ([]uint64, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []uint64
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabPending)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if ino, ok := parsePendingKey(it.Item().Key()); ok {
				out = append(out, ino)
			}
		}
		return nil
	})
	return out, err
}

// WhileAt runs fn, under ino's lock, if staged file ino is still at
// parentID/name (not moved, removed or unlinked), and reports whether it
// did. A Rename or Remove of ino waits for fn, so fn can publish something
// about the file's place that they then correct.
func (s *Store) WhileAt(ino uint64, parentID, name string, fn func()) (bool, error) {
	leave, err := s.enterIno(ino)
	if err != nil {
		return false, err
	}
	defer leave()
	rec, err := s.readRecord(ino)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if rec.Unlinked || rec.State == StateDone || rec.ParentID != parentID || rec.Name != name {
		return false, nil
	}
	fn()
	return true, nil
}
