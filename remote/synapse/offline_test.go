package synapse_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
	"github.com/synfs/synfs/remote/synapse"
)

// With Synapse unreachable, a call fails in well under a second with
// ErrOffline instead of running through its retries (default backoff,
// minutes in all), and Probe brings the client back once Synapse answers.
func TestOfflineFailsFastAndProbeRecovers(t *testing.T) {
	em, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	_, folder, err := em.Seed(demoToken)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused

	conn := remote.NewConnectivity(remote.ConnectivityOptions{ProbeBase: 10 * time.Millisecond, ProbeCap: 50 * time.Millisecond})
	repo, file, auth := synapse.Endpoints("http://" + addr)
	c, err := synapse.New(synapse.Config{RepoEndpoint: repo, FileEndpoint: file, AuthEndpoint: auth,
		Token: demoToken, Connectivity: conn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Children(ctx, folder)
	if d := time.Since(start); d > 100*time.Millisecond || !errors.Is(err, remote.ErrOffline) || !errors.Is(err, remote.ErrTransient) {
		t.Fatalf("got %v after %v, want ErrOffline at once (no retry after a refused dial)", err, d)
	}
	if conn.Online() {
		t.Fatal("online after a refused dial")
	}
	start = time.Now()
	if _, err := c.Get(ctx, folder); !errors.Is(err, remote.ErrOffline) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("got %v after %v while offline, want ErrOffline at once", err, time.Since(start))
	}

	go conn.Run(ctx, c.Probe)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := &http.Server{Handler: em}
	go srv.Serve(ln)
	defer srv.Close()
	if err := conn.WaitOnline(ctx); err != nil {
		t.Fatalf("not online after Synapse came back: %v", err)
	}
	if _, err := c.Children(ctx, folder); err != nil {
		t.Fatalf("children once back: %v", err)
	}
}

// Three 503s in a row (Synapse's maintenance answer) make Synapse
// unreachable; 500s, answers about one request, do not.
func TestUnavailableStormGoesOffline(t *testing.T) {
	e := newEmu(t, emulator.Options{})
	for _, tc := range []struct {
		status  int
		offline bool
	}{{500, false}, {503, true}} {
		remove := e.em.AddFault(emulator.Fault{Route: "*", Status: tc.status})
		conn := remote.NewConnectivity(remote.ConnectivityOptions{})
		repo, file, auth := synapse.Endpoints(e.url)
		c, err := synapse.New(synapse.Config{RepoEndpoint: repo, FileEndpoint: file, AuthEndpoint: auth, Token: demoToken,
			RetryBase: time.Millisecond, RetryCap: 2 * time.Millisecond, MaxRetries: 5, Connectivity: conn})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(context.Background(), e.folder)
		if got := !conn.Online(); got != tc.offline || (tc.offline != errors.Is(err, remote.ErrOffline)) {
			t.Errorf("%d storm: offline %v, err %v; want offline %v", tc.status, got, err, tc.offline)
		}
		remove()
	}
}
