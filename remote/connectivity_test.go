package remote

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestConnectivityThresholdAndDial(t *testing.T) {
	c := NewConnectivity(ConnectivityOptions{Threshold: 3})
	c.Failed("503 Service Unavailable", false)
	c.Failed("503 Service Unavailable", false)
	if !c.Online() {
		t.Fatal("offline after 2 failures, want online until 3")
	}
	c.Succeeded()
	c.Failed("503", false)
	c.Failed("503", false)
	if !c.Online() {
		t.Fatal("a success between failures must reset the count")
	}
	c.Failed("503", false)
	if c.Online() {
		t.Fatal("online after 3 failures in a row, want offline")
	}
	err := c.Err("GET /entity/syn1")
	if !errors.Is(err, ErrOffline) || !errors.Is(err, ErrTransient) {
		t.Fatalf("got %v, want ErrOffline that is also ErrTransient", err)
	}
	c.Succeeded()
	if !c.Online() {
		t.Fatal("offline after an answer, want online")
	}
	c.Failed("dial tcp: connection refused", true)
	if st := c.State(); st.Online || st.LastErr != "dial tcp: connection refused" {
		t.Fatalf("got %+v after a failed dial, want offline at once with its reason", st)
	}
	var nilConn *Connectivity
	if !nilConn.Online() || nilConn.State().Online != true {
		t.Fatal("a nil Connectivity must be online")
	}
}

func TestConnectivityProbesWithBackoff(t *testing.T) {
	c := NewConnectivity(ConnectivityOptions{ProbeBase: 5 * time.Millisecond, ProbeCap: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var probes atomic.Int32
	var up atomic.Bool
	go c.Run(ctx, func(context.Context) error {
		probes.Add(1)
		if up.Load() {
			return nil
		}
		return errors.New("connection refused")
	})
	changed := c.Changed()
	c.Failed("connection refused", true)
	<-changed
	deadline := time.Now().Add(5 * time.Second)
	for probes.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no probes while offline")
		}
		time.Sleep(time.Millisecond)
	}
	if st := c.State(); st.Online || st.Probes < 2 || !st.NextProbe.After(st.Since) {
		t.Fatalf("got %+v, want offline with failed probes and a next probe", st)
	}
	up.Store(true)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := c.WaitOnline(wctx); err != nil {
		t.Fatalf("not back online after the probe succeeded: %v", err)
	}
	n := probes.Load()
	time.Sleep(30 * time.Millisecond)
	if probes.Load() != n {
		t.Fatal("probing went on while online")
	}
}

// A 401 pauses like an outage, with its own kind: calls refused meanwhile
// are unauthenticated (EACCES to a syscall) and transient (uploads wait); an
// outage noticed first turns into a refusal when a probe meets a 401.
func TestConnectivityTokenRefused(t *testing.T) {
	c := NewConnectivity(ConnectivityOptions{})
	c.Refused("401 Invalid access token")
	st := c.State()
	if st.Online || !st.TokenRefused || st.LastErr != "401 Invalid access token" {
		t.Fatalf("after a 401: %+v, want offline with the token refused", st)
	}
	err := c.Err("POST /entity")
	for _, kind := range []error{ErrTokenRefused, ErrUnauthenticated, ErrOffline, ErrTransient} {
		if !errors.Is(err, kind) {
			t.Errorf("%v does not match %v", err, kind)
		}
	}
	if errors.Is(err, ErrPermission) || errors.Is(&Error{Kind: ErrUnauthenticated}, ErrTransient) {
		t.Error("kinds match too much")
	}
	c.Succeeded()
	if st := c.State(); !st.Online || st.TokenRefused {
		t.Fatalf("after an accepted call: %+v", st)
	}

	c.Failed("dial tcp: connection refused", true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var accepted atomic.Bool
	refused := &Error{Op: "GET /version", Status: 401, Reason: "Invalid access token", Kind: ErrUnauthenticated}
	c.o.ProbeBase, c.o.ProbeCap = time.Millisecond, 2*time.Millisecond
	c.mu.Lock()
	c.st.NextProbe = time.Now()
	c.mu.Unlock()
	go c.Run(ctx, func(context.Context) error {
		if accepted.Load() {
			return nil
		}
		return refused
	})
	deadline := time.Now().Add(5 * time.Second)
	for !c.State().TokenRefused {
		if time.Now().After(deadline) {
			t.Fatal("a probe's 401 did not turn the outage into a refused token")
		}
		time.Sleep(time.Millisecond)
	}
	accepted.Store(true)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := c.WaitOnline(wctx); err != nil || c.State().TokenRefused {
		t.Fatalf("not back online after the token was accepted: %v %+v", err, c.State())
	}
}
