package synapse

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/remotetest"
)

const testToken = "tok-SECRET-0123456789"

// env is a fake with one certified user and a project it owns.
type env struct {
	f       *fake
	c       *Client
	user    string
	project string
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	f := newFake(t)
	uid := f.addUser(testToken, "alice", true)
	return &env{f: f, c: f.client(t, testToken, mod), user: uid, project: f.addProject("proj", uid)}
}

func sum(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// hijackClose drops the connection without an answer.
func hijackClose(t testing.TB, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("response writer cannot hijack")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// failFirst answers the first n requests matching method and path suffix
// with fail; the rest pass through.
func failFirst(e *env, n int32, method, suffix string, fail func(w http.ResponseWriter)) *atomic.Int32 {
	var seen atomic.Int32
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != method || !strings.HasSuffix(r.URL.Path, suffix) {
			return false
		}
		if seen.Add(1) <= n {
			fail(w)
			return true
		}
		return false
	})
	return &seen
}

func TestEndpoints(t *testing.T) {
	for _, base := range []string{"http://127.0.0.1:8080", "http://127.0.0.1:8080/"} {
		r, f, a := Endpoints(base)
		if r != "http://127.0.0.1:8080/repo/v1" || f != "http://127.0.0.1:8080/file/v1" || a != "http://127.0.0.1:8080/auth/v1" {
			t.Errorf("Endpoints(%q): got %q %q %q, want .../repo/v1, .../file/v1, .../auth/v1", base, r, f, a)
		}
	}
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.repo != DefaultRepoEndpoint || c.file != DefaultFileEndpoint || c.auth != DefaultAuthEndpoint {
		t.Errorf("default endpoints: got %q %q %q", c.repo, c.file, c.auth)
	}
	if _, err := New(Config{RepoEndpoint: "ftp://x"}); err == nil {
		t.Error("New with an ftp endpoint: got nil error, want one")
	}
}

func TestRetryThenSuccess(t *testing.T) {
	cases := []struct {
		name string
		fail func(t *testing.T) func(w http.ResponseWriter)
	}{
		{"503", func(*testing.T) func(w http.ResponseWriter) {
			return func(w http.ResponseWriter) { writeReason(w, 503, "down") }
		}},
		{"429 with Retry-After", func(*testing.T) func(w http.ResponseWriter) {
			return func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "0")
				writeReason(w, 429, "Too many concurrent requests. Allowed 3 concurrent connections at any time.")
			}
		}},
		{"dropped connection", func(t *testing.T) func(w http.ResponseWriter) {
			return func(w http.ResponseWriter) { hijackClose(t, w) }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			seen := failFirst(e, 2, "GET", "/userProfile", tc.fail(t))
			u, err := e.c.Me(context.Background())
			if err != nil {
				t.Fatalf("Me: %v", err)
			}
			if u.ID != e.user || !u.Certified {
				t.Errorf("Me: got %+v, want ID %s certified", u, e.user)
			}
			if got := seen.Load(); got != 3 {
				t.Errorf("userProfile requests: got %d, want 3", got)
			}
		})
	}
}

func TestRetryGivesUp(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRetries = 2 })
	seen := failFirst(e, 1000, "GET", "/userProfile", func(w http.ResponseWriter) { writeReason(w, 502, "bad gateway") })
	_, err := e.c.Me(context.Background())
	if !errors.Is(err, remote.ErrTransient) {
		t.Errorf("Me: got %v, want ErrTransient", err)
	}
	var re *remote.Error
	if !errors.As(err, &re) || re.Status != 502 || re.Reason != "bad gateway" {
		t.Errorf("error: got %#v, want a *remote.Error with status 502 and reason %q", err, "bad gateway")
	}
	if got := seen.Load(); got != 3 {
		t.Errorf("requests: got %d, want 3 (1 + MaxRetries)", got)
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	cases := []struct {
		status int
		reason string
		kind   error
	}{
		{400, "bad", remote.ErrInvalid},
		{401, "Invalid access token", remote.ErrUnauthenticated},
		{403, "You lack READ access to the requested entity.", remote.ErrPermission},
		{404, "Resource: 'syn1' does not exist", remote.ErrNotFound},
		{409, "An entity with the name: x already exists with a parentId: syn1", remote.ErrExist},
		{412, "Object: syn1 was updated since you last fetched it", remote.ErrStale},
		{413, "too big", remote.ErrTooLarge},
	}
	for _, tc := range cases {
		e := newEnv(t, nil)
		seen := failFirst(e, 1000, "GET", "/entity/syn1", func(w http.ResponseWriter) { writeReason(w, tc.status, tc.reason) })
		_, err := e.c.GetEntity(context.Background(), "syn1")
		if !errors.Is(err, tc.kind) {
			t.Errorf("status %d: got %v, want %v", tc.status, err, tc.kind)
		}
		var re *remote.Error
		if !errors.As(err, &re) || re.Status != tc.status || re.Reason != tc.reason {
			t.Errorf("status %d: got %#v, want status and reason %q", tc.status, err, tc.reason)
		}
		if got := seen.Load(); got != 1 {
			t.Errorf("status %d: requests got %d, want 1", tc.status, got)
		}
	}
}

