package meta

import (
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
)

func TestListingMutations(t *testing.T) {
	c := New(Options{TTL: time.Hour})
	if c.Listing("syn1") != nil {
		t.Fatal("got a listing before any was set")
	}
	c.SetListing("syn1", []remote.Entity{{ID: "syn3", Name: "b", ParentID: "syn1"}, {ID: "syn2", Name: "a", ParentID: "syn1"}})
	c.Put(remote.Entity{ID: "syn4", Name: "C", ParentID: "syn1"})
	c.Put(remote.Entity{ID: "syn9", Name: "x", ParentID: "syn8"}) // parent not cached: ignored
	c.Drop("syn1", "b")
	l := c.Listing("syn1")
	var names []string
	for _, e := range l.Entries() {
		names = append(names, e.Name)
	}
	if got, want := len(names), 2; got != want || names[0] != "C" || names[1] != "a" {
		t.Fatalf("got %v, want [C a] (byte order)", names)
	}
	if _, ok := l.Get("b"); ok {
		t.Error("dropped name still present")
	}
	if c.Listing("syn8") != nil {
		t.Error("Put created a listing for an uncached parent")
	}
	c.Invalidate("syn1")
	if c.Listing("syn1") != nil {
		t.Error("listing survived Invalidate")
	}
}

func TestListingExpires(t *testing.T) {
	c := New(Options{TTL: 20 * time.Millisecond})
	c.SetListing("syn1", nil)
	deadline := time.Now().Add(5 * time.Second)
	for c.Listing("syn1") != nil {
		if time.Now().After(deadline) {
			t.Fatal("listing never expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPerms(t *testing.T) {
	c := New(Options{})
	if _, ok := c.Perms("syn1"); ok {
		t.Fatal("got perms before any were set")
	}
	c.SetPerms("syn1", remote.Permissions{CanAddChild: true})
	p, ok := c.Perms("syn1")
	if !ok || !p.CanAddChild {
		t.Fatalf("got %+v %v, want CanAddChild", p, ok)
	}
}
