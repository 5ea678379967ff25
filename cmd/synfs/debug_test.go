package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

// --debug-pprof serves the heap and goroutine profiles on loopback only,
// and not the command line.
func TestDebugPprof(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "example.org:6060", "6060"} {
		if stop, err := startDebugPprof(addr, log); err == nil {
			stop()
			t.Errorf("--debug-pprof %s accepted, want refused", addr)
		}
	}
	stop, err := startDebugPprof("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	addr := freeAddr(t)
	stop, err = startDebugPprof(addr, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(p string) (int, string) {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/heap?gc=1"); code != http.StatusOK || len(body) == 0 {
		t.Errorf("heap profile: %d, %d bytes", code, len(body))
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "TestDebugPprof") {
		t.Errorf("goroutine profile: %d %.200s", code, body)
	}
	if code, _ := get("/debug/pprof/cmdline"); code == http.StatusOK {
		t.Error("the command line is served")
	}
}

// freeAddr returns a loopback address with a port free just now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
