package control

import (
	"runtime"
	"testing"
)

// ReadProcess sees the goroutines and the live heap of the process.
func TestReadProcess(t *testing.T) {
	stop := make(chan struct{})
	for range 10 {
		go func() { <-stop }()
	}
	keep := make([]byte, 8<<20)
	runtime.GC()
	p := ReadProcess()
	close(stop)
	if p.Goroutines < 11 {
		t.Errorf("%d goroutines, want at least 11", p.Goroutines)
	}
	if p.HeapLive < 8<<20 || p.HeapHeld < p.HeapLive || p.GoTotal < p.HeapHeld || p.GCs == 0 || p.Stacks == 0 {
		t.Errorf("got %+v, want 8 MiB live at least, held ≥ live, total ≥ held, a GC and stacks", p)
	}
	runtime.KeepAlive(keep)
}
