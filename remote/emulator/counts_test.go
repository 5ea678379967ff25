package emulator

import (
	"net/http"
	"strings"
	"testing"
)

func TestRequestCounts(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.ResetRequestCounts()
	id := e.createFile(aliceToken, e.folder, "a.txt", []byte("hello"))["id"].(string)
	before := e.s.RequestCounts()
	for range 3 {
		want(t, e.do(aliceToken, "GET", "/repo/v1/entity/"+id, nil), http.StatusOK, "")
	}
	want(t, e.do(aliceToken, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.folder, "includeTypes": []string{"file"}}), http.StatusOK, "")
	got := e.s.RequestCounts().Sub(before)
	if got["GET /repo/v1/entity/{id}"] != 3 || got["POST /repo/v1/entity/children"] != 1 || got.Total() != 4 {
		t.Fatalf("got %v, want 3 entity GETs and 1 children call", got)
	}
	for route := range e.s.RequestCounts() {
		if _, pattern, _ := strings.Cut(route, " "); !isREST(pattern) {
			t.Errorf("presigned or admin route %q counted as a REST call", route)
		}
	}

	// The admin endpoint reports the same counts, needs no token and is
	// not itself counted.
	total := e.s.RequestCounts().Total()
	m := e.do("", "GET", adminBase+"/requests", nil)
	want(t, m, http.StatusOK, "")
	if got := int(m.json(t)["total"].(float64)); got != total {
		t.Fatalf("admin total: got %d, want %d", got, total)
	}
	if n := e.s.RequestCounts().Total(); n != total {
		t.Fatalf("after the admin GET: got %d REST calls, want %d", n, total)
	}
	want(t, e.do("", "DELETE", adminBase+"/requests", nil), http.StatusNoContent, "")
	if n := e.s.RequestCounts().Total(); n != 0 {
		t.Fatalf("after reset: got %d REST calls, want 0", n)
	}
}
