package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dgraph-io/badger/v4"
)

// Errors returned by the Store. Test with errors.Is.
var (
	// ErrNotFound means no staged file has that ino or location.
	ErrNotFound = errors.New("cache: no such staged file")
	// ErrExist means a staged file already occupies the location.
	ErrExist = errors.New("cache: a staged file already exists there")
	// ErrNoSpace means the staged bytes reached MaxSize and no upload
	// freed space within SpaceWait.
	ErrNoSpace = errors.New("cache: staging area full")
	// ErrChanged means the file changed (new generation) since the
	// caller's snapshot; an upload of the old generation must be redone.
	ErrChanged = errors.New("cache: staged file changed")
	// ErrUploading means the staged file's upload is under way: it may
	// create the entity under the file's current name at any moment
	// (HoldUpload).
	ErrUploading = errors.New("cache: the staged file is being uploaded")
	// ErrClosed means the Store or the File handle is closed.
	ErrClosed = errors.New("cache: closed")
	// ErrIncomplete means an earlier write to the file failed: it is held
	// unuploaded until it is truncated to zero or removed.
	ErrIncomplete = errors.New("cache: the file is incomplete after a failed write")
)

// Store is the durable staging area. All methods are safe for concurrent
// use.
//
// Lock order: closeMu (read side) < the per-ino lock < mu. No Store lock is
// taken by callers, and no network call happens below the Store.
type Store struct {
	db    *badger.DB
	arena arena // chunk bytes (arena.go)
	slots slots // free and used slots of the arena
	o     Options
	log   *slog.Logger
	chunk int64
	lockF *os.File // flock on Dir/synfs.lock
	// lockID is the lock file's device and inode, taken once it is locked:
	// checkDir compares Dir/synfs.lock with it.
	lockID   [2]uint64
	lockPath string

	// closeMu is held for reading by every operation and for writing by
	// Close, so that Badger is never used after it is closed.
	closeMu   sync.RWMutex
	closed    bool          // guarded by closeMu
	closing   chan struct{} // closed when Close starts; wakes space waiters
	closeOnce sync.Once

	allocMu  sync.Mutex // serialises ino allocation
	nextIno  uint64     // guarded by allocMu
	inoLimit uint64     // guarded by allocMu; i/next on disk

	mu      sync.Mutex // protects the fields below
	locks   map[uint64]*inoLock
	files   map[uint64]*File // files with open handles
	held    map[uint64]int   // uploads held back (HoldUpload), with their holders
	used    int64
	freed   chan struct{} // closed and replaced whenever used drops
	waiters int           // writers waiting for space
	// full is set when a writer waited SpaceWait in vain, and cleared when
	// space is given back: until then other writers fail at once instead
	// of each waiting again (the kernel's writeback sends a file's
	// remaining pages one by one after the first ENOSPC).
	full bool

	// dropMu is held for reading around every Badger write and for writing
	// around DropPrefix, which makes concurrent writes fail.
	dropMu sync.RWMutex

	freedBytes atomic.Int64 // bytes deleted since the last GC pass
	updates    atomic.Int64 // transactions committed by update (tests count them)
	gcKick     chan struct{}
	gcDone     chan struct{}

	recs recCache // decoded records (reuse.go)
	bufs bufPool  // chunk buffers no file uses (reuse.go)

	gone      atomic.Pointer[error] // set once the cache directory is gone
	disk      diskGuard
	watchDone chan struct{}
}

type inoLock struct {
	mu sync.Mutex
	n  int // holders and waiters; guarded by Store.mu
}

// lockIno locks ino's per-file lock and returns its unlock function. The
// lock serialises every read-modify-write of ino's record and chunks.
func (s *Store) lockIno(ino uint64) func() {
	s.mu.Lock()
	l := s.locks[ino]
	if l == nil {
		l = &inoLock{}
		s.locks[ino] = l
	}
	l.n++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		l.n--
		if l.n == 0 {
			delete(s.locks, ino)
		}
		s.mu.Unlock()
	}
}

// enter guards an operation against Close. The caller must call the
// returned function when done.
func (s *Store) enter() (func(), error) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, ErrClosed
	}
	return s.closeMu.RUnlock, nil
}

// enterIno is enter plus ino's lock: the store stays open, and ino's record,
// chunks and open File are the caller's, until the returned func runs.
func (s *Store) enterIno(ino uint64) (func(), error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	unlock := s.lockIno(ino)
	return func() { unlock(); done() }, nil
}

