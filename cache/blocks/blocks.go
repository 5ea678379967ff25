// Package blocks is synfs's read cache: a bounded in-memory LRU
// (golang-lru/v2) of fixed-size blocks of files read from Synapse, shared by
// every open file. It does no I/O itself: the caller gives each read a Fetch
// that reads a range (an HTTP Range request on a presigned URL). Concurrent
// reads of one block share one fetch (single flight), and Prefetch starts
// fetches of blocks ahead of a sequential reader, at most Options.Fetches at
// a time.
//
// Blocks are reference-counted: Slices hands out slices of cached blocks
// without copying them, and a block evicted while such slices are in use is
// reused for another fetch only once they are released. So memory is bounded
// by (Blocks + Fetches) × BlockSize plus the blocks of reads in progress,
// whatever the number and size of the open files, and a sequential read
// allocates no new blocks once the cache is full.
package blocks

import (
	"context"
	"errors"
	"io"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Options sizes a Cache.
type Options struct {
	BlockSize int // bytes per block (default 1 MiB)
	Blocks    int // blocks kept (default 64, so 64 MiB)
	Fetches   int // prefetches in flight at once (default 8)
}

// Fetch reads len(p) bytes of a file at off, with io.ReaderAt's contract
// (fewer only at the end, with io.EOF).
type Fetch func(ctx context.Context, p []byte, off int64) (int, error)

// key names a block: a file (its entity ID and version, say) and an index.
type key struct {
	file  string
	index int64
}

// block is one cached block. Its fields other than buf's bytes are guarded
// by Cache.mu; the bytes are written only before the block is first handed
// out, and never while it is referenced.
type block struct {
	buf  []byte // BlockSize bytes, for reuse
	data []byte // buf[:n]: shorter than BlockSize only at the end of the file
	key  key
	refs int  // the LRU's (while live) and one per Slices not yet released
	live bool // in the LRU
}

type flight struct {
	done chan struct{}
	b    *block // the landed block, on success
	err  error
}

// Cache is the read cache. It is safe for concurrent use.
type Cache struct {
	bs   int
	sem  chan struct{} // prefetch slots
	bg   context.Context
	stop context.CancelFunc

	mu      sync.Mutex // protects lru, flights, fetched, free and every block's refs and live
	lru     *lru.Cache[key, *block]
	flights map[key]*flight
	fetched int64
	free    [][]byte // buffers of released blocks, at most cap(free)
	// spare takes the released buffers free has no room for (*[]byte).
	// Concurrent READs release more than cap(free) at once; those buffers
	// were garbage, and the heap grew by them until the collector ran:
	// a 4 GiB read peaked at 200 MiB of RSS with 8 READs in flight,
	// against 118 MiB with one. The pool hands them to the next fetches
	// and lets the collector take them once reading stops.
	spare sync.Pool
}

// New returns an empty cache. Close stops its prefetches.
func New(o Options) *Cache {
	if o.BlockSize <= 0 {
		o.BlockSize = 1 << 20
	}
	if o.Blocks <= 0 {
		o.Blocks = 64
	}
	if o.Fetches <= 0 {
		o.Fetches = 8
	}
	c := &Cache{bs: o.BlockSize, sem: make(chan struct{}, o.Fetches), flights: map[key]*flight{},
		free: make([][]byte, 0, o.Fetches)}
	// The eviction callback runs inside lru.Add, which is called with
	// c.mu held.
	c.lru, _ = lru.NewWithEvict[key, *block](o.Blocks, func(_ key, b *block) { // fails only for a size < 1
		b.live = false
		c.unrefLocked(b)
	})
	c.bg, c.stop = context.WithCancel(context.Background())
	return c
}

// Close cancels the prefetches under way.
func (c *Cache) Close() { c.stop() }

// BlockSize returns the block size.
func (c *Cache) BlockSize() int { return c.bs }

// Fetched returns how many blocks have been fetched (for tests).
func (c *Cache) Fetched() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetched
}

// unrefLocked drops one reference to b; the last one frees its buffer for
// reuse. c.mu is held.
func (c *Cache) unrefLocked(b *block) {
	b.refs--
	if b.refs == 0 && !b.live {
		if cap(b.buf) == c.bs {
			c.recycleLocked(b.buf[:c.bs])
		}
		b.buf, b.data = nil, nil
	}
}

// release drops one reference to each of bs.
func (c *Cache) release(bs []*block) {
	c.mu.Lock()
	for _, b := range bs {
		c.unrefLocked(b)
	}
	c.mu.Unlock()
}

// ReadAt reads len(p) bytes of file at off through the cache, fetching the
// missing blocks with fetch. size is the file's size, or -1 when unknown.
// It returns io.EOF when p reaches past the end of the file.
func (c *Cache) ReadAt(ctx context.Context, file string, size int64, fetch Fetch, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if size >= 0 && pos >= size {
			return n, io.EOF
		}
		idx := pos / int64(c.bs)
		b, err := c.block(ctx, key{file, idx}, size, fetch, false)
		if err != nil {
			return n, err
		}
		in, have := int(pos-idx*int64(c.bs)), len(b.data)
		if in < have {
			n += copy(p[n:], b.data[in:])
		}
		c.release([]*block{b})
		if in >= have || have < c.bs && n < len(p) {
			return n, io.EOF // a short block ends the file
		}
	}
	return n, nil
}

