package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/meta"
	"github.com/synfs/synfs/remote"
)

// Browsing within Synapse's REST budget (about 600 calls a minute, 3 at a
// time, per user):
//
//   - A folder's listing is fetched by one caller at a time and serves
//     readdir, lookups and negative lookups while fresh; see meta.Cache.Load.
//   - What a file version never changes (size, MD5) is kept in the cache's
//     v/ table, keyed by entity ID and version, with the mtime and mode the
//     user gave it. It is fetched once per version, ever (one bundle2 call),
//     and as soon as a folder is listed, in the background, so that `ls -l`
//     finds it there instead of paying one call per stat.

// prefetchers bounds the background version fetches of one file system.
// The REST client's own limit (3 in flight on Synapse) is the real bound;
// this only keeps the goroutines few.
const prefetchers = 8

// versions fetches file versions' metadata, one fetch per version at a
// time (single flight).
type versions struct {
	sem chan struct{} // prefetch slots

	mu      sync.Mutex // protects the fields below
	flights map[cache.VersionKey]*versionFlight
	attrs   map[uint64]setAttrs // by staged ino; see noteAttrs
}

// setAttrs is an mtime and/or mode set on a staged file of generation gen.
type setAttrs struct {
	gen   uint64
	mtime time.Time
	mode  uint32
}

type versionFlight struct {
	done chan struct{}
	v    cache.Version
	err  error
}

func newVersions() *versions {
	return &versions{sem: make(chan struct{}, prefetchers), flights: map[cache.VersionKey]*versionFlight{},
		attrs: map[uint64]setAttrs{}}
}

// listing returns parentID's children, from the metadata cache or Synapse.
//
// A listing past its TTL is served while one refresh runs in the
// background (meta.Load). One the mount lacks is fetched within the bound
// of offline.go, and when Synapse cannot answer in time (unreachable, or
// slow) the last-known listing answers, stale but immediate. A staged
// folder (local ID) lists nothing from Synapse.
func (fsys *FS) listing(ctx context.Context, parentID string) (*meta.Listing, error) {
	parentID = fsys.resolveID(parentID)
	fetch := func() ([]remote.Entity, error) { return fsys.listRemote(parentID) }
	if cache.IsLocalID(parentID) {
		if l := fsys.meta.StaleListing(parentID); l != nil {
			return l, nil
		}
		return fsys.meta.SetListing(parentID, nil), nil
	}
	if l := fsys.meta.Listing(parentID); l != nil {
		return fsys.meta.Load(ctx, parentID, fetch) // fresh, or served while it is refreshed
	}
	if fsys.slow.Load() {
		// Synapse is slow: one wait of the bound per syscall is enough, not
		// one per path component. The last known listing answers, and a
		// refresh runs in the background.
		if l := fsys.meta.StaleListing(parentID); l != nil {
			go fsys.meta.Load(fsys.ctx, parentID, fetch)
			return l, nil
		}
	}
	err := fsys.bounded(ctx, "list "+parentID, "children\x00"+parentID, func(ctx context.Context) error {
		_, err := fsys.meta.Load(ctx, parentID, fetch)
		return err
	})
	if err == nil || remote.IsTransient(err) {
		if l := fsys.meta.StaleListing(parentID); l != nil {
			return l, nil
		}
	}
	if err == nil {
		return fsys.meta.SetListing(parentID, nil), nil // evicted at once: very unlikely
	}
	return nil, err
}

// listRemote lists parentID in Synapse and starts fetching, in the
// background, the versions of its files that the cache does not hold yet.
func (fsys *FS) listRemote(parentID string) ([]remote.Entity, error) {
	children, err := fsys.client.Children(fsys.ctx, parentID)
	if err != nil {
		return nil, err
	}
	if old := fsys.meta.StaleListing(parentID); old != nil {
		fsys.dropVanished(parentID, old, children)
	}
	var keys []cache.VersionKey
	for _, e := range children {
		if e.Kind == remote.KindFile && e.Version > 0 {
			keys = append(keys, cache.VersionKey{EntityID: e.ID, Version: e.Version})
		}
	}
	if len(keys) == 0 {
		return children, nil
	}
	have, err := fsys.store.Versions(keys)
	if err != nil {
		fsys.log.Warn("reading file versions from the cache: " + err.Error())
		return children, nil
	}
	var missing []cache.VersionKey
	for _, k := range keys {
		if v, ok := have[k]; !ok || v.Size < 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		go fsys.prefetch(missing)
	}
	return children, nil
}

// dropVanished tells the kernel to forget the entries of parentID's
// directory that were in its last listing, old, and are not in children
// (or name another entity now): removed, moved or replaced elsewhere. The
// kernel would otherwise trust such an entry for the rest of its own TTL,
// past the listing that shows it gone, and a create in a removed folder
// would be staged for a folder that no longer exists.
func (fsys *FS) dropVanished(parentID string, old *meta.Listing, children []remote.Entity) {
	fsys.mu.Lock()
	d := fsys.dirs[parentID]
	fsys.mu.Unlock()
	if d == nil {
		return
	}
	now := make(map[string]string, len(children))
	for _, e := range children {
		now[e.Name] = e.ID
	}
	for _, e := range old.Entries() {
		if id, ok := now[e.Name]; !ok || id != e.ID {
			fsys.invalidate(nil, e.Name, d)
		}
	}
}

