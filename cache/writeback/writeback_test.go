package writeback

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

func newQueue(t *testing.T, o Options) *Queue {
	t.Helper()
	o.Logger = quiet
	q := New(o)
	t.Cleanup(q.Close)
	return q
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func itemOf(q *Queue, id uint64) (Item, bool) {
	for _, it := range q.Queue() {
		if it.ID == id {
			return it, true
		}
	}
	return Item{}, false
}

func TestDelayMerging(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	q := newQueue(t, Options{Delay: time.Hour, Now: clock})
	var calls atomic.Int32
	put := func(context.Context) error { calls.Add(1); return nil }
	q.Add(1, put)
	it, _ := itemOf(q, 1)
	if want := now.Add(time.Hour); !it.Due.Equal(want) || it.State != StateWaiting {
		t.Fatalf("after Add: due %v state %v; want %v waiting", it.Due, it.State, want)
	}
	mu.Lock()
	now = now.Add(30 * time.Minute)
	mu.Unlock()
	q.Add(1, put)
	it, _ = itemOf(q, 1)
	if want := now.Add(time.Hour); !it.Due.Equal(want) {
		t.Fatalf("after re-Add: due %v; want %v", it.Due, want)
	}
	if n := len(q.Queue()); n != 1 {
		t.Fatalf("%d items after re-Add, want 1", n)
	}
	if c := calls.Load(); c != 0 {
		t.Fatalf("put ran %d times before the delay", c)
	}
	// Flush makes it start now, once.
	if err := q.Flush(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("put ran %d times, want 1", c)
	}
	if n := len(q.Queue()); n != 0 {
		t.Fatalf("%d items after upload, want 0", n)
	}
}

func TestDelayFires(t *testing.T) {
	q := newQueue(t, Options{Delay: 5 * time.Millisecond})
	done := make(chan struct{})
	q.Add(1, func(context.Context) error { close(done); return nil })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("item never started after its delay")
	}
}

func TestCancelAndRequeue(t *testing.T) {
	q := newQueue(t, Options{Delay: -1})
	started := make(chan struct{})
	var cancelled atomic.Bool
	first := func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		cancelled.Store(true)
		return ctx.Err()
	}
	second := make(chan struct{})
	q.AddNow(1, first)
	<-started
	if it, _ := itemOf(q, 1); it.State != StateUploading {
		t.Fatalf("state while running = %v, want uploading", it.State)
	}
	q.AddNow(1, func(context.Context) error { close(second); return nil })
	select {
	case <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("second put never ran")
	}
	if !cancelled.Load() {
		t.Fatal("the in-flight put's context was not cancelled")
	}
	if err := q.Flush(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
}

func TestTransferCap(t *testing.T) {
	const cap = 3
	q := newQueue(t, Options{Delay: -1, Transfers: cap})
	var running, peak atomic.Int32
	release := make(chan struct{})
	for i := range 12 {
		q.AddNow(uint64(i+1), func(context.Context) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			return nil
		})
	}
	waitFor(t, "the transfers to fill", func() bool { return running.Load() == cap })
	uploading := 0
	for _, it := range q.Queue() {
		if it.State == StateUploading {
			uploading++
		}
	}
	if uploading != cap {
		t.Errorf("%d items uploading, want %d", uploading, cap)
	}
	close(release)
	if err := q.Flush(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != cap {
		t.Errorf("peak concurrent puts = %d, want %d", p, cap)
	}
}

func TestBackoff(t *testing.T) {
	base, limit := time.Second, 5*time.Minute
	prev := time.Duration(0)
	for n := 1; n <= 20; n++ {
		lo, hi := Backoff(base, limit, n, 0), Backoff(base, limit, n, 0.999999)
		if lo < prev/2 || hi > limit || lo > hi {
			t.Errorf("attempt %d: range [%v, %v]", n, lo, hi)
		}
		prev = hi
	}
	if got := Backoff(base, limit, 1, 0); got != base/2 {
		t.Errorf("first backoff low end = %v, want %v", got, base/2)
	}
	if got := Backoff(base, limit, 3, 0.5); got != 3*time.Second {
		t.Errorf("third backoff midpoint = %v, want 3s", got)
	}
	if got := Backoff(base, limit, 40, 0.999999); got > limit || got < limit*99/100 {
		t.Errorf("capped backoff = %v, want just under %v", got, limit)
	}
}

