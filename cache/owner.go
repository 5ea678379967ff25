package cache

import (
	"encoding/json"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// Owner is the Synapse a cache stages files for: the endpoint and the user.
// Staged files are uploaded only by a mount of the same endpoint and user.
type Owner struct {
	Endpoint string // the repository endpoint, or "emulator:<data dir>" for the embedded emulator
	UserID   string // the Synapse principal ID
	UserName string // for messages only
}

// Same reports whether o and p name the same endpoint and user.
func (o Owner) Same(p Owner) bool { return o.Endpoint == p.Endpoint && o.UserID == p.UserID }

// Owner returns the recorded owner; ok is false when none was recorded
// (a new cache, or one from before owners were recorded).
func (s *Store) Owner() (o Owner, ok bool, err error) {
	done, err := s.enter()
	if err != nil {
		return o, false, err
	}
	defer done()
	err = s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(keyOwner)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		return it.Value(func(v []byte) error { return json.Unmarshal(v, &o) })
	})
	return o, ok, err
}

// SetOwner records o as the cache's owner.
func (s *Store) SetOwner(o Owner) error {
	done, err := s.enter()
	if err != nil {
		return err
	}
	defer done()
	v, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error { return txn.Set(keyOwner, v) })
}