// prefetch fetches the metadata of versions ks in the background, in
// listing order, with at most prefetchers fetches of this file system in
// flight (the REST client's limit applies below that).
func (fsys *FS) prefetch(ks []cache.VersionKey) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, k := range ks {
		select {
		case fsys.vers.sem <- struct{}{}:
		case <-fsys.ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-fsys.vers.sem }()
			if _, err := fsys.fetchVersion(fsys.ctx, k); err != nil && fsys.ctx.Err() == nil {
				fsys.log.Debug("prefetching file metadata", "id", k.EntityID, "version", k.Version, "err", err)
			}
		}()
	}
}

// version returns what is known of file entity e's version: from the
// cache's v/ table, or fetched from Synapse once and kept there.
func (fsys *FS) version(ctx context.Context, e *remote.Entity) (cache.Version, error) {
	if e.Version < 1 {
		// Not from a listing: ask Synapse which version is current
		// (within the bound; else as last seen).
		got, err := fsys.fileEntity(ctx, e.ID)
		if err != nil {
			return cache.Version{}, err
		}
		e = got
	}
	k := cache.VersionKey{EntityID: e.ID, Version: e.Version}
	if v, ok, err := fsys.store.Version(k.EntityID, k.Version); err == nil && ok && v.Size >= 0 {
		return v, nil
	}
	// Never seen: ask Synapse, but a syscall waits at most the bound
	// (offline.go); the answer is kept when it comes.
	if !fsys.conn.Online() {
		return cache.Version{}, fsys.conn.Err("stat " + e.ID)
	}
	wctx, cancel := context.WithTimeout(ctx, fsys.wait)
	defer cancel()
	v, err := fsys.fetchVersion(wctx, k)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return v, fmt.Errorf("%w: %w", errSlow, &remote.Error{Op: "stat " + e.ID, Kind: remote.ErrTransient,
			Reason: fmt.Sprintf("Synapse did not answer within %v; the answer will be cached when it comes", fsys.wait)})
	}
	return v, err
}

// fetchVersion asks Synapse for version k's size and MD5 (one bundle2
// call), keeps them, and returns the version's record. Concurrent callers
// for the same version share one call; ctx bounds only this caller's wait.
func (fsys *FS) fetchVersion(ctx context.Context, k cache.VersionKey) (cache.Version, error) {
	vs := fsys.vers
	vs.mu.Lock()
	f := vs.flights[k]
	if f == nil {
		f = &versionFlight{done: make(chan struct{})}
		vs.flights[k] = f
		go func() {
			f.v, f.err = fsys.fetchVersionOnce(k)
			vs.mu.Lock()
			delete(vs.flights, k)
			vs.mu.Unlock()
			close(f.done)
		}()
	}
	vs.mu.Unlock()
	select {
	case <-f.done:
		return f.v, f.err
	case <-ctx.Done():
		return cache.Version{}, ctx.Err()
	}
}

func (fsys *FS) fetchVersionOnce(k cache.VersionKey) (cache.Version, error) {
	if v, ok, err := fsys.store.Version(k.EntityID, k.Version); err == nil && ok && v.Size >= 0 {
		return v, nil // kept by a fetch that ended just now
	}
	got, err := fsys.client.Get(fsys.ctx, k.EntityID)
	if err != nil {
		return cache.Version{}, err
	}
	if got.Kind != remote.KindFile {
		return cache.Version{}, &remote.Error{Op: "get " + k.EntityID, Kind: remote.ErrNotFound, Reason: k.EntityID + " is no longer a file"}
	}
	if got.Size < 0 {
		// The caller may not download it: Synapse keeps the size from them.
		return cache.Version{Size: -1}, nil
	}
	if err := fsys.store.PutVersion(got.ID, got.Version, got.Size, got.MD5, got.FileHandleID); err != nil {
		fsys.log.Warn("keeping file metadata in the cache: " + err.Error())
	}
	v, ok, err := fsys.store.Version(got.ID, got.Version)
	if err != nil || !ok {
		v = cache.Version{Size: got.Size, MD5: got.MD5, FileHandle: got.FileHandleID}
	}
	if got.Version != k.Version {
		// The listing was older than the file: what is read now is the new
		// version, and the next listing names it.
		fsys.log.Debug("file changed since its folder was listed", "id", got.ID, "listed", k.Version, "now", got.Version)
	}
	return v, nil
}

