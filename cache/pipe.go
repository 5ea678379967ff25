package cache

import (
	"crypto/md5"
	"encoding"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// maxInFlight is how many whole chunks one file may have handed to its
// pipe and not yet committed. A write that would pass it waits: that is the
// backpressure that keeps a fast writer's memory bounded (maxInFlight
// chunks, 16 MiB, per file being written).
const maxInFlight = 16

// pipe takes a file's whole chunks off the write path: WriteAt hands each
// chunk that a write completes to the pipe and returns; the pipe's
// goroutine adds the chunk to the running MD5 (when the writes are
// sequential) and commits it to Badger, in the order they were handed
// over. Flush, Truncate and everything else that reads or deletes the
// file's chunks in Badger, or writes its record, drains the pipe first
// (drainLocked), so the record never claims a chunk that is not committed,
// and close(2) returns only once every byte is in Badger.
//
// The goroutine runs only while there is work, so idle and small files
// cost none. It takes no File or ino lock: WriteAt may wait for room while
// holding the ino lock.
type pipe struct {
	mu      sync.Mutex // protects the fields below; a leaf
	room    sync.Cond  // signalled whenever busy drops
	queue   []*pipeJob
	busy    int // jobs queued or being worked on
	running bool
	// chunks holds the newest buffer handed over for each chunk number
	// until it is committed, so that reads see it meanwhile.
	chunks map[int64]*flight
	err    error    // the first commit that failed, until drained
	free   [][]byte // committed buffers, for the file's next chunks
}

type pipeJob struct {
	k     int64
	buf   []byte // the chunk's bytes; never changed after the hand-over
	hash  bool   // add buf to the running MD5
	fresh bool   // its arena slot is new: forgotten if the commit fails
	keep  bool   // buf is kept for a later hash: never reused
	// hashOnly: buf only goes to the running MD5; it was written before.
	hashOnly bool
	left     atomic.Int32 // stages (write and commit; hash) not yet over
	failed   atomic.Bool
}

type flight struct {
	buf  []byte
	refs int // jobs for this chunk not yet done
}

// handOffLocked gives whole chunk k to the pipe. hash says it continues the
// running MD5; keep, that the buffer is kept for a later hash
// (hashorder.go) and must not be reused. Caller holds the ino lock and has
// already marked the record (the chunk must never reach the arena before
// the mark).
func (f *File) handOffLocked(k int64, buf []byte, hash, keep bool) {
	p := f.pipeWaitLocked()
	p.queue = append(p.queue, &pipeJob{k: k, buf: buf, hash: hash, keep: keep})
	fl := p.chunks[k]
	if fl == nil {
		fl = &flight{}
		p.chunks[k] = fl
	}
	fl.buf = buf
	fl.refs++
	f.startPipe()
}

// handOffHashLocked gives the pipe a chunk to add to the running MD5 only:
// one kept by hashChunkLocked, whose bytes were handed over before, or a
// copy read back. keep says buf may still be the pipe's or a reader's
// (a kept chunk's buffer); a copy nobody else sees is reused once hashed.
func (f *File) handOffHashLocked(buf []byte, keep bool) {
	p := f.pipeWaitLocked()
	p.queue = append(p.queue, &pipeJob{k: -1, buf: buf, hash: true, hashOnly: true, keep: keep})
	f.startPipe()
}

// pipeWaitLocked locks the pipe, waits for room in it and counts one more
// job. startPipe unlocks it.
func (f *File) pipeWaitLocked() *pipe {
	p := &f.pipe
	p.mu.Lock()
	if p.room.L == nil {
		p.room.L = &p.mu
		p.chunks = make(map[int64]*flight)
	}
	for p.busy >= maxInFlight {
		p.room.Wait()
	}
	p.busy++
	return p
}

// startPipe starts the pipe's goroutine unless it runs, and unlocks the pipe.
func (f *File) startPipe() {
	p := &f.pipe
	if !p.running {
		p.running = true
		go f.runPipe()
	}
	p.mu.Unlock()
}

// runPipe works through the queue, then ends. Each chunk goes through two
// stages side by side: this goroutine writes it into the arena and adds
// its pointer to a transaction, while a hashing goroutine adds the chunks
// that continue the running MD5 to it, in order. A transaction is sent to
// Badger when it is full or the queue is empty, and committed
// asynchronously (CommitWith). Badger applies commits in the order they
// are sent, so two copies of one chunk land in order. A job is done when
// its commit, and its hash if it has one, are.
func (f *File) runPipe() {
	p := &f.pipe
	var (
		txn   *badger.Txn
		group []*pipeJob
		leave func()
		hashq chan *pipeJob
		hdone chan struct{}
	)
	send := func() {
		if txn == nil {
			return
		}
		t, g, l := txn, group, leave
		txn, group, leave = nil, nil, nil
		t.CommitWith(func(err error) {
			l()
			for _, j := range g {
				f.stageDone(j, err)
			}
		})
	}
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			send()
			if hashq != nil {
				// The next run's hasher must not start before this
				// one has hashed everything it was given.
				close(hashq)
				<-hdone
				hashq = nil
			}
			p.mu.Lock()
			if len(p.queue) == 0 {
				// Only now: a new goroutine must not send before this one.
				p.running = false
				p.mu.Unlock()
				return
			}
		}
		j := p.queue[0]
		p.queue = p.queue[1:]
		failed := p.err != nil
		p.mu.Unlock()

		if failed {
			j.left.Store(1)
			f.stageDone(j, nil)
			continue
		}
		// Its stages: the write and commit (unless hash-only), the hash.
		j.left.Store(int32(b2i(!j.hashOnly) + b2i(j.hash)))
		if j.hash {
			// The running MD5 belongs to the pipe while it has work
			// (drainLocked hands it back).
			if hashq == nil {
				hashq, hdone = make(chan *pipeJob, maxInFlight), make(chan struct{})
				go f.runHasher(hashq, hdone)
			}
			hashq <- j
			if j.hashOnly {
				continue
			}
		}
		ptr, fresh, err := f.writeChunk(j.k, j.buf)
		j.fresh = fresh
		if err != nil {
			f.stageDone(j, err)
			continue
		}
		e := badger.NewEntry(blockKey(f.ino, j.k), ptr)
		if txn != nil {
			err := txn.SetEntry(e)
			if err == nil {
				group = append(group, j)
				continue
			}
			if !errors.Is(err, badger.ErrTxnTooBig) {
				f.stageDone(j, err)
				continue
			}
			send()
		}
		l, err := f.s.enterWrite()
		if err != nil {
			f.stageDone(j, err)
			continue
		}
		txn, leave = f.s.db.NewTransaction(true), l
		if err := txn.SetEntry(e); err != nil {
			txn.Discard()
			txn, leave = nil, nil
			l()
			f.stageDone(j, err)
			continue
		}
		group = append(group, j)
	}
}

