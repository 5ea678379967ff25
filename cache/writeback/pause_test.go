package writeback

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// An item whose destination is unreachable waits, paused, without using
// up attempts or backing off, and uploads once the queue resumes.
func TestLaterWaitsForResume(t *testing.T) {
	q := newQueue(t, Options{Delay: -1, BackoffBase: time.Hour})
	var calls atomic.Int32
	var down atomic.Bool
	down.Store(true)
	put := func(context.Context) error {
		calls.Add(1)
		if down.Load() {
			q.Pause()
			return Later(errors.New("unreachable"))
		}
		return nil
	}
	q.Add(1, put)
	waitFor(t, "the first attempt", func() bool { return calls.Load() == 1 })
	waitFor(t, "the item waiting", func() bool {
		it, ok := itemOf(q, 1)
		return ok && it.State == StateWaiting && it.Attempts == 0 && it.Err != nil
	})
	if !q.Paused() {
		t.Fatal("got a running queue after Later, want paused")
	}
	q.Add(2, put) // added while paused: does not start
	time.Sleep(20 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("got %d attempts while paused, want 1", n)
	}
	down.Store(false)
	q.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Flush(ctx, 0); err != nil {
		t.Fatalf("flush after resume: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("got %d attempts, want 3 (one refused, two after resume)", n)
	}
}

// PauseIf pauses only when its condition, looked at under the queue's
// lock, holds.
func TestPauseIf(t *testing.T) {
	q := newQueue(t, Options{Delay: -1})
	q.PauseIf(func() bool { return false })
	if q.Paused() {
		t.Fatal("paused with the condition false")
	}
	q.PauseIf(func() bool { return true })
	if !q.Paused() {
		t.Fatal("not paused with the condition true")
	}
	q.Resume()
	if q.Paused() {
		t.Fatal("paused after Resume")
	}
}
