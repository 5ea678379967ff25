package meta

import (
	"fmt"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
)

// Past its TTL a listing is gone from Listing but still answers
// StaleListing, and local changes made meanwhile reach it.
func TestStaleAnswersOutliveTheTTL(t *testing.T) {
	c := New(Options{TTL: 10 * time.Millisecond, PermTTL: 10 * time.Millisecond})
	c.SetListing("syn1", []remote.Entity{{ID: "syn2", Name: "a", ParentID: "syn1"}})
	c.SetPerms("syn1", remote.Permissions{CanAddChild: true})
	c.Remember(remote.Entity{ID: "syn2", Name: "a", Size: 42})
	time.Sleep(30 * time.Millisecond)
	if c.Listing("syn1") != nil {
		t.Fatal("listing still fresh after its TTL")
	}
	if _, ok := c.Perms("syn1"); ok {
		t.Fatal("permissions still fresh after their TTL")
	}
	c.Put(remote.Entity{ID: "syn3", Name: "b", ParentID: "syn1"})
	l := c.StaleListing("syn1")
	if l == nil || l.Len() != 2 {
		t.Fatalf("got stale listing %v, want a and b", l)
	}
	if p, ok := c.StalePerms("syn1"); !ok || !p.CanAddChild {
		t.Fatalf("got stale perms %+v %v, want CanAddChild", p, ok)
	}
	if e, ok := c.Remembered("syn2"); !ok || e.Size != 42 {
		t.Fatalf("got remembered %+v %v, want size 42", e, ok)
	}
}

// Last-known listings are bounded by their entries, not only by their
// count: many large folders, filled by uploads, do not pile up.
func TestLastKnownBoundedByEntries(t *testing.T) {
	c := New(Options{TTL: time.Hour})
	known := func() (n int) {
		for _, l := range c.known.lists.Values() {
			n += l.Len()
		}
		return n
	}
	entity := func(folder, i int) remote.Entity {
		return remote.Entity{ID: fmt.Sprintf("syn%d", folder*10000+i), Name: fmt.Sprintf("f%d", i), ParentID: fmt.Sprintf("syn%d", folder), Kind: remote.KindFile}
	}
	const size = 500
	for folder := range 3 * knownEntries / size {
		c.SetListing(fmt.Sprintf("syn%d", folder), nil)
		for i := range size {
			c.Put(entity(folder, i))
		}
		if n := known(); n > knownEntries+knownEntries/8 {
			t.Fatalf("after %d folders of %d files: %d entries in last-known listings, want at most %d", folder+1, size, n, knownEntries+knownEntries/8)
		}
	}
	last := fmt.Sprintf("syn%d", 3*knownEntries/size-1)
	if l := c.StaleListing(last); l == nil || l.Len() != size {
		t.Fatalf("the newest listing is not kept whole: %v", l)
	}
	if c.known.lists.Len() >= 3*knownEntries/size {
		t.Fatalf("%d listings kept, want the oldest forgotten", c.known.lists.Len())
	}
	// One listing larger than the bound is kept: it is the newest.
	big := make([]remote.Entity, knownEntries+1)
	for i := range big {
		big[i] = entity(99999, i)
	}
	c.SetListing("syn99999", big)
	if l := c.StaleListing("syn99999"); l == nil || l.Len() != len(big) {
		t.Fatal("a listing over the bound was not kept")
	}
}
