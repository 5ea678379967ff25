package remotetest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"sync"
	"testing"

	"github.com/synfs/synfs/remote"
)

func TestPatternReadAt(t *testing.T) {
	p := Pattern{Seed: 42, Size: 1000}
	all := p.Bytes()
	if int64(len(all)) != p.Size {
		t.Fatalf("Bytes: got %d bytes, want %d", len(all), p.Size)
	}
	for _, c := range []struct{ off, n int }{{0, 1}, {1, 7}, {3, 16}, {7, 9}, {995, 5}, {500, 300}} {
		b := make([]byte, c.n)
		n, err := p.ReadAt(b, int64(c.off))
		if n != c.n || err != nil || !bytes.Equal(b, all[c.off:c.off+c.n]) {
			t.Errorf("ReadAt(%d bytes at %d): got %d, %v, differing=%v, want %d, nil, same bytes", c.n, c.off, n, err, !bytes.Equal(b, all[c.off:c.off+c.n]), c.n)
		}
	}
	b := make([]byte, 10)
	if n, err := p.ReadAt(b, 995); n != 5 || err != io.EOF {
		t.Errorf("ReadAt past the end: got %d, %v, want 5, EOF", n, err)
	}
	if n, err := p.ReadAt(b, 1000); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end: got %d, %v, want 0, EOF", n, err)
	}
	s := md5.Sum(all)
	if got, want := p.MD5(), hex.EncodeToString(s[:]); got != want {
		t.Errorf("MD5: got %s, want %s", got, want)
	}
	if q := (Pattern{Seed: 43, Size: 1000}); bytes.Equal(q.Bytes(), all) {
		t.Error("different seeds gave the same bytes")
	}
	if bytes.Count(all, []byte{0}) > 50 {
		t.Errorf("pattern looks degenerate: %d zero bytes of 1000", bytes.Count(all, []byte{0}))
	}
}

func TestPatternConcurrent(t *testing.T) {
	p := Pattern{Seed: 1, Size: 1 << 20}
	want := p.Bytes()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			off := int64(i) * (1 << 17)
			b := make([]byte, 1<<17)
			if _, err := p.ReadAt(b, off); err != nil || !bytes.Equal(b, want[off:off+1<<17]) {
				t.Errorf("concurrent ReadAt at %d: err %v or different bytes", off, err)
			}
		})
	}
	wg.Wait()
}

func TestLiveSkipsWithoutEnv(t *testing.T) {
	t.Setenv(EnvToken, "")
	t.Setenv(EnvParent, "")
	called := false
	var inner *testing.T
	t.Run("live", func(t *testing.T) {
		inner = t
		Live(t, func(string) remote.Client { called = true; return nil })
	})
	if !inner.Skipped() || called {
		t.Errorf("Live without env: got skipped=%v client built=%v, want skipped and no client", inner.Skipped(), called)
	}
}
