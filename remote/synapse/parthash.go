package synapse

import (
	"encoding/hex"
	"io"
	"sync"

	md5simd "github.com/minio/md5-simd"
)

// Part MD5s are computed with md5-simd: one goroutine hashes the blocks of
// up to 16 parts at once with AVX-512 (8 with AVX2) where crypto/md5 hashes
// one stream per core, and the parts of an upload are sent PartConcurrency
// at a time. crypto/md5 was most of the CPU an upload costs over raw PUTs of
// the same bytes; md5-simd needs less than half of it (docs/benchmarks.md).
// Without AVX2 md5-simd falls back to crypto/md5.
var md5Server = sync.OnceValue(md5simd.NewServer)

// hashingBody is a request body that hashes what it yields. Its MD5 is
// final once exactly want bytes have been read. The transport may read
// and close the body from its own goroutine, even after Do returns, so
// every method locks.
type hashingBody struct {
	want int64

	mu  sync.Mutex
	r   io.Reader
	h   md5simd.Hasher // nil once summed or closed
	n   int64
	sum string // lowercase hex, once n == want
}

func newHashingBody(r io.Reader, want int64) *hashingBody {
	return &hashingBody{want: want, r: r, h: md5Server().NewHash()}
}

func (b *hashingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.h == nil && b.sum == "" {
		return 0, io.ErrClosedPipe
	}
	k, err := b.r.Read(p)
	if k > 0 && b.h != nil {
		b.h.Write(p[:k])
		b.n += int64(k)
		if b.n == b.want {
			b.sum = hex.EncodeToString(b.h.Sum(nil))
			b.h.Close()
			b.h = nil
		}
	}
	return k, err
}

// Close releases the hasher; the MD5 stays if it was complete.
func (b *hashingBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.h != nil {
		b.h.Close()
		b.h = nil
	}
	return nil
}

// md5 returns the lowercase hex MD5 of the bytes read, or "" if fewer
// than want bytes were read.
func (b *hashingBody) md5() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sum
}
