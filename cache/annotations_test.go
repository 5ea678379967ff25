package cache

import (
	"errors"
	"reflect"
	"testing"
)

func TestAnnotationsKeptWithStagedFile(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	rec, f := create(t, s, "syn1", "a")
	f.Release()
	want := map[string]Annotation{"assay": {"STRING", []string{"rnaSeq"}}, "n": {"LONG", []string{"1", "2"}}}
	if err := s.SetAnnotations(rec.Ino, want); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAnnotations(rec.Ino+100, want); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetAnnotations of a missing ino: got %v, want ErrNotFound", err)
	}
	gone, g := create(t, s, "syn1", "gone")
	g.Release()
	if err := s.SetAnnotations(gone.Ino, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(gone.Ino); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, Options{Dir: dir})
	got, err := s.Annotations(rec.Ino)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Annotations after reopen: got %v, %v; want %v", got, err, want)
	}
	if n, err := s.PruneAnnotations(); n != 1 || err != nil {
		t.Errorf("PruneAnnotations: got %d, %v; want 1 (the removed file)", n, err)
	}
	if got, _ := s.Annotations(gone.Ino); got != nil {
		t.Errorf("annotations of a removed file survive pruning: %v", got)
	}
	// A change made after the flusher read them is not dropped.
	newer := map[string]Annotation{"assay": {"STRING", []string{"wgs"}}}
	if err := s.SetAnnotations(rec.Ino, newer); err != nil {
		t.Fatal(err)
	}
	if dropped, err := s.DropAnnotations(rec.Ino, want); dropped || err != nil {
		t.Errorf("DropAnnotations of a stale set: got %v, %v; want false", dropped, err)
	}
	if dropped, err := s.DropAnnotations(rec.Ino, newer); !dropped || err != nil {
		t.Errorf("DropAnnotations of the current set: got %v, %v; want true", dropped, err)
	}
	if got, _ := s.Annotations(rec.Ino); got != nil {
		t.Errorf("annotations after drop: %v", got)
	}
}
