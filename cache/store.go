package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	// ErrClosed means the Store or the File handle is closed.
	ErrClosed = errors.New("cache: closed")
	// ErrIncomplete means an earlier write to the file failed: it is held
	// unuploaded until it is truncated to zero or removed.
	ErrIncomplete = errors.New("cache: the file is incomplete after a failed write")
)

// State is where a staged file is in its life.
type State int

// The states of a staged file.
const (
	// StateOpen: being written, with open handles. Found after a restart it
	// means the process stopped while the file was open; the bytes up to
	// the last flush are kept and the file is treated as StateDirty.
	StateOpen State = iota
	// StateDirty: closed and waiting for upload.
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

// StoreStats is a snapshot of the Store for status displays.
type StoreStats struct {
	ByState   map[State]int // staged files per state
	Used      int64         // staged bytes accounted against MaxSize
	MaxSize   int64         // 0 = unlimited
	OpenFiles int           // files with open handles
	Waiting   int           // writes waiting for space
	LSMBytes  int64         // on-disk size of Badger's tables (0 in memory)
	VlogBytes int64         // on-disk size of Badger's value log (0 in memory)
}

// Store is the durable staging area. All methods are safe for concurrent
// use.
//
// Lock order: closeMu (read side) < the per-ino lock < mu. No Store lock is
// taken by callers, and no network call happens below the Store.
type Store struct {
	db    *badger.DB
	o     Options
	log   *slog.Logger
	chunk int64
	lockF *os.File // flock on Dir/synfs.lock

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
	gcKick     chan struct{}
	gcDone     chan struct{}

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
	if err := s.recover(); err != nil {
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
			switch rec.State {
			case StateOpen:
				r := rec
				fix = append(fix, &r)
				s.used += rec.Size
			case StateDone:
				r := rec
				drop = append(drop, &r)
			default:
				s.used += rec.Size
			}
		}
		// Chunks whose record is gone: a removal interrupted by a crash.
		cit := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabChunk)})
		defer cit.Close()
		for cit.Rewind(); cit.Valid(); {
			ino, _, ok := parseChunkKey(cit.Item().Key())
			if !ok {
				cit.Next()
				continue
			}
			if !haveRec[ino] {
				orphans = append(orphans, ino)
			}
			cit.Seek(chunkPrefix(ino + 1))
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

// Close flushes open files (they come back as StateOpen, treated as Dirty),
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
		if !f.removed && !f.released {
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
		return err
	}
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
	if rec.State.pending() {
		return w.Set(pendingKey(rec.Ino), nil)
	}
	return w.Delete(pendingKey(rec.Ino))
}

func getRecord(txn *badger.Txn, ino uint64) (*Record, error) {
	it, err := txn.Get(recordKey(ino))
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
	k := indexKey(rec.ParentID, rec.Name)
	ino, err := getIndex(txn, k)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if ino != rec.Ino {
		return nil
	}
	return txn.Delete(k)
}

func (s *Store) readRecord(ino uint64) (*Record, error) {
	var rec *Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = getRecord(txn, ino)
		return err
	})
	return rec, err
}

// allocIno returns a fresh ino. Inos are reserved on disk in blocks of
// 1024, so a restart skips at most the rest of a block.
func (s *Store) allocIno() (uint64, error) {
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	if s.nextIno >= s.inoLimit {
		limit := s.nextIno + 1024
		if err := s.update(func(txn *badger.Txn) error { return txn.Set(keyNextIno, encodeIno(limit)) }); err != nil {
			return 0, err
		}
		s.inoLimit = limit
	}
	ino := s.nextIno
	s.nextIno++
	return ino, nil
}

