package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is an emulator on an httptest.Server with a certified user alice
// (project + folder), a certified user bob with no grants, and an
// uncertified user carol.
type env struct {
	t       *testing.T
	s       *Server
	ts      *httptest.Server
	clock   *fakeClock
	client  *http.Client
	alice   string // tokens
	bob     string
	carol   string
	aliceID string
	project string
	folder  string
}

const (
	aliceToken = "alice-token"
	bobToken   = "bob-token"
	carolToken = "carol-token"
)

func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	if o.Now == nil {
		o.Now = clock.Now
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	e := &env{t: t, s: s, ts: ts, clock: clock, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, alice: aliceToken, bob: bobToken, carol: carolToken}
	e.aliceID = s.AddUser("alice", aliceToken, true)
	s.AddUser("bob", bobToken, true)
	s.AddUser("carol", carolToken, false)
	if e.project, err = s.CreateProject(aliceToken, "Alice Project"); err != nil {
		t.Fatal(err)
	}
	if e.folder, err = s.CreateFolder(aliceToken, e.project, "Data"); err != nil {
		t.Fatal(err)
	}
	return e
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (r resp) reason(t *testing.T) string {
	t.Helper()
	s, _ := r.json(t)["reason"].(string)
	return s
}

// do sends a request to the emulator; body is JSON-encoded unless it is a
// []byte or nil.
func (e *env) do(token, method, path string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.ts.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// want checks r's status and, when reason is not "", its reason.
func want(t *testing.T, r resp, status int, reason string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status: got %d (%s), want %d", r.status, r.body, status)
	}
	if reason != "" {
		if got := r.reason(t); got != reason {
			t.Fatalf("reason:\n got %q\nwant %q", got, reason)
		}
	}
}

func entityBody(kind, parent, name string) map[string]any {
	m := map[string]any{"concreteType": kindType(kind), "name": name}
	if parent != "" {
		m["parentId"] = parent
	}
	return m
}

// create POSTs an entity and returns its JSON, failing on any status but 201.
func (e *env) create(token, kind, parent, name string, extra map[string]any) map[string]any {
	e.t.Helper()
	b := entityBody(kind, parent, name)
	for k, v := range extra {
		b[k] = v
	}
	r := e.do(token, "POST", "/repo/v1/entity", b)
	want(e.t, r, http.StatusCreated, "")
	return r.json(e.t)
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// startUpload POSTs a multipart request.
func (e *env) startUpload(token, name string, size, partSize int64, md5 string, query string) resp {
	e.t.Helper()
	return e.do(token, "POST", "/file/v1/file/multipart"+query, map[string]any{
		"concreteType": requestType, "fileName": name, "fileSizeBytes": size, "partSizeBytes": partSize,
		"contentMD5Hex": md5, "contentType": "application/octet-stream", "storageLocationId": 1, "generatePreview": true,
	})
}

// presignedURLs asks for part URLs.
func (e *env) presignedURLs(token, uploadID string, parts ...int) map[int]string {
	e.t.Helper()
	r := e.do(token, "POST", "/file/v1/file/multipart/"+uploadID+"/presigned/url/batch", map[string]any{"uploadId": uploadID, "partNumbers": parts})
	want(e.t, r, http.StatusCreated, "")
	var out struct {
		PartPresignedUrls []struct {
			PartNumber         int    `json:"partNumber"`
			UploadPresignedURL string `json:"uploadPresignedUrl"`
		} `json:"partPresignedUrls"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		e.t.Fatal(err)
	}
	m := map[int]string{}
	for _, p := range out.PartPresignedUrls {
		m[p.PartNumber] = p.UploadPresignedURL
	}
	return m
}

// putPart PUTs data to a presigned URL without a token.
func (e *env) putPart(url string, data []byte) resp {
	e.t.Helper()
	return e.do("", "PUT", url, data)
}

func (e *env) addPart(token, uploadID string, n int, md5 string) map[string]any {
	e.t.Helper()
	r := e.do(token, "PUT", fmt.Sprintf("/file/v1/file/multipart/%s/add/%d?partMD5Hex=%s", uploadID, n, md5), nil)
	want(e.t, r, http.StatusCreated, "")
	return r.json(e.t)
}

// upload runs the whole multipart flow and returns the file handle ID.
func (e *env) upload(token, name string, data []byte, partSize int64) string {
	e.t.Helper()
	r := e.startUpload(token, name, int64(len(data)), partSize, md5hex(data), "")
	want(e.t, r, http.StatusCreated, "")
	st := r.json(e.t)
	id := st["uploadId"].(string)
	if st["state"] == "COMPLETED" {
		return st["resultFileHandleId"].(string)
	}
	n := (len(data) + int(partSize) - 1) / int(partSize)
	var parts []int
	for i := 1; i <= n; i++ {
		parts = append(parts, i)
	}
	urls := e.presignedURLs(token, id, parts...)
	for i := 1; i <= n; i++ {
		lo, hi := (i-1)*int(partSize), i*int(partSize)
		if hi > len(data) {
			hi = len(data)
		}
		want(e.t, e.putPart(urls[i], data[lo:hi]), http.StatusOK, "")
		if got := e.addPart(token, id, i, md5hex(data[lo:hi]))["addPartState"]; got != "ADD_SUCCESS" {
			e.t.Fatalf("add part %d: got %v, want ADD_SUCCESS", i, got)
		}
	}
	r = e.do(token, "PUT", "/file/v1/file/multipart/"+id+"/complete", nil)
	want(e.t, r, http.StatusCreated, "")
	st = r.json(e.t)
	if st["state"] != "COMPLETED" {
		e.t.Fatalf("state: got %v, want COMPLETED", st["state"])
	}
	return st["resultFileHandleId"].(string)
}

// createFile uploads data and creates a FileEntity for it.
func (e *env) createFile(token, parent, name string, data []byte) map[string]any {
	e.t.Helper()
	fh := e.upload(token, name, data, 5<<20)
	return e.create(token, kindFile, parent, name, map[string]any{"dataFileHandleId": fh})
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
