package cache

import (
	"context"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// StoreStats is a snapshot of the Store for status displays.
type StoreStats struct {
	ByState   map[State]int // staged files per state
	Used      int64         // staged bytes accounted against MaxSize
	MaxSize   int64         // 0 = unlimited
	OpenFiles int           // files with open handles
	Waiting   int           // writes waiting for space
	LSMBytes  int64         // on-disk size of Badger's tables (0 in memory)
	VlogBytes int64         // on-disk size of Badger's value log (0 in memory)
	DataBytes int64         // storage the arena's chunk bytes take (arena.go)
}

// Dir returns the cache directory ("" in memory).
func (s *Store) Dir() string { return s.o.Dir }

// MaxSize returns the cap on staged bytes (0: none).
func (s *Store) MaxSize() int64 { return s.o.MaxSize }

// Used returns the staged bytes accounted against MaxSize.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Stats returns counts by state, the staged bytes and Badger's on-disk
// sizes.
func (s *Store) Stats() StoreStats {
	st := StoreStats{ByState: map[State]int{}, MaxSize: s.o.MaxSize}
	s.mu.Lock()
	st.Used = s.used
	st.OpenFiles = len(s.files)
	st.Waiting = s.waiters
	s.mu.Unlock()
	done, err := s.enter()
	if err != nil {
		return st
	}
	defer done()
	_ = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabRecord), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec struct{ State State }
			if it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }) == nil {
				st.ByState[rec.State]++
			}
		}
		return nil
	})
	if !s.o.InMemory {
		st.LSMBytes, st.VlogBytes = dirSizes(s.o.Dir)
	}
	st.DataBytes = s.arena.Allocated()
	return st
}

// dirSizes sums the allocated sizes of Badger's table and value-log files.
func dirSizes(dir string) (lsm, vlog int64) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		n := fi.Size()
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			n = sys.Blocks * 512
		}
		switch {
		case strings.HasSuffix(p, ".vlog"):
			vlog += n
		case strings.HasSuffix(p, ".sst"), strings.HasSuffix(p, ".mem"):
			lsm += n
		}
		return nil
	})
	return lsm, vlog
}

// reserve accounts n more staged bytes, waiting up to SpaceWait for space
// under MaxSize.
func (s *Store) reserve(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	var timer *time.Timer
	for {
		s.mu.Lock()
		if (s.o.MaxSize == 0 || s.used+n <= s.o.MaxSize) && s.diskFits(n) {
			s.used += n
			s.mu.Unlock()
			return nil
		}
		if s.full {
			s.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return err
			}
			return ErrNoSpace
		}
		ch := s.freed
		s.waiters++
		s.mu.Unlock()
		// Deleted chunks give disk space back only when the value log is
		// collected: do it now rather than at the next tick.
		s.kickGC()
		if timer == nil {
			timer = time.NewTimer(s.o.SpaceWait)
			defer timer.Stop()
		}
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timer.C:
			err = ErrNoSpace
			s.mu.Lock()
			s.full = true
			s.mu.Unlock()
		case <-s.closing:
			err = ErrClosed
		}
		s.mu.Lock()
		s.waiters--
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// release gives n staged bytes back and wakes writers waiting for space.
func (s *Store) release(n int64) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.used -= n
	s.wakeLocked()
	s.mu.Unlock()
}

// wakeLocked wakes writers waiting for space. Caller holds s.mu.
func (s *Store) wakeLocked() {
	s.full = false
	close(s.freed)
	s.freed = make(chan struct{})
}

func (s *Store) kickGC() {
	select {
	case s.gcKick <- struct{}{}:
	default:
	}
}

// pendingCount counts the files still to upload, without entering the
// Store (its callers have).
func (s *Store) pendingCount() int {
	n := 0
	_ = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabPending)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n
}

// noteFreed counts deleted bytes and starts a GC pass after gcAfterFreed.
func (s *Store) noteFreed(n int64) {
	if s.freedBytes.Add(n) >= gcAfterFreed {
		s.kickGC()
	}
}