func TestCertifiedOnly(t *testing.T) {
	e := newEnv(t, nil)
	uid := e.f.addUser("tok-uncertified", "bob", false)
	p := e.f.addProject("bobs", uid)
	c := e.f.client(t, "tok-uncertified", nil)
	_, err := c.CreateFolder(context.Background(), p, "x")
	if !errors.Is(err, remote.ErrNotCertified) || !errors.Is(err, remote.ErrPermission) {
		t.Errorf("CreateFolder as uncertified: got %v, want ErrNotCertified and ErrPermission", err)
	}
	u, err := c.Me(context.Background())
	if err != nil || u.Certified {
		t.Errorf("Me as uncertified: got %+v, %v, want not certified", u, err)
	}
}

func TestCreateFolderLostAnswer(t *testing.T) {
	for _, applied := range []bool{true, false} {
		e := newEnv(t, nil)
		var posts atomic.Int32
		e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != "POST" || !strings.HasSuffix(r.URL.Path, "/repo/v1/entity") || posts.Add(1) > 1 {
				return false
			}
			if applied {
				// Act on the request, then lose the answer.
				e.f.serve(discardWriter{}, r)
			}
			hijackClose(t, w)
			return true
		})
		f, err := e.c.CreateFolder(context.Background(), e.project, "once")
		if err != nil {
			t.Fatalf("applied=%v: CreateFolder: %v", applied, err)
		}
		kids, err := e.c.Children(context.Background(), e.project)
		if err != nil {
			t.Fatal(err)
		}
		if len(kids) != 1 || kids[0].ID != f.ID {
			t.Errorf("applied=%v: children got %v, want exactly %s", applied, kids, f.ID)
		}
		if got := e.f.count("POST /entity/child"); got < 1 {
			t.Errorf("applied=%v: lookups got %d, want at least 1", applied, got)
		}
		wantPosts := int32(1)
		if !applied {
			wantPosts = 2
		}
		if got := posts.Load(); got != wantPosts {
			t.Errorf("applied=%v: POST /entity got %d, want %d", applied, got, wantPosts)
		}
	}
}

// A create whose answer is lost and which lands only after the lookup that
// followed (it was still on its way): the retry meets 409, and the folder
// found is the one this call created, not a clash.
func TestCreateFolderLateLostCreate(t *testing.T) {
	e := newEnv(t, nil)
	var posts atomic.Int32
	var first *http.Request
	var firstBody []byte
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "POST" || !strings.HasSuffix(r.URL.Path, "/repo/v1/entity") {
			return false
		}
		switch posts.Add(1) {
		case 1: // lost, not yet applied
			firstBody, _ = io.ReadAll(r.Body)
			first = r
			hijackClose(t, w)
			return true
		case 2: // the first lands now, just before the retry
			late := first.Clone(context.Background())
			late.Body = io.NopCloser(bytes.NewReader(firstBody))
			e.f.serve(discardWriter{}, late)
		}
		return false
	})
	f, err := e.c.CreateFolder(context.Background(), e.project, "late")
	if err != nil || f == nil {
		t.Fatalf("CreateFolder: %v, %v; want the folder the lost create made", f, err)
	}
	if got := posts.Load(); got != 2 {
		t.Errorf("POST /entity got %d, want 2", got)
	}
}

// discardWriter is a ResponseWriter that drops the answer.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

