package emulator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestThrottleConcurrent(t *testing.T) {
	e := newEnv(t, Options{Throttle: true})
	e.s.AddFault(Fault{Route: "GET /repo/v1/entity/{id}", Stall: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/repo/v1/entity/"+e.folder, nil)
			req.Header.Set("Authorization", "Bearer "+e.alice)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}()
	}
	waitFor(t, "3 requests in flight", func() bool {
		e.s.tmu.Lock()
		defer e.s.tmu.Unlock()
		return e.s.inflight[e.aliceID] == 3
	})
	r := e.do(e.alice, "GET", "/repo/v1/userProfile", nil)
	want(t, r, http.StatusTooManyRequests, "Too many concurrent requests. Allowed 3 concurrent connections at any time.")
	if r.header.Get("Retry-After") != "" {
		t.Errorf("Retry-After: got %q, want none", r.header.Get("Retry-After"))
	}
	// Other users and presigned transfers are not affected.
	want(t, e.do(e.bob, "GET", "/repo/v1/userProfile", nil), http.StatusOK, "")
	cancel()
	wg.Wait()
	waitFor(t, "slots released", func() bool {
		e.s.tmu.Lock()
		defer e.s.tmu.Unlock()
		return e.s.inflight[e.aliceID] == 0
	})
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile", nil), http.StatusOK, "")
	if got := e.s.Stats().Throttled; got != 1 {
		t.Errorf("Throttled: got %d, want 1", got)
	}
}

func TestThrottleRate(t *testing.T) {
	e := newEnv(t, Options{RatePerMinute: 2})
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile", nil), http.StatusOK, "")
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile", nil), http.StatusOK, "")
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile", nil), http.StatusTooManyRequests, "Requests are too frequent. Allowed 2 requests every 60 seconds.")
	want(t, e.do("", "GET", "/repo/v1/userProfile", nil), http.StatusOK, "") // anonymous is not throttled
	e.clock.Advance(61 * time.Second)
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile", nil), http.StatusOK, "")
}

