package fs

import (
	"strconv"
	"sync"
	"time"

	"github.com/synfs/synfs/remote"
)

// annCache keeps entities' annotations, so that getfattr costs no REST call
// while an entity is unchanged. An entry is fresh while the entity's
// modifiedOn in its parent's cached listing (the stamp; Synapse changes it
// with the etag on every change, annotations included) is the one seen when
// the entry was stored; when either side has no stamp, for ttl after it was
// stored. So a change made elsewhere shows once the listing is fetched
// again, or after ttl: both are the listing TTL. No entry is used after
// maxAge, which bounds what two changes within one millisecond (the same
// modifiedOn) could hide.
//
// It also keeps the MD5 of file versions, which never changes, so that
// user.synapse.md5 costs a Get only once per version.
type annCache struct {
	ttl    time.Duration
	maxAge time.Duration
	max    int

	mu   sync.Mutex // protects the maps
	m    map[string]annEntry
	sums map[string]string // "syn1.3" → MD5 of version 3 of syn1
}

type annEntry struct {
	a     *remote.Annotations
	stamp string
	at    time.Time
}

func newAnnCache(ttl time.Duration) *annCache {
	return &annCache{ttl: ttl, maxAge: max(ttl, time.Minute), max: 4096, m: map[string]annEntry{}, sums: map[string]string{}}
}

// get returns entity id's annotations if the entry is fresh for stamp, or
// nil. The caller must not change the result.
func (c *annCache) get(id, stamp string) *remote.Annotations {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	switch {
	case !ok, time.Since(e.at) > c.maxAge:
		return nil
	case stamp != "" && e.stamp != "":
		if stamp == e.stamp {
			return e.a
		}
		return nil
	case time.Since(e.at) < c.ttl:
		return e.a
	}
	return nil
}

// put stores a as entity id's annotations, seen with stamp.
func (c *annCache) put(id string, a *remote.Annotations, stamp string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok && len(c.m) >= c.max {
		for k := range c.m { // drop an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[id] = annEntry{a: a, stamp: stamp, at: time.Now()}
}

// last returns entity id's annotations as last stored, however old, or
// nil: the answer when Synapse cannot be asked (offline.go).
func (c *annCache) last(id string) *remote.Annotations {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id].a
}

// drop forgets entity id's annotations (its etag changed).
func (c *annCache) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// sum returns the MD5 of version v of file id, if known.
func (c *annCache) sum(id string, v int64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sums[id+"."+strconv.FormatInt(v, 10)]
}

// setSum records the MD5 of version v of file id.
func (c *annCache) setSum(id string, v int64, md5 string) {
	if md5 == "" || v == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sums) >= c.max {
		for k := range c.sums {
			delete(c.sums, k)
			break
		}
	}
	c.sums[id+"."+strconv.FormatInt(v, 10)] = md5
}