func TestCreateFolderExists(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a, err := e.c.CreateFolder(ctx, e.project, "d")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.c.CreateFolder(ctx, e.project, "d")
	if !errors.Is(err, remote.ErrExist) || b == nil || b.ID != a.ID {
		t.Errorf("second CreateFolder: got %v, %v, want %s with ErrExist", b, err, a.ID)
	}
}

func TestUploadLostEntityAnswer(t *testing.T) {
	e := newEnv(t, nil)
	var posts atomic.Int32
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "POST" || !strings.HasSuffix(r.URL.Path, "/repo/v1/entity") || posts.Add(1) > 1 {
			return false
		}
		e.f.serve(discardWriter{}, r)
		hijackClose(t, w)
		return true
	})
	data := []byte("hello, exactly once\n")
	got, err := e.c.Upload(context.Background(), &remote.UploadRequest{ParentID: e.project, Name: "a.txt", Size: int64(len(data)), MD5: sum(data), Source: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got.Version != 1 || got.Size != int64(len(data)) || got.MD5 != sum(data) {
		t.Errorf("Upload: got version %d size %d md5 %s, want 1 %d %s", got.Version, got.Size, got.MD5, len(data), sum(data))
	}
	kids, _ := e.c.Children(context.Background(), e.project)
	if len(kids) != 1 || posts.Load() != 1 {
		t.Errorf("got %d children after %d POSTs, want 1 and 1", len(kids), posts.Load())
	}
}

// waitFor returns a gate that holds each caller until n callers are inside
// it at once, or until limit has passed for that caller.
func waitFor(n int, limit time.Duration) func() {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	inside := 0
	return func() {
		mu.Lock()
		defer mu.Unlock()
		inside++
		cond.Broadcast()
		timedOut := false
		timer := time.AfterFunc(limit, func() {
			mu.Lock()
			timedOut = true
			cond.Broadcast()
			mu.Unlock()
		})
		for inside < n && !timedOut {
			cond.Wait()
		}
		timer.Stop()
		inside--
	}
}

func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConcurrent = 3 })
	// Each REST request waits until 3 are in flight (or a second passes),
	// so the maximum shows whether the limiter lets more through.
	gate := waitFor(3, 300*time.Millisecond)
	e.f.restGate.Store(&gate)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := e.c.UserProfile(context.Background()); err != nil {
				t.Errorf("UserProfile: %v", err)
			}
		})
	}
	wg.Wait()
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	if e.f.restMax != 3 {
		t.Errorf("max REST calls in flight: got %d, want 3", e.f.restMax)
	}
}

// upload is a helper for tests that upload a pattern.
func uploadPattern(t *testing.T, c *Client, parent, name string, p remotetest.Pattern, mod func(*remote.UploadRequest)) (*remote.Entity, error) {
	t.Helper()
	req := &remote.UploadRequest{ParentID: parent, Name: name, Size: p.Size, MD5: p.MD5(), Source: p, PartSize: remote.MinPartSize}
	if mod != nil {
		mod(req)
	}
	return c.Upload(context.Background(), req)
}

func TestPresignedNotLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConcurrent = 1; c.PartConcurrency = 4 })
	gate := waitFor(4, 2*time.Second)
	e.f.s3Gate.Store(&gate)
	p := remotetest.Pattern{Seed: 1, Size: 4 * remote.MinPartSize}
	got, err := uploadPattern(t, e.c, e.project, "par.bin", p, nil)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got.Size != p.Size {
		t.Errorf("size: got %d, want %d", got.Size, p.Size)
	}
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	if e.f.s3Max != 4 || e.f.restMax != 1 {
		t.Errorf("in flight: got %d part PUTs and %d REST calls at most, want 4 and 1", e.f.s3Max, e.f.restMax)
	}
	if e.f.authLeaked {
		t.Error("a presigned PUT carried an Authorization header")
	}
}

