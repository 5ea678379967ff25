package remotetest

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"io"
)

// Pattern is Size deterministic pseudo-random bytes derived from Seed. It
// generates bytes from their offset, so a file of any size costs no memory;
// ReadAt is safe for concurrent use.
type Pattern struct {
	Seed uint64
	Size int64
}

// word returns the 8 bytes of block i.
func (p Pattern) word(i int64) uint64 {
	z := p.Seed + uint64(i)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ReadAt fills b with the bytes at off.
func (p Pattern) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= p.Size {
		return 0, io.EOF
	}
	n := len(b)
	if rem := p.Size - off; int64(n) > rem {
		n = int(rem)
	}
	var w [8]byte
	for i := 0; i < n; {
		pos := off + int64(i)
		binary.LittleEndian.PutUint64(w[:], p.word(pos/8))
		i += copy(b[i:n], w[pos%8:])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// Bytes returns all the bytes; use it only for small patterns.
func (p Pattern) Bytes() []byte {
	b := make([]byte, p.Size)
	p.ReadAt(b, 0)
	return b
}

// MD5 returns the lowercase hex MD5 of the whole pattern.
func (p Pattern) MD5() string {
	h := md5.New()
	io.CopyBuffer(h, io.NewSectionReader(p, 0, p.Size), make([]byte, 1<<20))
	return hex.EncodeToString(h.Sum(nil))
}
