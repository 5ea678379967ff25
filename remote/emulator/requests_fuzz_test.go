package emulator

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequests sends arbitrary bodies and path tails to the emulator's
// routes that parse JSON: it never panics or answers 5xx, and it still
// serves the seeded folder afterwards.
func FuzzRequests(f *testing.F) {
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	const token = "fuzz-token"
	project, folder, err := s.Seed(token)
	if err != nil {
		f.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{"POST", "/repo/v1/entity"},
		{"PUT", "/repo/v1/entity/" + folder},
		{"POST", "/repo/v1/entity/children"},
		{"POST", "/repo/v1/entity/child"},
		{"PUT", "/repo/v1/entity/" + folder + "/annotations2"},
		{"POST", "/file/v1/file/multipart"},
		{"POST", "/file/v1/fileHandle/batch"},
		{"POST", "/repo/v1/entity/" + project + "/bundle2"},
		{"GET", "/repo/v1/entity/"},
		{"GET", "/repo/v1/entity/" + folder + "/version/"},
	}
	f.Add(uint8(0), []byte(`{"concreteType":"org.sagebionetworks.repo.model.Folder","name":"x","parentId":"`+folder+`"}`), "")
	f.Add(uint8(0), []byte(`{"name":"a\u0000b","parentId":123}`), "")
	f.Add(uint8(1), []byte(`{"id":"`+folder+`","etag":"x","name":"Data","parentId":"`+project+`"}`), "?newVersion=true")
	f.Add(uint8(2), []byte(`{"parentId":"`+folder+`","includeTypes":["file","folder"],"nextPageToken":"50a50"}`), "")
	f.Add(uint8(4), []byte(`{"id":"`+folder+`","etag":"x","annotations":{"k":{"type":"LONG","value":["1e99"]}}}`), "")
	f.Add(uint8(5), []byte(`{"fileName":"a","fileSizeBytes":-1,"partSizeBytes":5242880,"contentMD5Hex":"zz"}`), "?forceRestart=true")
	f.Add(uint8(8), []byte(nil), "syn99999999999999999999")
	f.Add(uint8(9), []byte(nil), "-1")
	f.Fuzz(func(t *testing.T, route uint8, body []byte, tail string) {
		r := routes[int(route)%len(routes)]
		if strings.ContainsAny(tail, " \r\n#") {
			return
		}
		req, err := http.NewRequest(r.method, "http://emulator"+r.path+tail, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s%s with %q: %d %s", r.method, r.path, tail, body, w.Code, w.Body)
		}
		w = httptest.NewRecorder()
		get, _ := http.NewRequest("GET", "http://emulator/repo/v1/entity/"+folder, nil)
		get.Header.Set("Authorization", "Bearer "+token)
		s.ServeHTTP(w, get)
		if w.Code != 200 && w.Code != 404 { // a fuzzed request may trash the folder
			t.Fatalf("GET the folder after %s %s: %d %s", r.method, r.path, w.Code, w.Body)
		}
	})
}