func TestUploadResume(t *testing.T) {
	e := newEnv(t, nil)
	p := remotetest.Pattern{Seed: 7, Size: 4*remote.MinPartSize - 100}
	data := p.Bytes()
	// Parts 1 and 3 are already added: the fake's upload starts with their
	// bytes in place and partsState "1010".
	e.f.preset["resume.bin"] = "1010"
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/file/multipart") {
			e.f.serve(w, r)
			e.f.mu.Lock()
			for _, up := range e.f.uploads {
				if up.req.FileName == "resume.bin" && len(up.parts) == 0 {
					up.parts[1] = data[:remote.MinPartSize]
					up.parts[3] = data[2*remote.MinPartSize : 3*remote.MinPartSize]
				}
			}
			e.f.mu.Unlock()
			return true
		}
		return false
	})
	var parts []int
	var pmu sync.Mutex
	got, err := uploadPattern(t, e.c, e.project, "resume.bin", p, func(r *remote.UploadRequest) {
		r.Parts = func(n, of int) {
			pmu.Lock()
			parts = append(parts, n)
			pmu.Unlock()
			if of != 4 {
				t.Errorf("Parts: got of=%d, want 4", of)
			}
		}
	})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	e.f.mu.Lock()
	puts := slices.Clone(e.f.partPuts)
	e.f.mu.Unlock()
	slices.Sort(puts)
	slices.Sort(parts)
	if !slices.Equal(puts, []int64{2, 4}) || !slices.Equal(parts, []int{2, 4}) {
		t.Errorf("parts PUT %v and reported %v, want [2 4] and [2 4]", puts, parts)
	}
	if got.MD5 != p.MD5() || got.Size != p.Size {
		t.Errorf("result: got %d bytes %s, want %d %s", got.Size, got.MD5, p.Size, p.MD5())
	}
	r, err := e.c.Open(context.Background(), got, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(b, data) {
		t.Errorf("read back %d bytes, want the %d uploaded", len(b), len(data))
	}
}

func TestUploadRepeatIsExactlyOnce(t *testing.T) {
	e := newEnv(t, nil)
	p := remotetest.Pattern{Seed: 9, Size: 1000}
	a, err := uploadPattern(t, e.c, e.project, "x.bin", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	starts := e.f.count("POST /file/multipart")
	b, err := uploadPattern(t, e.c, e.project, "x.bin", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != a.ID || b.Version != 1 || b.Etag != a.Etag {
		t.Errorf("repeat: got %s v%d %s, want %s v1 %s", b.ID, b.Version, b.Etag, a.ID, a.Etag)
	}
	if got := e.f.count("POST /file/multipart"); got != starts {
		t.Errorf("multipart starts after a repeat: got %d, want %d", got, starts)
	}
	c, err := uploadPattern(t, e.c, e.project, "x.bin", remotetest.Pattern{Seed: 10, Size: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != a.ID || c.Version != 2 {
		t.Errorf("new content: got %s v%d, want %s v2", c.ID, c.Version, a.ID)
	}
	// A lost PUT answer: the update applies, the retry meets 412 and finds
	// the handle already attached.
	var puts atomic.Int32
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "PUT" || !strings.Contains(r.URL.Path, "/repo/v1/entity/syn") || puts.Add(1) > 1 {
			return false
		}
		e.f.serve(discardWriter{}, r)
		hijackClose(t, w)
		return true
	})
	d, err := uploadPattern(t, e.c, e.project, "x.bin", remotetest.Pattern{Seed: 11, Size: 1000}, nil)
	if err != nil {
		t.Fatalf("Upload with a lost PUT answer: %v", err)
	}
	if d.Version != 3 {
		t.Errorf("after a lost PUT answer: got version %d, want 3", d.Version)
	}
}

func TestUploadAddFailedAndExpiredURL(t *testing.T) {
	e := newEnv(t, nil)
	var adds, s3 atomic.Int32
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.Contains(r.URL.Path, "/add/1") && adds.Add(1) == 1:
			writeJSON(w, 201, AddPartResponse{PartNumber: 1, AddPartState: AddFailed, ErrorMessage: "The provided MD5 does not match"})
			return true
		case strings.HasPrefix(r.URL.Path, "/s3/") && s3.Add(1) == 1:
			http.Error(w, "Request has expired", 403)
			return true
		}
		return false
	})
	p := remotetest.Pattern{Seed: 3, Size: 100}
	got, err := uploadPattern(t, e.c, e.project, "f.bin", p, nil)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got.MD5 != p.MD5() {
		t.Errorf("MD5: got %s, want %s", got.MD5, p.MD5())
	}
	if n := e.f.count("POST /file/multipart/{id}/presigned/url/batch"); n != 2 {
		t.Errorf("URL batches: got %d, want 2 (one refresh after 403)", n)
	}
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	if len(e.f.partPuts) != 2 {
		t.Errorf("part PUTs stored: got %d, want 2 (again after ADD_FAILED)", len(e.f.partPuts))
	}
}