func TestRetryThenPermanent(t *testing.T) {
	q := newQueue(t, Options{Delay: -1, BackoffBase: time.Millisecond, BackoffCap: 2 * time.Millisecond})
	var calls atomic.Int32
	boom := errors.New("boom")
	q.AddNow(1, func(context.Context) error {
		if calls.Add(1) < 3 {
			return errors.New("transient")
		}
		return Permanent(boom)
	})
	err := q.Flush(context.Background(), 1)
	if !errors.Is(err, boom) || !IsPermanent(err) {
		t.Fatalf("Flush = %v, want the permanent error", err)
	}
	if c := calls.Load(); c != 3 {
		t.Fatalf("put ran %d times, want 3 (two retries, then permanent)", c)
	}
	it, ok := itemOf(q, 1)
	if !ok || it.State != StateFailed || it.Attempts != 3 || !errors.Is(it.Err, boom) {
		t.Fatalf("failed item = %+v, %v", it, ok)
	}
	if err := q.Flush(context.Background(), 0); !errors.Is(err, boom) {
		t.Fatalf("Flush(all) = %v, want the permanent error", err)
	}
	// Add revives it.
	q.AddNow(1, func(context.Context) error { return nil })
	if err := q.Flush(context.Background(), 1); err != nil {
		t.Fatalf("Flush after re-Add = %v", err)
	}
	if _, ok := itemOf(q, 1); ok {
		t.Fatal("item still listed after success")
	}
}

func TestBackoffState(t *testing.T) {
	now := time.Unix(0, 0)
	q := newQueue(t, Options{Delay: -1, BackoffBase: time.Hour, BackoffCap: 2 * time.Hour, Now: func() time.Time { return now }})
	q.AddNow(1, func(context.Context) error { return errors.New("503") })
	waitFor(t, "backoff", func() bool { it, _ := itemOf(q, 1); return it.State == StateBackoff })
	it, _ := itemOf(q, 1)
	if it.Due.Before(now.Add(30*time.Minute)) || it.Due.After(now.Add(time.Hour)) || it.Err == nil || it.Attempts != 1 {
		t.Fatalf("after one failure: %+v; want due in [30m, 1h], an error, 1 attempt", it)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	// Flush expedites the retry; it fails again and backs off longer.
	if err := q.Flush(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush of an always-failing item = %v, want DeadlineExceeded", err)
	}
	it, _ = itemOf(q, 1)
	if it.Attempts < 2 {
		t.Fatalf("attempts after Flush = %d, want ≥ 2", it.Attempts)
	}
}

func TestRemove(t *testing.T) {
	q := newQueue(t, Options{Delay: -1})
	started := make(chan struct{})
	var cancelled atomic.Bool
	q.AddNow(1, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		cancelled.Store(true)
		return ctx.Err()
	})
	<-started
	q.Remove(1)
	if err := q.Flush(context.Background(), 1); err != nil {
		t.Fatalf("Flush of a removed item = %v", err)
	}
	waitFor(t, "cancellation", cancelled.Load)
	if n := len(q.Queue()); n != 0 {
		t.Fatalf("%d items after Remove, want 0", n)
	}
	// A waiting item is removed before it runs.
	q2 := newQueue(t, Options{Delay: time.Hour})
	var ran atomic.Bool
	q2.Add(2, func(context.Context) error { ran.Store(true); return nil })
	q2.Remove(2)
	if err := q2.Flush(context.Background(), 0); err != nil || ran.Load() {
		t.Fatalf("Flush after Remove = %v, ran %v; want nil, false", err, ran.Load())
	}
}

// addSlowToReturn queues id with an upload that, once cancelled, returns
// only when finish is closed (as a create awaiting its answer does), and
// waits until it runs. returned is set when it has returned.
func addSlowToReturn(q *Queue, id uint64) (finish chan struct{}, returned *atomic.Bool) {
	started := make(chan struct{})
	finish, returned = make(chan struct{}), new(atomic.Bool)
	q.AddNow(id, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		<-finish
		returned.Store(true)
		return ctx.Err()
	})
	<-started
	return finish, returned
}

