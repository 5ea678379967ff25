package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Version is what synfs keeps about one version of a File entity (table
// v/, keyed by entity ID and version number). Size and MD5 never change
// once a version exists, so they are fetched from Synapse once per version
// and then served from here, across remounts and for every folder that
// shows the entity. Mtime and Mode are the attributes the user gave the
// file through this cache (cp -p, rsync -a, touch -d, chmod); Synapse has
// no place for them, so they are local to this cache directory.
type Version struct {
	Size int64  // contentSize of the data file handle; -1 when unknown
	MD5  string // lowercase hex; "" when unknown
	// FileHandle is the version's dataFileHandleId, which a download needs.
	FileHandle string    `json:",omitempty"`
	Mtime      time.Time `json:",omitzero"`  // the user's mtime; zero: none given
	Mode       uint32    `json:",omitempty"` // the user's permission bits; 0: none given
}

// VersionKey names one version of a File entity.
type VersionKey struct {
	EntityID string
	Version  int64
}

// Version returns what is kept about version v of entity id, and whether
// anything is.
func (s *Store) Version(id string, v int64) (Version, bool, error) {
	got, err := s.Versions([]VersionKey{{id, v}})
	if err != nil {
		return Version{}, false, err
	}
	ver, ok := got[VersionKey{id, v}]
	return ver, ok, nil
}

// Versions returns what is kept about each of keys, in one read
// transaction; keys with nothing kept are absent from the map.
func (s *Store) Versions(keys []VersionKey) (map[VersionKey]Version, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	out := make(map[VersionKey]Version, len(keys))
	err = s.db.View(func(txn *badger.Txn) error {
		for _, k := range keys {
			ver, ok, err := getVersion(txn, k)
			if err != nil {
				return err
			}
			if ok {
				out[k] = ver
			}
		}
		return nil
	})
	return out, err
}

// PutVersion records the size, MD5 and data file handle of version v of
// entity id, keeping any user attributes already recorded for it.
func (s *Store) PutVersion(id string, v int64, size int64, md5, fileHandle string) error {
	return s.updateVersion(VersionKey{id, v}, func(ver *Version) {
		ver.Size, ver.MD5, ver.FileHandle = size, md5, fileHandle
	})
}

// SetVersionAttrs records the user's mtime (if not zero) and mode bits (if
// not 0) for version v of entity id.
func (s *Store) SetVersionAttrs(id string, v int64, mtime time.Time, mode uint32) error {
	return s.updateVersion(VersionKey{id, v}, func(ver *Version) {
		if !mtime.IsZero() {
			ver.Mtime = mtime
		}
		if mode != 0 {
			ver.Mode = mode
		}
	})
}

func (s *Store) updateVersion(k VersionKey, change func(*Version)) error {
	if k.EntityID == "" || k.Version < 1 {
		return fmt.Errorf("cache: bad file version %q/%d", k.EntityID, k.Version)
	}
	done, err := s.enter()
	if err != nil {
		return err
	}
	defer done()
	return s.update(func(txn *badger.Txn) error {
		ver, ok, err := getVersion(txn, k)
		if err != nil {
			return err
		}
		if !ok {
			ver = Version{Size: -1}
		}
		change(&ver)
		b, err := json.Marshal(ver)
		if err != nil {
			return err
		}
		return txn.Set(versionKey(k.EntityID, k.Version), b)
	})
}

func getVersion(txn *badger.Txn, k VersionKey) (Version, bool, error) {
	it, err := txn.Get(versionKey(k.EntityID, k.Version))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, err
	}
	var ver Version
	err = it.Value(func(b []byte) error { return json.Unmarshal(b, &ver) })
	if err != nil {
		return Version{}, false, fmt.Errorf("cache: corrupt version record %s/%d: %w", k.EntityID, k.Version, err)
	}
	return ver, true, nil
}

// SetMode records the permission bits the user gave staged file ino; they
// travel with the upload into the version's record (see Version).
func (s *Store) SetMode(ino uint64, mode uint32) error {
	return s.editRecord(ino, func(rec *Record) { rec.Mode = mode })
}
