// Package meta caches Synapse metadata in memory: directory listings by
// parent ID and permissions by entity ID, each in an expirable LRU
// (golang-lru/v2). It does no I/O itself: Load calls the Fetch the file
// system gives it, one at a time per folder, and serves a listing for its
// TTL (and, while one background fetch refreshes it, for a second TTL).
// The file system updates it first on local mutations, so a listing shows
// what the user just did without a round trip.
//
// The listing TTL is derived from the kernel's attribute validity
// (synfs mount --attr-ttl; listings live ten times as long).
package meta

import (
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/synfs/synfs/remote"
)

// Options sizes a Cache.
type Options struct {
	Listings int           // how many directory listings to keep (default 256)
	Perms    int           // how many permission records (default 1024)
	TTL      time.Duration // how long a listing is trusted (default 10 s); see Load
	PermTTL  time.Duration // how long permissions are trusted (default 5 min)
	// PageCost stretches the TTL of large listings: one of n pages (of
	// PageSize children, the size of a Synapse listing page) is trusted at
	// least n × PageCost, so re-listing a large folder spends a bounded
	// share of the REST budget (with PageCost ten times the interval
	// between calls, a tenth). 0: every listing is trusted TTL.
	PageCost time.Duration
	Now      func() time.Time
}

// PageSize is the number of children in one page of a Synapse listing.
const PageSize = 50

// maxPages is the most pages a Synapse folder's listing has (10,000
// children).
const maxPages = 10000 / PageSize

// Cache holds listings and permissions. It is safe for concurrent use.
//
// Lock order: fmu before a Listing's mu.
type Cache struct {
	ttl      time.Duration
	pageCost time.Duration
	now      func() time.Time
	lists    *expirable.LRU[string, *Listing] // kept for 2 × the longest TTL; see Load
	perms    *expirable.LRU[string, remote.Permissions]
	known    *lastKnown // answers past their TTL, for offline fallback (lastknown.go)

	fmu     sync.Mutex // protects the fields below
	flights map[string]*flight
	fetches int
}

// New returns an empty cache.
func New(o Options) *Cache {
	if o.Listings <= 0 {
		o.Listings = 256
	}
	if o.Perms <= 0 {
		o.Perms = 1024
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.PermTTL <= 0 {
		o.PermTTL = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	keep := 2 * max(o.TTL, maxPages*o.PageCost)
	return &Cache{
		ttl:      o.TTL,
		pageCost: max(o.PageCost, 0),
		now:      o.Now,
		lists:    expirable.NewLRU[string, *Listing](o.Listings, nil, keep),
		perms:    expirable.NewLRU[string, remote.Permissions](o.Perms, nil, o.PermTTL),
		flights:  map[string]*flight{},
		known:    newLastKnown(),
	}
}

// ttlFor is how long l is trusted: the TTL, or longer for a listing of
// many pages (Options.PageCost).
func (c *Cache) ttlFor(l *Listing) time.Duration {
	pages := min((l.Len()+PageSize-1)/PageSize, maxPages)
	return max(c.ttl, time.Duration(pages)*c.pageCost)
}

// Listing returns the cached listing of parentID, fresh or served while
// refreshed (younger than twice its TTL), or nil.
func (c *Cache) Listing(parentID string) *Listing {
	l, ok := c.lists.Get(parentID)
	if !ok || c.now().Sub(l.fetched) >= 2*c.ttlFor(l) {
		return nil
	}
	return l
}

// SetListing stores the children of parentID as known now (for example an
// empty list for a folder just created) and returns the Listing that holds
// them.
func (c *Cache) SetListing(parentID string, children []remote.Entity) *Listing {
	l := newListing(children, c.now())
	c.lists.Add(parentID, l)
	c.known.addListing(parentID, l)
	return l
}

// Put records e in its parent's listing, if that listing is cached, being
// fetched or last known.
func (c *Cache) Put(e remote.Entity) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.noteLocked(e.ParentID, mutation{put: &e})
	if l := c.StaleListing(e.ParentID); l != nil {
		l.put(e)
		c.known.grew()
	}
}

// Drop removes name from parentID's listing, if that listing is cached,
// being fetched or last known.
func (c *Cache) Drop(parentID, name string) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.noteLocked(parentID, mutation{drop: name})
	if l := c.StaleListing(parentID); l != nil {
		l.drop(name)
	}
}

// Invalidate forgets parentID's listing; a fetch under way is not cached,
// so the next Load fetches afresh.
func (c *Cache) Invalidate(parentID string) {
	c.fmu.Lock()
	if f := c.flights[parentID]; f != nil {
		f.obsolete = true
		delete(c.flights, parentID)
	}
	c.fmu.Unlock()
	c.lists.Remove(parentID)
}

// Perms returns the cached permissions on id.
func (c *Cache) Perms(id string) (remote.Permissions, bool) { return c.perms.Get(id) }

// SetPerms caches the permissions on id.
func (c *Cache) SetPerms(id string, p remote.Permissions) {
	c.perms.Add(id, p)
	c.known.perms.Add(id, p)
}

// Listing is one directory's children by name. Its methods are safe for
// concurrent use.
type Listing struct {
	fetched time.Time // when Synapse was asked; read-only after creation

	mu     sync.Mutex
	byName map[string]remote.Entity
}

// Get returns the child called name.
func (l *Listing) Get(name string) (remote.Entity, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.byName[name]
	return e, ok
}

// Entries returns the children sorted by name (byte order, as Synapse sorts).
func (l *Listing) Entries() []remote.Entity {
	l.mu.Lock()
	out := make([]remote.Entity, 0, len(l.byName))
	for _, e := range l.byName {
		out = append(out, e)
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Len returns the number of children.
func (l *Listing) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byName)
}

func (l *Listing) put(e remote.Entity) {
	l.mu.Lock()
	l.byName[e.Name] = e
	l.mu.Unlock()
}

func (l *Listing) drop(name string) {
	l.mu.Lock()
	delete(l.byName, name)
	l.mu.Unlock()
}