func TestUploadValidation(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	cases := []*remote.UploadRequest{
		{ParentID: e.project, Name: "empty", Size: 0, MD5: sum(nil), Source: bytes.NewReader(nil)},
		{ParentID: e.project, Name: "bad/name", Size: 1, MD5: sum([]byte("x")), Source: strings.NewReader("x")},
		{ParentID: e.project, Name: "badmd5", Size: 1, MD5: "xyz", Source: strings.NewReader("x")},
		{ParentID: e.project, Name: "small parts", Size: 1, MD5: sum([]byte("x")), Source: strings.NewReader("x"), PartSize: 1024},
		{ParentID: e.project, Name: "nosource", Size: 1, MD5: sum([]byte("x"))},
	}
	for _, req := range cases {
		if _, err := e.c.Upload(ctx, req); !errors.Is(err, remote.ErrInvalid) {
			t.Errorf("Upload(%q): got %v, want ErrInvalid", req.Name, err)
		}
	}
	_, err := e.c.Upload(ctx, cases[0])
	if err == nil || !strings.Contains(err.Error(), "File size must be at least one byte") {
		t.Errorf("empty upload message: got %v, want Synapse's message", err)
	}
	if n := e.f.count("POST /file/multipart"); n != 0 {
		t.Errorf("multipart starts for invalid uploads: got %d, want 0", n)
	}
}

