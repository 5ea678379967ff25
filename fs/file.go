package fs

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

var (
	_ bfs.Node          = (*file)(nil)
	_ bfs.NodeOpener    = (*file)(nil)
	_ bfs.NodeSetattrer = (*file)(nil)
	_ bfs.NodeFsyncer   = (*file)(nil)
	_ bfs.NodeForgetter = (*file)(nil)
)

// file is a Synapse File entity, a file staged in the cache, or both (a new
// version being written over an existing entity).
type file struct {
	fsys *FS

	mu      sync.Mutex // protects the fields below
	parent  *dir
	name    string
	ent     *remote.Entity // nil until the file exists in Synapse
	ino     uint64         // staged inode; 0 when nothing is staged
	sf      *cache.File    // the staged file while handles are open
	opens   int            // open handles on sf
	handles int            // open handles of every kind (Open/Create until Release)
	retired bool           // a write failed; lookups make a new node (FS.retire)
	deleted bool           // its entity was deleted through the mount (rm, mv over it) while it may be open
	// unlinked holds the file's bytes once it was unlinked or replaced
	// while handles were open (see unlink.go): one reference, released
	// with the last handle, on a staged file that is never uploaded.
	unlinked *cache.File
}

// orphan reports whether the file's entity was deleted through the mount
// and nothing of it was kept for its handles (they were opened after).
func (n *file) orphan() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.deleted && n.ino == 0 && n.unlinked == nil
}

// gone reports whether the file was unlinked or replaced while open.
func (n *file) gone() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.unlinked != nil || (n.deleted && n.ino == 0)
}

func (n *file) set(d *dir, name string, e *remote.Entity, rec *cache.Record) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.parent, n.name = d, name
	if e != nil {
		if n.ent != nil && n.ent.ID == e.ID && e.Size < 0 && n.ent.Etag == e.Etag && n.ent.Version == e.Version {
			// keep the size we already fetched for this version
		} else {
			c := *e
			n.ent = &c
		}
	}
	if rec != nil {
		n.ino = rec.Ino
	}
}

func (n *file) path() string {
	n.mu.Lock()
	d, name := n.parent, n.name
	n.mu.Unlock()
	return d.pathOf(name)
}

func (n *file) Attr(ctx context.Context, a *fuse.Attr) error {
	a.Valid = n.fsys.attrValid()
	a.Mode = 0o644
	a.Nlink = 1
	a.Uid, a.Gid = n.fsys.uid, n.fsys.gid
	a.BlockSize = 1 << 20
	n.mu.Lock()
	ino, sf, ent, gone := n.ino, n.sf, n.ent, n.unlinked
	n.mu.Unlock()
	if gone != nil {
		// Unlinked or replaced while open: fstat, and the kernel's own
		// setattr of the times when it writes back at close, see the
		// file as on a local disk, with no links.
		a.Nlink = 0
		a.Size = uint64(gone.Size())
		a.Mtime, a.Ctime = gone.Mtime(), gone.Mtime()
		a.Blocks = (a.Size + 511) / 512
		return nil
	}
	if ino != 0 {
		rec, err := n.fsys.store.Get(ino)
		if err == nil {
			a.Size = uint64(rec.Size)
			if sf != nil {
				a.Size = uint64(sf.Size())
			}
			a.Mtime, a.Ctime = rec.Mtime, rec.Mtime
			if rec.Mode != 0 {
				a.Mode = os.FileMode(rec.Mode) & os.ModePerm
			}
			a.Blocks = (a.Size + 511) / 512
			return nil
		}
		if !errors.Is(err, cache.ErrNotFound) {
			return n.fsys.errno("getattr", n.path(), err)
		}
	}
	if ino == 0 && n.orphan() {
		// Deleted through the mount, nothing kept: no links.
		a.Nlink = 0
		if ent != nil && ent.Size > 0 {
			a.Size = uint64(ent.Size)
		}
		a.Blocks = (a.Size + 511) / 512
		return nil
	}
	if ent == nil {
		return n.fsys.errno("getattr", n.path(), cache.ErrNotFound)
	}
	size, mtime, mode, err := n.fsys.remoteAttrs(ctx, ent)
	if err != nil {
		return n.fsys.errno("getattr", n.path(), err)
	}
	if ent.Size < 0 {
		n.mu.Lock()
		if n.ent == ent {
			c := *ent
			c.Size = size
			n.ent = &c
		}
		n.mu.Unlock()
	}
	a.Size = uint64(size)
	a.Blocks = (a.Size + 511) / 512
	a.Mtime, a.Ctime = mtime, ent.ModifiedOn
	a.Mode = mode
	return nil
}

