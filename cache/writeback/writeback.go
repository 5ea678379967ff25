package writeback

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// PutFn uploads one item. It must return promptly once ctx is cancelled.
type PutFn func(ctx context.Context) error

// Options configures a Queue. Zero fields take the documented defaults.
type Options struct {
	Delay       time.Duration // wait after the last Add before uploading; default 5s, negative for none
	Transfers   int           // uploads at a time; default 4
	BackoffBase time.Duration // first retry delay; default 1s
	BackoffCap  time.Duration // longest retry delay; default 5min
	Now         func() time.Time
	Logger      *slog.Logger
}

// State is where an item is.
type State int

// Item states.
const (
	StateWaiting   State = iota // waiting for its due time (the merge delay)
	StateUploading              // its PutFn is running
	StateBackoff                // waiting to retry after a failure
	StateFailed                 // failed permanently; kept until Add or Remove
)

// String returns the lowercase name of st.
func (st State) String() string {
	switch st {
	case StateWaiting:
		return "waiting"
	case StateUploading:
		return "uploading"
	case StateBackoff:
		return "backoff"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", int(st))
}

// Item is a snapshot of one queued item.
type Item struct {
	ID       uint64
	State    State
	Due      time.Time // when it starts (waiting or backoff)
	Attempts int       // uploads started since it was last added
	Err      error     // the last failure, nil if none
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent wraps err so that the queue stops retrying: the item stays
// listed as failed until it is added again or removed. Permanent(nil) is
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type laterError struct{ err error }

func (l *laterError) Error() string { return l.err.Error() }
func (l *laterError) Unwrap() error { return l.err }

// Later wraps err to say that the item is not at fault: the destination
// cannot be reached. The attempt is not counted and no backoff is added;
// the item waits, due at once, and starts when the queue is not paused.
// A PutFn returns it after calling Pause. Later(nil) is nil.
func Later(err error) error {
	if err == nil {
		return nil
	}
	return &laterError{err}
}

// IsLater reports whether err was wrapped by Later.
func IsLater(err error) bool {
	var l *laterError
	return errors.As(err, &l)
}

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type item struct {
	id       uint64
	put      PutFn
	state    State
	due      time.Time
	attempts int
	err      error
	index    int // in the heap, -1 when not

	cancel  context.CancelFunc // while uploading
	ran     chan struct{}      // closed when the running upload returns
	readd   bool               // added again while uploading
	readdAt time.Time          // due time for that re-add
	held    bool               // waiting, out of the heap, for a removed upload of its id to return
}

// Queue is the write-back queue. Its methods are safe for concurrent use.
type Queue struct {
	o      Options
	log    *slog.Logger
	root   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex // protects the fields below and all items
	items map[uint64]*item
	heap  itemHeap
	// draining holds items removed while their upload ran, until it
	// returns: Cancel waits for them, and a new item of the same id is
	// held until then, so that two uploads of one file never overlap.
	draining map[uint64]*item
	running  int
	timer    *time.Timer
	changed  chan struct{} // closed and replaced on every state change
	closed   bool
	paused   bool // no upload starts; see Pause
}

// New returns a running Queue.
func New(o Options) *Queue {
	if o.Delay < 0 {
		o.Delay = 0
	} else if o.Delay == 0 {
		o.Delay = 5 * time.Second
	}
	if o.Transfers <= 0 {
		o.Transfers = 4
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffCap <= 0 {
		o.BackoffCap = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	q := &Queue{
		o:        o,
		log:      o.Logger,
		items:    make(map[uint64]*item),
		draining: make(map[uint64]*item),
		changed:  make(chan struct{}),
	}
	q.root, q.cancel = context.WithCancel(context.Background())
	return q
}

// Add schedules id for upload by put after the delay. Adding an id that is
// already waiting pushes its start back (merging rewrites); adding one that
// is uploading cancels that upload's context and queues id again once it
// returns; adding a failed one retries it.
func (q *Queue) Add(id uint64, put PutFn) { q.add(id, put, q.o.Delay, true) }

// AddNow is Add without the delay, for fsync and for files found at start.
func (q *Queue) AddNow(id uint64, put PutFn) { q.add(id, put, 0, true) }

// Touch is Add, except that an upload under way is not cancelled: it is
// run again, after the delay, once it has returned. It is for events that
// do not make a running upload wrong (a close), where cancelling would
// only waste the work done.
func (q *Queue) Touch(id uint64, put PutFn) { q.add(id, put, q.o.Delay, false) }

// Retouch is Touch of an item already queued, with the function it has; it
// reports false, and does nothing, when id is not queued.
func (q *Queue) Retouch(id uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := q.items[id]
	if it == nil || q.closed {
		return false
	}
	q.addLocked(id, it.put, q.o.Delay, false)
	return true
}

func (q *Queue) add(id uint64, put PutFn, delay time.Duration, cancel bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(id, put, delay, cancel)
}

func (q *Queue) addLocked(id uint64, put PutFn, delay time.Duration, cancel bool) {
	if q.closed {
		return
	}
	due := q.o.Now().Add(delay)
	it := q.items[id]
	switch {
	case it == nil:
		it = &item{id: id, put: put, due: due, index: -1}
		q.items[id] = it
		if q.draining[id] != nil {
			it.held = true
		} else {
			heap.Push(&q.heap, it)
		}
	case it.state == StateUploading:
		it.put = put
		it.readd, it.readdAt = true, due
		if cancel {
			it.cancel()
		}
	default:
		it.put = put
		it.state, it.due, it.attempts = StateWaiting, due, 0
		switch {
		case it.held:
		case it.index >= 0:
			heap.Fix(&q.heap, it.index)
		default:
			heap.Push(&q.heap, it)
		}
	}
	q.broadcastLocked()
	q.kickLocked()
}

// Remove drops id from the queue, cancelling its upload if one is running.
// An id added again before that upload has returned starts only once it
// has.
func (q *Queue) Remove(id uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.removeLocked(id)
}

// Cancel is Remove, and then waits until an upload of id that was running
// has returned, or ctx ends (its error is returned then); that includes an
// upload removed earlier (by Remove, or by a Cancel that stopped waiting)
// that has not returned yet. Once Cancel returns nil, nothing of id's
// upload is running.
func (q *Queue) Cancel(ctx context.Context, id uint64) error {
	q.mu.Lock()
	q.removeLocked(id)
	var ran chan struct{}
	if d := q.draining[id]; d != nil {
		// Cancelled now or by an earlier call that stopped waiting.
		ran = d.ran
	}
	q.mu.Unlock()
	if ran == nil {
		return nil
	}
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// removeLocked drops id's item; a running upload is cancelled and its
// item kept in draining until it returns.
func (q *Queue) removeLocked(id uint64) {
	it := q.items[id]
	if it == nil {
		return
	}
	delete(q.items, id)
	if it.index >= 0 {
		heap.Remove(&q.heap, it.index)
	}
	if it.cancel != nil {
		it.readd = false
		it.cancel()
		q.draining[id] = it
	}
	q.broadcastLocked()
	q.kickLocked()
}

// Flush makes id (0: every item) start now if it is waiting, and waits until
// it has uploaded. It returns the error of an item that failed permanently,
// or ctx's error. Items that are queued (again) while it waits, for the
// merge delay, are hurried too, since Flush waits for them as well; one
// that failed meanwhile keeps its backoff.
func (q *Queue) Flush(ctx context.Context, id uint64) error {
	q.mu.Lock()
	q.hurryLocked(id, true)
	for {
		done, err := q.flushedLocked(id)
		if done {
			q.mu.Unlock()
			return err
		}
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
		q.hurryLocked(id, false)
	}
}

// hurryLocked makes id's item (0: every item) due now if it is waiting for
// its merge delay, and, with backoff, if it is waiting to retry.
func (q *Queue) hurryLocked(id uint64, backoff bool) {
	now := q.o.Now()
	hurried := false
	for _, it := range q.items {
		if (id == 0 || it.id == id) && it.index >= 0 && it.due.After(now) && (backoff || it.state == StateWaiting) {
			it.due = now
			heap.Fix(&q.heap, it.index)
			hurried = true
		}
	}
	if hurried || backoff {
		q.kickLocked()
	}
}

// flushedLocked reports whether Flush(id) may return, and with what.
func (q *Queue) flushedLocked(id uint64) (bool, error) {
	if id != 0 {
		it := q.items[id]
		switch {
		case it == nil:
			return true, nil
		case it.state == StateFailed && !it.readd:
			return true, it.err
		}
		return false, nil
	}
	var errs []error
	for _, it := range q.items {
		if it.state != StateFailed || it.readd {
			return false, nil
		}
		errs = append(errs, it.err)
	}
	return true, errors.Join(errs...)
}

// Queue returns a snapshot of the queued items, by due time.
func (q *Queue) Queue() []Item {
	q.mu.Lock()
	out := make([]Item, 0, len(q.items))
	for _, it := range q.items {
		out = append(out, Item{ID: it.id, State: it.state, Due: it.due, Attempts: it.attempts, Err: it.err})
	}
	q.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Due.Equal(out[j].Due) {
			return out[i].Due.Before(out[j].Due)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Pause stops starting uploads (those running go on) until Resume: the
// destination is unreachable, so attempts would only fail and back off.
// Items keep their due times; Flush keeps waiting.
func (q *Queue) Pause() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.paused {
		q.paused = true
		q.broadcastLocked()
	}
}

// PauseIf is Pause if cond, called under the queue's lock, holds. A caller
// that found the destination unreachable pauses only if it still is: the
// Resume that follows its return takes the same lock, so it cannot come
// between the look and the pause and be undone by it.
func (q *Queue) PauseIf(cond func() bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.paused && cond() {
		q.paused = true
		q.broadcastLocked()
	}
}

// Resume starts the due items again after Pause.
func (q *Queue) Resume() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.paused {
		q.paused = false
		q.broadcastLocked()
		q.kickLocked()
	}
}

// Paused reports whether the queue is paused.
func (q *Queue) Paused() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.paused
}

// Close cancels every upload, forgets every item and waits for the
// upload goroutines to return. The queue does nothing afterwards.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.cancel()
	if q.timer != nil {
		q.timer.Stop()
	}
	q.items = map[uint64]*item{}
	q.heap = nil
	q.broadcastLocked()
	q.mu.Unlock()
	q.wg.Wait()
}

func (q *Queue) broadcastLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// kickLocked starts the due items that fit under Transfers, and arms the
// timer for the next one.
func (q *Queue) kickLocked() {
	if q.closed || q.paused {
		return
	}
	now := q.o.Now()
	for q.running < q.o.Transfers && len(q.heap) > 0 && !q.heap[0].due.After(now) {
		q.startLocked(heap.Pop(&q.heap).(*item))
	}
	if q.running >= q.o.Transfers || len(q.heap) == 0 {
		return
	}
	d := q.heap[0].due.Sub(now)
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.onTimer)
	} else {
		q.timer.Reset(d)
	}
}

func (q *Queue) onTimer() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.kickLocked()
}

