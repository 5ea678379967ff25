package fs

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

// Offline fallback: the namespace reads that a syscall makes (listings,
// permissions, a file's size) never wait for Synapse longer than
// Options.RemoteWait, and when Synapse is unreachable they do not wait at
// all. Either way the answer comes from what the mount last knew (the
// metadata cache's last-known tables), stale but immediate; only what the
// mount never saw fails: ENOTCONN while Synapse is unreachable, EAGAIN when
// it is merely slow. A call that outlives the wait goes on in the
// background and fills the cache for the next syscall.

// DefaultRemoteWait is the default bound on how long a syscall waits for a
// Synapse read before answering from what is known.
const DefaultRemoteWait = 3 * time.Second

// backgroundCallMax bounds a read that went on in the background.
const backgroundCallMax = 2 * time.Minute

// errSlow marks a call that Synapse did not answer within RemoteWait (it
// goes on in the background). It comes with an ErrTransient (EAGAIN).
var errSlow = errors.New("slow")

// flight is one background read shared by every syscall that needs it.
type flight struct {
	done chan struct{}
	err  error
}

// bounded runs fn, a read whose answer fn stores in the caches, and waits
// for it at most fsys.wait (or until ctx ends). Concurrent calls with the
// same key share one call of fn. While Synapse is known to be unreachable
// it fails at once with remote.ErrOffline.
func (fsys *FS) bounded(ctx context.Context, op, key string, fn func(ctx context.Context) error) error {
	_, _, err := fsys.boundedFlight(ctx, op, key, fn)
	return err
}

// boundedFlight is bounded, and also returns the call it waited for, and
// whether this call started it (ran its own fn) rather than sharing one.
func (fsys *FS) boundedFlight(ctx context.Context, op, key string, fn func(ctx context.Context) error) (f *flight, mine bool, err error) {
	if !fsys.conn.Online() {
		return nil, false, fsys.conn.Err(op)
	}
	fsys.flightMu.Lock()
	f = fsys.flights[key]
	if f == nil {
		mine = true
		f = &flight{done: make(chan struct{})}
		fsys.flights[key] = f
		go func() {
			cctx, cancel := context.WithTimeout(fsys.ctx, backgroundCallMax)
			f.err = fn(cctx)
			cancel()
			if f.err == nil {
				fsys.slow.Store(false) // Synapse answers again
			}
			fsys.flightMu.Lock()
			delete(fsys.flights, key)
			fsys.flightMu.Unlock()
			close(f.done)
		}()
	}
	fsys.flightMu.Unlock()
	t := time.NewTimer(fsys.wait)
	defer t.Stop()
	select {
	case <-f.done:
		return f, mine, f.err
	case <-t.C:
		if !fsys.conn.Online() {
			return f, mine, fsys.conn.Err(op)
		}
		fsys.slow.Store(true)
		return f, mine, fmt.Errorf("%w: %w", errSlow, &remote.Error{Op: op, Kind: remote.ErrTransient,
			Reason: fmt.Sprintf("Synapse did not answer within %v; the answer will be cached when it comes", fsys.wait)})
	case <-ctx.Done():
		return f, mine, ctx.Err()
	}
}

