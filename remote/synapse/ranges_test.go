package synapse_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
	"github.com/synfs/synfs/remote/synapse"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const routeBatch = "POST /file/v1/fileHandle/batch"

// TestDownloadRanges reads ranges of a file through Download: one REST call
// for the URL however many ranges are read, correct bytes at every offset,
// EOF at the end, and a new URL, transparently, when the one held expires
// (seen by the client's clock) or is refused (the server's clock ran ahead).
func TestDownloadRanges(t *testing.T) {
	emuClock := &testClock{t: time.Now().UTC()}
	cliClock := &testClock{t: emuClock.Now()}
	e := newEmu(t, emulator.Options{Now: emuClock.Now})
	repo, file, auth := synapse.Endpoints(e.url)
	c, err := synapse.New(synapse.Config{RepoEndpoint: repo, FileEndpoint: file, AuthEndpoint: auth, Token: demoToken,
		RetryBase: 2 * time.Millisecond, RetryCap: 50 * time.Millisecond, RatePerMinute: 1 << 20, Now: cliClock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	ent, err := c.Upload(ctx, &remote.UploadRequest{ParentID: e.folder, Name: "r.bin", Size: int64(len(data)), MD5: md5Of(data), Source: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	before := e.em.RequestCounts()
	fr, err := c.Download(ctx, ent)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.em.RequestCounts().Sub(before).Total(); n != 0 {
		t.Fatalf("Download made %d REST calls before any read, want 0", n)
	}
	read := func(off, n int) {
		t.Helper()
		p := make([]byte, n)
		k, err := fr.ReadAt(ctx, p, int64(off))
		want := data[min(off, len(data)):min(off+n, len(data))]
		if k != len(want) || !bytes.Equal(p[:k], want) {
			t.Fatalf("ReadAt(%d, %d): got %d bytes (err %v), want %d", off, n, k, err, len(want))
		}
		if k < n && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d) short: got err %v, want io.EOF", off, n, err)
		}
		if k == n && err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
	}
	for _, r := range [][2]int{{0, 1}, {5, 4096}, {1 << 20, 1 << 20}, {len(data) - 10, 100}, {len(data), 10}, {3 << 20, 17}} {
		read(r[0], r[1])
	}
	if calls := e.em.RequestCounts().Sub(before); calls.Total() != 1 || calls[routeBatch] != 1 {
		t.Fatalf("six ranges cost REST calls %v, want one fileHandle/batch", calls)
	}
	// Expiry the client sees coming: a new URL before the old one is used.
	emuClock.Advance(40 * time.Second)
	cliClock.Advance(40 * time.Second)
	read(100, 1000)
	// Expiry only the server sees: a 403, then a new URL.
	emuClock.Advance(40 * time.Second)
	read(2<<20, 4096)
	if calls := e.em.RequestCounts().Sub(before); calls[routeBatch] != 3 {
		t.Fatalf("after two expiries: REST calls %v, want 3 fileHandle/batch", calls)
	}
}

func md5Of(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
