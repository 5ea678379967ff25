package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Staged folders. A folder made while Synapse cannot be asked (mkdir
// offline) is staged like a file: a durable record (m/<ino>) and, until it
// exists in Synapse, an index entry (n/<parentID>\x00<name>) by which its
// parent lists it. Until then it is known by LocalID(ino), which files and
// folders staged inside it use as their ParentID. The flusher creates it
// (parent first, looking the name up before creating), records the entity,
// and moves what is staged inside to the entity's ID.

// localPrefix starts every local ID. No Synapse ID ("syn123") starts so.
const localPrefix = "local-"

// LocalID is the ID of staged folder ino until it exists in Synapse.
func LocalID(ino uint64) string { return localPrefix + strconv.FormatUint(ino, 10) }

// ParseLocalID returns the ino of a local ID.
func ParseLocalID(id string) (uint64, bool) {
	if !strings.HasPrefix(id, localPrefix) {
		return 0, false
	}
	ino, err := strconv.ParseUint(id[len(localPrefix):], 10, 64)
	return ino, err == nil && LocalID(ino) == id
}

// IsLocalID reports whether id names a staged folder rather than a Synapse
// entity.
func IsLocalID(id string) bool {
	_, ok := ParseLocalID(id)
	return ok
}

// Folder is one staged folder.
type Folder struct {
	Ino      uint64
	ParentID string // a Synapse ID, or the LocalID of another staged folder
	Name     string
	Dir      string // the parent's path under the mount when made, for status
	Mtime    time.Time

	// EntityID is the Folder entity once created. SentParent and SentName
	// are where it was created (or last moved to), or where the last create
	// was sent, which a create after a crash looks up first.
	EntityID   string
	SentParent string
	SentName   string
	Err        string // the last failure to create it
}

// LocalID is f's local ID.
func (f *Folder) LocalID() string { return LocalID(f.Ino) }

// ErrFolderNotFound means no staged folder has that ino or location.
var ErrFolderNotFound = fmt.Errorf("%w (folder)", ErrNotFound)

func getFolder(txn *badger.Txn, ino uint64) (*Folder, error) {
	it, err := txn.Get(folderKey(ino))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrFolderNotFound
	}
	if err != nil {
		return nil, err
	}
	f := new(Folder)
	if err := it.Value(func(v []byte) error { return json.Unmarshal(v, f) }); err != nil {
		return nil, fmt.Errorf("cache: corrupt folder record %d: %w", ino, err)
	}
	return f, nil
}

func putFolder(txn *badger.Txn, f *Folder) error {
	v, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return txn.Set(folderKey(f.Ino), v)
}

// takenLocked fails with ErrExist when a staged file or a staged folder
// other than ino occupies parentID/name.
func takenLocked(txn *badger.Txn, parentID, name string, ino uint64) error {
	if other, err := getIndex(txn, folderIndexKey(parentID, name)); err == nil && other != ino {
		if _, err := getFolder(txn, other); err == nil {
			return ErrExist
		}
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if other, err := getIndex(txn, indexKey(parentID, name)); err == nil && other != ino {
		if rec, err := getRecord(txn, other); err == nil && rec.State != StateDone {
			return ErrExist
		}
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// MakeFolder stages a new folder called name in parentID (dir is the
// parent's path under the mount). A staged file or folder already there
// gives ErrExist.
func (s *Store) MakeFolder(parentID, name, dir string) (*Folder, error) {
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
	f := &Folder{Ino: ino, ParentID: parentID, Name: name, Dir: dir, Mtime: s.o.Now()}
	err = s.update(func(txn *badger.Txn) error {
		if err := takenLocked(txn, parentID, name, ino); err != nil {
			return err
		}
		if err := txn.Set(folderIndexKey(parentID, name), encodeIno(ino)); err != nil {
			return err
		}
		return putFolder(txn, f)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Folder returns staged folder ino, created or not.
func (s *Store) Folder(ino uint64) (*Folder, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var f *Folder
	err = s.db.View(func(txn *badger.Txn) error {
		var err error
		f, err = getFolder(txn, ino)
		return err
	})
	return f, err
}

// LookupFolder returns the staged folder not yet created at parentID/name.
func (s *Store) LookupFolder(parentID, name string) (*Folder, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var f *Folder
	err = s.db.View(func(txn *badger.Txn) error {
		ino, err := getIndex(txn, folderIndexKey(parentID, name))
		if errors.Is(err, ErrNotFound) {
			return ErrFolderNotFound
		}
		if err != nil {
			return err
		}
		f, err = getFolder(txn, ino)
		return err
	})
	return f, err
}

// Folders returns the staged folders not yet created in parentID, sorted
// by name; parentID "" returns every staged folder, created or not, by
// ino.
func (s *Store) Folders(parentID string) ([]Folder, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []Folder
	err = s.db.View(func(txn *badger.Txn) error {
		if parentID == "" {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabFolder)})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				ino, ok := parseFolderKey(it.Item().Key())
				if !ok {
					continue
				}
				f, err := getFolder(txn, ino)
				if err != nil {
					return err
				}
				out = append(out, *f)
			}
			return nil
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: folderIndexPrefix(parentID)})
		defer it.Close()
		var inos []uint64
		for it.Rewind(); it.Valid(); it.Next() {
			if err := it.Item().Value(func(v []byte) error {
				ino, ok := decodeIno(v)
				if !ok {
					return fmt.Errorf("cache: corrupt folder index entry %q", it.Item().Key())
				}
				inos = append(inos, ino)
				return nil
			}); err != nil {
				return err
			}
		}
		for _, ino := range inos {
			f, err := getFolder(txn, ino)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, *f)
		}
		return nil
	})
	return out, err
}

// UpdateFolder changes staged folder ino with fn in one transaction and
// keeps its index entry in step: present, at its ParentID and Name, exactly
// while EntityID is "". A move onto a staged file or folder gives
// ErrExist.
func (s *Store) UpdateFolder(ino uint64, fn func(f *Folder) error) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	return s.update(func(txn *badger.Txn) error {
		f, err := getFolder(txn, ino)
		if err != nil {
			return err
		}
		oldKey := folderIndexKey(f.ParentID, f.Name)
		if err := fn(f); err != nil {
			return err
		}
		if err := deleteKeyIfOwned(txn, oldKey, ino); err != nil {
			return err
		}
		if f.EntityID == "" {
			if err := takenLocked(txn, f.ParentID, f.Name, ino); err != nil {
				return err
			}
			if err := txn.Set(folderIndexKey(f.ParentID, f.Name), encodeIno(ino)); err != nil {
				return err
			}
		}
		return putFolder(txn, f)
	})
}

// RemoveFolder forgets staged folder ino (rmdir before it was created, or
// once nothing refers to its local ID any more).
func (s *Store) RemoveFolder(ino uint64) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	return s.update(func(txn *badger.Txn) error {
		f, err := getFolder(txn, ino)
		if err != nil {
			return err
		}
		if err := deleteKeyIfOwned(txn, folderIndexKey(f.ParentID, f.Name), ino); err != nil {
			return err
		}
		return txn.Delete(folderKey(ino))
	})
}
