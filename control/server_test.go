package control

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

type fakeHandler struct{ unmounted chan struct{} }

func (h *fakeHandler) Status() Status { return Status{Format: StatusFormat, PID: 7, Files: []File{}} }
func (h *fakeHandler) Retry(path string, all bool) ([]string, error) {
	return []string{"retried " + path}, nil
}
func (h *fakeHandler) Discard(path string) ([]string, error) { return nil, os.ErrNotExist }
func (h *fakeHandler) Unmount() (bool, error) {
	close(h.unmounted)
	time.Sleep(100 * time.Millisecond) // the mount shuts down meanwhile
	return false, nil
}

// Requests are answered, errors come back as errors, the socket is 0600,
// and an unmount is answered even when the server closes at once.
func TestServer(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHandler{unmounted: make(chan struct{})}
	srv, err := Listen(dir, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(SocketPath(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	st, err := GetStatus(dir)
	if err != nil || st.PID != 7 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if r, err := Call(dir, Request{Op: OpRetry, Path: "/a"}); err != nil || r.Files[0] != "retried /a" {
		t.Fatalf("retry: %+v %v", r, err)
	}
	if _, err := Call(dir, Request{Op: OpDiscard, Path: "/a"}); err == nil {
		t.Fatal("discard: no error")
	}
	if _, err := Call(dir, Request{Op: "nope"}); err == nil {
		t.Fatal("unknown op: no error")
	}
	done := make(chan error, 1)
	go func() { _, err := Call(dir, Request{Op: OpUnmount}); done <- err }()
	<-h.unmounted
	start := time.Now()
	srv.Close()
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("Close returned after %v, before the unmount was answered (the process would exit first)", d)
	}
	if err := <-done; err != nil {
		t.Fatalf("unmount answer lost at close: %v", err)
	}
	if _, err := os.Stat(SocketPath(dir)); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
	if _, err := GetStatus(dir); err == nil {
		t.Error("status after Close: no error")
	}
}
