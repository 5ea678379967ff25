package flusher

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

var quiet = slog.New(slog.DiscardHandler)

// fakeClient implements the Upload half of remote.Client in memory.
type fakeClient struct {
	remote.Client // other methods are not used by the flusher

	mu    sync.Mutex
	reqs  []remote.UploadRequest // every Upload call, Source excluded
	files map[string][]byte      // parent/name → bytes
	hook  func(n int, req *remote.UploadRequest) error
}

func newFake() *fakeClient { return &fakeClient{files: map[string][]byte{}} }

func (c *fakeClient) Upload(ctx context.Context, req *remote.UploadRequest) (*remote.Entity, error) {
	c.mu.Lock()
	r := *req
	r.Source, r.Parts = nil, nil
	c.reqs = append(c.reqs, r)
	n := len(c.reqs)
	hook := c.hook
	c.mu.Unlock()
	data, err := io.ReadAll(io.NewSectionReader(req.Source, 0, req.Size))
	if err != nil {
		return nil, err
	}
	if req.Parts != nil {
		req.Parts(1, 1)
	}
	if hook != nil {
		if err := hook(n, req); err != nil {
			return nil, err
		}
	}
	sum := md5.Sum(data)
	if hex.EncodeToString(sum[:]) != req.MD5 {
		return nil, &remote.Error{Op: "upload", Status: 400, Reason: "MD5 mismatch", Kind: remote.ErrInvalid}
	}
	c.mu.Lock()
	c.files[req.ParentID+"/"+req.Name] = data
	c.mu.Unlock()
	return &remote.Entity{ID: "syn99", Name: req.Name, ParentID: req.ParentID, Kind: remote.KindFile, Size: int64(len(data)), MD5: req.MD5}, nil
}

func (c *fakeClient) requests() []remote.UploadRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]remote.UploadRequest(nil), c.reqs...)
}

func (c *fakeClient) file(p string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.files[p]
	return b, ok
}