// keepVersion records a version synfs itself uploaded: its size and MD5,
// and the mtime and mode the user gave the staged file, so that they
// survive the upload and a remount.
func (fsys *FS) keepVersion(rec cache.Record, e *remote.Entity) {
	if e == nil || e.Version < 1 {
		return
	}
	if err := fsys.store.PutVersion(e.ID, e.Version, e.Size, e.MD5, e.FileHandleID); err != nil {
		fsys.log.Warn("keeping file metadata in the cache: " + err.Error())
		return
	}
	mtime, mode := rec.Mtime, rec.Mode
	vs := fsys.vers
	vs.mu.Lock()
	if a, ok := vs.attrs[rec.Ino]; ok {
		delete(vs.attrs, rec.Ino)
		if a.gen == rec.Gen {
			// Set while the upload ran: the record it read predates them.
			if !a.mtime.IsZero() {
				mtime = a.mtime
			}
			if a.mode != 0 {
				mode = a.mode
			}
		}
	}
	vs.mu.Unlock()
	if err := fsys.store.SetVersionAttrs(e.ID, e.Version, mtime, mode); err != nil {
		fsys.log.Warn("keeping file attributes in the cache: " + err.Error())
	}
}

// keepLateAttrs keeps for e's version the mtime and/or mode set on staged
// file rec after Stored ran keepVersion and before its record was retired.
func (fsys *FS) keepLateAttrs(rec cache.Record, e *remote.Entity) {
	if e == nil || e.Version < 1 {
		return
	}
	vs := fsys.vers
	vs.mu.Lock()
	a, ok := vs.attrs[rec.Ino]
	if ok {
		delete(vs.attrs, rec.Ino)
	}
	vs.mu.Unlock()
	if !ok || a.gen != rec.Gen {
		return
	}
	if err := fsys.store.SetVersionAttrs(e.ID, e.Version, a.mtime, a.mode); err != nil {
		fsys.log.Warn("keeping file attributes in the cache: " + err.Error())
	}
}

// noteAttrs remembers an mtime and/or mode just set on staged file ino.
// The upload reads the file's record when it starts, and the record is
// gone once the upload is final, so attributes set while it runs would
// otherwise be lost for the version it creates; keepVersion applies them
// when the upload was of the same generation.
func (fsys *FS) noteAttrs(ino uint64, mtime time.Time, mode uint32) {
	rec, err := fsys.store.Get(ino)
	if err != nil {
		return
	}
	vs := fsys.vers
	vs.mu.Lock()
	defer vs.mu.Unlock()
	a := vs.attrs[ino]
	if a.gen != rec.Gen {
		a = setAttrs{gen: rec.Gen}
	}
	if !mtime.IsZero() {
		a.mtime = mtime
	}
	if mode != 0 {
		a.mode = mode
	}
	vs.attrs[ino] = a
}

// forgetAttrs drops what noteAttrs kept for ino (its staged file is gone).
func (fsys *FS) forgetAttrs(ino uint64) {
	fsys.vers.mu.Lock()
	delete(fsys.vers.attrs, ino)
	fsys.vers.mu.Unlock()
}

// remoteAttrs fills the size, mtime and mode of a file that is only in
// Synapse: size from the version's record, mtime and mode as the user gave
// them through this cache, else Synapse's modifiedOn and 0644.
func (fsys *FS) remoteAttrs(ctx context.Context, e *remote.Entity) (size int64, mtime time.Time, mode os.FileMode, err error) {
	v, err := fsys.version(ctx, e)
	if err != nil {
		return 0, time.Time{}, 0, err
	}
	size, mtime, mode = max(v.Size, 0), e.ModifiedOn, 0o644
	if !v.Mtime.IsZero() {
		mtime = v.Mtime
	}
	if v.Mode != 0 {
		mode = os.FileMode(v.Mode) & os.ModePerm
	}
	return size, mtime, mode, nil
}

// setRemoteAttrs keeps the mtime and/or mode the user set on a file that
// is only in Synapse, for its current version.
func (fsys *FS) setRemoteAttrs(ctx context.Context, e *remote.Entity, mtime time.Time, mode uint32) error {
	if e.Version < 1 {
		got, err := fsys.client.Get(ctx, e.ID)
		if err != nil {
			return err
		}
		e = got
	}
	return fsys.store.SetVersionAttrs(e.ID, e.Version, mtime, mode)
}

// modeBits is how a chmod's mode is kept: the regular-file type bit with
// the permission bits, so that a mode of 000 is still "set".
func modeBits(m os.FileMode) uint32 { return 0o100000 | uint32(m.Perm()) }

// staleNode returns the node of e's entity when e is a newer version of
// it, made elsewhere, and the node has nothing staged: the file then gets a
// new node, so that the kernel makes a new inode for it. With the
// writeback cache the kernel keeps a regular file's size as its own and
// never takes a new one from getattr, so the old inode would show the old
// version's size for as long as it lives. Versions synfs uploads itself
// are not newer than the node's (Uploaded sets them).
func (fsys *FS) staleNode(e *remote.Entity) *file {
	if e == nil || e.Version < 1 {
		return nil
	}
	fsys.mu.Lock()
	n := fsys.byID[e.ID]
	fsys.mu.Unlock()
	if n == nil {
		return nil
	}
	n.mu.Lock() // not under FS.mu: file.mu comes first in the lock order
	defer n.mu.Unlock()
	if n.ino == 0 && n.opens == 0 && n.ent != nil && n.ent.Version > 0 && e.Version > n.ent.Version {
		return n
	}
	return nil
}
