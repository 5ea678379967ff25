package meta

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLoadSingleFlight(t *testing.T) {
	c := New(Options{TTL: time.Hour})
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func() ([]remote.Entity, error) {
		calls.Add(1)
		<-release
		return []remote.Entity{{ID: "syn2", Name: "a", ParentID: "syn1"}}, nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := c.Load(context.Background(), "syn1", fetch)
			if err != nil || l.Len() != 1 {
				t.Errorf("Load: got %v, %v", l, err)
			}
		}()
	}
	for c.Fetches() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("20 concurrent loads made %d fetches, want 1", n)
	}
	if _, err := c.Load(context.Background(), "syn1", fetch); err != nil || calls.Load() != 1 {
		t.Fatalf("a fresh listing was fetched again (%d fetches, %v)", calls.Load(), err)
	}
}

func TestLoadStaleWhileRevalidate(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := New(Options{TTL: 10 * time.Second, Now: clk.Now})
	gen := atomic.Int32{}
	gate := make(chan struct{}, 10)
	fetch := func() ([]remote.Entity, error) {
		<-gate
		n := gen.Add(1)
		return []remote.Entity{{ID: "syn2", Name: "v" + string(rune('0'+n)), ParentID: "syn1"}}, nil
	}
	gate <- struct{}{}
	l, err := c.Load(context.Background(), "syn1", fetch)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Get("v1"); !ok {
		t.Fatal("first listing lacks v1")
	}
	clk.Advance(15 * time.Second) // stale, within 2 × TTL
	for range 50 {
		// Every lookup of a walk gets the stale listing at once; one fetch
		// refreshes it (held at the gate until the walk is done).
		l, err := c.Load(context.Background(), "syn1", fetch)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := l.Get("v1"); !ok {
			t.Fatal("stale listing not served")
		}
	}
	if n := c.Fetches(); n != 2 {
		t.Fatalf("50 lookups on a stale listing started %d fetches in all, want 2", n)
	}
	gate <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, _ := c.Load(context.Background(), "syn1", fetch)
		if _, ok := l.Get("v2"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background refresh never landed")
		}
		time.Sleep(time.Millisecond)
	}
	// Past 2 × TTL a caller waits for a fresh listing.
	clk.Advance(25 * time.Second)
	gate <- struct{}{}
	l, err = c.Load(context.Background(), "syn1", fetch)
	if _, ok := l.Get("v3"); err != nil || !ok {
		t.Fatalf("an expired listing was served: %v %v", l.Entries(), err)
	}
}

func TestLoadKeepsLocalChangesMadeDuringFetch(t *testing.T) {
	c := New(Options{TTL: time.Hour})
	started, release := make(chan struct{}), make(chan struct{})
	fetch := func() ([]remote.Entity, error) {
		close(started)
		<-release
		return []remote.Entity{{ID: "syn2", Name: "old", ParentID: "syn1"}}, nil
	}
	done := make(chan *Listing)
	go func() {
		l, _ := c.Load(context.Background(), "syn1", fetch)
		done <- l
	}()
	<-started
	c.Put(remote.Entity{ID: "syn3", Name: "made", ParentID: "syn1"})
	c.Drop("syn1", "old")
	close(release)
	l := <-done
	if _, ok := l.Get("made"); !ok {
		t.Error("a folder made during the fetch is missing from its answer")
	}
	if _, ok := l.Get("old"); ok {
		t.Error("a name removed during the fetch came back with its answer")
	}
}

func TestLoadWaitBoundedByContext(t *testing.T) {
	c := New(Options{TTL: time.Hour})
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Load(ctx, "syn1", func() ([]remote.Entity, error) { <-release; return nil, nil })
	if err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestLargeListingTrustedLonger: with PageCost set, a listing of many
// pages is trusted pages × PageCost (so re-listing it spends a bounded
// share of the REST budget), while a small one keeps the TTL.
func TestLargeListingTrustedLonger(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := New(Options{TTL: 10 * time.Second, PageCost: time.Second, Now: clk.Now})
	var fetches atomic.Int32
	list := func(n int) Fetch {
		return func() ([]remote.Entity, error) {
			fetches.Add(1)
			out := make([]remote.Entity, n)
			for i := range out {
				out[i] = remote.Entity{ID: fmt.Sprintf("syn%d", 100+i), Name: fmt.Sprintf("f%05d", i)}
			}
			return out, nil
		}
	}
	big, small := list(40*PageSize), list(3) // 40 pages: trusted 40 s
	for _, p := range []struct {
		id    string
		fetch Fetch
	}{{"big", big}, {"small", small}} {
		if _, err := c.Load(context.Background(), p.id, p.fetch); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	clk.Advance(30 * time.Second) // past the TTL, within 40 pages × 1 s
	c.Load(context.Background(), "big", big)
	if n := fetches.Load(); n != 2 {
		t.Fatalf("a 40-page listing 30 s old was fetched again (%d fetches); it is trusted 40 s", n)
	}
	if c.Listing("small") != nil {
		t.Fatal("a small listing 30 s old (3 × its TTL) is still served")
	}
	clk.Advance(20 * time.Second) // 50 s: stale, served while refreshed
	if l, err := c.Load(context.Background(), "big", big); err != nil || l.Len() != 40*PageSize {
		t.Fatalf("stale big listing not served: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fetches.Load() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh of the big listing 50 s old (%d fetches)", fetches.Load())
		}
		time.Sleep(time.Millisecond)
	}
}
