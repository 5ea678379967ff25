package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// blobStore holds uploaded parts. Keys are simple file names.
type blobStore interface {
	// put stores exactly n bytes read from r under key and returns their MD5.
	put(key string, r io.Reader, n int64) (md5hex string, err error)
	// open returns a reader for key's bytes.
	open(key string) (blobReader, error)
	// remove deletes key; a missing key is not an error.
	remove(key string) error
}

type blobReader interface {
	io.ReaderAt
	io.Closer
}

var errShortBody = errors.New("request body shorter than Content-Length")

// memBlobs keeps parts in memory.
type memBlobs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (b *memBlobs) put(key string, r io.Reader, n int64) (string, error) {
	var buf bytes.Buffer
	h := md5.New()
	got, err := io.Copy(io.MultiWriter(&buf, h), io.LimitReader(r, n))
	if err != nil {
		return "", err
	}
	if got != n {
		return "", errShortBody
	}
	b.mu.Lock()
	b.m[key] = buf.Bytes()
	b.mu.Unlock()
	return hex.EncodeToString(h.Sum(nil)), nil
}

type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

func (b *memBlobs) open(key string) (blobReader, error) {
	b.mu.Lock()
	data, ok := b.m[key]
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", key, os.ErrNotExist)
	}
	return memReader{bytes.NewReader(data)}, nil
}

func (b *memBlobs) remove(key string) error {
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
	return nil
}

// diskBlobs keeps each part in its own file under dir, written to a
// temporary file first so that an interrupted PUT leaves nothing behind.
type diskBlobs struct{ dir string }

func newDiskBlobs(dir string) (*diskBlobs, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	return &diskBlobs{dir: dir}, nil
}

func (b *diskBlobs) put(key string, r io.Reader, n int64) (string, error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "part*")
	if err != nil {
		return "", err
	}
	h := md5.New()
	got, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, n))
	if err == nil && got != n {
		err = errShortBody
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(b.dir, key))
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (b *diskBlobs) open(key string) (blobReader, error) {
	return os.Open(filepath.Join(b.dir, key))
}

func (b *diskBlobs) remove(key string) error {
	err := os.Remove(filepath.Join(b.dir, key))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// partsReader reads the concatenation of parts, opening each lazily. It is
// safe for concurrent ReadAt calls.
type partsReader struct {
	store blobStore
	parts []blobRef
	offs  []int64 // offs[i] is the offset of parts[i]
	size  int64

	mu   sync.Mutex
	open map[int]blobReader
}

func newPartsReader(store blobStore, parts []blobRef) *partsReader {
	p := &partsReader{store: store, parts: parts, open: map[int]blobReader{}}
	for _, x := range parts {
		p.offs = append(p.offs, p.size)
		p.size += x.Size
	}
	return p
}

func (p *partsReader) reader(i int) (blobReader, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.open[i]; ok {
		return r, nil
	}
	r, err := p.store.open(p.parts[i].Key)
	if err != nil {
		return nil, err
	}
	p.open[i] = r
	return r, nil
}

func (p *partsReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for len(b) > 0 {
		if off >= p.size {
			return n, io.EOF
		}
		i := sort.Search(len(p.offs), func(i int) bool { return p.offs[i] > off }) - 1
		r, err := p.reader(i)
		if err != nil {
			return n, err
		}
		in := off - p.offs[i]
		chunk := b
		if rest := p.parts[i].Size - in; int64(len(chunk)) > rest {
			chunk = chunk[:rest]
		}
		m, err := r.ReadAt(chunk, in)
		n += m
		off += int64(m)
		b = b[m:]
		if err != nil && !(errors.Is(err, io.EOF) && m == len(chunk)) {
			return n, err
		}
	}
	return n, nil
}

func (p *partsReader) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for i, r := range p.open {
		if err := r.Close(); err != nil && first == nil {
			first = err
		}
		delete(p.open, i)
	}
	return first
}