func (n *file) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (bfs.Handle, error) {
	h, err := n.open(ctx, req, resp)
	for try := 0; try < 3 && errors.Is(err, cache.ErrNotFound) && n.hasEntity(); try++ {
		// The upload of the staged file ended between looking at it and
		// opening it (Finish took its record away): it is in Synapse now.
		h, err = n.open(ctx, req, resp)
	}
	if err != nil {
		return nil, n.fsys.errno("open", n.path(), err)
	}
	n.opened()
	return h, nil
}

// hasEntity reports whether n is known to be an entity in Synapse.
func (n *file) hasEntity() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ent != nil
}

func (n *file) open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (*handle, error) {
	if req.Flags.IsReadOnly() {
		if h, err := n.openStaged(ctx, req.Flags); err == nil {
			return h, nil
		} else if !errors.Is(err, cache.ErrNotFound) {
			return nil, err
		}
		n.mu.Lock()
		ent := n.ent
		n.mu.Unlock()
		if ent == nil {
			return nil, cache.ErrNotFound
		}
		return n.fsys.openRemote(ctx, n, ent)
	}
	if req.Flags&fuse.OpenTruncate == 0 && !n.staged() {
		// Opening is not writing (touch, "r+", a lock): nothing is staged
		// until the first write changes the content.
		if h, err := n.openLazy(ctx, req.Flags); err != nil || h != nil {
			if err != nil {
				return nil, err
			}
			resp.Flags |= fuse.OpenKeepCache
			return h, nil
		}
	}
	h, err := n.stageOpen(ctx, req.Flags&fuse.OpenTruncate == 0, req.Flags)
	if err != nil {
		return nil, err
	}
	resp.Flags |= fuse.OpenKeepCache
	return h, nil
}

// stageTries bounds stageOpen's and stagedFile's attempts.
const stageTries = 3

// stageOpen stages n (stage) and opens a handle on its staged file. The
// upload of n's staged file may retire the record between the two: stage
// found it, OpenFile no longer does. n learnt the entity before that
// (FS.Stored), so staging again stages the entity's content anew, as for
// any write to an uploaded file.
func (n *file) stageOpen(ctx context.Context, keep bool, flags fuse.OpenFlags) (*handle, error) {
	for try := 1; ; try++ {
		if err := n.stage(ctx, keep); err != nil {
			return nil, err
		}
		h, err := n.openStaged(ctx, flags)
		if errors.Is(err, cache.ErrNotFound) && try < stageTries {
			continue
		}
		return h, err
	}
}

// stagedFile stages n and returns a reference to its staged file, as
// stageOpen does for a handle.
func (n *file) stagedFile(ctx context.Context, keep bool) (*cache.File, error) {
	for try := 1; ; try++ {
		if err := n.stage(ctx, keep); err != nil {
			return nil, err
		}
		n.mu.Lock()
		ino := n.ino
		n.mu.Unlock()
		sf, err := n.fsys.store.OpenFile(ino)
		if errors.Is(err, cache.ErrNotFound) && try < stageTries {
			continue
		}
		return sf, err
	}
}

