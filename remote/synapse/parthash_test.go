package synapse

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"sync"
	"testing"
)

// TestHashingBodyMD5 checks the part MD5s against crypto/md5 for sizes
// around the 64-byte block and md5-simd's 32 KiB buffers, with several
// workers hashing at once (as parts in flight are), each reusing its hasher
// after an abandoned body, read in uneven pieces.
func TestHashingBodyMD5(t *testing.T) {
	sizes := []int{1, 55, 56, 63, 64, 65, 4096, 32<<10 - 1, 32 << 10, 32<<10 + 1, 5<<20 + 3}
	for _, parts := range []int{1, 8} { // crypto/md5, md5-simd
		hs := newPartHashers(parts)
		var wg sync.WaitGroup
		for rep := range 3 {
			wg.Go(func() {
				h := hs.get() // one hasher per worker, reused for every part
				defer h.Close()
				for i, n := range sizes {
					data := make([]byte, n)
					for k := range data {
						data[k] = byte(k*7 + i + rep)
					}
					want := md5.Sum(data)
					// A body abandoned half-way first, as after a failed PUT.
					abandoned := newHashingBody(bytes.NewReader(data), int64(n), h)
					abandoned.Read(make([]byte, n/2+1))
					abandoned.Close()
					b := newHashingBody(bytes.NewReader(data), int64(n), h)
					buf := make([]byte, 1000+rep*30000)
					if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{b}, buf); err != nil {
						t.Error(err)
					}
					b.Close()
					if got := b.md5(); got != hex.EncodeToString(want[:]) {
						t.Errorf("%d parts, size %d: md5 %q, want %x", parts, n, got, want)
					}
				}
			})
		}
		wg.Wait()
		hs.Close()
	}
}

// TestHashingBodyShort: a body closed before all its bytes were read has no
// MD5, and reads after the close fail.
func TestHashingBodyShort(t *testing.T) {
	b := newHashingBody(bytes.NewReader(make([]byte, 100)), 100, md5.New())
	p := make([]byte, 40)
	if _, err := b.Read(p); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if got := b.md5(); got != "" {
		t.Errorf("md5 of a short read: %q, want none", got)
	}
	if _, err := b.Read(p); err == nil {
		t.Error("read after close succeeded")
	}
}