func TestRequestsAndStats(t *testing.T) {
	e := newEnv(t, Options{RequestLogSize: 3})
	e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder, nil)
	e.do(e.bob, "GET", "/repo/v1/entity/"+e.folder, nil)
	e.do("", "GET", "/repo/v1", nil)
	e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, e.folder, "x"))
	recs := e.s.Requests()
	if len(recs) != 3 {
		t.Fatalf("records: got %d, want 3 (the ring size)", len(recs))
	}
	if recs[0].User != "bob" || recs[0].Status != 403 || recs[0].Route != "GET /repo/v1/entity/{id}" || recs[0].Path != "/repo/v1/entity/"+e.folder {
		t.Errorf("oldest record: got %+v", recs[0])
	}
	if recs[2].Route != "POST /repo/v1/entity" || recs[2].Status != 201 || recs[2].User != "alice" {
		t.Errorf("newest record: got %+v", recs[2])
	}
	st := e.s.Stats()
	if st.Requests["GET /repo/v1/entity/{id}"] != 2 || st.EntityCreates["folder"] != 2 || st.EntityCreates["project"] != 1 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	s1, err := New(Options{DataDir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	project, folder, err := s1.Seed("demo-token")
	if err != nil {
		t.Fatal(err)
	}
	e1 := &env{t: t, s: s1, client: http.DefaultClient}
	ts1 := newTestServer(t, s1)
	e1.ts = ts1
	data := bytes.Repeat([]byte("p"), 6<<20)
	st := e1.startUpload("demo-token", "p.bin", int64(len(data)), 5<<20, md5hex(data), "").json(t)
	id := st["uploadId"].(string)
	urls := e1.presignedURLs("demo-token", id, 1, 2)
	want(t, e1.putPart(urls[1], data[:5<<20]), http.StatusOK, "")
	e1.addPart("demo-token", id, 1, md5hex(data[:5<<20]))
	ts1.Close()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := New(Options{DataDir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	p2, f2, err := s2.Seed("demo-token")
	if err != nil || p2 != project || f2 != folder {
		t.Fatalf("Seed after restart: got %s %s %v, want %s %s", p2, f2, err, project, folder)
	}
	e2 := &env{t: t, s: s2, client: http.DefaultClient, ts: newTestServer(t, s2)}
	want(t, e2.do("demo-token", "GET", "/repo/v1/entity/"+folder, nil), http.StatusOK, "")
	again := e2.startUpload("demo-token", "p.bin", int64(len(data)), 5<<20, md5hex(data), "").json(t)
	if again["uploadId"] != id || again["partsState"] != "10" {
		t.Fatalf("resume after restart: got %v, want upload %s with partsState 10", again, id)
	}
	// The old URL is still signed correctly (the secret persists; the
	// test server's address changed, so rewrite the host).
	u2 := strings.Replace(urls[2], ts1.URL, e2.ts.URL, 1)
	want(t, e2.putPart(u2, data[5<<20:]), http.StatusOK, "")
	e2.addPart("demo-token", id, 2, md5hex(data[5<<20:]))
	fh := e2.do("demo-token", "PUT", "/file/v1/file/multipart/"+id+"/complete", nil).json(t)["resultFileHandleId"].(string)
	e2.create("demo-token", kindFile, folder, "p.bin", map[string]any{"dataFileHandleId": fh})
	b, err := s2.FileBytes(fh)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("FileBytes after restart: got %d bytes, %v", len(b), err)
	}
	e2.ts.Close()
	s2.Close()

	s3, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	kids := s3.Children(folder)
	if len(kids) != 1 || kids[0].Name != "p.bin" || kids[0].Versions[0].MD5 != md5hex(data) || kids[0].Versions[0].Size != int64(len(data)) {
		t.Errorf("children after second restart: got %+v", kids)
	}
}

func newTestServer(t *testing.T, s *Server) *httptest.Server {
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func TestPersistedWithoutClose(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s1.AddUser("u", "u-token", true)
	p, err := s1.CreateProject("u-token", "Kept")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, s: s1, client: http.DefaultClient, ts: newTestServer(t, s1)}
	f := e.create("u-token", kindFolder, p, "via HTTP", nil)["id"].(string)
	// A second emulator on the same directory, as after a crash of the first.
	s2, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := s2.Entity(f); !ok || info.Name != "via HTTP" || info.ParentID != p {
		t.Errorf("entity after crash: got %+v, %v", info, ok)
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("u-token")) {
		t.Errorf("the state file contains a token in clear")
	}
}

func TestLargeUploadOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB upload")
	}
	e := newEnv(t, Options{DataDir: t.TempDir()})
	const size, ps = 64 << 20, 8 << 20
	// Deterministic, non-repeating content.
	data := make([]byte, size)
	var x uint32 = 1
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	sum := md5hex(data)
	st := e.startUpload(e.alice, "big.bin", size, ps, sum, "").json(t)
	id := st["uploadId"].(string)
	if st["partsState"] != "00000000" {
		t.Fatalf("partsState: got %v, want 8 zeros", st["partsState"])
	}
	urls := e.presignedURLs(e.alice, id, 1, 2, 3, 4, 5, 6, 7, 8)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for n := 1; n <= 8; n++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			part := data[(n-1)*ps : n*ps]
			req, _ := http.NewRequest("PUT", urls[n], bytes.NewReader(part))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				errs <- fmt.Sprintf("part %d: got %d", n, res.StatusCode)
			}
		}(n)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := 8; n >= 1; n-- {
		if got := e.addPart(e.alice, id, n, md5hex(data[(n-1)*ps:n*ps])); got["addPartState"] != "ADD_SUCCESS" {
			t.Fatalf("add %d: got %v", n, got)
		}
	}
	fh := e.do(e.alice, "PUT", "/file/v1/file/multipart/"+id+"/complete", nil).json(t)["resultFileHandleId"].(string)
	r, n, err := e.s.OpenFile(fh)
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if got := hex.EncodeToString(h.Sum(nil)); got != sum || n != size {
		t.Errorf("stored file: got %d bytes MD5 %s, want %d bytes MD5 %s", n, got, size, sum)
	}
	// A ranged download across a part boundary.
	f := e.create(e.alice, kindFile, e.folder, "big.bin", map[string]any{"dataFileHandleId": fh})
	u := string(e.do(e.alice, "GET", "/repo/v1/entity/"+f["id"].(string)+"/file?redirect=false", nil).body)
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", ps-10, ps+9))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 206 || !bytes.Equal(b, data[ps-10:ps+10]) {
		t.Errorf("range across parts: got %d, %d bytes", res.StatusCode, len(b))
	}
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeConfig{Addr: "127.0.0.1:0", DataDir: dir, Users: []string{"eve:eve-token:uncertified"},
			Faults: []string{"*:latency=1ms"}, Out: pw})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var base, token string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Synapse emulator listening on "); ok {
			base = v
		}
		if v, ok := strings.CutPrefix(line, "demo user token: "); ok {
			token = v
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" || token == "" {
		t.Fatalf("Serve output: base %q token %q", base, token)
	}
	for tok, name := range map[string]string{token: "demo", "eve-token": "eve"} {
		req, _ := http.NewRequest("GET", base+"/repo/v1/userProfile", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), `"userName":"`+name+`"`) {
			t.Errorf("profile of %s: got %d %s", name, res.StatusCode, b)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	// The state was saved: the generated token still works.
	s, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Children("")[0].Name != "Demo Project" {
		t.Errorf("projects after Serve: got %+v", s.Children(""))
	}
	if err := Serve(context.Background(), ServeConfig{Users: []string{"bad"}}); err == nil {
		t.Errorf("bad user spec: got nil error")
	}
}