// openStaged opens a handle on n's staged bytes; cache.ErrNotFound when
// nothing is staged.
func (n *file) openStaged(ctx context.Context, flags fuse.OpenFlags) (*handle, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ino == 0 {
		return nil, cache.ErrNotFound
	}
	sf, err := n.fsys.store.OpenFile(n.ino)
	if err != nil {
		return nil, err
	}
	write := !flags.IsReadOnly()
	if write && flags&fuse.OpenTruncate != 0 && (sf.Size() > 0 || sf.Failed() != nil) {
		if err := sf.Truncate(ctx, 0); err != nil {
			sf.Release()
			return nil, err
		}
	}
	if write {
		sf.BeginWrite()
	}
	n.sf = sf
	n.opens++
	return &handle{n: n, sf: sf, ino: n.ino, write: write}, nil
}

// staged reports whether n has bytes in the cache.
func (n *file) staged() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ino == 0 {
		return false
	}
	_, err := n.fsys.store.Get(n.ino)
	return err == nil
}

// openLazy opens n, a file only in Synapse, for writing without staging
// it: the handle reads from Synapse and stages the file at its first
// write. It returns nil when n has no entity.
func (n *file) openLazy(ctx context.Context, flags fuse.OpenFlags) (*handle, error) {
	n.mu.Lock()
	ent, parent := n.ent, n.parent
	n.mu.Unlock()
	if ent == nil {
		return nil, nil
	}
	if err := n.fsys.canAdd(ctx, parent.id); err != nil {
		return nil, err
	}
	h, err := n.fsys.openRemote(ctx, n, ent)
	if err != nil {
		return nil, err
	}
	h.write, h.lazy = true, flags&^fuse.OpenTruncate
	return h, nil
}

// stage makes sure n has staged bytes to write to. A file that exists only
// in Synapse becomes a staged new version: empty when keep is false (O_TRUNC),
// otherwise holding a copy of the current content.
func (n *file) stage(ctx context.Context, keep bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ino != 0 {
		if _, err := n.fsys.store.Get(n.ino); err == nil {
			return nil
		}
		n.ino = 0
	}
	if err := n.fsys.canAdd(ctx, n.parent.id); err != nil {
		return err
	}
	var entityID string
	if n.ent != nil {
		entityID = n.ent.ID
	}
	rec, err := n.fsys.store.Create(n.parent.id, n.name, entityID, n.parent.dirPath())
	if errors.Is(err, cache.ErrExist) {
		rec, err = n.fsys.store.Lookup(n.parent.id, n.name)
	}
	if err != nil {
		return err
	}
	if keep && n.ent != nil && n.ent.Size != 0 && rec.Size == 0 {
		if err := n.copyRemoteLocked(ctx, rec.Ino); err != nil {
			n.fsys.store.Remove(rec.Ino)
			return err
		}
	}
	n.ino = rec.Ino
	n.fsys.stagedNode(n, rec.Ino)
	return nil
}

// copyRemoteLocked stages the current Synapse content of n into ino, so that
// a write into the middle of an existing file keeps the rest. Caller holds n.mu.
func (n *file) copyRemoteLocked(ctx context.Context, ino uint64) error {
	rc, err := n.fsys.client.Open(ctx, n.ent, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	sf, err := n.fsys.store.OpenFile(ino)
	if err != nil {
		return err
	}
	defer sf.Release()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		k, rerr := io.ReadFull(rc, buf)
		if k > 0 {
			if _, err := sf.WriteAt(ctx, buf[:k], off); err != nil {
				return err
			}
			off += int64(k)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return sf.Flush()
		}
		if rerr != nil {
			return rerr
		}
	}
}

// release drops one handle's reference on the staged file.
func (n *file) release(h *handle) error {
	var err error
	if h.write {
		err = h.sf.EndWrite()
	}
	if rerr := h.sf.Release(); err == nil {
		err = rerr
	}
	n.mu.Lock()
	n.opens--
	if n.opens == 0 {
		n.sf = nil
	}
	n.mu.Unlock()
	if h.write && !h.sf.Unlinked() {
		n.fsys.flusher.Enqueue(h.ino)
	}
	if errors.Is(err, cache.ErrIncomplete) || errors.As(err, new(*cache.WriteError)) {
		err = nil // close(2) has reported it
	}
	return err
}

func (n *file) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	if err := n.setattr(ctx, req); err != nil {
		return n.fsys.errno("setattr", n.path(), err)
	}
	return n.Attr(ctx, &resp.Attr)
}

