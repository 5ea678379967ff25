package meta

import (
	"context"
	"time"

	"github.com/synfs/synfs/remote"
)

// Fetch lists a folder's children from Synapse. Load runs it detached from
// any one caller (a caller that gives up does not abort the fetch others
// wait for), so it should carry its own context, such as the file system's.
type Fetch func() ([]remote.Entity, error)

// flight is one fetch of a folder's listing under way.
type flight struct {
	done     chan struct{}
	l        *Listing
	err      error
	obsolete bool       // Invalidate ran after it started: do not cache its answer
	changes  []mutation // local changes made while it ran, replayed on its answer
}

// mutation is a local change (Put or Drop) to replay on a fetched listing.
type mutation struct {
	put  *remote.Entity
	drop string
}

// Load returns parentID's listing. A listing younger than its TTL (ttlFor) is
// returned as is. One older than the TTL but younger than twice the TTL is
// returned as is too, and one fetch refreshes it in the background, so a
// walk that outlasts the TTL is not made to wait, nor to list the folder
// again per lookup. Otherwise Load fetches it, one fetch per folder at a
// time (single flight): concurrent callers wait for the same answer. Local
// changes made while a fetch runs (Put, Drop) are applied to its answer.
// ctx bounds only the caller's wait.
func (c *Cache) Load(ctx context.Context, parentID string, fetch Fetch) (*Listing, error) {
	if l, ok := c.lists.Get(parentID); ok {
		age, ttl := c.now().Sub(l.fetched), c.ttlFor(l)
		if age < ttl {
			return l, nil
		}
		if age < 2*ttl {
			c.start(parentID, fetch)
			return l, nil
		}
	}
	f := c.start(parentID, fetch)
	select {
	case <-f.done:
		return f.l, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// start returns the fetch of parentID under way, starting one if none is.
func (c *Cache) start(parentID string, fetch Fetch) *flight {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if f := c.flights[parentID]; f != nil {
		return f
	}
	// A fetch may have finished between the caller's look at the cache and
	// here (run adds its answer under fmu): do not fetch a fresh listing again.
	if l, ok := c.lists.Get(parentID); ok && c.now().Sub(l.fetched) < c.ttlFor(l) {
		f := &flight{done: make(chan struct{}), l: l}
		close(f.done)
		return f
	}
	f := &flight{done: make(chan struct{})}
	c.flights[parentID] = f
	c.fetches++
	go c.run(parentID, f, fetch)
	return f
}

func (c *Cache) run(parentID string, f *flight, fetch Fetch) {
	children, err := fetch()
	c.fmu.Lock()
	if c.flights[parentID] == f {
		delete(c.flights, parentID)
	}
	if err == nil {
		l := newListing(children, c.now())
		for _, m := range f.changes {
			if m.put != nil {
				l.put(*m.put)
			} else {
				l.drop(m.drop)
			}
		}
		if !f.obsolete {
			c.lists.Add(parentID, l)
			c.known.addListing(parentID, l)
		}
		f.l = l
	}
	f.err = err
	c.fmu.Unlock()
	close(f.done)
}

// noteLocked records a local change for the fetch of parentID under way.
// Caller holds c.fmu.
func (c *Cache) noteLocked(parentID string, m mutation) {
	if f := c.flights[parentID]; f != nil {
		f.changes = append(f.changes, m)
	}
}

// Fetches returns how many listing fetches Load has started.
func (c *Cache) Fetches() int {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	return c.fetches
}

func newListing(children []remote.Entity, now time.Time) *Listing {
	l := &Listing{byName: make(map[string]remote.Entity, len(children)), fetched: now}
	for _, e := range children {
		l.byName[e.Name] = e
	}
	return l
}
