package synapse

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/remotetest"
)

func TestBackoff(t *testing.T) {
	c, err := New(Config{RetryBase: 100 * time.Millisecond, RetryCap: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, step := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		step *= time.Millisecond
		for range 50 {
			d := c.backoff(attempt, 0)
			if d < step/2 || d > min(step*3/2, time.Second) {
				t.Fatalf("backoff(%d): got %v, want within [%v, %v]", attempt, d, step/2, min(step*3/2, time.Second))
			}
		}
	}
	if d := c.backoff(0, 700*time.Millisecond); d < 700*time.Millisecond {
		t.Errorf("backoff with Retry-After 700ms: got %v, want at least 700ms", d)
	}
	if d := c.backoff(0, time.Hour); d != time.Second {
		t.Errorf("backoff with a huge Retry-After: got %v, want the 1s cap", d)
	}
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, "junk": 0, "Mon, 01 Jan 2024 00:00:05 GMT": 5 * time.Second} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q): got %v, want %v", v, got, want)
		}
	}
}

func TestLimiterRate(t *testing.T) {
	l := newLimiter(10, 600) // a burst of 30, then 569 a minute
	ctx := context.Background()
	start := time.Now()
	for range 30 {
		if err := l.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		l.release()
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("burst of 30: took %v, want no waiting", d)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	var err error
	for range 5 {
		if err = l.acquire(ctx); err != nil {
			break
		}
		l.release()
	}
	if err == nil {
		t.Error("5 calls beyond the burst within 20ms: got no wait, want the rate limit to hold them")
	}
}

// TestLimiterForegroundFirst: once the burst is spent, calls someone
// waits for take the next tokens before calls queued earlier for the
// background, three of every four while both wait, and all at the rate.
func TestLimiterForegroundFirst(t *testing.T) {
	l := newLimiter(100, 300) // a burst of 15, then a token every ~211 ms
	ctx := context.Background()
	for range 15 {
		if err := l.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		l.release()
	}
	queued := func(lane, n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			l.mu.Lock()
			got := len(l.queue[lane])
			l.mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lane %d: %d waiting, want %d", lane, got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	order := make(chan string, 10)
	var wg sync.WaitGroup
	call := func(ctx context.Context, name string) {
		wg.Go(func() {
			if err := l.acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			order <- name
			l.release()
		})
	}
	for range 4 {
		call(remote.Background(ctx), "bg")
	}
	queued(1, 4)
	start := time.Now()
	for range 6 {
		call(ctx, "fg")
	}
	wg.Wait()
	close(order)
	var got []string
	for o := range order {
		got = append(got, o)
	}
	if want := "fg fg fg bg fg fg fg bg bg bg"; strings.Join(got, " ") != want {
		t.Fatalf("grant order %v, want %s", got, want)
	}
	if d := time.Since(start); d < 1800*time.Millisecond {
		t.Errorf("10 calls past the burst took %v, want the rate (about 211 ms a call) kept", d)
	}
}

func TestURLExpiry(t *testing.T) {
	exp, ok := urlExpiry("http://h/k?X-Amz-Date=20240101T000000Z&X-Amz-Expires=30&sig=1")
	if !ok || !exp.Equal(time.Date(2024, 1, 1, 0, 0, 30, 0, time.UTC)) {
		t.Errorf("urlExpiry: got %v, %v, want 2024-01-01T00:00:30Z", exp, ok)
	}
	if _, ok := urlExpiry("http://h/k?sig=1"); ok {
		t.Error("urlExpiry without parameters: got ok, want not ok")
	}
}

// recordingReader records the largest single read.
type recordingReader struct {
	r   io.ReaderAt
	mu  sync.Mutex
	max int
}

func (r *recordingReader) ReadAt(b []byte, off int64) (int, error) {
	r.mu.Lock()
	r.max = max(r.max, len(b))
	r.mu.Unlock()
	return r.r.ReadAt(b, off)
}

func TestUploadStreamsParts(t *testing.T) {
	e := newEnv(t, nil)
	p := remotetest.Pattern{Seed: 4, Size: 2*remote.MinPartSize + 1}
	rec := &recordingReader{r: p}
	got, err := e.c.Upload(context.Background(), &remote.UploadRequest{ParentID: e.project, Name: "s.bin", Size: p.Size, MD5: p.MD5(), Source: rec, PartSize: remote.MinPartSize})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got.Size != p.Size || got.MD5 != p.MD5() {
		t.Errorf("Upload: got %d %s, want %d %s", got.Size, got.MD5, p.Size, p.MD5())
	}
	if rec.max > 1<<20 {
		t.Errorf("largest source read: got %d bytes, want at most 1 MiB (parts are streamed)", rec.max)
	}
}

// A call whose admission has ended sends nothing, even on a context that
// outlives it (remote.Outlive) and with the limits free.
func TestAdmitWithinSendsNothing(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	repo, file, auth := Endpoints(srv.URL)
	c, err := New(Config{RepoEndpoint: repo, FileEndpoint: file, AuthEndpoint: auth, Token: "t", RatePerMinute: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cl := call{method: http.MethodGet, base: c.repo, path: "/version"}
	if err := c.rest(context.Background(), cl); err != nil || got.Load() != 1 {
		t.Fatalf("plain call: %v, %d requests; want nil, 1", err, got.Load())
	}
	outer, cancel := context.WithCancel(context.Background())
	cancel()
	lctx, stop := remote.Outlive(outer, time.Minute)
	defer stop()
	for range 20 {
		if err := c.rest(admitWithin(lctx, outer), cl); err == nil {
			t.Fatal("call admitted after its admission ended")
		}
	}
	if n := got.Load(); n != 1 {
		t.Fatalf("%d requests, want 1 (none after the admission ended)", n)
	}
	// The limiter's slot was given back each time.
	if err := c.rest(context.Background(), cl); err != nil || got.Load() != 2 {
		t.Fatalf("call after: %v, %d requests; want nil, 2", err, got.Load())
	}
}