// Create stages a new, empty file called name in parentID, overwriting File
// entity entityID when it is not "". dir is the folder's path under the
// mount, kept for status displays. If a staged file already occupies that
// location, Create returns it together with ErrExist.
func (s *Store) Create(parentID, name, entityID, dir string) (*Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	if err := s.checkDir(); err != nil {
		return nil, err
	}
	ino, err := s.allocIno()
	if err != nil {
		return nil, err
	}
	rec := &Record{
		Ino: ino, ParentID: parentID, Name: name, EntityID: entityID, Dir: dir,
		Gen: 1, Mtime: s.o.Now(), State: StateOpen,
	}
	var existing *Record
	err = s.update(func(txn *badger.Txn) error {
		existing = nil
		k := indexKey(parentID, name)
		old, err := getIndex(txn, k)
		if err == nil {
			if existing, err = getRecord(txn, old); err == nil {
				return ErrExist
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
			// A dangling entry: take the location over.
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := txn.Set(k, encodeIno(ino)); err != nil {
			return err
		}
		return putRecord(txn, rec)
	})
	if errors.Is(err, ErrExist) {
		return existing, ErrExist
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Get returns ino's record. For a file with open handles, Size and Mtime are
// the current in-memory values.
func (s *Store) Get(ino uint64) (*Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	rec, err := s.readRecord(ino)
	if err != nil {
		return nil, err
	}
	s.overlay(rec)
	return rec, nil
}

func (s *Store) overlay(rec *Record) {
	s.mu.Lock()
	f := s.files[rec.Ino]
	s.mu.Unlock()
	if f != nil {
		rec.Size = f.Size()
		rec.Mtime = time.Unix(0, f.mtime.Load())
	}
}

// Lookup returns the staged file at parentID/name, in any state but Done,
// or ErrNotFound.
func (s *Store) Lookup(parentID, name string) (*Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var rec *Record
	err = s.db.View(func(txn *badger.Txn) error {
		ino, err := getIndex(txn, indexKey(parentID, name))
		if err != nil {
			return err
		}
		rec, err = getRecord(txn, ino)
		return err
	})
	if err != nil {
		return nil, err
	}
	if rec.State == StateDone {
		return nil, ErrNotFound
	}
	s.overlay(rec)
	return rec, nil
}

// List returns the staged files in folder parentID (any state but Done),
// sorted by name.
func (s *Store) List(parentID string) ([]Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []Record
	err = s.db.View(func(txn *badger.Txn) error {
		p := indexPrefix(parentID)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
		defer it.Close()
		var inos []uint64
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				ino, ok := decodeIno(v)
				if !ok {
					return fmt.Errorf("cache: corrupt index entry %q", it.Item().Key())
				}
				inos = append(inos, ino)
				return nil
			})
			if err != nil {
				return err
			}
		}
		for _, ino := range inos {
			rec, err := getRecord(txn, ino)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if rec.State != StateDone {
				out = append(out, *rec)
			}
		}
		return nil
	})
	for i := range out {
		s.overlay(&out[i])
	}
	return out, err
}

// Rename moves staged file ino to parentID/name (dir is the folder's path
// under the mount) and bumps its generation, so that an upload under the
// old name is not taken as final. It fails with ErrExist when another
// staged file occupies the target.
func (s *Store) Rename(ino uint64, parentID, name, dir string) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	f := s.openFile(ino)
	var newGen uint64
	err = s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		if rec.State == StateDone {
			// Uploaded and kept for handles still open; not indexed. A
			// later write stages it again, indexed under its new place.
			rec.ParentID, rec.Name, rec.Dir = parentID, name, dir
			newGen = 0
			return putRecord(txn, rec)
		}
		if rec.ParentID == parentID && rec.Name == name {
			newGen = 0
			return nil
		}
		k := indexKey(parentID, name)
		other, err := getIndex(txn, k)
		switch {
		case err == nil && other != ino:
			if _, err := getRecord(txn, other); err == nil {
				return ErrExist
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		if err := deleteIndexIfOwned(txn, rec); err != nil {
			return err
		}
		if err := txn.Set(k, encodeIno(ino)); err != nil {
			return err
		}
		rec.ParentID, rec.Name, rec.Dir = parentID, name, dir
		rec.Gen = max(rec.Gen, f.genOrZero()) + 1
		rec.Attempts = 0
		newGen = rec.Gen
		return putRecord(txn, rec)
	})
	if err != nil || newGen == 0 || f == nil {
		return err
	}
	clean := f.gen.Load() == f.flushedGen.Load()
	f.gen.Store(newGen)
	if clean {
		f.flushedGen.Store(newGen)
	}
	return nil
}

// Remove deletes staged file ino: record, index entry, chunks and upload
// parameters. Open handles on it fail with ErrNotFound from then on.
func (s *Store) Remove(ino uint64) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	rec, err := s.readRecord(ino)
	if err != nil {
		return err
	}
	acct := rec.Size
	if rec.State == StateDone {
		acct = 0
	}
	if f := s.openFile(ino); f != nil {
		acct = f.acct
		f.removed = true
		f.pending = nil
		f.acct = 0
	}
	if err := s.deleteAll(rec); err != nil {
		return err
	}
	s.release(acct)
	return nil
}

