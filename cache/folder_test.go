package cache

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

func TestLocalID(t *testing.T) {
	for _, ino := range []uint64{0, 7, 1<<64 - 1} {
		if got, ok := ParseLocalID(LocalID(ino)); !ok || got != ino {
			t.Errorf("ParseLocalID(LocalID(%d)) = %d, %v", ino, got, ok)
		}
	}
	for _, id := range []string{"syn123", "", "local-", "local-x", "local-007", "local-1 "} {
		if IsLocalID(id) {
			t.Errorf("IsLocalID(%q) = true", id)
		}
	}
}

func TestFolderKeys(t *testing.T) {
	for _, ino := range []uint64{0, 1, 1<<64 - 1} {
		if got, ok := parseFolderKey(folderKey(ino)); !ok || got != ino {
			t.Errorf("parseFolderKey(folderKey(%d)) = %d, %v", ino, got, ok)
		}
	}
	if bytes.HasPrefix(folderIndexKey("syn12", "a"), folderIndexPrefix("syn1")) {
		t.Error("folderIndexKey(syn12, a) has the prefix of folder syn1")
	}
	if bytes.HasPrefix(folderKey(1), tablePrefix(tabRecord)) || bytes.HasPrefix(folderIndexKey("syn1", "a"), tablePrefix(tabIndex)) {
		t.Error("folder tables overlap the file tables")
	}
}

// A staged folder is listed by its parent until it has an entity, clashes
// with staged files and folders, moves with UpdateFolder, and survives a
// reopen.
func TestStagedFolders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := openStore(t, Options{Dir: dir})
	fo, err := s.MakeFolder("syn1", "new", "/p/Data")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MakeFolder("syn1", "new", "/p/Data"); !errors.Is(err, ErrExist) {
		t.Fatalf("second MakeFolder: got %v, want ErrExist", err)
	}
	create(t, s, "syn1", "file")
	if _, err := s.MakeFolder("syn1", "file", "/p/Data"); !errors.Is(err, ErrExist) {
		t.Fatalf("MakeFolder over a staged file: got %v, want ErrExist", err)
	}
	sub, err := s.MakeFolder(fo.LocalID(), "sub", "/p/Data/new")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Folders("syn1"); err != nil || len(got) != 1 || got[0].Name != "new" {
		t.Fatalf("Folders(syn1) = %v, %v", got, err)
	}
	if err := s.UpdateFolder(fo.Ino, func(f *Folder) error { f.Name = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupFolder("syn1", "new"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name after rename: %v, want ErrNotFound", err)
	}
	if err := s.UpdateFolder(fo.Ino, func(f *Folder) error { f.Name = "file"; return nil }); !errors.Is(err, ErrExist) {
		t.Fatalf("rename onto a staged file: got %v, want ErrExist", err)
	}
	s.Close()

	s = openStore(t, Options{Dir: dir})
	got, err := s.LookupFolder("syn1", "renamed")
	if err != nil || got.Ino != fo.Ino {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if err := s.UpdateFolder(fo.Ino, func(f *Folder) error { f.EntityID = "syn9"; return nil }); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Folders("syn1"); len(l) != 0 {
		t.Fatalf("a created folder is still listed as staged: %v", l)
	}
	if all, _ := s.Folders(""); len(all) != 2 {
		t.Fatalf("Folders(\"\") = %d records, want 2", len(all))
	}
	if err := s.RemoveFolder(sub.Ino); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupFolder(fo.LocalID(), "sub"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed folder still found: %v", err)
	}
}
