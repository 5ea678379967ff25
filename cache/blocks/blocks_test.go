package blocks

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func source(data []byte, calls *atomic.Int64) Fetch {
	return func(ctx context.Context, p []byte, off int64) (int, error) {
		calls.Add(1)
		if off >= int64(len(data)) {
			return 0, io.EOF
		}
		n := copy(p, data[off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
}

func TestReadAtRandomAndCached(t *testing.T) {
	data := make([]byte, 10*1024+123)
	for i := range data {
		data[i] = byte(i * 31)
	}
	for _, size := range []int64{int64(len(data)), -1} {
		var calls atomic.Int64
		c := New(Options{BlockSize: 1024, Blocks: 100})
		defer c.Close()
		fetch := source(data, &calls)
		r := rand.New(rand.NewPCG(1, 2))
		for range 500 {
			off := r.IntN(len(data) + 50)
			n := 1 + r.IntN(3000)
			p := make([]byte, n)
			k, err := c.ReadAt(context.Background(), "f", size, fetch, p, int64(off))
			want := data[min(off, len(data)):min(off+n, len(data))]
			if k != len(want) || !bytes.Equal(p[:k], want) {
				t.Fatalf("size %d: ReadAt(%d, %d) = %d bytes, want %d", size, off, n, k, len(want))
			}
			if (k < n) != (err == io.EOF) {
				t.Fatalf("size %d: ReadAt(%d, %d) = %d, %v", size, off, n, k, err)
			}
		}
		// Every block was fetched once: the cache holds all 11.
		if got := calls.Load(); got > 12 {
			t.Fatalf("size %d: %d fetches for 11 blocks", size, got)
		}
	}
}

// Slices serves reads that span blocks, end in a short last block or lie
// past the end, as slices of the cached blocks: their bytes are the file's.
func TestSlicesRandom(t *testing.T) {
	data := make([]byte, 10*1024+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, size := range []int64{int64(len(data)), -1} {
		var calls atomic.Int64
		c := New(Options{BlockSize: 1024, Blocks: 100})
		defer c.Close()
		fetch := source(data, &calls)
		r := rand.New(rand.NewPCG(3, 4))
		for range 500 {
			off := r.IntN(len(data) + 50)
			n := 1 + r.IntN(3000)
			v, release, err := c.Slices(context.Background(), "f", size, fetch, int64(off), n, nil)
			if err != nil {
				t.Fatalf("size %d: Slices(%d, %d): %v", size, off, n, err)
			}
			want := data[min(off, len(data)):min(off+n, len(data))]
			if got := bytes.Join(v, nil); !bytes.Equal(got, want) {
				t.Fatalf("size %d: Slices(%d, %d) = %d bytes in %d slices, want %d", size, off, n, len(got), len(v), len(want))
			}
			if len(v) > (n+1022)/1024+1 {
				t.Fatalf("size %d: Slices(%d, %d) = %d slices", size, off, n, len(v))
			}
			release()
		}
		if got := calls.Load(); got > 12 {
			t.Fatalf("size %d: %d fetches for 11 blocks", size, got)
		}
	}
}

// A block evicted while its slices are held is not reused until they are
// released: the held bytes stay the file's while other blocks are fetched
// into recycled buffers; after the release its buffer is reused.
func TestSlicesHeldAcrossEviction(t *testing.T) {
	data := make([]byte, 40*1024)
	for i := range data {
		data[i] = byte(i*13 + i/1024)
	}
	var calls atomic.Int64
	c := New(Options{BlockSize: 1024, Blocks: 2, Fetches: 2})
	defer c.Close()
	fetch := source(data, &calls)
	ctx := context.Background()
	held, release, err := c.Slices(ctx, "f", int64(len(data)), fetch, 512, 1024, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func(from, to int) {
		for i := from; i < to; i++ {
			v, rel, err := c.Slices(ctx, "f", int64(len(data)), fetch, int64(i*1024), 1024, nil)
			if err != nil || !bytes.Equal(bytes.Join(v, nil), data[i*1024:(i+1)*1024]) {
				t.Fatalf("block %d: %v", i, err)
			}
			rel()
		}
	}
	read(2, 20) // evicts blocks 0 and 1 and recycles the others' buffers
	if got := bytes.Join(held, nil); !bytes.Equal(got, data[512:1536]) {
		t.Fatal("held slices of evicted blocks were overwritten by later fetches")
	}
	release()
	c.mu.Lock()
	free := len(c.free)
	c.mu.Unlock()
	if free != 2 {
		t.Fatalf("after the release %d buffers are free, want 2 (blocks 0 and 1)", free)
	}
	read(20, 40)
}

func TestSingleFlightAndBound(t *testing.T) {
	data := make([]byte, 64*1024)
	var calls atomic.Int64
	gate := make(chan struct{})
	slow := func(ctx context.Context, p []byte, off int64) (int, error) {
		<-gate
		return source(data, &calls)(ctx, p, off)
	}
	c := New(Options{BlockSize: 1024, Blocks: 4, Fetches: 2})
	defer c.Close()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 10)
			c.ReadAt(context.Background(), "f", int64(len(data)), slow, p, 5)
		}()
	}
	await(t, func() bool { return c.Fetched() == 1 }) // the readers share one fetch
	c.Prefetch("f", int64(len(data)), slow, 1, 60)    // only 2 slots
	await(t, func() bool { return c.Fetched() == 3 })
	close(gate)
	wg.Wait()
	await(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.flights) == 0 })
	if got := calls.Load(); got != 3 {
		t.Fatalf("10 readers of one block and a prefetch with 2 slots made %d fetches, want 3", got)
	}
	if n := c.lru.Len(); n > 4 {
		t.Fatalf("cache holds %d blocks, want at most 4", n)
	}
}

func await(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
