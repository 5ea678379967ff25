package meta

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/synfs/synfs/remote"
)

// lastKnown keeps the last answer Synapse gave for each listing, permission
// record and file entity, past their TTLs, so that the file system can answer
// from it when Synapse cannot be asked (unreachable, or slower than the
// file system's bound). It is bounded by count, not by time: stale, but
// better than nothing. A listing here is the same *Listing the TTL cache
// holds, so local mutations (Put, Drop) reach both.
type lastKnown struct {
	lists *lru.Cache[string, *Listing]
	perms *lru.Cache[string, remote.Permissions]
	ents  *lru.Cache[string, remote.Entity]
}

// Sizes of the last-known tables: a few MB at most.
const (
	knownListings = 4096
	knownPerms    = 4096
	knownEntities = 65536
)

func newLastKnown() *lastKnown {
	lists, _ := lru.New[string, *Listing](knownListings)
	perms, _ := lru.New[string, remote.Permissions](knownPerms)
	ents, _ := lru.New[string, remote.Entity](knownEntities)
	return &lastKnown{lists: lists, perms: perms, ents: ents}
}

// StaleListing returns the last listing of parentID set or changed in this
// cache, however old, or nil.
func (c *Cache) StaleListing(parentID string) *Listing {
	if l := c.Listing(parentID); l != nil {
		return l
	}
	l, _ := c.known.lists.Get(parentID)
	return l
}

// StalePerms returns the last permissions cached on id, however old.
func (c *Cache) StalePerms(id string) (remote.Permissions, bool) {
	if p, ok := c.Perms(id); ok {
		return p, true
	}
	return c.known.perms.Get(id)
}

// Remember keeps e, as Synapse gave it (a file with its size and MD5), for
// Remembered.
func (c *Cache) Remember(e remote.Entity) { c.known.ents.Add(e.ID, e) }

// Remembered returns the last entity given to Remember for id.
func (c *Cache) Remembered(id string) (remote.Entity, bool) { return c.known.ents.Get(id) }
