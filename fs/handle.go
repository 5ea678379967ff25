package fs

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

var (
	_ bfs.Handle         = (*handle)(nil)
	_ bfs.HandleReader   = (*handle)(nil)
	_ bfs.HandleWriter   = (*handle)(nil)
	_ bfs.HandleFlusher  = (*handle)(nil)
	_ bfs.HandleReleaser = (*handle)(nil)
)

// handle is an open file: on staged bytes (sf set) or on a file that is
// only in Synapse (rf set, read through the block cache; see read.go). A
// handle opened for writing on a file only in Synapse (lazy) starts like
// the latter and stages the file at its first write.
type handle struct {
	n     *file
	write bool
	lazy  fuse.OpenFlags // the open flags, while a lazy handle has not staged

	mu  sync.Mutex     // protects the fields below
	sf  *cache.File    // set at open, or at a lazy handle's first write
	ino uint64         // sf's ino
	ent *remote.Entity // the version rf reads
	rf  *remoteFile    // reads of a file only in Synapse; see remote
}

// staged returns the handle's staged file, or nil.
func (h *handle) staged() *cache.File {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sf
}

// stageNow stages a lazy handle's file for its first write: the current
// Synapse content is copied into the cache.
func (h *handle) stageNow(ctx context.Context) (*cache.File, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sf != nil {
		return h.sf, nil
	}
	sh, err := h.n.stageOpen(ctx, true, h.lazy)
	if err != nil {
		return nil, err
	}
	h.sf, h.ino = sh.sf, sh.ino
	return h.sf, nil
}

// attachStaged makes a read-only handle opened on Synapse's copy read the
// staged bytes the file has had since.
func (h *handle) attachStaged(ctx context.Context) (*cache.File, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sf != nil {
		return h.sf, nil
	}
	sh, err := h.n.openStaged(ctx, fuse.OpenReadOnly)
	if err != nil {
		return nil, err
	}
	h.sf, h.ino = sh.sf, sh.ino
	return h.sf, nil
}

// own returns h's staged file, attaching h first to the bytes its node
// kept if the file was unlinked while open; nil when h has none.
func (h *handle) own() (*cache.File, error) {
	sf := h.staged()
	if sf == nil {
		if gone := h.n.unlinkedFile(); gone != nil {
			return h.attachUnlinked(gone)
		}
	}
	return sf, nil
}

func (h *handle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	sf, err := h.own()
	if err != nil {
		return h.n.fsys.errno("read", h.n.path(), err)
	}
	if sf == nil && h.n.staged() {
		// The file was staged since this handle opened (a truncate, or
		// another handle's write): Synapse's copy is no longer the
		// content. The kernel reads through a write handle to fill the
		// partial pages of a write, so this matters to writers too.
		if h.lazy != 0 {
			sf, err = h.stageNow(ctx)
		} else {
			sf, err = h.attachStaged(ctx)
		}
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			return h.n.fsys.errno("read", h.n.path(), err)
		}
	}
	var rf *remoteFile
	if sf == nil {
		if rf, err = h.remote(ctx); err != nil {
			return h.n.fsys.errno("read", h.n.path(), err)
		}
	}
	if sf == nil && rf != nil && !h.n.orphan() {
		// Hand the kernel slices of the cached blocks, with no copy and
		// no buffer of the read's size (up to 1 MiB). The blocks are not
		// reused until the reply has been written (Release).
		v, release, err := rf.slices(ctx, h.n.fsys.blocks, req.Offset, req.Size)
		if err != nil {
			release()
			return h.n.fsys.errno("read", h.n.path(), err)
		}
		if len(v) > 0 {
			resp.Data, resp.More = v[0], v[1:]
		}
		resp.Release = release
		return nil
	}
	buf := make([]byte, req.Size)
	var k int
	if sf != nil {
		k, err = sf.ReadAt(buf, req.Offset)
	} else {
		// Deleted through the mount and nothing kept (see unlink.go):
		// Synapse no longer serves it. Reads end here.
		err = io.EOF
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return h.n.fsys.errno("read", h.n.path(), err)
	}
	resp.Data = buf[:k]
	return nil
}