func (q *Queue) startLocked(it *item) {
	ctx, cancel := context.WithCancel(q.root)
	it.state = StateUploading
	it.cancel = cancel
	it.ran = make(chan struct{})
	it.attempts++
	q.running++
	q.wg.Add(1)
	q.broadcastLocked()
	go q.run(ctx, it, it.put)
}

func (q *Queue) run(ctx context.Context, it *item, put PutFn) {
	defer q.wg.Done()
	err := put(ctx)
	q.mu.Lock()
	defer q.mu.Unlock()
	it.cancel()
	it.cancel = nil
	close(it.ran)
	q.running--
	if q.draining[it.id] == it {
		delete(q.draining, it.id)
		if nx := q.items[it.id]; nx != nil && nx.held {
			nx.held = false
			heap.Push(&q.heap, nx)
		}
	}
	live := !q.closed && q.items[it.id] == it
	switch {
	case !live:
	case it.readd:
		it.readd = false
		it.state, it.due, it.attempts, it.err = StateWaiting, it.readdAt, 0, nil
		heap.Push(&q.heap, it)
	case err == nil:
		delete(q.items, it.id)
	case IsLater(err):
		it.attempts--
		it.state, it.err, it.due = StateWaiting, err, q.o.Now()
		heap.Push(&q.heap, it)
	case IsPermanent(err):
		it.state, it.err = StateFailed, err
	default:
		d := q.backoff(it.attempts)
		it.state, it.err, it.due = StateBackoff, err, q.o.Now().Add(d)
		heap.Push(&q.heap, it)
		q.log.Debug("writeback: upload failed, will retry", "id", it.id, "in", d, "err", err)
	}
	q.broadcastLocked()
	q.kickLocked()
}

// backoff is the retry delay after n failed attempts: BackoffBase doubled
// per attempt up to BackoffCap, with "equal jitter" (a random point in the
// upper half).
func (q *Queue) backoff(n int) time.Duration {
	return Backoff(q.o.BackoffBase, q.o.BackoffCap, n, rand.Float64())
}

// Backoff returns the delay after n ≥ 1 failed attempts for a jitter value
// r in [0, 1): d = min(limit, base·2^(n-1)), then d/2 + r·d/2.
func Backoff(base, limit time.Duration, n int, r float64) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + time.Duration(r*float64(d/2))
}

// itemHeap orders items by due time.
type itemHeap []*item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h itemHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *itemHeap) Push(x any) {
	it := x.(*item)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	it.index = -1
	*h = old[:len(old)-1]
	return it
}
