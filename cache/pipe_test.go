package cache

import (
	"bytes"
	"testing"
)

// TestPipeRunningMD5 writes a file in pieces of odd sizes, so that chunks
// are completed, hashed and committed by the pipe while the next writes
// arrive, with a Flush in the middle (a dup'd descriptor closed while the
// writer goes on appending): the MD5 at each Flush is that of the bytes so
// far, and the committed content is what was written.
func TestPipeRunningMD5(t *testing.T) {
	const cs = 1024
	backends(t, Options{ChunkSize: cs}, func(t *testing.T, s *Store) {
		data := pattern(100*cs+517, 9)
		rec, f := create(t, s, "p", "piped")
		f.BeginWrite()
		off := 0
		for i := 0; off < len(data); i++ {
			n := min(len(data)-off, 1+(i*733)%(3*cs))
			writeAt(t, f, data[off:off+n], int64(off))
			off += n
			if i == 40 {
				if err := f.Flush(); err != nil {
					t.Fatal(err)
				}
				r, _ := s.Get(rec.Ino)
				if r.MD5 != md5hex(data[:off]) || r.Size != int64(off) {
					t.Fatalf("at the middle flush: MD5 %q size %d, want %q %d", r.MD5, r.Size, md5hex(data[:off]), off)
				}
				if got, _ := committed(t, s, rec.Ino); !bytes.Equal(got, data[:off]) {
					t.Fatalf("at the middle flush: committed content differs")
				}
			}
			if got := readAll(t, f); !bytes.Equal(got, data[:off]) {
				t.Fatalf("after %d bytes: read back differs (chunks in the pipe)", off)
			}
		}
		if err := f.EndWrite(); err != nil {
			t.Fatal(err)
		}
		if err := f.Release(); err != nil {
			t.Fatal(err)
		}
		r, _ := s.Get(rec.Ino)
		if r.MD5 != md5hex(data) || r.State != StateDirty {
			t.Errorf("after the last close: MD5 %q state %v, want %q Dirty", r.MD5, r.State, md5hex(data))
		}
		if got, _ := committed(t, s, rec.Ino); !bytes.Equal(got, data) {
			t.Errorf("committed content differs from what was written")
		}
	})
}

// TestPipeDrainedBeforeTruncate: chunks still in the pipe when a truncate
// comes must not land after it (they would bring back bytes past the end).
func TestPipeDrainedBeforeTruncate(t *testing.T) {
	const cs = 1024
	backends(t, Options{ChunkSize: cs}, func(t *testing.T, s *Store) {
		rec, f := create(t, s, "p", "trunc")
		writeAt(t, f, pattern(40*cs, 1), 0) // 40 chunks for the pipe
		if err := f.Truncate(t.Context(), 3*cs/2); err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(t.Context(), 40*cs); err != nil {
			t.Fatal(err)
		}
		f.Release()
		got, _ := committed(t, s, rec.Ino)
		want := append(pattern(40*cs, 1)[:3*cs/2], make([]byte, 40*cs-3*cs/2)...)
		if !bytes.Equal(got, want) {
			t.Errorf("content after truncate and grow differs: bytes past the cut came back")
		}
	})
}