func TestOpenRanges(t *testing.T) {
	e := newEnv(t, nil)
	p := remotetest.Pattern{Seed: 5, Size: 3000}
	data := p.Bytes()
	f, err := uploadPattern(t, e.c, e.project, "r.bin", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Break the first download mid-stream: the reader reconnects.
	var gets atomic.Int32
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/s3get/") || gets.Add(1) != 1 {
			return false
		}
		w.Header().Set("Content-Length", "3000")
		w.WriteHeader(200)
		w.Write(data[:1000])
		return true
	})
	cases := [][2]int64{{0, -1}, {0, 1}, {2999, 1}, {1000, 500}, {2500, -1}, {2990, 100}, {3000, 10}, {5, 0}}
	for _, c := range cases {
		want := data[min(c[0], 3000):]
		if c[1] >= 0 {
			want = data[min(c[0], 3000):min(c[0]+c[1], 3000)]
		}
		r, err := e.c.Open(context.Background(), &remote.Entity{ID: f.ID}, c[0], c[1])
		if err != nil {
			t.Fatalf("Open(%d, %d): %v", c[0], c[1], err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Open(%d, %d): got %d bytes, %v, want %d bytes", c[0], c[1], len(got), err, len(want))
		}
	}
	if gets.Load() < 2 {
		t.Errorf("ranged GETs: got %d, want a reconnect", gets.Load())
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(c *Config) {
		c.MaxRetries = 1
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	// The server echoes the Authorization header everywhere it can.
	echo := func(w http.ResponseWriter, r *http.Request, status int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"reason":"bad `+r.Header.Get("Authorization")+`"}`)
	}
	var errs []error
	record := func(err error) {
		if err == nil {
			t.Error("a forced failure returned nil")
			return
		}
		errs = append(errs, err)
	}
	for _, status := range []int{400, 401, 403, 404, 409, 412, 413, 429, 500, 503} {
		e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool { echo(w, r, status); return true })
		_, err := e.c.Me(ctx)
		record(err)
	}
	// Non-JSON and garbage bodies.
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(500)
		io.WriteString(w, "<html>"+r.Header.Get("Authorization")+"</html>")
		return true
	})
	_, err := e.c.Get(ctx, "syn1")
	record(err)
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(200)
		io.WriteString(w, `{"id": `+r.Header.Get("Authorization"))
		return true
	})
	_, err = e.c.Get(ctx, "syn1")
	record(err)
	// Upload paths: ADD_FAILED echoing the token, then a part PUT refused.
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/add/") {
			writeJSON(w, 201, AddPartResponse{AddPartState: AddFailed, ErrorMessage: "no " + r.Header.Get("Authorization")})
			return true
		}
		return false
	})
	_, err = uploadPattern(t, e.c, e.project, "leak.bin", remotetest.Pattern{Size: 10}, nil)
	record(err)
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/s3") {
			http.Error(w, "denied "+testToken, 400)
			return true
		}
		return false
	})
	f, err := uploadPattern(t, e.c, e.project, "leak2.bin", remotetest.Pattern{Size: 10}, nil)
	record(err)
	e.f.setHook(nil)
	if f, err = uploadPattern(t, e.c, e.project, "leak3.bin", remotetest.Pattern{Size: 10}, nil); err != nil {
		t.Fatal(err)
	}
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/s3get") {
			http.Error(w, "denied "+testToken, 404)
			return true
		}
		return false
	})
	_, err = e.c.Open(ctx, f, 0, -1)
	record(err)
	// Transport failure: the server is gone.
	e.f.srv.Close()
	_, err = e.c.Me(ctx)
	record(err)
	_, err = e.c.CreateFolder(ctx, e.project, "gone")
	record(err)
	for _, err := range errs {
		var re *remote.Error
		if !errors.As(err, &re) {
			t.Errorf("got %T %v, want a *remote.Error", err, err)
		}
		if strings.Contains(err.Error(), testToken) || strings.Contains(fmtAll(err), testToken) {
			t.Errorf("error %q contains the token", err)
		}
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("logs contain the token:\n%s", logs.String())
	}
	if len(errs) < 16 {
		t.Errorf("forced failures: got %d, want 16", len(errs))
	}
}

// fmtAll renders every field of an error.
func fmtAll(err error) string {
	var re *remote.Error
	if errors.As(err, &re) {
		return re.Op + " " + re.Reason
	}
	return err.Error()
}

func TestCancel(t *testing.T) {
	e := newEnv(t, nil)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-block:
		case <-r.Context().Done():
		}
		writeReason(w, 503, "late")
		return true
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := e.c.Me(ctx); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Me after cancel: got %v, want context.Canceled", err)
	}
}

func TestChildrenPagingAndMove(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for i := range 120 {
		if _, err := e.c.CreateFolder(ctx, e.project, fmt.Sprintf("f%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	kids, err := e.c.Children(ctx, e.project)
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 120 || kids[0].Name != "f000" || kids[119].Name != "f119" {
		t.Fatalf("Children: got %d entries, want 120 sorted", len(kids))
	}
	if n := e.f.count("POST /entity/children"); n != 3 {
		t.Errorf("pages fetched: got %d, want 3", n)
	}
	// A 412 race on Move: another writer changes the etag once.
	var raced atomic.Bool
	e.f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "PUT" && strings.Contains(r.URL.Path, "/entity/") && !raced.Swap(true) {
			writeReason(w, 412, "Object was updated since you last fetched it")
			return true
		}
		return false
	})
	m, err := e.c.Move(ctx, kids[0].ID, "", "renamed")
	if err != nil || m.Name != "renamed" {
		t.Errorf("Move after a 412: got %v, %v, want renamed", m, err)
	}
	_, err = e.c.Move(ctx, kids[1].ID, "", "renamed")
	if !errors.Is(err, remote.ErrExist) {
		t.Errorf("Move onto a taken name: got %v, want ErrExist", err)
	}
}

func TestConformance(t *testing.T) {
	f := newFake(t)
	uid := f.addUser(testToken, "alice", true)
	unc := f.addUser("tok-unc", "bob", false)
	f.addUser("tok-stranger", "eve", true)
	proj := f.addProject("conformance", uid, unc)
	remotetest.Run(t, remotetest.Env{
		Client:      f.client(t, testToken, nil),
		Parent:      proj,
		Uncertified: f.client(t, "tok-unc", nil),
		NoAccess:    f.client(t, "tok-stranger", nil),
		BadToken:    f.client(t, "tok-bad", nil),
	})
}

// TestLive runs the conformance suite against real Synapse when
// SYNFS_TEST_TOKEN and SYNFS_TEST_PARENT are set.
func TestLive(t *testing.T) {
	env := remotetest.Live(t, func(token string) remote.Client {
		c, err := New(Config{Token: token})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return c
	})
	remotetest.Run(t, env)
}

// BenchmarkUploadFake measures uploads of 32 MiB to the in-test fake.
func BenchmarkUploadFake(b *testing.B) {
	f := newFake(b)
	uid := f.addUser(testToken, "alice", true)
	remotetest.BenchUpload(b, f.client(b, testToken, nil), f.addProject("bench", uid), 32<<20)
}