// Slices appends to dst the bytes [off, off+n) of file as slices of the
// cached blocks that hold them, fetching the missing blocks with fetch, and
// returns it: a read is served without a copy, in as many slices as blocks
// it touches. The slices must not be modified, and must not be used after
// release, which the caller calls exactly once (on error too); until then
// the blocks are not reused. At the end of the file the slices hold fewer
// than n bytes, and none past it.
func (c *Cache) Slices(ctx context.Context, file string, size int64, fetch Fetch, off int64, n int, dst [][]byte) (v [][]byte, release func(), err error) {
	var held []*block
	release = func() { c.release(held) }
	end := off + int64(n)
	if size >= 0 {
		end = min(end, size)
	}
	for pos := off; pos < end; {
		idx := pos / int64(c.bs)
		b, err := c.block(ctx, key{file, idx}, size, fetch, false)
		if err != nil {
			return dst, release, err
		}
		held = append(held, b)
		in := pos - idx*int64(c.bs)
		if in >= int64(len(b.data)) {
			break // past the end of the file
		}
		part := b.data[in:min(int64(len(b.data)), in+end-pos)]
		dst = append(dst, part)
		pos += int64(len(part))
		if len(b.data) < c.bs {
			break // a short block ends the file
		}
	}
	return dst, release, nil
}

// Prefetch starts fetching blocks [from, to) of file that are neither
// cached nor being fetched, as prefetch slots allow; it does not wait.
func (c *Cache) Prefetch(file string, size int64, fetch Fetch, from, to int64) {
	if size >= 0 {
		to = min(to, (size+int64(c.bs)-1)/int64(c.bs))
	}
	for idx := from; idx < to; idx++ {
		k := key{file, idx}
		if c.lru.Contains(k) {
			continue
		}
		select {
		case c.sem <- struct{}{}:
		default:
			return // every slot busy: the reader catches up first
		}
		go func() {
			defer func() { <-c.sem }()
			c.block(c.bg, k, size, fetch, true)
		}()
	}
}

// block returns block k from the cache with a reference the caller must
// drop (release), or joins or starts its fetch. A prefetch takes no
// reference and returns nil at once when the block is cached or under way.
func (c *Cache) block(ctx context.Context, k key, size int64, fetch Fetch, prefetch bool) (*block, error) {
	for {
		c.mu.Lock()
		if b, ok := c.lru.Get(k); ok {
			if prefetch {
				c.mu.Unlock()
				return nil, nil
			}
			b.refs++
			c.mu.Unlock()
			return b, nil
		}
		f := c.flights[k]
		if f == nil {
			f = &flight{done: make(chan struct{})}
			c.flights[k] = f
			c.fetched++
			buf := c.bufLocked()
			c.mu.Unlock()
			c.fetch(k, size, fetch, f, buf)
		} else {
			c.mu.Unlock()
			if prefetch {
				return nil, nil
			}
		}
		if prefetch {
			return nil, nil
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil {
			return nil, f.err
		}
		c.mu.Lock()
		if b := f.b; b.live && b.key == k {
			b.refs++
			c.mu.Unlock()
			return b, nil
		}
		// Evicted (and perhaps reused) before this reader woke: look again.
		c.mu.Unlock()
	}
}

// bufLocked returns a block buffer: a released one, or a new one. c.mu is
// held.
func (c *Cache) bufLocked() []byte {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	if p, ok := c.spare.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, c.bs)
}

// recycleLocked keeps buf, a released block buffer, for a later fetch.
// c.mu is held.
func (c *Cache) recycleLocked(buf []byte) {
	if len(c.free) < cap(c.free) {
		c.free = append(c.free, buf)
		return
	}
	c.spare.Put(&buf)
}

// fetch runs one block's fetch into buf and lands it. A fetch is not tied
// to the reader that started it (others may be waiting for the same block):
// it runs on the cache's own context, which Close cancels.
func (c *Cache) fetch(k key, size int64, fetch Fetch, f *flight, buf []byte) {
	n := c.bs
	start := k.index * int64(c.bs)
	if size >= 0 {
		n = int(min(int64(c.bs), size-start))
	}
	got, err := fetch(c.bg, buf[:max(n, 0)], start)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	c.mu.Lock()
	if err == nil {
		b := &block{buf: buf, data: buf[:got], key: k, refs: 1, live: true}
		f.b = b
		c.lru.Add(k, b) // may evict another block (see New)
	} else {
		f.err = err
		c.recycleLocked(buf)
	}
	delete(c.flights, k)
	c.mu.Unlock()
	close(f.done)
}