// Open opens (or creates) the store described by o. Only one process may
// use a cache directory at a time.
func Open(o Options) (*Store, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		o:         o,
		log:       o.Logger,
		chunk:     int64(o.ChunkSize),
		closing:   make(chan struct{}),
		locks:     make(map[uint64]*inoLock),
		files:     make(map[uint64]*File),
		held:      make(map[uint64]int),
		freed:     make(chan struct{}),
		gcKick:    make(chan struct{}, 1),
		gcDone:    make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	if !o.InMemory {
		if err := prepareDir(o.Dir); err != nil {
			return nil, err
		}
		if s.lockF, err = lockDir(o.Dir); err != nil {
			return nil, err
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(s.lockF.Fd()), &st); err != nil {
			s.unlockDir()
			return nil, fmt.Errorf("cache: %s: %w", lockName, err)
		}
		s.lockID, s.lockPath = [2]uint64{uint64(st.Dev), st.Ino}, filepath.Join(o.Dir, lockName)
		if err := s.prepareDisk(); err != nil {
			s.unlockDir()
			return nil, err
		}
	}
	s.db, err = badger.Open(o.badger())
	if err != nil {
		s.unlockDir()
		return nil, fmt.Errorf("cache: open %s: %w", o.Dir, err)
	}
	if o.InMemory {
		s.arena = &memArena{slots: map[int64][]byte{}}
	} else if s.arena, err = openFileArena(o.Dir); err != nil {
		s.db.Close()
		s.unlockDir()
		return nil, err
	}
	// The arena's slots first (recover frees some), then chunks an
	// earlier synfs kept in Badger, then the records.
	if err := errors.Join(s.recoverArena(), s.migrateChunks(), s.recover()); err != nil {
		s.arena.Close()
		s.db.Close()
		s.unlockDir()
		return nil, err
	}
	if !o.InMemory {
		s.watchDisk()
	}
	go s.gcLoop()
	go s.watchLoop()
	return s, nil
}

func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("cache: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
	}
	return nil
}

// lockDir takes an exclusive flock on dir/synfs.lock. Badger holds its own
// directory lock too; this one gives a clear message.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("cache directory %s is in use by another synfs", dir)
		}
		return nil, fmt.Errorf("cache: lock %s: %w", dir, err)
	}
	return f, nil
}

func (s *Store) unlockDir() {
	if s.lockF != nil {
		s.lockF.Close() // closing the descriptor drops the flock
		s.lockF = nil
	}
}

// Close flushes open files (those changed since their last flush come back
// as StateOpen, treated as Dirty after a crash; the others stay Dirty),
// stops the garbage collector and closes Badger. Handles must not be used
// afterwards.
func (s *Store) Close() error {
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		return nil
	}
	first := false
	s.closeOnce.Do(func() { first = true; close(s.closing) })
	if !first {
		return nil
	}
	<-s.gcDone
	<-s.watchDone

	s.mu.Lock()
	var open []*File
	for _, f := range s.files {
		open = append(open, f)
	}
	s.mu.Unlock()
	var errs []error
	for _, f := range open {
		unlock := s.lockIno(f.ino)
		if !f.released {
			if err := f.flushLocked(StateOpen); err != nil {
				errs = append(errs, err)
			}
		}
		unlock()
	}

	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	if gone := s.writable(); gone != nil {
		// Badger would try to flush its memtable into a directory that
		// no longer exists, retrying forever; what it holds cannot be
		// kept anyway. The process is about to exit.
		s.log.Error("cache: not closing the cache database: " + gone.Error())
		s.unlockDir()
		return gone
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.arena.Close(); err != nil {
		errs = append(errs, err)
	}
	s.unlockDir()
	return errors.Join(errs...)
}

// update runs fn in a read-write transaction, retrying on conflicts.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	s.dropMu.RLock()
	defer s.dropMu.RUnlock()
	for i := 0; ; i++ {
		err := s.db.Update(fn)
		if errors.Is(err, badger.ErrConflict) && i < 100 {
			continue
		}
		if err == nil {
			s.updates.Add(1)
		}
		return err
	}
}

// openFile returns ino's open File, or nil.
func (s *Store) openFile(ino uint64) *File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[ino]
}
