package meta

import (
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/synfs/synfs/remote"
)

// lastKnown keeps the last answer Synapse gave for each listing, permission
// record and file entity, past their TTLs, so that the file system can answer
// from it when Synapse cannot be asked (unreachable, or slower than the
// file system's bound). It is bounded by count, not by time: stale, but
// better than nothing. A listing here is the same *Listing the TTL cache
// holds, so local mutations (Put, Drop) reach both.
//
// Listings are bounded by their entries as well as by their count: a few
// large folders would otherwise hold every entity a long upload ever put
// into them (a mount that uploaded 150,000 files into 300 folders held
// them all).
type lastKnown struct {
	lists *lru.Cache[string, *Listing]
	perms *lru.Cache[string, remote.Permissions]
	ents  *lru.Cache[string, remote.Entity]

	trimMu sync.Mutex   // one trim at a time
	puts   atomic.Int64 // entries put into listings since the last trim
}

// Sizes of the last-known tables. An entity takes about 440 bytes in a
// listing (its strings, and the map's slot) and about as much in ents, so
// the listings hold at most about 14 MiB and the entities about 28 MiB;
// permissions are a few bytes each.
const (
	knownListings = 4096
	knownEntries  = 32768 // entries of all listings together; the newest listing is kept whatever its size
	knownPerms    = 4096
	knownEntities = 65536
)

// addListing keeps l as the last listing of parentID, and forgets the
// least recently used listings beyond knownEntries.
func (k *lastKnown) addListing(parentID string, l *Listing) {
	k.lists.Add(parentID, l)
	k.trim()
}

// grew notes one entry put into a listing that may be held here; every
// knownEntries/8 of them, the listings are trimmed again.
func (k *lastKnown) grew() {
	if k.puts.Add(1) >= knownEntries/8 {
		k.trim()
	}
}

func (k *lastKnown) trim() {
	k.trimMu.Lock()
	defer k.trimMu.Unlock()
	k.puts.Store(0)
	total := 0
	for _, l := range k.lists.Values() {
		total += l.Len()
	}
	for total > knownEntries && k.lists.Len() > 1 {
		_, l, ok := k.lists.RemoveOldest()
		if !ok {
			return
		}
		total -= l.Len()
	}
}

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
