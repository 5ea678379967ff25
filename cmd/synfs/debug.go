package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// startDebugPprof serves Go's runtime profiles (heap, goroutines, allocs,
// CPU) on addr for `go tool pprof http://ADDR/debug/pprof/heap`. It is off
// unless --debug-pprof is given, and listens on loopback only. The profiles
// hold stacks and sizes, never the bytes of files or the token; the
// command-line endpoint is left out all the same.
func startDebugPprof(addr string, log *slog.Logger) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-pprof %s: %v", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--debug-pprof %s: only a loopback address (127.0.0.1:PORT) is allowed", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-pprof: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	log.Info("serving Go runtime profiles at http://" + ln.Addr().String() + "/debug/pprof/")
	return func() { srv.Close() }, nil
}