// setattr applies truncate, mtime and mode. Synapse has no place for mtime
// and mode: they are kept in the cache, in the staged record and then in
// the version's record (see docs/semantics.md). Owner changes are accepted
// and not kept.
func (n *file) setattr(ctx context.Context, req *fuse.SetattrRequest) error {
	n.mu.Lock()
	gone := n.unlinked
	n.mu.Unlock()
	if gone != nil {
		return setattrUnlinked(ctx, gone, req)
	}
	if n.gone() {
		return nil // ftruncate or futimens of a deleted open file of which nothing was kept
	}
	if req.Valid.Size() {
		sf, err := n.stagedFile(ctx, req.Size > 0)
		if err != nil {
			return err
		}
		ino := sf.Ino()
		err = sf.Truncate(ctx, int64(req.Size))
		if rerr := sf.Release(); err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		n.fsys.flusher.Enqueue(ino)
	}
	if req.Valid.Mtime() || req.Valid.MtimeNow() {
		t := req.Mtime
		if req.Valid.MtimeNow() {
			t = time.Now()
		}
		if err := n.setAttrs(ctx, t, 0); err != nil {
			return err
		}
	}
	if req.Valid.Mode() {
		if err := n.setAttrs(ctx, time.Time{}, modeBits(req.Mode)); err != nil {
			return err
		}
	}
	return nil
}

// setAttrs keeps mtime (unless zero) and mode (unless 0): in the staged
// record while n has one, else for its version in Synapse.
func (n *file) setAttrs(ctx context.Context, mtime time.Time, mode uint32) error {
	n.mu.Lock()
	ino, ent := n.ino, n.ent
	n.mu.Unlock()
	if ino != 0 {
		var err error
		if !mtime.IsZero() {
			err = n.fsys.store.SetMtime(ino, mtime)
		}
		if err == nil && mode != 0 {
			err = n.fsys.store.SetMode(ino, mode)
		}
		if err == nil {
			n.fsys.noteAttrs(ino, mtime, mode)
		}
		if !errors.Is(err, cache.ErrNotFound) {
			return err
		}
		// Uploaded meanwhile: the attributes go with the new version.
		n.mu.Lock()
		ent = n.ent
		n.mu.Unlock()
	}
	if ent == nil {
		return nil
	}
	return n.fsys.setRemoteAttrs(ctx, ent, mtime, mode)
}

// Fsync makes the staged bytes durable on disk; it does not wait for the
// upload, which .synfs/status reports.
func (n *file) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	n.mu.Lock()
	sf := n.sf
	n.mu.Unlock()
	if sf == nil {
		return nil
	}
	return n.fsys.errno("fsync", n.path(), sf.Sync())
}

func (n *file) Forget() {
	n.mu.Lock()
	id, ino := "", n.ino
	if n.ent != nil {
		id = n.ent.ID
	}
	n.mu.Unlock()
	n.fsys.forgetFile(n, id, ino)
}

// uploaded records that staged inode ino is now entity e. It reports
// whether n let go of ino: it keeps it while handles are open on it.
func (n *file) uploaded(ino uint64, e *remote.Entity) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := *e
	n.ent = &c
	if n.ino == ino && n.opens == 0 {
		n.ino = 0
		return true
	}
	return false
}

// stored records that staged inode ino, which n still holds, is now
// entity e in Synapse too (before its record is retired; see FS.Stored);
// n keeps its staged inode until FS.Uploaded.
func (n *file) stored(ino uint64, e *remote.Entity) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ino == ino {
		c := *e
		n.ent = &c
	}
}

func (n *file) dropIno(ino uint64) {
	n.mu.Lock()
	if n.ino == ino {
		n.ino = 0
	}
	n.mu.Unlock()
}

func (n *file) moved(d *dir, name string, e *remote.Entity) {
	n.mu.Lock()
	n.parent, n.name = d, name
	if e != nil {
		c := *e
		n.ent = &c
	}
	n.mu.Unlock()
}
