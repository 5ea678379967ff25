// Package blocks is synfs's read cache: a bounded in-memory LRU
// (golang-lru/v2) of fixed-size blocks of files read from Synapse, shared by
// every open file. It does no I/O itself: the caller gives each read a Fetch
// that reads a range (an HTTP Range request on a presigned URL). Concurrent
// reads of one block share one fetch (single flight), and Prefetch starts
// fetches of blocks ahead of a sequential reader, at most Options.Fetches at
// a time. Memory is bounded by (Blocks + Fetches) × BlockSize plus one block
// per read in progress, whatever the number and size of the open files.
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

type flight struct {
	done chan struct{}
	data []byte // the block; shorter than BlockSize only at the end of the file
	err  error
}

// Cache is the read cache. It is safe for concurrent use.
type Cache struct {
	bs   int
	lru  *lru.Cache[key, []byte]
	sem  chan struct{} // prefetch slots
	bg   context.Context
	stop context.CancelFunc

	mu      sync.Mutex // protects flights and fetched
	flights map[key]*flight
	fetched int64
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
	l, _ := lru.New[key, []byte](o.Blocks) // fails only for a size < 1
	c := &Cache{bs: o.BlockSize, lru: l, sem: make(chan struct{}, o.Fetches), flights: map[key]*flight{}}
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
		in := int(pos - idx*int64(c.bs))
		if in >= len(b) {
			return n, io.EOF
		}
		n += copy(p[n:], b[in:])
		if len(b) < c.bs && n < len(p) {
			return n, io.EOF // a short block ends the file
		}
	}
	return n, nil
}

// Slices appends to dst the bytes [off, off+n) of file as slices of the
// cached blocks that hold them, fetching the missing blocks with fetch, and
// returns it: a read is served without a copy, in as many slices as blocks
// it touches. The slices must not be modified. At the end of the file they
// hold fewer than n bytes, and none past it.
func (c *Cache) Slices(ctx context.Context, file string, size int64, fetch Fetch, off int64, n int, dst [][]byte) ([][]byte, error) {
	end := off + int64(n)
	if size >= 0 {
		end = min(end, size)
	}
	for pos := off; pos < end; {
		idx := pos / int64(c.bs)
		b, err := c.block(ctx, key{file, idx}, size, fetch, false)
		if err != nil {
			return dst, err
		}
		in := pos - idx*int64(c.bs)
		if in >= int64(len(b)) {
			break // past the end of the file
		}
		part := b[in:min(int64(len(b)), in+end-pos)]
		dst = append(dst, part)
		pos += int64(len(part))
		if len(b) < c.bs {
			break // a short block ends the file
		}
	}
	return dst, nil
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

// block returns block k from the cache, or joins or starts its fetch. A
// prefetch that finds the block cached or under way returns at once.
func (c *Cache) block(ctx context.Context, k key, size int64, fetch Fetch, prefetch bool) ([]byte, error) {
	if b, ok := c.lru.Get(k); ok {
		return b, nil
	}
	c.mu.Lock()
	f := c.flights[k]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flights[k] = f
		c.fetched++
		c.mu.Unlock()
		c.fetch(k, size, fetch, f)
	} else {
		c.mu.Unlock()
		if prefetch {
			return nil, nil
		}
	}
	select {
	case <-f.done:
		return f.data, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetch runs one block's fetch and lands it. A fetch is not tied to the
// reader that started it (others may be waiting for the same block): it
// runs on the cache's own context, which Close cancels.
func (c *Cache) fetch(k key, size int64, fetch Fetch, f *flight) {
	n := c.bs
	start := k.index * int64(c.bs)
	if size >= 0 {
		n = int(min(int64(c.bs), size-start))
	}
	buf := make([]byte, max(n, 0))
	got, err := fetch(c.bg, buf, start)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	f.data, f.err = buf[:got], err
	if err == nil {
		c.lru.Add(k, f.data)
	}
	c.mu.Lock()
	delete(c.flights, k)
	c.mu.Unlock()
	close(f.done)
}