func memStore(t *testing.T) *cache.Store {
	t.Helper()
	s, err := cache.Open(cache.Options{InMemory: true, Logger: quiet, ChunkSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newFlusher(t *testing.T, s *cache.Store, c remote.Client, o Options) *Flusher {
	t.Helper()
	o.Logger = quiet
	if o.Delay == 0 {
		o.Delay = time.Millisecond
	}
	o.BackoffBase, o.BackoffCap = time.Millisecond, 5*time.Millisecond
	f := New(s, c, o)
	t.Cleanup(f.Close)
	return f
}

func stage(t *testing.T, s *cache.Store, parent, name string, data []byte) uint64 {
	t.Helper()
	rec, err := s.Create(parent, name, "", "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFile(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 {
		if _, err := f.WriteAt(context.Background(), data, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	return rec.Ino
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUploadAndFinish(t *testing.T) {
	s := memStore(t)
	c := newFake()
	var got []cache.Record
	var mu sync.Mutex
	fl := newFlusher(t, s, c, Options{OnUploaded: func(r cache.Record, e *remote.Entity) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}})
	data := bytes.Repeat([]byte("0123456789"), 100)
	ino := stage(t, s, "syn1", "reads.txt", data)
	fl.Enqueue(ino)
	if err := fl.Flush(ctx10s(t), ino); err != nil {
		t.Fatal(err)
	}
	if b, ok := c.file("syn1/reads.txt"); !ok || !bytes.Equal(b, data) {
		t.Fatalf("uploaded bytes differ (found %v)", ok)
	}
	req := c.requests()[0]
	if req.ContentType != "text/plain" || req.PartSize != remote.DefaultPartSize || req.FileName != "reads.txt" || req.Size != 1000 {
		t.Errorf("request = %+v; want text/plain, default part size, reads.txt, 1000 bytes", req)
	}
	if _, err := s.Get(ino); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("record after upload: %v, want ErrNotFound", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].EntityID != "syn99" || got[0].Name != "reads.txt" {
		t.Errorf("OnUploaded calls = %+v; want one for syn99", got)
	}
}

func TestEmptyFile(t *testing.T) {
	s := memStore(t)
	c := newFake()
	fl := newFlusher(t, s, c, Options{})
	ino := stage(t, s, "syn1", "empty", nil)
	fl.EnqueueNow(ino)
	if err := fl.Flush(ctx10s(t), ino); err != nil {
		t.Fatal(err)
	}
	if n := len(c.requests()); n != 0 {
		t.Fatalf("%d uploads of an empty file, want 0", n)
	}
	rec, err := s.Get(ino)
	if err != nil || rec.State != cache.StateEmpty || rec.Err != EmptyReason {
		t.Fatalf("empty file record = %+v, %v; want state empty with the reason", rec, err)
	}
	if p, _ := s.Pending(); len(p) != 0 {
		t.Fatalf("Pending() = %v, want none", p)
	}
	st := fl.Status()
	if len(st) != 1 || st[0].State != "empty" || st[0].Cache != cache.StateEmpty || st[0].Queued {
		t.Fatalf("Status() = %+v; want one empty, unqueued file", st)
	}
}

func TestPermanentFailureKeepsBytes(t *testing.T) {
	s := memStore(t)
	c := newFake()
	c.hook = func(int, *remote.UploadRequest) error {
		return &remote.Error{Op: "POST /entity", Status: 403, Reason: remote.CertifiedOnlyReason, Kind: remote.ErrNotCertified}
	}
	var failed []string
	fl := newFlusher(t, s, c, Options{OnFailed: func(r cache.Record, reason string) {
		failed = append(failed, r.Name+": "+reason) // the queue runs one upload here
	}})
	data := []byte("precious bytes")
	ino := stage(t, s, "syn1", "a", data)
	fl.EnqueueNow(ino)
	err := fl.Flush(ctx10s(t), ino)
	if !errors.Is(err, remote.ErrNotCertified) {
		t.Fatalf("Flush = %v, want ErrNotCertified", err)
	}
	if n := len(c.requests()); n != 1 {
		t.Fatalf("%d upload attempts, want 1 (no retry)", n)
	}
	if len(failed) != 1 || failed[0] != "a: "+NotCertifiedReason {
		t.Errorf("OnFailed calls = %q; want one with the reason", failed)
	}
	rec, _ := s.Get(ino)
	if rec.State != cache.StateFailed || rec.Err != NotCertifiedReason {
		t.Fatalf("record = state %v err %q; want failed with the certification reason", rec.State, rec.Err)
	}
	r, size, _, err := s.Reader(ino)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(io.NewSectionReader(r, 0, size)); !bytes.Equal(b, data) {
		t.Fatalf("bytes after a permanent failure = %q, want %q", b, data)
	}
	st := fl.Status()
	if len(st) != 1 || st[0].Err != NotCertifiedReason || st[0].Attempts != 1 {
		t.Fatalf("Status() = %+v", st)
	}
	// Still pending: a restart retries it.
	if p, _ := s.Pending(); len(p) != 1 {
		t.Fatalf("Pending() = %v, want the failed file", p)
	}
}

func TestTransientRetries(t *testing.T) {
	s := memStore(t)
	c := newFake()
	c.hook = func(n int, _ *remote.UploadRequest) error {
		if n < 3 {
			return &remote.Error{Op: "PUT part", Status: 503, Reason: "busy", Kind: remote.ErrTransient}
		}
		return nil
	}
	fl := newFlusher(t, s, c, Options{})
	ino := stage(t, s, "syn1", "a", []byte("abc"))
	fl.EnqueueNow(ino)
	if err := fl.Flush(ctx10s(t), ino); err != nil {
		t.Fatal(err)
	}
	reqs := c.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	if !sameRequest(reqs[0], reqs[2]) {
		t.Errorf("retry sent a different request: %+v vs %+v", reqs[0], reqs[2])
	}
}

// A 401 that answers a call made before a probe found the token accepted
// again (the connection is online when the upload fails) is retried; the
// file does not fail for good. With the connection refusing the token, it
// waits (TestProveFaults/token-revoked).
func TestUnauthenticatedWhileOnlineRetries(t *testing.T) {
	s := memStore(t)
	c := newFake()
	c.hook = func(n int, _ *remote.UploadRequest) error {
		if n == 1 {
			return &remote.Error{Op: "POST /entity", Status: 401, Reason: "Invalid access token", Kind: remote.ErrUnauthenticated}
		}
		return nil
	}
	fl := newFlusher(t, s, c, Options{Conn: remote.NewConnectivity(remote.ConnectivityOptions{Logger: quiet})})
	ino := stage(t, s, "syn1", "a", []byte("abc"))
	fl.EnqueueNow(ino)
	if err := fl.Flush(ctx10s(t), ino); err != nil {
		t.Fatalf("Flush = %v, want the file uploaded on the retry", err)
	}
	if n := len(c.requests()); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	if _, ok := c.file("syn1/a"); !ok {
		t.Fatal("the file was not uploaded")
	}
}

func TestWriteDuringUploadRequeues(t *testing.T) {
	s := memStore(t)
	c := newFake()
	fl := newFlusher(t, s, c, Options{})
	ino := stage(t, s, "syn1", "a", []byte("first version"))
	c.hook = func(n int, _ *remote.UploadRequest) error {
		if n == 1 { // the bytes were read; now the file changes
			f, err := s.OpenFile(ino)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(context.Background(), []byte("SECOND"), 0); err != nil {
				return err
			}
			return f.Release()
		}
		return nil
	}
	fl.EnqueueNow(ino)
	if err := fl.Flush(ctx10s(t), ino); err != nil {
		t.Fatal(err)
	}
	reqs := c.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d uploads, want 2", len(reqs))
	}
	if b, _ := c.file("syn1/a"); string(b) != "SECONDversion" {
		t.Fatalf("final upload = %q, want %q", b, "SECONDversion")
	}
	if reqs[0].MD5 == reqs[1].MD5 {
		t.Errorf("second upload has the first one's MD5")
	}
	if _, err := s.Get(ino); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("record after final upload: %v, want ErrNotFound", err)
	}
}

func TestRestartResumes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	open := func() *cache.Store {
		s, err := cache.Open(cache.Options{Dir: dir, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	data := bytes.Repeat([]byte("x"), 3000)
	s := open()
	ino := stage(t, s, "syn1", "a.csv", data)
	if err := s.Rename(ino, "syn2", "b.csv", ""); err != nil {
		t.Fatal(err)
	}
	// First run: the upload fails transiently, then the daemon stops.
	c1 := newFake()
	failed := make(chan struct{})
	var once sync.Once
	c1.hook = func(int, *remote.UploadRequest) error {
		once.Do(func() { close(failed) })
		return &remote.Error{Op: "complete", Status: 503, Kind: remote.ErrTransient}
	}
	fl := New(s, c1, Options{Logger: quiet, BackoffBase: time.Hour, BackoffCap: time.Hour})
	if err := fl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-failed
	fl.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Second run: Start finds the file and resumes with the same request.
	s = open()
	defer s.Close()
	c2 := newFake()
	fl = newFlusher(t, s, c2, Options{})
	if err := fl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := fl.Flush(ctx10s(t), 0); err != nil {
		t.Fatal(err)
	}
	if b, ok := c2.file("syn2/b.csv"); !ok || !bytes.Equal(b, data) {
		t.Fatalf("after restart: uploaded %v at syn2/b.csv", ok)
	}
	r1, r2 := c1.requests()[0], c2.requests()[0]
	if !sameRequest(r1, r2) {
		t.Errorf("resumed request differs:\n first %+v\nsecond %+v", r1, r2)
	}
	if !strings.HasSuffix(r2.Name, "b.csv") || r2.ContentType != "text/csv" {
		t.Errorf("request = %+v; want name b.csv, text/csv", r2)
	}
	if p, _ := s.Pending(); len(p) != 0 {
		t.Errorf("Pending() after upload = %v", p)
	}
}

// sameRequest compares what Synapse keys a multipart upload on, and the target.
func sameRequest(a, b remote.UploadRequest) bool {
	return a.ParentID == b.ParentID && a.Name == b.Name && a.Size == b.Size && a.MD5 == b.MD5 &&
		a.FileName == b.FileName && a.PartSize == b.PartSize && a.ContentType == b.ContentType && a.EntityID == b.EntityID
}

// TestBeforeFinishWhileStaged: BeforeFinish sees the entity while the
// staged record is still there (the file system lists the entity before
// the record goes, so that the file never drops out of sight), and
// OnUploaded follows with the same record once it is gone.
func TestBeforeFinishWhileStaged(t *testing.T) {
	s := memStore(t)
	c := newFake()
	var mu sync.Mutex
	var calls []string
	var before, after cache.Record
	fl := newFlusher(t, s, c, Options{
		BeforeFinish: func(r cache.Record, e *remote.Entity) {
			_, err := s.Lookup("syn1", "end.txt")
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, fmt.Sprintf("before %s staged=%v", e.ID, err == nil))
			before = r
		},
		OnUploaded: func(r cache.Record, e *remote.Entity) {
			_, err := s.Lookup("syn1", "end.txt")
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, fmt.Sprintf("uploaded %s staged=%v", e.ID, err == nil))
			after = r
		},
	})
	ino := stage(t, s, "syn1", "end.txt", []byte("the end"))
	fl.EnqueueNow(ino)
	if err := fl.Flush(ctx10s(t), ino); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"before syn99 staged=true", "uploaded syn99 staged=false"}
	if !slices.Equal(calls, want) {
		t.Fatalf("hooks: %q, want %q", calls, want)
	}
	if before.Ino != ino || before.EntityID != "syn99" || before.Size != 7 || before != after {
		t.Errorf("BeforeFinish got %+v, OnUploaded %+v; want the same record of ino %d, syn99, 7 bytes", before, after, ino)
	}
}
