package cache

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// Annotation is one Synapse annotation kept for a staged file: its type
// (STRING, LONG, DOUBLE, BOOLEAN, TIMESTAMP_MS) and values as Synapse
// stores them.
type Annotation struct {
	Type   string   `json:"type"`
	Values []string `json:"values"`
}

// SetAnnotations replaces the annotations that staged file ino gets once
// its entity exists (table a/). An empty map deletes them. It fails with
// ErrNotFound when ino has no record. Like every write, it survives a
// crash of the process.
func (s *Store) SetAnnotations(ino uint64, a map[string]Annotation) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	return s.update(func(txn *badger.Txn) error {
		if _, err := txn.Get(recordKey(ino)); errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if len(a) == 0 {
			return txn.Delete(annotKey(ino))
		}
		v, err := json.Marshal(a)
		if err != nil {
			return err
		}
		return txn.Set(annotKey(ino), v)
	})
}

// Annotations returns the annotations kept for staged file ino; nil when
// there are none.
func (s *Store) Annotations(ino uint64) (map[string]Annotation, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var a map[string]Annotation
	err = s.db.View(func(txn *badger.Txn) error {
		var err error
		a, err = getAnnotations(txn, ino)
		return err
	})
	return a, err
}

func getAnnotations(txn *badger.Txn, ino uint64) (map[string]Annotation, error) {
	item, err := txn.Get(annotKey(ino))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a map[string]Annotation
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &a) })
	return a, err
}

// DropAnnotations deletes ino's annotations if they are still exactly
// applied, the set the caller has just written to Synapse, and reports
// whether it did. When they changed meanwhile it keeps them and returns
// false, so that the caller applies the new set too.
func (s *Store) DropAnnotations(ino uint64, applied map[string]Annotation) (bool, error) {
	leave, err := s.enterIno(ino)
	if err != nil {
		return false, err
	}
	defer leave()
	dropped := false
	err = s.update(func(txn *badger.Txn) error {
		cur, err := getAnnotations(txn, ino)
		if err != nil {
			return err
		}
		if !maps.EqualFunc(cur, applied, func(a, b Annotation) bool {
			return a.Type == b.Type && slices.Equal(a.Values, b.Values)
		}) {
			return nil
		}
		dropped = true
		return txn.Delete(annotKey(ino))
	})
	return dropped, err
}

// PruneAnnotations deletes the annotations of files that have no record any
// more (removed while staged), and returns how many it deleted.
func (s *Store) PruneAnnotations() (int, error) {
	done, err := s.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	var orphans []uint64
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabAnnot)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ino, ok := parseAnnotKey(it.Item().Key())
			if !ok {
				continue
			}
			if _, err := txn.Get(recordKey(ino)); errors.Is(err, badger.ErrKeyNotFound) {
				orphans = append(orphans, ino)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, ino := range orphans {
		if err := s.update(func(txn *badger.Txn) error {
			if _, err := txn.Get(recordKey(ino)); err == nil {
				return nil
			}
			return txn.Delete(annotKey(ino))
		}); err != nil {
			return 0, err
		}
	}
	return len(orphans), nil
}
