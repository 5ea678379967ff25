package emulator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestFaultFirstN(t *testing.T) {
	e := newEnv(t, Options{})
	remove := e.s.AddFault(Fault{Route: "GET /repo/v1/entity/{id}", Status: 503, FirstN: 2})
	for i, wantStatus := range []int{503, 503, 200, 200} {
		r := e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder, nil)
		if r.status != wantStatus {
			t.Errorf("call %d: got %d, want %d", i, r.status, wantStatus)
		}
	}
	// Other routes are untouched.
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile", nil), http.StatusOK, "")
	remove()
	if got := e.s.Stats().FaultsInjected; got != 2 {
		t.Errorf("FaultsInjected: got %d, want 2", got)
	}
	e.s.AddFault(Fault{Route: "*", Status: 429, FirstN: 1})
	r := e.do(e.alice, "GET", "/repo/v1/userProfile", nil)
	want(t, r, http.StatusTooManyRequests, "")
	if _, ok := r.json(t)["concreteType"]; ok {
		t.Errorf("429 body has a concreteType: %s", r.body)
	}
	if got := e.s.Stats().Throttled; got != 1 {
		t.Errorf("Throttled: got %d, want 1", got)
	}
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	run := func() []int {
		e := newEnv(t, Options{FaultSeed: 42})
		e.s.AddFault(Fault{Route: "/repo/v1/userProfile", Status: 500, Prob: 0.5})
		var got []int
		for i := 0; i < 40; i++ {
			got = append(got, e.do(e.alice, "GET", "/repo/v1/userProfile", nil).status)
		}
		return got
	}
	a, b := run(), run()
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d: got %d and %d with the same seed", i, a[i], b[i])
		}
		if a[i] == 500 {
			fails++
		}
	}
	if fails == 0 || fails == len(a) {
		t.Errorf("failures: got %d of %d, want some but not all", fails, len(a))
	}
}

func TestFaultDropAfterHandling(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.AddFault(Fault{Route: "POST /repo/v1/entity", DropAfterHandling: true, FirstN: 1})
	req, _ := http.NewRequest("POST", e.ts.URL+"/repo/v1/entity", nil)
	body := `{"concreteType":"org.sagebionetworks.repo.model.Folder","name":"lost","parentId":"` + e.folder + `"}`
	req, _ = http.NewRequest("POST", e.ts.URL+"/repo/v1/entity", stringsReader(body))
	req.Header.Set("Authorization", "Bearer "+e.alice)
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("got status %d, want a dropped connection", res.StatusCode)
	}
	kids := e.s.Children(e.folder)
	if len(kids) != 1 || kids[0].Name != "lost" {
		t.Errorf("children: got %+v, want the folder created by the lost request", kids)
	}
	// The route does not match lookups under /entity/.
	want(t, e.do(e.alice, "POST", "/repo/v1/entity/child", map[string]any{"parentId": e.folder, "entityName": "lost"}), http.StatusOK, "")
	want(t, e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, e.folder, "lost")), http.StatusConflict, "")
	recs := e.s.Requests()
	var dropped *RequestRecord
	for i := range recs {
		if recs[i].Route == "POST /repo/v1/entity" && recs[i].Faulted {
			dropped = &recs[i]
		}
	}
	if dropped == nil || dropped.Status != 0 || dropped.User != "alice" {
		t.Errorf("request record: got %+v, want a faulted record with status 0 for alice", dropped)
	}
}

func TestFaultDropAfterBytes(t *testing.T) {
	e := newEnv(t, Options{})
	data := make([]byte, 100000)
	f := e.createFile(e.alice, e.folder, "big.bin", data)
	r := e.do(e.alice, "GET", "/repo/v1/entity/"+f["id"].(string)+"/file?redirect=false", nil)
	e.s.AddFault(Fault{Route: "GET /s3/", DropAfterBytes: 1000, FirstN: 1})
	res, err := http.Get(string(r.body))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil || len(b) != 1000 {
		t.Errorf("dropped download: got %d bytes, err %v; want 1000 bytes and an error", len(b), err)
	}
	// Part uploads are cut while reading the body and not stored.
	id := e.startUpload(e.alice, "p.bin", int64(len(data)), 5<<20, md5hex(data), "").json(t)["uploadId"].(string)
	u := e.presignedURLs(e.alice, id, 1)[1]
	e.s.AddFault(Fault{Method: "PUT", Route: "/s3/", DropAfterBytes: 10, FirstN: 1})
	req, _ := http.NewRequest("PUT", u, stringsReader(string(data)))
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Errorf("part PUT: got %d, want a dropped connection", res.StatusCode)
	}
	if got := e.addPart(e.alice, id, 1, md5hex(data)); got["addPartState"] != "ADD_FAILED" {
		t.Errorf("add after dropped PUT: got %v, want ADD_FAILED", got)
	}
}

func TestFaultLatencyAndStall(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.AddFault(Fault{Route: "GET /repo/v1/userProfile", Latency: 50 * time.Millisecond, FirstN: 1})
	start := time.Now()
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile", nil), http.StatusOK, "")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("latency: got %v, want at least 50ms", d)
	}
	// A stall longer than the client's patience: the client times out, the
	// request was handled.
	e.s.AddFault(Fault{Route: "POST /repo/v1/entity", Stall: time.Minute, FirstN: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.ts.URL+"/repo/v1/entity",
		stringsReader(`{"concreteType":"org.sagebionetworks.repo.model.Folder","name":"stalled","parentId":"`+e.folder+`"}`))
	req.Header.Set("Authorization", "Bearer "+e.alice)
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled request: got %v, want a deadline error", err)
	}
	waitFor(t, "the stalled folder", func() bool { return len(e.s.Children(e.folder)) == 1 })
}