// Cancel returns only once the cancelled upload has returned, or when the
// caller's context ends first.
func TestCancelWaits(t *testing.T) {
	q := newQueue(t, Options{Delay: -1})
	finish, returned := addSlowToReturn(q, 1)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := q.Cancel(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Cancel with the upload still running = %v, want DeadlineExceeded", err)
	}
	go func() { time.Sleep(20 * time.Millisecond); close(finish) }()
	// The item left the queue at the first Cancel; the second still waits
	// for its upload (a retried rm or rename must not look before it).
	if err := q.Cancel(context.Background(), 1); err != nil {
		t.Fatalf("second Cancel = %v", err)
	}
	if !returned.Load() {
		t.Fatal("the second Cancel returned before the upload did")
	}

	finish, returned = addSlowToReturn(q, 2)
	go func() { time.Sleep(20 * time.Millisecond); close(finish) }()
	if err := q.Cancel(context.Background(), 2); err != nil {
		t.Fatalf("Cancel = %v", err)
	}
	if !returned.Load() {
		t.Fatal("Cancel returned before the upload did")
	}
	if err := q.Cancel(context.Background(), 3); err != nil {
		t.Fatalf("Cancel of an unknown item = %v", err)
	}
}

// An id added again after its running upload was removed starts only once
// that upload has returned: two uploads of one file never overlap.
func TestAddAfterRemoveWaitsForUpload(t *testing.T) {
	q := newQueue(t, Options{Delay: -1})
	finish, returned := addSlowToReturn(q, 1)
	var once sync.Once
	release := func() { once.Do(func() { close(finish) }) }
	t.Cleanup(release) // before the queue's Close, which waits for the upload
	q.Remove(1)
	started := make(chan bool, 1)
	q.AddNow(1, func(context.Context) error { started <- returned.Load(); return nil })
	if it, ok := itemOf(q, 1); !ok || it.State != StateWaiting {
		t.Fatalf("the new item while the removed upload runs: %+v %v, want waiting", it, ok)
	}
	select {
	case <-started:
		t.Fatal("the new upload started while the removed one was still running")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case after := <-started:
		if !after {
			t.Fatal("the new upload started before the removed one returned")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new upload never started")
	}
	if err := q.Flush(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
}

func TestFlushAllWaits(t *testing.T) {
	q := newQueue(t, Options{Delay: time.Hour, Transfers: 2})
	var done atomic.Int32
	for i := range 5 {
		q.Add(uint64(i+1), func(context.Context) error { done.Add(1); return nil })
	}
	if err := q.Flush(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if d := done.Load(); d != 5 {
		t.Fatalf("Flush(all) returned after %d of 5 uploads", d)
	}
}

// An item queued while Flush waits (a file's close that arrives after its
// upload ran) is hurried too: Flush waits for it as well, and used to wait
// its whole merge delay.
func TestFlushHurriesItemsQueuedMeanwhile(t *testing.T) {
	q := newQueue(t, Options{Delay: time.Hour, Transfers: 2})
	var done atomic.Int32
	put := func(context.Context) error { done.Add(1); return nil }
	q.Add(1, func(context.Context) error {
		q.Add(2, put)
		return put(context.Background())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Flush(ctx, 0); err != nil {
		t.Fatalf("Flush with an item queued meanwhile: %v", err)
	}
	if d := done.Load(); d != 2 {
		t.Fatalf("Flush returned after %d of 2 uploads", d)
	}
}

func TestClose(t *testing.T) {
	q := New(Options{Delay: -1, Logger: quiet})
	started := make(chan struct{})
	var cancelled atomic.Bool
	q.AddNow(1, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		cancelled.Store(true)
		return ctx.Err()
	})
	<-started
	q.Close()
	if !cancelled.Load() {
		t.Fatal("Close returned before the running put was cancelled")
	}
	q.AddNow(2, func(context.Context) error { t.Error("put ran after Close"); return nil })
	if n := len(q.Queue()); n != 0 {
		t.Fatalf("%d items after Close, want 0", n)
	}
}

// Retouch acts only on a queued item, and pushes its start back as Touch
// does.
func TestRetouch(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	q := newQueue(t, Options{Delay: time.Hour, Now: clock})
	if q.Retouch(1) {
		t.Fatal("Retouch of an unknown item reported true")
	}
	if n := len(q.Queue()); n != 0 {
		t.Fatalf("%d items after Retouch of an unknown item, want 0", n)
	}
	q.Touch(1, func(context.Context) error { return nil })
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if !q.Retouch(1) {
		t.Fatal("Retouch of a queued item reported false")
	}
	it, _ := itemOf(q, 1)
	if want := now.Add(time.Hour); !it.Due.Equal(want) {
		t.Fatalf("after Retouch: due %v; want %v", it.Due, want)
	}
}
