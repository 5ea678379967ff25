package synapse

import (
	"crypto/md5"
	"encoding/hex"
	"hash"
	"io"
	"sync"

	md5simd "github.com/minio/md5-simd"
)

// Part MD5s of a multi-part upload are computed with md5-simd: one
// goroutine hashes the blocks of up to 16 parts at once with AVX-512 (8
// with AVX2) where crypto/md5 hashes one stream per core, and an upload
// sends PartConcurrency parts at a time. crypto/md5 was most of the CPU an
// upload costs over raw PUTs of the same bytes; md5-simd needs less than
// half of it (docs/benchmarks.md). Without AVX2 md5-simd falls back to
// crypto/md5.
//
// Each multi-part sendParts runs its own md5-simd server and closes it at
// the end, and each of its workers keeps one hasher, reset for every part:
// md5-simd v1.1.2 never forgets a closed hasher (its server keeps every
// client it has seen and polls them all), so a server shared by the
// process, or a hasher per part, would cost more with every part ever
// sent. A single-part upload (every small file) uses crypto/md5.

// partHasher is the hash a sendParts worker reuses for its parts.
type partHasher interface {
	hash.Hash
	Close()
}

// partHashers hands out the hashers of one sendParts call.
type partHashers struct {
	srv md5simd.Server // nil: crypto/md5
}

func newPartHashers(parts int) *partHashers {
	if parts < 2 {
		return &partHashers{}
	}
	return &partHashers{srv: md5simd.NewServer()}
}

func (p *partHashers) get() partHasher {
	if p.srv == nil {
		return plainMD5{md5.New()}
	}
	return p.srv.NewHash()
}

// Close stops the server; every hasher must have been closed.
func (p *partHashers) Close() {
	if p.srv != nil {
		p.srv.Close()
	}
}

type plainMD5 struct{ hash.Hash }

func (plainMD5) Close() {}

// hashingBody is a request body that hashes what it yields with the
// worker's hasher (reset first). Its MD5 is final once exactly want bytes
// have been read. The transport may read and close the body from its own
// goroutine, even after Do returns, so every method locks; once closed or
// summed the body no longer touches the hasher, which the worker reuses.
//
// The transport reads 32 KiB at a time; the body reads its source and
// feeds the hasher 1 MiB at a time (bodyBufSize), so that a part costs
// the source (a staged file's ReadAt, which checks its record) and the
// hasher (md5-simd: a round trip to its server per Write) 32 times fewer
// calls.
type hashingBody struct {
	want int64

	mu   sync.Mutex
	r    io.Reader
	h    hash.Hash // nil once summed or closed
	buf  []byte    // read from r and hashed, not yet yielded: buf[pos:]
	pos  int
	n    int64 // bytes yielded
	read int64 // bytes read from r
	err  error // r's error, once buf is yielded
	sum  string
}

const bodyBufSize = 1 << 20

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, bodyBufSize); return &b }}

func newHashingBody(r io.Reader, want int64, h hash.Hash) *hashingBody {
	h.Reset()
	return &hashingBody{want: want, r: r, h: h}
}

func (b *hashingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.h == nil && b.sum == "" {
		return 0, io.ErrClosedPipe
	}
	if b.pos == len(b.buf) {
		if b.err != nil || b.read == b.want {
			return 0, cmpErr(b.err, io.EOF)
		}
		if b.buf == nil {
			b.buf = (*bodyBufs.Get().(*[]byte))[:0]
		}
		full := b.buf[:cap(b.buf)]
		k, err := io.ReadFull(b.r, full[:min(int64(len(full)), b.want-b.read)])
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		b.buf, b.pos, b.err = full[:k], 0, err
		b.read += int64(k)
		if k > 0 && b.h != nil {
			b.h.Write(b.buf)
		}
		if k == 0 {
			return 0, cmpErr(err, io.EOF)
		}
	}
	k := copy(p, b.buf[b.pos:])
	b.pos += k
	b.n += int64(k)
	if b.n == b.want && b.h != nil {
		b.sum = hex.EncodeToString(b.h.Sum(nil))
		b.h = nil
		b.release()
	}
	return k, nil
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// release gives the buffer back once nothing is left to yield. Caller
// holds mu.
func (b *hashingBody) release() {
	if b.buf != nil && b.pos == len(b.buf) {
		full := b.buf[:cap(b.buf)]
		bodyBufs.Put(&full)
		b.buf, b.pos = nil, 0
	}
}

// Close lets go of the hasher and the buffer; the MD5 stays if it was
// complete.
func (b *hashingBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.h = nil
	if b.buf != nil {
		b.pos = len(b.buf)
		b.release()
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
