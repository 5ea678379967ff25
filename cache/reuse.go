package cache

import (
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// Two things every staged file needs and that cost more to make than to
// keep: a chunk buffer, and its record decoded from JSON. A small file is
// written, flushed, re-read by the flusher and the kernel's GETATTRs a
// dozen times and then dropped, so both are reused across files.

// chunkBuf is a chunk buffer in the Store's pool. Only b[:dirty] may hold
// non-zero bytes, so a buffer taken for a partial chunk is cleared only
// that far: 4 KiB for a 4 KiB file, not the whole MiB.
type chunkBuf struct {
	b     []byte
	dirty int
}

// bufPool holds chunk buffers no file uses any more. sync.Pool lets the
// garbage collector take them back when staging stops.
type bufPool struct {
	p      sync.Pool
	reused atomic.Int64 // buffers handed out again (tests)
}

// get returns a ChunkSize buffer whose bytes past dirty are zero, or nil.
func (bp *bufPool) get() ([]byte, int) {
	cb, _ := bp.p.Get().(*chunkBuf)
	if cb == nil {
		return nil, 0
	}
	bp.reused.Add(1)
	return cb.b, cb.dirty
}

// put gives back b, a ChunkSize buffer no one refers to any more, of which
// only b[:dirty] may be non-zero.
func (bp *bufPool) put(b []byte, dirty int) {
	bp.p.Put(&chunkBuf{b: b, dirty: min(max(dirty, 0), len(b))})
}

// recCacheMax bounds the decoded records kept: about 5 MiB at most (a
// record is some 300 bytes with its strings). Listing a folder decodes
// each staged record in it, so a folder of up to this many staged files
// is listed without JSON after the first time.
const recCacheMax = 16384

// recCache keeps records decoded from Badger, each with the commit
// timestamp (Item.Version) of the value it was decoded from. A committed
// value's version is unique to it and grows with every commit of the key,
// so an entry whose version matches the item read is that value: the
// cache needs no invalidation. It is used only in read-only transactions,
// where every item is a committed value (a read-write transaction's own
// pending writes carry its read timestamp as their version, which a
// committed value may share).
type recCache struct {
	mu sync.Mutex
	m  map[uint64]recEntry
}

type recEntry struct {
	version uint64
	rec     Record
}

// viewRecord reads ino's record in txn, a read-only transaction.
func (s *Store) viewRecord(txn *badger.Txn, ino uint64) (*Record, error) {
	it, err := txn.Get(recordKey(ino))
	if err != nil {
		return getRecordItem(it, ino, err)
	}
	c := &s.recs
	c.mu.Lock()
	e, ok := c.m[ino]
	c.mu.Unlock()
	if ok && e.version == it.Version() {
		return e.rec.clone(), nil
	}
	rec, err := getRecordItem(it, ino, nil)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= recCacheMax {
		c.m = make(map[uint64]recEntry)
	}
	c.m[ino] = recEntry{version: it.Version(), rec: *rec.clone()}
	c.mu.Unlock()
	return rec, nil
}

// clone returns a copy of r that shares nothing with it.
func (r *Record) clone() *Record {
	c := *r
	if r.Upload != nil {
		u := *r.Upload
		c.Upload = &u
	}
	return &c
}
