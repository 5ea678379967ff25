package cache

import (
	"path/filepath"
	"testing"
	"time"
)

func TestVersionsSurviveReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := openStore(t, Options{Dir: dir})
	if _, ok, err := s.Version("syn1", 1); err != nil || ok {
		t.Fatalf("Version of an unknown file: got ok=%v err=%v, want nothing", ok, err)
	}
	mt := time.Date(2020, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := s.SetVersionAttrs("syn1", 2, mt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVersion("syn1", 2, 42, "abc", "7001"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVersion("syn1", 1, 7, "def", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.PutVersion("syn", 0, 1, "", ""); err == nil {
		t.Fatal("PutVersion of version 0 succeeded")
	}
	s.Close()

	s = openStore(t, Options{Dir: dir})
	got, err := s.Versions([]VersionKey{{"syn1", 1}, {"syn1", 2}, {"syn1", 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d versions, want 2: %v", len(got), got)
	}
	if v := got[VersionKey{"syn1", 2}]; v.Size != 42 || v.MD5 != "abc" || v.FileHandle != "7001" || !v.Mtime.Equal(mt) || v.Mode != 0o600 {
		t.Errorf("version 2: got %+v, want size 42, md5 abc, mtime %v, mode 0600", v, mt)
	}
	if v := got[VersionKey{"syn1", 1}]; v.Size != 7 || !v.Mtime.IsZero() || v.Mode != 0 {
		t.Errorf("version 1: got %+v, want size 7 and no user attributes", v)
	}
}

func TestSetModeKeptInRecord(t *testing.T) {
	s := memStore(t, Options{})
	rec, f := create(t, s, "syn1", "a")
	writeAt(t, f, []byte("x"), 0)
	if err := s.SetMode(rec.Ino, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != 0o640 {
		t.Fatalf("mode after a flush: got %o, want 640", got.Mode)
	}
}
