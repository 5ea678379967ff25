package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The cache disk. Badger memory-maps its value log and write-ahead log as
// sparse files, so a write into a mapped page on a full disk kills the
// process with SIGBUS instead of returning an error. The Store therefore
// never lets staged bytes take the disk's last Headroom bytes, and keeps a
// small reserve file that it gives back when the disk fills anyway (another
// program filled it), so that Badger can always open, record uploads and
// collect garbage.
const (
	// minHeadroom and maxHeadroom bound the default headroom, 5% of the disk.
	minHeadroom = 64 << 20
	maxHeadroom = 8 << 30
	// defaultReserve is the size of the reserve file.
	defaultReserve = 32 << 20
	// minOpenFree is the free space below which Badger cannot be opened
	// safely: it writes a new memory-mapped write-ahead log at once.
	minOpenFree = 8 << 20
	// diskSampleAge is how long one statfs sample is trusted.
	diskSampleAge = 100 * time.Millisecond

	reserveName = "synfs.reserve"
)

// diskGuard accounts the disk's free space between statfs samples.
type diskGuard struct {
	mu    sync.Mutex
	at    time.Time // when free was sampled
	free  int64     // bytes available to us at that time
	total int64     // size of the file system
	taken int64     // bytes reserved since the sample
}

// statDisk returns the bytes available to this process on dir's file
// system, and its size.
func statDisk(dir string) (free, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}

// headroomFor is the default headroom for a file system of total bytes.
func headroomFor(total int64) int64 { return min(max(total/20, minHeadroom), maxHeadroom) }

// prepareDisk runs before Badger opens: it sets the headroom and makes sure
// the disk has room for Badger to open, giving the reserve back if needed.
func (s *Store) prepareDisk() error {
	dir := s.o.Dir
	free, total, err := statDisk(dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if s.o.DiskHeadroom == 0 {
		s.o.DiskHeadroom = headroomFor(total)
	}
	if free < minOpenFree && s.releaseReserve("the cache disk is full at start") {
		free, _, _ = statDisk(dir)
	}
	if free < minOpenFree {
		return fmt.Errorf("cache: the disk of %s is full (%d bytes free): synfs needs %d MiB free to open its cache safely; free some space on it and mount again",
			dir, free, minOpenFree>>20)
	}
	s.disk.free, s.disk.total, s.disk.at = free, total, time.Now()
	return nil
}

// diskFits takes n bytes of the disk's free space, if that leaves the
// headroom free.
func (s *Store) diskFits(n int64) bool {
	if s.o.InMemory || s.o.DiskHeadroom < 0 {
		return true
	}
	d := &s.disk
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.at) > diskSampleAge || d.free-d.taken-n < s.o.DiskHeadroom {
		if free, total, err := statDisk(s.o.Dir); err == nil {
			d.free, d.total, d.taken, d.at = free, total, 0, time.Now()
		}
	}
	if d.free-d.taken-n < s.o.DiskHeadroom {
		return false
	}
	d.taken += n
	return true
}

// diskRoom returns the bytes staging may still take from the disk and the
// file system's size, from a fresh sample.
func (s *Store) diskRoom() (room, total int64) {
	if s.o.InMemory {
		return 1 << 50, 1 << 50
	}
	free, total, err := statDisk(s.o.Dir)
	if err != nil {
		return 0, 0
	}
	if s.o.DiskHeadroom < 0 {
		return free, total
	}
	return max(free-s.o.DiskHeadroom, 0), total
}

// watchDisk runs on the watcher's ticker: it gives the reserve back when
// the disk is nearly full and makes it again when there is room.
func (s *Store) watchDisk() {
	if s.o.InMemory || s.o.Reserve <= 0 {
		return
	}
	free, _, err := statDisk(s.o.Dir)
	if err != nil {
		return
	}
	low := max(s.o.DiskHeadroom, 0) / 2
	switch {
	case free < low:
		s.releaseReserve("the cache disk is nearly full")
	case free >= max(s.o.DiskHeadroom, 0)+2*s.o.Reserve && s.writable() == nil:
		s.makeReserve()
	}
}

// makeReserve creates the reserve file, with its blocks allocated, unless
// it exists.
func (s *Store) makeReserve() {
	p := filepath.Join(s.o.Dir, reserveName)
	if fi, err := os.Stat(p); err == nil && fi.Size() == s.o.Reserve {
		return
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		s.log.Warn("cache: creating the reserve file", "err", err)
		return
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, s.o.Reserve); err != nil {
		f.Close()
		os.Remove(p)
		if !errors.Is(err, syscall.EOPNOTSUPP) {
			s.log.Warn("cache: allocating the reserve file", "err", err)
		}
	}
}

// releaseReserve deletes the reserve file, if there is one, and says why.
func (s *Store) releaseReserve(why string) bool {
	p := filepath.Join(s.o.Dir, reserveName)
	fi, err := os.Stat(p)
	if err != nil {
		return false
	}
	if err := os.Remove(p); err != nil {
		return false
	}
	s.log.Warn(fmt.Sprintf("cache: %s: released the %d MiB reserve in %s so that the cache stays consistent; writes fail with 'No space left on device' until space is freed",
		why, fi.Size()>>20, s.o.Dir))
	return true
}

// Space returns the capacity of the staging area (MaxSize, or the cache
// disk's size) and what writes may still take of it: the least of what
// MaxSize leaves and what the disk has above the headroom.
func (s *Store) Space() (capacity, avail int64) {
	avail, capacity = s.diskRoom()
	if s.o.MaxSize > 0 {
		capacity = s.o.MaxSize
		avail = min(avail, max(s.o.MaxSize-s.Used(), 0))
	}
	return capacity, avail
}
