package cache

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// ErrCacheGone means the cache directory, or its lock file, was deleted or
// replaced while the Store had it open. Badger goes on working on the
// deleted files, so what is staged can still be read and uploaded, but
// nothing written from then on would survive the process: writes, creates
// and closes fail with it.
var ErrCacheGone = errors.New("cache: the cache directory was deleted or replaced while synfs was running")

const lockName = "synfs.lock"

// watchInterval is how often the watcher checks the cache directory and
// the disk.
const watchInterval = time.Second

// writable returns ErrCacheGone (wrapped) once the cache directory is
// known to be gone.
func (s *Store) writable() error {
	if e := s.gone.Load(); e != nil {
		return *e
	}
	return nil
}

// checkDir looks at the cache directory now: the lock file must still be
// the one the Store holds. The first time it is not, it logs the loss.
// Every create and close calls it: one stat(2), no allocation of a
// FileInfo.
func (s *Store) checkDir() error {
	if err := s.writable(); err != nil || s.o.InMemory {
		return err
	}
	var st syscall.Stat_t
	if syscall.Stat(s.lockPath, &st) == nil && [2]uint64{uint64(st.Dev), st.Ino} == s.lockID {
		return nil
	}
	e := fmt.Errorf("%w: %s", ErrCacheGone, s.o.Dir)
	if s.gone.CompareAndSwap(nil, &e) {
		n := s.pendingCount()
		s.log.Error(fmt.Sprintf("cache directory %s was deleted or replaced while mounted: new writes fail with 'Read-only file system'; "+
			"%d staged file(s) are still being uploaded from the deleted files, which vanish when synfs stops: "+
			"keep synfs running until they are uploaded (see status), then unmount and mount again", s.o.Dir, n))
	}
	return e
}

// Health returns nil while the Store can take new bytes, or why it
// cannot: the cache directory is gone (ErrCacheGone), or the cache disk is
// full (ErrNoSpace).
func (s *Store) Health() error {
	if err := s.writable(); err != nil {
		return err
	}
	if s.o.InMemory || s.o.DiskHeadroom < 0 {
		return nil
	}
	free, _, err := statDisk(s.o.Dir)
	if err == nil && free < s.o.DiskHeadroom {
		return fmt.Errorf("%w: the cache disk has %d MiB free, less than the %d MiB synfs leaves free", ErrNoSpace, free>>20, s.o.DiskHeadroom>>20)
	}
	return nil
}

// watchLoop checks the cache directory and the disk every watchInterval.
func (s *Store) watchLoop() {
	defer close(s.watchDone)
	if s.o.InMemory {
		<-s.closing
		return
	}
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		done, err := s.enter()
		if err != nil {
			return
		}
		s.checkDir()
		s.watchDisk()
		done()
	}
}
