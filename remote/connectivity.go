package remote

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOffline is the kind of a call refused without trying because Synapse
// was unreachable when last tried and has not answered a probe since. An
// *Error of this kind also matches ErrTransient.
var ErrOffline = errors.New("Synapse is unreachable")

// ConnectivityOptions configures a Connectivity. Zero fields take the
// defaults named in their comments.
type ConnectivityOptions struct {
	// Threshold is how many failed attempts in a row (transport failures,
	// 502, 503, 504) make Synapse count as unreachable (default 3). A
	// refused or failed dial counts as unreachable at once.
	Threshold int
	// ProbeBase and ProbeCap bound the wait between probes while offline:
	// ProbeBase doubled per failed probe, capped at ProbeCap, with jitter
	// (defaults 1 s and 30 s).
	ProbeBase, ProbeCap time.Duration
	// ProbeTimeout bounds one probe (default 10 s).
	ProbeTimeout time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// ConnState is a snapshot of what synfs knows about reaching Synapse.
type ConnState struct {
	Online    bool
	Since     time.Time // when Synapse became unreachable (or reachable again); zero before any change
	NextProbe time.Time // offline only: when the next probe is due
	Probes    int       // offline only: probes failed since going offline
	LastErr   string    // offline only: the failure that made it so, or the last probe's
	// TokenRefused, when offline, says why: Synapse answers but refuses the
	// access token (401). Probes then check the token, not just the service.
	TokenRefused bool
}

// Connectivity tracks whether Synapse can be reached. The REST client
// reports each attempt's outcome (Succeeded, Failed); after Threshold
// failures in a row, or one failed dial, it goes offline: Err gives callers a
// ready error so that they fail fast instead of retrying, and Run probes
// Synapse with backoff until it answers. Its methods are safe for concurrent
// use, and a nil *Connectivity is always online.
type Connectivity struct {
	o       ConnectivityOptions
	log     *slog.Logger
	offline atomic.Bool

	mu       sync.Mutex // protects the fields below
	st       ConnState
	failures int           // failed attempts in a row while online
	changed  chan struct{} // closed and replaced on every change of Online
}

// NewConnectivity returns a tracker that starts online.
func NewConnectivity(o ConnectivityOptions) *Connectivity {
	if o.Threshold <= 0 {
		o.Threshold = 3
	}
	if o.ProbeBase <= 0 {
		o.ProbeBase = time.Second
	}
	if o.ProbeCap <= 0 {
		o.ProbeCap = 30 * time.Second
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Connectivity{o: o, log: o.Logger, st: ConnState{Online: true}, changed: make(chan struct{})}
}

// Online reports whether calls should be tried. It is cheap: one atomic load.
func (c *Connectivity) Online() bool { return c == nil || !c.offline.Load() }

// State returns a snapshot for status displays.
func (c *Connectivity) State() ConnState {
	if c == nil {
		return ConnState{Online: true}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Changed returns a channel closed at the next change between online and
// offline. A nil *Connectivity never changes.
func (c *Connectivity) Changed() <-chan struct{} {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Err returns the error of a call op refused because Synapse is
// unreachable: kind ErrOffline (which matches ErrTransient), or
// ErrTokenRefused while Synapse refuses the token, with the failure that
// made it so as the reason.
func (c *Connectivity) Err(op string) error {
	st := c.State()
	reason, kind := "Synapse is unreachable", ErrOffline
	if st.TokenRefused {
		reason, kind = "Synapse refuses the access token", ErrTokenRefused
	}
	if !st.Since.IsZero() {
		reason += " since " + st.Since.Format(time.TimeOnly)
	}
	if st.LastErr != "" {
		reason += " (" + st.LastErr + ")"
	}
	return &Error{Op: op, Reason: reason, Kind: kind}
}

// Succeeded records that Synapse answered a call (any HTTP status other
// than 502, 503 and 504: a 500 is an answer about one request).
func (c *Connectivity) Succeeded() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = 0
	if !c.st.Online {
		c.setLocked(true, "", false)
	}
}

// Refused records that Synapse answered a call with 401: it refuses the
// access token (revoked, expired, or replaced). Calls then fail at once with
// ErrTokenRefused and uploads pause, exactly as while Synapse is unreachable,
// until a probe finds the token accepted again.
func (c *Connectivity) Refused(reason string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.st.Online {
		c.st.LastErr = reason
		if !c.st.TokenRefused {
			c.st.TokenRefused = true
			c.log.Warn("Synapse refuses the access token; staging continues and uploads wait for a valid token", "reason", reason)
		}
		return
	}
	c.setLocked(false, reason, true)
}

// Failed records a failed attempt: reason says why, in the transport's or
// Synapse's words; dial reports a failed dial or name lookup, which makes
// Synapse unreachable at once.
func (c *Connectivity) Failed(reason string, dial bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.st.Online {
		c.st.LastErr = reason
		return
	}
	c.failures++
	if dial || c.failures >= c.o.Threshold {
		c.setLocked(false, reason, false)
	}
}

func (c *Connectivity) setLocked(online bool, reason string, refused bool) {
	now := c.o.Now()
	c.st = ConnState{Online: online, Since: now, LastErr: reason, TokenRefused: refused}
	c.failures = 0
	if !online {
		c.st.NextProbe = now.Add(c.o.ProbeBase)
		if refused {
			c.log.Warn("Synapse refuses the access token; staging continues and uploads wait for a valid token", "reason", reason)
		} else {
			c.log.Warn("Synapse is unreachable; staging continues and uploads wait", "reason", reason)
		}
	} else {
		c.log.Info("Synapse is reachable again; resuming uploads")
	}
	c.offline.Store(!online)
	close(c.changed)
	c.changed = make(chan struct{})
}

// WaitOnline returns when Synapse is reachable, or with ctx's error.
func (c *Connectivity) WaitOnline(ctx context.Context) error {
	for !c.Online() {
		select {
		case <-c.Changed():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Run probes Synapse while it is unreachable, until ctx is done: probe is
// a cheap call that returns nil when Synapse answers. The wait between
// probes grows from ProbeBase to ProbeCap.
func (c *Connectivity) Run(ctx context.Context, probe func(ctx context.Context) error) {
	for ctx.Err() == nil {
		if err := c.WaitOffline(ctx); err != nil {
			return
		}
		c.mu.Lock()
		due := c.st.NextProbe
		ch := c.changed
		c.mu.Unlock()
		t := time.NewTimer(max(0, due.Sub(c.o.Now())))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-ch: // back online through another call
			t.Stop()
			continue
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.o.ProbeTimeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			c.Succeeded()
			continue
		}
		c.mu.Lock()
		if !c.st.Online {
			c.st.Probes++
			c.st.LastErr = err.Error()
			if errors.Is(err, ErrUnauthenticated) {
				// Back, but refusing the token: probes check the token now.
				c.st.TokenRefused = true
			}
			c.st.NextProbe = c.o.Now().Add(c.probeWait(c.st.Probes))
		}
		c.mu.Unlock()
	}
}

// WaitOffline returns when Synapse is unreachable, or with ctx's error.
func (c *Connectivity) WaitOffline(ctx context.Context) error {
	for c.Online() {
		ch := c.Changed()
		if ch == nil {
			<-ctx.Done()
			return ctx.Err()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// probeWait is the wait after n failed probes.
func (c *Connectivity) probeWait(n int) time.Duration {
	d := c.o.ProbeBase
	for i := 0; i < n && d < c.o.ProbeCap; i++ {
		d *= 2
	}
	d = min(d, c.o.ProbeCap)
	return d/2 + time.Duration(rand.Float64()*float64(d/2))
}