// A request in transit is handled after its sender gave up, and not before
// the transit time: the answer is lost, the change is made.
func TestFaultTransit(t *testing.T) {
	e := newEnv(t, Options{})
	fired := make(chan struct{}, 1)
	e.s.AddFault(Fault{Route: "POST /repo/v1/entity", Transit: 300 * time.Millisecond, FirstN: 1,
		Fired: func() { fired <- struct{}{} }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.ts.URL+"/repo/v1/entity",
		stringsReader(`{"concreteType":"org.sagebionetworks.repo.model.Folder","name":"late","parentId":"`+e.folder+`"}`))
	req.Header.Set("Authorization", "Bearer "+e.alice)
	errc := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	<-fired
	start := time.Now()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("request given up: got %v, want context.Canceled", err)
	}
	if n := len(e.s.Children(e.folder)); n != 0 {
		t.Fatalf("%d children while the create is in transit, want 0", n)
	}
	waitFor(t, "the folder created in transit", func() bool { return len(e.s.Children(e.folder)) == 1 })
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("created %v after the client gave up, want about the transit time", d)
	}
}

func TestFaultMatching(t *testing.T) {
	cases := []struct {
		f                   Fault
		method, route, path string
		want                bool
	}{
		{Fault{}, "GET", "GET /repo/v1/entity/{id}", "/repo/v1/entity/syn1", true},
		{Fault{Route: "*"}, "PUT", "PUT /s3/upload/{uploadId}/{part}", "/s3/upload/1/2", true},
		{Fault{Route: "PUT /s3/"}, "PUT", "PUT /s3/upload/{uploadId}/{part}", "/s3/upload/1/2", true},
		{Fault{Route: "PUT /s3/"}, "GET", "GET /s3/blob/{handleId}", "/s3/blob/1", false},
		{Fault{Route: "POST /repo/v1/entity"}, "POST", "POST /repo/v1/entity", "/repo/v1/entity", true},
		{Fault{Route: "POST /repo/v1/entity"}, "POST", "POST /repo/v1/entity/child", "/repo/v1/entity/child", false},
		{Fault{Route: "POST /repo/v1/entity/"}, "POST", "POST /repo/v1/entity/child", "/repo/v1/entity/child", true},
		{Fault{Route: "GET /repo/v1/entity/syn7"}, "GET", "GET /repo/v1/entity/{id}", "/repo/v1/entity/syn7", true},
		{Fault{Route: "GET /repo/v1/entity/syn7"}, "GET", "GET /repo/v1/entity/{id}", "/repo/v1/entity/syn8", false},
		{Fault{Route: "/file/v1/"}, "POST", "POST /file/v1/file/multipart", "/file/v1/file/multipart", true},
		{Fault{Route: "/file/v1/", Method: "GET"}, "POST", "POST /file/v1/file/multipart", "/file/v1/file/multipart", false},
		{Fault{Route: "/repo/v1/entity/{id}"}, "DELETE", "DELETE /repo/v1/entity/{id}", "/repo/v1/entity/syn1", true},
	}
	for _, c := range cases {
		if got := c.f.matches(c.method, c.route, c.path); got != c.want {
			t.Errorf("%+v on %s %s: got %v, want %v", c.f, c.method, c.path, got, c.want)
		}
	}
}

func TestParseFault(t *testing.T) {
	cases := []struct {
		spec string
		want Fault
	}{
		{"PUT /s3/:503:p=0.2", Fault{Route: "PUT /s3/", Status: 503, Prob: 0.2}},
		{"POST /repo/v1/entity:drop-after-handling:n=1", Fault{Route: "POST /repo/v1/entity", DropAfterHandling: true, FirstN: 1}},
		{"*:latency=20ms", Fault{Latency: 20 * time.Millisecond}},
		{"POST /repo/v1/entity:transit=2s:n=1", Fault{Route: "POST /repo/v1/entity", Transit: 2 * time.Second, FirstN: 1}},
		{"GET /s3/:drop-after-bytes=1024:stall=1s:method=GET", Fault{Route: "GET /s3/", DropAfterBytes: 1024, Stall: time.Second, Method: "GET"}},
	}
	for _, c := range cases {
		got, err := ParseFault(c.spec)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseFault(%q): got %+v, %v; want %+v", c.spec, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "*", "PUT /s3/:p=0.2", "*:99", "*:600", "*:p=2", "*:n=0", "*:latency=x", "*:bogus", "*:503:n=-1"} {
		if _, err := ParseFault(bad); err == nil {
			t.Errorf("ParseFault(%q): got nil error", bad)
		}
	}
}

func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"PUT /s3/:503:p=0.2", "POST /repo/v1/entity:drop-after-handling:n=1", "*:latency=20ms", "*:stall=1s:drop-after-bytes=5", "*:transit=5ms", ":::", "*:p=1e-3:500"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		flt, err := ParseFault(spec)
		if err != nil {
			return
		}
		back, err := ParseFault(flt.String())
		if err != nil {
			t.Fatalf("ParseFault(%q) of %q's String: %v", flt.String(), spec, err)
		}
		if !reflect.DeepEqual(back, flt) {
			t.Fatalf("round trip of %q: got %+v, want %+v", spec, back, flt)
		}
	})
}
