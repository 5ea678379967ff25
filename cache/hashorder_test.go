package cache

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// Chunks written a little out of order (as the kernel's writeback sends
// them with several WRITEs in flight) still get their MD5 while staged,
// and whatever the write pattern, an MD5 the record claims is the MD5 of
// the bytes.
func TestMD5OutOfOrderWrites(t *testing.T) {
	const cs = 1024
	backends(t, Options{ChunkSize: cs}, func(t *testing.T, s *Store) {
		// Write sizes and how many are reordered: at most maxAhead whole
		// chunks wait for the ones before them.
		for _, c := range []struct{ ws, run int }{{cs, 8}, {700, 8}, {3*cs + 100, 4}} {
			t.Run(fmt.Sprint(c.ws), func(t *testing.T) { outOfOrder(t, s, c.ws, c.run) })
		}
	})
}

// outOfOrder writes a file in writes of ws bytes, each run of run shuffled.
func outOfOrder(t *testing.T, s *Store, ws, run int) {
	const cs = 1024
	{
		data := pattern(64*cs+300, 7)
		type w struct{ off, end int }
		var writes []w
		for off := 0; off < len(data); off += ws {
			writes = append(writes, w{off, min(off+ws, len(data))})
		}
		rng := rand.New(rand.NewPCG(1, 2))
		// Shuffle each run, as WRITEs in flight reorder them.
		for i := 0; i < len(writes); i += run {
			w := writes[i:min(i+run, len(writes))]
			rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		}
		rec, f := create(t, s, "p", fmt.Sprint("shuffled", ws))
		for _, x := range writes {
			writeAt(t, f, data[x.off:x.end], int64(x.off))
		}
		releaseWithMD5(t, s, f, rec, data, "after out-of-order writes")
	}
}

func TestMD5RandomWritesNeverWrong(t *testing.T) {
	const cs = 512
	backends(t, Options{ChunkSize: cs}, func(t *testing.T, s *Store) {
		known := 0
		for seed := range uint64(60) {
			rng := rand.New(rand.NewPCG(seed, 9))
			size := 1 + rng.IntN(20*cs)
			want := make([]byte, size)
			rec, f := create(t, s, "p", "r")
			for range 1 + rng.IntN(40) {
				off := rng.IntN(size)
				n := 1 + rng.IntN(min(3*cs, size-off))
				if seed%2 == 0 { // half the files written near-sequentially
					off = 0
					for off < size && want[off] != 0 {
						off++
					}
					if off == size {
						continue
					}
					n = min(n, size-off)
				}
				p := pattern(n, seed*100+uint64(off))
				for i := range p {
					if p[i] == 0 {
						p[i] = 1 // nonzero, so "written" shows in want
					}
				}
				copy(want[off:], p)
				writeAt(t, f, p, int64(off))
			}
			want = want[:f.Size()]
			if err := f.Release(); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(rec.Ino)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := committed(t, s, rec.Ino)
			if !bytes.Equal(b, want[:len(b)]) || int64(len(b)) != got.Size {
				t.Fatalf("seed %d: bytes differ", seed)
			}
			if got.MD5 != "" {
				known++
				if got.MD5 != md5hex(b) {
					t.Fatalf("seed %d: record claims MD5 %s, bytes have %s", seed, got.MD5, md5hex(b))
				}
			}
			if err := s.Remove(rec.Ino); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%d of 60 files had their MD5 while staged", known)
	})
}

// A WRITE can reach the Store far behind the ones after it (its goroutine
// waited for a CPU). The chunks past the kept window are read back when
// their turn comes, so the file still has its MD5 when it is closed.
func TestMD5LateChunk(t *testing.T) {
	const cs = 1024
	backends(t, Options{ChunkSize: cs}, func(t *testing.T, s *Store) {
		for _, late := range []int{0, 5} {
			t.Run(fmt.Sprint(late), func(t *testing.T) {
				const chunks = 64
				data := pattern(chunks*cs+300, 11)
				rec, f := create(t, s, "p", fmt.Sprint("late", late))
				// Every chunk but the late one, in order, then it.
				for k := range chunks + 1 {
					if k != late {
						writeAt(t, f, data[k*cs:min((k+1)*cs, len(data))], int64(k*cs))
					}
				}
				writeAt(t, f, data[late*cs:(late+1)*cs], int64(late*cs))
				readBack := f.readBack
				releaseWithMD5(t, s, f, rec, data, fmt.Sprintf("after a chunk %d chunks late", chunks-1-late))
				// Chunks after the late one: maxAhead kept, the rest read back.
				if want := chunks - 1 - late - maxAhead; readBack != want {
					t.Errorf("%d chunks read back, want %d", readBack, want)
				}
			})
		}
	})
}

// releaseWithMD5 releases f, written with data, and checks that its record
// has data's MD5 (the running MD5 was kept) and that the bytes committed are
// data.
func releaseWithMD5(t *testing.T, s *Store, f *File, rec *Record, data []byte, what string) {
	t.Helper()
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if got.MD5 != md5hex(data) {
		t.Fatalf("MD5 %s = %q, want %q", what, got.MD5, md5hex(data))
	}
	if b, _ := committed(t, s, rec.Ino); !bytes.Equal(b, data) {
		t.Fatalf("bytes %s differ", what)
	}
}
