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
