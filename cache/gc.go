package cache

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// batch runs fn on a WriteBatch and flushes it. Badger splits a batch that
// outgrows one transaction; the parts commit in order.
func (s *Store) batch(fn func(wb *badger.WriteBatch) error) error {
	s.dropMu.RLock()
	defer s.dropMu.RUnlock()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	if err := fn(wb); err != nil {
		return err
	}
	return wb.Flush()
}

// gcLoop is the value-log garbage collector: on a ticker, and when
// gcAfterFreed bytes have been deleted.
func (s *Store) gcLoop() {
	defer close(s.gcDone)
	if s.o.InMemory {
		<-s.closing
		return
	}
	t := time.NewTicker(s.o.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		case <-s.gcKick:
		}
		s.runGC()
	}
}

// runGC reclaims value-log space. Badger learns that a deleted chunk's
// value is garbage only when compaction meets the deletion, and with keys
// this small the memtable rarely fills, so after deletions runGC forces a
// memtable flush and an L0 compaction (DropPrefix of a scratch key) before
// RunValueLogGC(0.5), which it repeats while it reclaims something.
func (s *Store) runGC() {
	done, err := s.enter()
	if err != nil {
		return
	}
	defer done()
	defer func() {
		// Collected space may let writers waiting for the disk go on.
		s.mu.Lock()
		if s.waiters > 0 {
			s.wakeLocked()
		}
		s.mu.Unlock()
	}()
	if s.writable() != nil {
		return // the directory is gone: nothing to reclaim, and flushes fail
	}
	if free, _, err := statDisk(s.o.Dir); err == nil && free < minOpenFree {
		// Rewriting a value-log file writes into a memory-mapped file:
		// on a full disk that is fatal, so wait for the reserve or for
		// space.
		s.releaseReserve("the cache disk is full")
		if free, _, err = statDisk(s.o.Dir); err == nil && free < minOpenFree {
			s.log.Warn("cache: the cache disk is full: value-log garbage collection postponed", "free", free)
			return
		}
	}
	if s.freedBytes.Swap(0) > 0 {
		if err := s.compact(); err != nil {
			s.log.Warn("cache: compaction before value-log GC failed", "err", err)
		}
	}
	for range 10000 {
		select {
		case <-s.closing:
			return
		default:
		}
		// Writes pause while one value-log file is rewritten: Badger's
		// rewrite reads the DB's max version without the lock its writers
		// take (a data race in Badger v4.9), so none may run meanwhile.
		s.dropMu.Lock()
		err := s.db.RunValueLogGC(0.5)
		s.dropMu.Unlock()
		if err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.Warn("cache: value-log GC failed", "err", err)
			}
			return
		}
	}
}

// compact flushes the memtable and compacts level 0. DropPrefix blocks
// Badger writes while it runs, so it takes dropMu, which every write holds
// for reading.
func (s *Store) compact() error {
	s.dropMu.Lock()
	defer s.dropMu.Unlock()
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyGCFlush, nil) }); err != nil {
		return err
	}
	return s.db.DropPrefix(tablePrefix(tabGC))
}

// GC runs one garbage-collection pass now and returns when it is done.
func (s *Store) GC() {
	s.freedBytes.Add(1)
	s.runGC()
}
