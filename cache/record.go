package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// State is where a staged file is in its life.
type State int

// The states of a staged file.
const (
	// StateOpen: being written, with open handles, and changed since its
	// last flush. Found after a restart it means the process stopped while
	// the file was open; the bytes up to the last flush are kept and the
	// file is treated as StateDirty.
	StateOpen State = iota
	// StateDirty: flushed and waiting for upload (a file flushed with a
	// writer still open is Dirty on disk; Get and Records report it Open).
	StateDirty
	// StateUploading: an upload of the current generation is in progress.
	StateUploading
	// StateFailed: the last upload failed permanently; the bytes are kept.
	StateFailed
	// StateEmpty: the file has no bytes and stays local, because Synapse
	// refuses empty files.
	StateEmpty
	// StateDone: uploaded. The record is kept only while handles are open.
	StateDone
	// StateLocal: the name matches a local-only pattern (editor swap and
	// lock files, desktop metadata): kept in the cache, never uploaded,
	// until it is renamed to another name.
	StateLocal
)

// String returns the lowercase name of st.
func (st State) String() string {
	switch st {
	case StateOpen:
		return "open"
	case StateDirty:
		return "dirty"
	case StateUploading:
		return "uploading"
	case StateFailed:
		return "failed"
	case StateEmpty:
		return "empty"
	case StateDone:
		return "done"
	case StateLocal:
		return "local"
	}
	return fmt.Sprintf("state(%d)", int(st))
}

// pending reports whether a record in state st still needs uploading.
func (st State) pending() bool {
	return st == StateOpen || st == StateDirty || st == StateUploading || st == StateFailed
}

// Record is the persistent description of one staged file.
type Record struct {
	Ino      uint64
	ParentID string    // Synapse ID of the target container
	Name     string    // target entity name
	EntityID string    // File entity this overwrites; "" for a new file
	Size     int64     // bytes
	MD5      string    // lowercase hex when known, "" when it must be computed
	Gen      uint64    // bumped by every change of content or target
	Mtime    time.Time // modification time
	Mode     uint32    `json:",omitempty"` // permission bits the user set (chmod); 0: none
	State    State
	Err      string  // last failure reason, plain text
	Attempts int     // upload attempts for the current generation
	Upload   *Upload `json:",omitempty"` // multipart parameters fixed for Upload.Gen
	// Incomplete is set when a write to the file failed (a full cache, a
	// lost cache directory): the bytes are not what the program wrote, so
	// the file is held as StateFailed and never uploaded until it is
	// truncated to zero (rewritten) or removed.
	Incomplete bool `json:",omitempty"`
	// Dir is the folder's path under the mount when the file was staged
	// or last renamed, for status displays ("" when not known).
	Dir string `json:",omitempty"`
	// Unlinked is set when the file was unlinked (rm, or a rename over it)
	// while handles were open on it: its bytes are kept for those handles
	// only, it has no index entry and no pending marker, it is never
	// uploaded, and it is deleted at the last Release or the next start.
	Unlinked bool `json:",omitempty"`
}

// Upload holds the multipart request parameters chosen for one generation,
// kept so that after a restart the identical request resumes the upload.
type Upload struct {
	Gen         uint64
	FileName    string
	PartSize    int64
	MD5         string
	Size        int64
	ContentType string
}

// kv is what *badger.Txn and *badger.WriteBatch have in common.
type kv interface {
	Set(k, v []byte) error
	Delete(k []byte) error
}

// putRecord writes rec and keeps its d/ marker in step with its state.
func putRecord(w kv, rec *Record) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := w.Set(recordKey(rec.Ino), v); err != nil {
		return err
	}
	if rec.State.pending() && !rec.Unlinked {
		return w.Set(pendingKey(rec.Ino), nil)
	}
	return w.Delete(pendingKey(rec.Ino))
}

func getRecord(txn *badger.Txn, ino uint64) (*Record, error) {
	it, err := txn.Get(recordKey(ino))
	return getRecordItem(it, ino, err)
}

// getRecordItem decodes the record in it, the item txn.Get returned for
// ino's record key with err.
func getRecordItem(it *badger.Item, ino uint64, err error) (*Record, error) {
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rec := new(Record)
	if err := it.Value(func(v []byte) error { return json.Unmarshal(v, rec) }); err != nil {
		return nil, fmt.Errorf("cache: corrupt record %d: %w", ino, err)
	}
	return rec, nil
}

func getIndex(txn *badger.Txn, key []byte) (uint64, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	var ino uint64
	err = it.Value(func(v []byte) error {
		var ok bool
		if ino, ok = decodeIno(v); !ok {
			return fmt.Errorf("cache: corrupt index entry %q", key)
		}
		return nil
	})
	return ino, err
}

// deleteIndexIfOwned deletes the index entry of rec's location if it points
// at rec.
func deleteIndexIfOwned(txn *badger.Txn, rec *Record) error {
	return deleteKeyIfOwned(txn, indexKey(rec.ParentID, rec.Name), rec.Ino)
}

// deleteKeyIfOwned deletes index entry k if it names ino: a name another
// file or folder has taken since stays theirs.
func deleteKeyIfOwned(txn *badger.Txn, k []byte, ino uint64) error {
	owner, err := getIndex(txn, k)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if owner != ino {
		return nil
	}
	return txn.Delete(k)
}

func (s *Store) readRecord(ino uint64) (*Record, error) {
	var rec *Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.viewRecord(txn, ino)
		return err
	})
	return rec, err
}