// waitFlight waits for the background call with key to end, if one runs,
// or until ctx ends.
func (fsys *FS) waitFlight(ctx context.Context, key string) error {
	fsys.flightMu.Lock()
	f := fsys.flights[key]
	fsys.flightMu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func mkdirKey(parentID, name string) string { return "mkdir\x00" + parentID + "\x00" + name }

// folderCreate is a mkdir's create in Synapse, which may outlive the bound.
type folderCreate struct {
	f    *flight
	mine bool                          // this mkdir sent it, rather than sharing another's
	got  atomic.Pointer[remote.Entity] // what it made, once it has answered
}

// ours reports whether folder e, found in its place after the bound
// passed, is this mkdir's: made by its create, or found while that create
// still runs, so that Synapse may have made it before its answer came.
func (c *folderCreate) ours(e *remote.Entity) bool {
	if c == nil || !c.mine || e == nil || !e.Kind.IsContainer() {
		return false
	}
	if got := c.got.Load(); got != nil {
		return got.ID == e.ID
	}
	select {
	case <-c.f.done:
		return false // it failed
	default:
		return true
	}
}

// change runs fn, a call that changes something in Synapse, on a context
// that outlives an interrupt by the bound (remote.Outlive). The kernel
// interrupts a syscall for any signal that arrives meanwhile (Go programs
// get one for every runtime preemption), and the syscall is then made
// again: a change Synapse had already made when the call gave up was then
// answered EEXIST (mkdir) or ENOENT (rmdir, rm, mv). Given the bound to
// finish, the call answers with what really happened. It does not start
// fn once ctx is done.
func (fsys *FS) change(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lctx, cancel := remote.Outlive(ctx, fsys.wait)
	defer cancel()
	return fn(lctx)
}

// createFolderBounded is CreateFolder within the bound. When the bound
// passes first (errSlow), the create goes on and mkdir stages the folder
// (mkdirOffline, with the create it returns): the flusher's create then
// finds this one (ErrExist) and adopts it. Concurrent mkdirs of one name
// share one create; all but the first get ErrExist.
func (fsys *FS) createFolderBounded(ctx context.Context, parentID, name string) (*remote.Entity, *folderCreate, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	// The create runs on the file system's context; an interrupt must not
	// end the wait for it either (remote.Outlive, as in change), or the mkdir made again
	// would find this one's folder.
	ctx, cancel := remote.Outlive(ctx, fsys.wait)
	defer cancel()
	c := &folderCreate{}
	var err error
	c.f, c.mine, err = fsys.boundedFlight(ctx, "mkdir "+name+" in "+parentID, mkdirKey(parentID, name), func(ctx context.Context) error {
		e, err := fsys.client.CreateFolder(ctx, parentID, name)
		if err == nil {
			c.got.Store(e) // before the entity is known by name: see ours
			fsys.meta.Put(*e)
		}
		return err
	})
	switch {
	case err != nil:
		return nil, c, err
	case c.got.Load() == nil:
		return nil, nil, cache.ErrExist // another mkdir of this name made it
	}
	return c.got.Load(), nil, nil
}

// permsOf returns the caller's permissions on id: cached, else asked within
// the bound, else the last known. ok is false when none is known and
// Synapse could not be asked.
func (fsys *FS) permsOf(ctx context.Context, id string) (p remote.Permissions, ok bool, err error) {
	if p, ok := fsys.meta.Perms(id); ok {
		return p, true, nil
	}
	err = fsys.bounded(ctx, "permissions of "+id, "perms\x00"+id, func(ctx context.Context) error {
		got, err := fsys.client.Permissions(ctx, id)
		if err == nil {
			fsys.meta.SetPerms(id, *got)
		}
		return err
	})
	if err != nil && !remote.IsTransient(err) {
		return p, false, err
	}
	p, ok = fsys.meta.StalePerms(id)
	return p, ok, nil
}

// fileEntity returns file id as Synapse has it now (with size and MD5),
// within the bound, else as last seen.
func (fsys *FS) fileEntity(ctx context.Context, id string) (*remote.Entity, error) {
	var got *remote.Entity
	err := fsys.bounded(ctx, "stat "+id, "get\x00"+id, func(ctx context.Context) error {
		e, err := fsys.client.Get(ctx, id)
		if err == nil {
			fsys.meta.Remember(*e)
			got = e
		}
		return err
	})
	switch {
	case err == nil && got != nil:
		return got, nil
	case err == nil, remote.IsTransient(err):
		if e, ok := fsys.meta.Remembered(id); ok && e.Size >= 0 {
			return &e, nil
		}
	}
	if err == nil {
		err = errors.New("stat " + id + ": no answer")
	}
	return nil, err
}

// boundedAnnotations reads entity id's annotations within the bound, else
// returns the last ones read (getfattr while Synapse is unreachable).
func (fsys *FS) boundedAnnotations(ctx context.Context, id string) (*remote.Annotations, error) {
	var got *remote.Annotations
	err := fsys.bounded(ctx, "annotations of "+id, "anns\x00"+id, func(ctx context.Context) error {
		a, err := fsys.client.Annotations(ctx, id)
		if err == nil {
			got = a
			fsys.anns.put(id, a, "")
		}
		return err
	})
	switch {
	case err == nil && got != nil:
		return got, nil
	case err == nil, remote.IsTransient(err):
		if a := fsys.anns.last(id); a != nil {
			return a, nil
		}
	}
	if err == nil {
		err = errors.New("annotations of " + id + ": no answer")
	}
	return nil, err
}

// interruptedUpload refuses, while Synapse is unreachable, to rename or
// remove a staged file whose upload was under way: it may have created the
// entity already, which only Synapse can tell, so going on could leave an
// entity behind (ENOTCONN rather than a second entity).
func (fsys *FS) interruptedUpload(rec *cache.Record) error {
	if rec.State == cache.StateUploading && !fsys.conn.Online() {
		return fsys.conn.Err("rename or remove of a file whose upload was under way")
	}
	return nil
}

// Connection is what the mount knows about reaching Synapse, for status
// displays (.synfs/status, synfs status).
type Connection struct {
	Online    bool
	Since     time.Time // when it went offline (or came back); zero if it never changed
	NextProbe time.Time // offline: when synfs next asks whether Synapse is back
	Probes    int       // offline: probes failed so far
	Reason    string    // offline: why, in the transport's or Synapse's words
	Staged    int       // staged files not yet uploaded (failed ones included)
	Folders   int       // staged folders not yet created
	Paused    bool      // uploads wait for Synapse
	// TokenRefused says Synapse answers but refuses the access token:
	// uploads wait for a valid one.
	TokenRefused bool
}

// Connection returns the connectivity state and how much waits for it.
func (fsys *FS) Connection() Connection {
	st := fsys.conn.State()
	c := Connection{Online: st.Online, Since: st.Since, NextProbe: st.NextProbe, Probes: st.Probes,
		Reason: st.LastErr, Paused: fsys.flusher.Paused(), TokenRefused: st.TokenRefused}
	if inos, err := fsys.store.Pending(); err == nil {
		c.Staged = len(inos)
	}
	c.Folders = len(fsys.flusher.Folders())
	return c
}

// String renders c as the status line: "Synapse: online", or "Synapse:
// offline since 06:41:02 (1m12s), 3 staged, uploads paused, next probe in
// 4s: <reason>".
func (c Connection) String() string {
	if c.Online {
		return "Synapse: online"
	}
	now := time.Now()
	what := "offline"
	if c.TokenRefused {
		what = "refuses the access token"
	}
	s := fmt.Sprintf("Synapse: %s since %s (%s), %d staged, uploads paused",
		what, c.Since.Format(time.TimeOnly), now.Sub(c.Since).Round(time.Second), c.Staged)
	if c.Folders > 0 {
		s = fmt.Sprintf("Synapse: %s since %s (%s), %d staged files and %d folders, uploads paused",
			what, c.Since.Format(time.TimeOnly), now.Sub(c.Since).Round(time.Second), c.Staged, c.Folders)
	}
	if !c.NextProbe.IsZero() {
		s += fmt.Sprintf(", next probe in %s", max(0, c.NextProbe.Sub(now)).Round(100*time.Millisecond))
	}
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	if c.TokenRefused {
		s += "; put a valid Personal Access Token (synapse.org, Account Settings) in ~/.synapseConfig (or the --config file): synfs reads it again at each probe"
	}
	return s
}
