package cache

import (
	"crypto/md5"
	"slices"
)

// The running MD5 and writes out of order. The kernel sends a file's
// dirty pages in file order with several WRITEs in flight, and each is
// served on its own goroutine, so chunks reach the Store out of file
// order: a WRITE whose goroutine waits for a CPU while the others go on
// arrives late, by several MiB and at times by tens (7 MiB at the median
// and 39 at most of the late ones in a 1 GiB cp on two cores). The MD5 is still computed as the bytes arrive
// when every byte is written once, before the file is closed: written
// ranges past the contiguous prefix [0, md5Off) are remembered (spans); a
// complete chunk past the next one to hash is kept in memory (ahead) until
// the chunks before it are hashed, up to maxAhead of them; past that, only
// its number is kept (behind), and when its turn comes its bytes are read
// back from the pipe or the arena (hashAheadLocked). Anything else (a byte
// written twice, more than maxSpans gaps, more than maxBehind chunks
// waiting) gives up the running MD5: the upload computes it from the
// staged bytes instead.
const (
	maxSpans  = 64
	maxAhead  = 16
	maxBehind = 4096
)

// span is a written byte range [from, to) past md5Off.
type span struct{ from, to int64 }

// noteWrittenLocked records that [off, end) was written and reports whether
// the running MD5 is still possible. Caller holds the ino lock.
func (f *File) noteWrittenLocked(off, end int64) bool {
	if off < f.md5Off {
		return false // written twice
	}
	i, _ := slices.BinarySearchFunc(f.spans, off, func(s span, off int64) int {
		switch {
		case s.from < off:
			return -1
		case s.from > off:
			return 1
		}
		return 0
	})
	if (i > 0 && f.spans[i-1].to > off) || (i < len(f.spans) && f.spans[i].from < end) {
		return false // overlaps a range written before
	}
	if off == f.md5Off {
		f.md5Off = end
		for len(f.spans) > 0 && f.spans[0].from == f.md5Off {
			f.md5Off = f.spans[0].to
			f.spans = f.spans[1:]
		}
		return true
	}
	// Join the neighbours it touches, so that a range is one span.
	switch {
	case i > 0 && f.spans[i-1].to == off && i < len(f.spans) && f.spans[i].from == end:
		f.spans[i-1].to = f.spans[i].to
		f.spans = slices.Delete(f.spans, i, i+1)
	case i > 0 && f.spans[i-1].to == off:
		f.spans[i-1].to = end
	case i < len(f.spans) && f.spans[i].from == end:
		f.spans[i].from = off
	case len(f.spans) >= maxSpans:
		return false
	default:
		f.spans = slices.Insert(f.spans, i, span{off, end})
	}
	return true
}

// writtenLocked reports whether every byte of [from, to) was written.
func (f *File) writtenLocked(from, to int64) bool {
	if to <= f.md5Off {
		return true
	}
	if from < f.md5Off {
		return false // spans never start at md5Off: they are absorbed
	}
	for _, s := range f.spans {
		if s.from <= from && to <= s.to {
			return true
		}
	}
	return false
}

// hashChunkLocked decides what the running MD5 does with chunk k, whose
// buffer b is being handed to the pipe: hash it now (the next chunk, all
// its bytes written), keep it for later (a later chunk, all its bytes
// written), note it for a read later (the same, with maxAhead kept
// already), or neither. It returns whether the pipe hashes b and whether
// the pipe must keep b (not reuse it) because it is kept for later.
func (f *File) hashChunkLocked(k int64, b []byte) (hash, keep bool) {
	if !f.md5OK {
		return false, false
	}
	cs := f.s.chunk
	whole := f.writtenLocked(k*cs, (k+1)*cs)
	later := whole && k*cs > f.hashOff && f.ahead[k] == nil && !f.behind[k]
	switch {
	case whole && k*cs == f.hashOff:
		f.hashOff += cs
		return true, false
	case later && len(f.ahead) < maxAhead:
		if f.ahead == nil {
			f.ahead = make(map[int64][]byte)
		}
		f.ahead[k] = b
		return false, true
	case later && len(f.behind) < maxBehind:
		if f.behind == nil {
			f.behind = make(map[int64]bool)
		}
		f.behind[k] = true
		return false, false
	case !whole && k*cs >= f.hashOff:
		// Its other bytes come later; so does its hash.
		return false, false
	}
	f.dropMD5Locked()
	return false, false
}

// hashAheadLocked hands the chunks that now follow the hashed prefix to
// the pipe for hashing, in order: the kept ones from memory, the noted
// ones read back (readLocked: from the pipe while it still has them,
// else from the arena; their bytes never change, since a byte written
// twice gives up the running MD5), into a reused chunk buffer that goes
// back to the pipe once hashed. The pipe's bound on jobs in flight bounds
// the buffers read back.
func (f *File) hashAheadLocked() {
	cs := f.s.chunk
	for f.md5OK {
		k := f.hashOff / cs
		b, kept := f.ahead[k]
		switch {
		case kept:
			delete(f.ahead, k)
		case f.behind[k]:
			delete(f.behind, k)
			if b, _ = f.takeBuf(); b == nil {
				b = make([]byte, cs)
			}
			if err := f.readLocked(b, k*cs); err != nil {
				// A commit failed: the file fails at its next write or
				// close, and its MD5 is never used.
				f.dropMD5Locked()
				return
			}
			f.readBack++
		default:
			return
		}
		f.hashOff += cs
		f.handOffHashLocked(b, kept)
	}
}

// dropMD5Locked gives up the running MD5 until the file is emptied.
func (f *File) dropMD5Locked() {
	f.md5OK = false
	f.spans, f.ahead, f.behind = nil, nil, nil
}

// resetMD5Locked starts the running MD5 of an empty file.
func (f *File) resetMD5Locked() {
	f.md5, f.md5OK, f.md5Off, f.hashOff = md5.New(), true, 0, 0
	f.spans, f.ahead, f.behind = nil, nil, nil
}
