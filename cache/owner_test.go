package cache

import (
	"path/filepath"
	"testing"
)

// The owner survives a reopen, and a new cache has none.
func TestOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := openStore(t, Options{Dir: dir})
	if _, ok, err := s.Owner(); ok || err != nil {
		t.Fatalf("new cache: owner recorded %v, %v", ok, err)
	}
	want := Owner{Endpoint: "https://repo.example/repo/v1", UserID: "42", UserName: "alice"}
	if err := s.SetOwner(want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, Options{Dir: dir})
	got, ok, err := s.Owner()
	if !ok || err != nil || got != want {
		t.Fatalf("after reopen: %+v %v %v; want %+v", got, ok, err, want)
	}
	if !got.Same(Owner{Endpoint: want.Endpoint, UserID: "42", UserName: "renamed"}) || got.Same(Owner{Endpoint: want.Endpoint, UserID: "43"}) {
		t.Error("Same compares the wrong fields")
	}
	if recs, _ := s.Records(); len(recs) != 0 {
		t.Errorf("the owner shows as a staged file: %+v", recs)
	}
}
