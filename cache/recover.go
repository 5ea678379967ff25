package cache

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// recover runs at Open: it reads the ino counter, accounts the staged bytes,
// turns records left Open by a crash into Dirty ones, and deletes what a
// crash left half-removed.
func (s *Store) recover() error {
	var (
		fix     []*Record
		drop    []*Record
		haveRec = map[uint64]bool{}
		orphans []uint64
	)
	err := s.db.View(func(txn *badger.Txn) error {
		if it, err := txn.Get(keyNextIno); err == nil {
			if err := it.Value(func(v []byte) error {
				n, ok := decodeIno(v)
				if !ok {
					return fmt.Errorf("cache: corrupt ino counter")
				}
				s.nextIno, s.inoLimit = n, n
				return nil
			}); err != nil {
				return err
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if s.nextIno == 0 {
			s.nextIno, s.inoLimit = 1, 1
		}
		opts := badger.DefaultIteratorOptions
		opts.Prefix = tablePrefix(tabRecord)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec Record
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return fmt.Errorf("cache: corrupt record %x: %w", it.Item().Key(), err)
			}
			haveRec[rec.Ino] = true
			switch {
			case rec.Unlinked:
				// Unlinked while open: kept only for the handles, which
				// the stop closed.
				r := rec
				drop = append(drop, &r)
			case rec.State == StateOpen:
				r := rec
				fix = append(fix, &r)
				s.used += rec.Size
			case rec.State == StateDone:
				r := rec
				drop = append(drop, &r)
			default:
				s.used += rec.Size
			}
		}
		// Chunks whose record is gone: a removal interrupted by a crash.
		cit := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabBlock)})
		defer cit.Close()
		for cit.Rewind(); cit.Valid(); {
			ino, _, ok := parseBlockKey(cit.Item().Key())
			if !ok {
				cit.Next()
				continue
			}
			if !haveRec[ino] {
				orphans = append(orphans, ino)
			}
			cit.Seek(blockPrefix(ino + 1))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, rec := range fix {
		rec.State = StateDirty
		rec.MD5 = ""
		rec.Gen++
		if err := s.update(func(txn *badger.Txn) error { return putRecord(txn, rec) }); err != nil {
			return err
		}
		if err := s.deleteChunksFrom(rec.Ino, (rec.Size+s.chunk-1)/s.chunk); err != nil {
			return err
		}
	}
	for _, rec := range drop {
		if err := s.deleteAll(rec); err != nil {
			return err
		}
	}
	for _, ino := range orphans {
		if err := s.deleteChunksFrom(ino, 0); err != nil {
			return err
		}
	}
	if n := len(fix) + len(drop) + len(orphans); n > 0 {
		s.log.Info("cache: recovered after an unclean stop", "reopened", len(fix), "dropped", len(drop)+len(orphans))
	}
	return nil
}
