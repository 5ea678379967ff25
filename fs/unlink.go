package fs

import (
	"context"
	"errors"
	"slices"

	"bazil.org/fuse"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

// Files unlinked or replaced while open. On a local disk a program that
// holds a file open keeps reading, writing and fstat-ing it (link count 0)
// after an rm of it, or a rename over it, until its last close. synfs does
// the same:
//
//   - A file with staged bytes (being written, or uploaded while a handle
//     held it) keeps them: cache.Store.Remove unlinks a staged file that is
//     open instead of deleting it. It leaves its place at once, is never
//     uploaded, and is deleted at the last close.
//   - A file that is only in Synapse has its content copied into such an
//     unlinked staged file before its entity goes to the trash (rm, or a
//     rename of an uploaded file over it), or before the name becomes
//     another file's (a staged file renamed over it becomes its new
//     version). Synapse no longer serves a trashed entity's bytes.
//
// Either way the node keeps a reference on those bytes (file.unlinked)
// until its last handle is released, and every handle on it reads and
// writes them from then on. The node leaves the node maps, so that the
// name, looked up again, is a new node: the kernel sees a new inode.

// opened counts a handle the kernel opened on n.
func (n *file) opened() {
	n.mu.Lock()
	n.handles++
	n.mu.Unlock()
}

// closed counts a handle released; the last one lets go of the bytes of a
// file unlinked while open.
func (n *file) closed() error {
	n.mu.Lock()
	n.handles--
	var gone *cache.File
	if n.handles == 0 && n.unlinked != nil {
		gone, n.unlinked = n.unlinked, nil
	}
	n.mu.Unlock()
	if gone == nil {
		return nil
	}
	return gone.Release()
}

// keepUnlinked is called before n, open or not, loses its name (unlink, or
// a rename over it): when handles are open on n, it keeps n's content for
// them in an unlinked staged file, and takes n out of the node maps.
func (fsys *FS) keepUnlinked(ctx context.Context, n *file) error {
	n.mu.Lock()
	if n.handles == 0 || n.unlinked != nil {
		n.mu.Unlock()
		return nil
	}
	var sf *cache.File
	if n.ino != 0 {
		f, err := fsys.store.OpenFile(n.ino)
		switch {
		case err == nil:
			sf = f
		case !errors.Is(err, cache.ErrNotFound):
			n.mu.Unlock()
			return err
		}
	}
	if sf == nil && n.ent != nil {
		var err error
		if sf, err = fsys.copyUnlinked(ctx, n); err != nil {
			n.mu.Unlock()
			return err
		}
	}
	if sf == nil {
		n.mu.Unlock()
		return nil
	}
	if err := fsys.store.Remove(sf.Ino()); err != nil {
		sf.Release()
		n.mu.Unlock()
		return err
	}
	n.unlinked = sf
	ino, id := n.ino, ""
	n.ino = 0
	if n.ent != nil {
		id = n.ent.ID
	}
	n.mu.Unlock()
	fsys.forgetFile(n, id, ino)
	if ino != sf.Ino() {
		fsys.forgetFile(n, "", sf.Ino())
	}
	return nil
}

// copyUnlinked copies the Synapse content of n (which has no staged bytes)
// into a new unlinked staged file. Caller holds n.mu.
func (fsys *FS) copyUnlinked(ctx context.Context, n *file) (*cache.File, error) {
	sf, err := fsys.store.CreateUnlinked(n.parent.id, n.name)
	if err != nil {
		return nil, err
	}
	if n.ent.Size != 0 {
		if err := n.copyRemoteLocked(ctx, sf.Ino()); err != nil {
			sf.Release()
			return nil, err
		}
	}
	if err := sf.SetMtime(n.ent.ModifiedOn); err != nil && !errors.Is(err, cache.ErrNotFound) {
		fsys.log.Debug("keeping the mtime of an unlinked file", "err", err)
	}
	return sf, nil
}

// nodesOf returns the nodes of the file that is staged record rec and/or
// entity e that the kernel holds: usually one, but a staged new version and
// the entity it replaces can have a node each (a reader opened the latter
// before).
func (fsys *FS) nodesOf(rec *cache.Record, e *remote.Entity) []*file {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	var out []*file
	if rec != nil {
		if n := fsys.byIno[rec.Ino]; n != nil {
			out = append(out, n)
		}
	}
	if e != nil && e.Kind == remote.KindFile {
		if n := fsys.byID[e.ID]; n != nil && (len(out) == 0 || out[0] != n) {
			out = append(out, n)
		}
	}
	return out
}

// keepAllUnlinked is keepUnlinked for each of ns but skip.
func (fsys *FS) keepAllUnlinked(ctx context.Context, ns []*file, skip []*file) error {
	for _, n := range ns {
		if slices.Contains(skip, n) {
			continue
		}
		if err := fsys.keepUnlinked(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// unlinkedFile returns the bytes n keeps for its handles since it was
// unlinked while open, or nil.
func (n *file) unlinkedFile() *cache.File {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.unlinked
}

// attachUnlinked makes h, which has no staged file of its own (it read
// Synapse's copy, or is a lazy writer), use the bytes its node kept when
// the file was unlinked while open.
func (h *handle) attachUnlinked(gone *cache.File) (*cache.File, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sf != nil {
		return h.sf, nil
	}
	sf, err := h.n.fsys.store.OpenFile(gone.Ino()) // one more reference on the open file
	if err != nil {
		return nil, err
	}
	if h.write {
		sf.BeginWrite()
	}
	h.n.mu.Lock()
	h.n.opens++
	h.n.sf = sf
	h.n.mu.Unlock()
	h.sf, h.ino = sf, sf.Ino()
	return sf, nil
}

// setattrUnlinked applies ftruncate and futimens to a file unlinked while
// open, as a local disk does; the mode has nowhere to go.
func setattrUnlinked(ctx context.Context, sf *cache.File, req *fuse.SetattrRequest) error {
	if req.Valid.Size() {
		if err := sf.Truncate(ctx, int64(req.Size)); err != nil {
			return err
		}
	}
	if req.Valid.Mtime() {
		return sf.SetMtime(req.Mtime)
	}
	return nil
}