// deleteAll removes rec, its marker and index entry in one transaction,
// then its chunks. Caller must hold rec.Ino's lock (or be recover).
func (s *Store) deleteAll(rec *Record) error {
	err := s.update(func(txn *badger.Txn) error {
		if err := deleteIndexIfOwned(txn, rec); err != nil {
			return err
		}
		if err := txn.Delete(pendingKey(rec.Ino)); err != nil {
			return err
		}
		return txn.Delete(recordKey(rec.Ino))
	})
	if err != nil {
		return err
	}
	return s.deleteChunksFrom(rec.Ino, 0)
}

// deleteChunksFrom deletes ino's chunks numbered from and up.
func (s *Store) deleteChunksFrom(ino uint64, from int64) error {
	var keys [][]byte
	var bytes int64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: chunkPrefix(ino)})
		defer it.Close()
		for it.Seek(chunkKey(ino, from)); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
			bytes += it.Item().ValueSize()
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	err = s.batch(func(wb *badger.WriteBatch) error {
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.noteFreed(bytes)
	return nil
}

// Records returns every staged file's record (any state but Done), in ino
// order, for status displays.
func (s *Store) Records() ([]Record, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []Record
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabRecord), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec Record
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
			if rec.State != StateDone {
				out = append(out, rec)
			}
		}
		return nil
	})
	for i := range out {
		s.overlay(&out[i])
	}
	return out, err
}

// Pending returns the inos of every file that still needs uploading (states
// Open, Dirty, Uploading and Failed), from a key-only scan.
func (s *Store) Pending() ([]uint64, error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []uint64
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tablePrefix(tabPending)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if ino, ok := parsePendingKey(it.Item().Key()); ok {
				out = append(out, ino)
			}
		}
		return nil
	})
	return out, err
}

// SetState sets ino's state and failure text if its generation is still
// gen; otherwise it changes nothing and returns ErrChanged. Setting
// StateUploading counts an attempt and keeps the previous failure text.
// StateDone is set by Finish only.
func (s *Store) SetState(ino, gen uint64, st State, errText string) error {
	if st == StateDone || st < StateOpen || st > StateLocal {
		return fmt.Errorf("cache: SetState(%v) not allowed", st)
	}
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	f := s.openFile(ino)
	if f != nil && f.gen.Load() != gen {
		return ErrChanged
	}
	return s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		if rec.Gen != gen || rec.State == StateDone {
			return ErrChanged
		}
		rec.State = st
		if st == StateUploading {
			rec.Attempts++
		} else {
			rec.Err = errText
		}
		if f != nil {
			f.pstate = st
		}
		return putRecord(txn, rec)
	})
}

// SetUpload records the multipart parameters u for ino (u may be nil to
// clear them).
func (s *Store) SetUpload(ino uint64, u *Upload) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	return s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		rec.Upload = u
		return putRecord(txn, rec)
	})
}

// Finish records that generation gen of ino has been uploaded. If ino has
// not changed since, its bytes are deleted (immediately, or at the last
// Release when handles are still open) and its space is given back;
// otherwise Finish returns ErrChanged and the caller uploads again.
func (s *Store) Finish(ino, gen uint64) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	rec, err := s.readRecord(ino)
	if err != nil {
		return err
	}
	if rec.Gen != gen || rec.State == StateDone {
		return ErrChanged
	}
	f := s.openFile(ino)
	if f == nil {
		if err := s.deleteAll(rec); err != nil {
			return err
		}
		s.release(rec.Size)
		return nil
	}
	if f.gen.Load() != gen || f.flushedGen.Load() != gen || len(f.pending) > 0 {
		return ErrChanged
	}
	// Handles are open: keep the bytes for them, but the file is no longer
	// staged. A later write stages it again.
	err = s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		if err := deleteIndexIfOwned(txn, rec); err != nil {
			return err
		}
		rec.State = StateDone
		return putRecord(txn, rec)
	})
	if err != nil {
		return err
	}
	f.done = true
	f.pstate = StateDone
	s.release(f.acct)
	f.acct = 0
	return nil
}

// SetMtime sets staged file ino's modification time, whether or not it
// has open handles.
func (s *Store) SetMtime(ino uint64, t time.Time) error {
	leave, err := s.enterIno(ino)
	if err != nil {
		return err
	}
	defer leave()
	err = s.update(func(txn *badger.Txn) error {
		rec, err := getRecord(txn, ino)
		if err != nil {
			return err
		}
		rec.Mtime = t
		return putRecord(txn, rec)
	})
	if err != nil {
		return err
	}
	if f := s.openFile(ino); f != nil {
		f.mtime.Store(t.UnixNano())
	}
	return nil
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

// openFile returns ino's open File, or nil.
func (s *Store) openFile(ino uint64) *File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[ino]
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
