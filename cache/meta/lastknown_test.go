package meta

import (
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