// remote returns the handle's view of the file in Synapse (nil for a
// handle on staged bytes). When this mount has uploaded a newer version of
// the same entity since the handle was opened (FS.Stored moved the node
// on), the handle moves to that version: as on a local disk, an open file
// reads what was written to it since. Reading on in the old version would
// also end at its size, which the kernel, knowing the new size, fills with
// zeros.
func (h *handle) remote(ctx context.Context) (*remoteFile, error) {
	h.mu.Lock()
	rf, ent := h.rf, h.ent
	h.mu.Unlock()
	if rf == nil || ent == nil {
		return rf, nil
	}
	h.n.mu.Lock()
	cur := h.n.ent
	h.n.mu.Unlock()
	if cur == nil || cur.ID != ent.ID || cur.Version <= ent.Version {
		return rf, nil
	}
	nh, err := h.n.fsys.openRemote(ctx, h.n, cur)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ent == ent {
		h.rf, h.ent = nh.rf, nh.ent
	}
	return h.rf, nil
}

func (h *handle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	if !h.write {
		return h.n.fsys.errno("write", h.n.path(), errReadOnly)
	}
	sf, err := h.own()
	if err != nil {
		return h.n.fsys.errno("write", h.n.path(), err)
	}
	if sf == nil && h.n.orphan() {
		resp.Size = len(req.Data) // deleted and nothing kept: discarded with the file
		return nil
	}
	if sf == nil {
		if sf, err = h.stageNow(ctx); err != nil {
			return h.n.fsys.errno("write", h.n.path(), err)
		}
	}
	k, err := sf.WriteAt(ctx, req.Data, req.Offset)
	resp.Size = k
	if err != nil {
		// Only a failure pays for the path: this runs for every WRITE.
		// The kernel reports a failed write-back at close(2) without
		// asking synfs, so the node is retired here.
		if sf.Failed() != nil {
			h.n.fsys.retire(h.n)
		}
		return h.n.fsys.errno("write", h.n.path(), err)
	}
	return nil
}

// Flush runs on every close(2): the bytes reach the cache before close
// returns.
func (h *handle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	sf := h.staged()
	if sf == nil || !h.write {
		return nil
	}
	if err := sf.Flush(); err != nil {
		if sf.Failed() != nil {
			h.n.fsys.retire(h.n)
		}
		return h.n.fsys.errno("close", h.n.path(), err)
	}
	// Queue the upload before close returns, so that a flush barrier taken
	// after close sees the file.
	if !sf.Unlinked() {
		h.n.fsys.flusher.Enqueue(h.ino)
	}
	return nil
}

func (h *handle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	var err error
	if h.staged() != nil {
		err = h.n.release(h)
	}
	if cerr := h.n.closed(); err == nil {
		err = cerr
	}
	if err != nil {
		return h.n.fsys.errno("release", h.n.path(), err)
	}
	return nil
}

var _ bfs.HandleFAllocater = (*handle)(nil)

// FAllocate reserves space: without FALLOC_FL_KEEP_SIZE it grows the file
// to offset+length (reading as zeros), as on a local disk; with it there
// is nothing to do, since the cache reserves space as bytes arrive. Other
// modes (punching holes, ...) are not supported.
func (h *handle) FAllocate(ctx context.Context, req *fuse.FAllocateRequest) error {
	if !h.write {
		return h.n.fsys.errno("fallocate", h.n.path(), errReadOnly)
	}
	switch req.Mode {
	case 0:
	case fuse.FAllocateKeepSize:
		return nil
	default:
		return fuse.Errno(syscall.EOPNOTSUPP)
	}
	sf, err := h.own()
	if err != nil {
		return h.n.fsys.errno("fallocate", h.n.path(), err)
	}
	if sf == nil && h.n.orphan() {
		return nil
	}
	if sf == nil {
		if sf, err = h.stageNow(ctx); err != nil {
			return h.n.fsys.errno("fallocate", h.n.path(), err)
		}
	}
	end := int64(req.Offset + req.Length)
	if end <= sf.Size() {
		return nil
	}
	return h.n.fsys.errno("fallocate", h.n.path(), sf.Truncate(ctx, end))
}