// runHasher adds the chunks it is given to the running MD5, in order.
func (f *File) runHasher(q <-chan *pipeJob, done chan<- struct{}) {
	for j := range q {
		f.md5.Write(j.buf)
		f.stageDone(j, nil)
	}
	close(done)
}

// stageDone records that one stage of job j is over, err its outcome; the
// last one finishes the job.
func (f *File) stageDone(j *pipeJob, err error) {
	p := &f.pipe
	if err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
		if j.fresh {
			f.unclaim([]int64{j.k})
		}
		j.failed.Store(true)
	}
	if j.left.Add(-1) == 0 {
		f.finishJob(j)
	}
}

// finishJob records that job j is done.
func (f *File) finishJob(j *pipeJob) {
	p := &f.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	if fl := p.chunks[j.k]; fl != nil && !j.hashOnly {
		if fl.refs--; fl.refs == 0 {
			delete(p.chunks, j.k)
		}
	}
	if !j.failed.Load() && !j.keep && (p.chunks[j.k] == nil || &p.chunks[j.k].buf[0] != &j.buf[0]) && len(p.free) < maxInFlight {
		// The arena has the bytes, the MD5 has them, and no reader can
		// still see the buffer: readers take it only under the ino lock,
		// which reuse (takeBuf) needs too.
		p.free = append(p.free, j.buf)
	}
	p.busy--
	p.room.Broadcast()
}

// takeBuf returns a chunk buffer to reuse, or nil: one of the file's own
// committed buffers, else one from the Store's pool. Only b[:dirty] may be
// non-zero. Caller holds the ino lock.
func (f *File) takeBuf() (b []byte, dirty int) {
	p := &f.pipe
	p.mu.Lock()
	n := len(p.free)
	if n > 0 {
		b = p.free[n-1]
		p.free = p.free[:n-1]
	}
	p.mu.Unlock()
	if b != nil {
		return b, len(b)
	}
	return f.s.bufs.get()
}

// enterWrite guards an asynchronous Badger write: against Close (closeMu)
// and DropPrefix (dropMu), until the returned func runs, which may be on
// another goroutine.
func (s *Store) enterWrite() (func(), error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	s.dropMu.RLock()
	return func() { s.dropMu.RUnlock(); done() }, nil
}

// drainLocked waits until every chunk handed to the pipe is committed (or
// has failed) and returns the first failure. Caller holds the ino lock, so
// nothing new is handed over meanwhile; afterwards the running MD5 is the
// caller's again.
func (f *File) drainLocked() error {
	p := &f.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.busy > 0 {
		p.room.Wait()
	}
	err := p.err
	p.err = nil
	for _, b := range p.free { // a closed or idle file keeps no buffers
		f.s.bufs.put(b, len(b))
	}
	p.free = nil
	return err
}

// pipeErr returns a commit failure not yet reported, without waiting.
func (f *File) pipeErr() error {
	p := &f.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// inFlight returns the buffers of chunks first..last that are in the pipe,
// or nil. A chunk not returned was committed before the call, so a Badger
// transaction begun after it sees it. Caller holds the ino lock, so no
// newer copy is handed over meanwhile.
func (f *File) inFlight(first, last int64) map[int64][]byte {
	p := &f.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	var m map[int64][]byte
	for k, fl := range p.chunks {
		if k >= first && k <= last {
			if m == nil {
				m = make(map[int64][]byte)
			}
			m[k] = fl.buf
		}
	}
	return m
}

// md5Sum returns the MD5 of the bytes hashed so far followed by tail,
// without changing the running state (a writer may go on appending).
// Caller holds the ino lock with the pipe drained.
func (f *File) md5Sum(tail []byte) string {
	if f.hashOff == 0 {
		// Nothing hashed yet (a file of one chunk): no state to copy.
		sum := md5.Sum(tail)
		return hex.EncodeToString(sum[:])
	}
	state, err := f.md5.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return ""
	}
	h := md5.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return ""
	}
	h.Write(tail)
	return hex.EncodeToString(h.Sum(nil))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
