package cache

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"

	"github.com/dgraph-io/badger/v4"
)

// Reader returns a reader over the committed bytes of ino's current
// generation, with its size and generation. ReadAt is safe for concurrent
// use; it fails with ErrChanged once the file has changed (so an upload
// never mixes two generations) and with ErrNotFound once it is removed.
// The uploader still confirms with Finish(ino, gen).
func (s *Store) Reader(ino uint64) (r io.ReaderAt, size int64, gen uint64, err error) {
	done, err := s.enter()
	if err != nil {
		return nil, 0, 0, err
	}
	defer done()
	rec, err := s.readRecord(ino)
	if err != nil {
		return nil, 0, 0, err
	}
	if rec.State == StateDone || rec.Unlinked {
		return nil, 0, 0, ErrNotFound
	}
	return &genReader{s: s, ino: ino, gen: rec.Gen, size: rec.Size}, rec.Size, rec.Gen, nil
}

type genReader struct {
	s    *Store
	ino  uint64
	gen  uint64
	size int64
}

func (r *genReader) ReadAt(p []byte, off int64) (int, error) {
	s := r.s
	if off < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if off >= r.size {
		return 0, io.EOF
	}
	done, err := s.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	want := min(int64(len(p)), r.size-off)
	cs := s.chunk
	err = s.db.View(func(txn *badger.Txn) error {
		for pos := off; pos < off+want; {
			k := pos / cs
			in := pos - k*cs
			n := min(cs-in, off+want-pos)
			if err := s.readChunk(txn, r.ino, k, in, p[pos-off:pos-off+n]); err != nil {
				return err
			}
			pos += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// The record is checked after the read, once: generations only grow,
	// so finding r.gen now means the file had it all along. That also
	// covers the chunk bytes, which are read outside the snapshot: a slot
	// freed by a truncate or removal meanwhile may hold another file's
	// bytes, and both bump the generation or delete the record first.
	rec, err := s.readRecord(r.ino)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && rec.Unlinked):
		return 0, ErrNotFound
	case err != nil:
		return 0, err
	case rec.Gen != r.gen || rec.State == StateDone:
		return 0, ErrChanged
	}
	// A file with open handles may have written chunks after its last
	// flush; its generation tells. Checked after the read, because writers
	// bump the generation before writing a chunk.
	if f := s.openFile(r.ino); f != nil && (f.gen.Load() != r.gen || f.flushedGen.Load() != r.gen) {
		return 0, ErrChanged
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// ComputeMD5 returns the lowercase hex MD5 of ino's committed bytes and the
// generation they belong to.
func (s *Store) ComputeMD5(ino uint64) (md5hex string, gen uint64, err error) {
	r, size, gen, err := s.Reader(ino)
	if err != nil {
		return "", 0, err
	}
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), gen, nil
}
