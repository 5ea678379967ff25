package fs

import (
	"context"
	"errors"
	"io"

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
// only in Synapse (rf set, read through the block cache; see read.go).
type handle struct {
	n     *file
	sf    *cache.File
	ino   uint64
	write bool
	ent   *remote.Entity
	rf    *remoteFile
}

func (h *handle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	if h.rf != nil {
		// Most reads lie within one cached block: hand the kernel a slice
		// of it, with no allocation and no copy.
		b, ok, err := h.rf.slice(ctx, h.n.fsys.blocks, req.Offset, req.Size)
		if err != nil {
			return h.n.fsys.errno("read", h.n.path(), err)
		}
		if ok {
			resp.Data = b
			return nil
		}
	}
	buf := make([]byte, req.Size)
	var k int
	var err error
	if h.sf != nil {
		k, err = h.sf.ReadAt(buf, req.Offset)
	} else {
		k, err = h.rf.read(ctx, h.n.fsys.blocks, buf, req.Offset)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return h.n.fsys.errno("read", h.n.path(), err)
	}
	resp.Data = buf[:k]
	return nil
}

func (h *handle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	if h.sf == nil || !h.write {
		return h.n.fsys.errno("write", h.n.path(), errReadOnly)
	}
	k, err := h.sf.WriteAt(ctx, req.Data, req.Offset)
	resp.Size = k
	if err != nil {
		// Only a failure pays for the path: this runs for every 128 KiB.
		return h.n.fsys.errno("write", h.n.path(), err)
	}
	return nil
}

// Flush runs on every close(2): the bytes reach the cache before close
// returns.
func (h *handle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	if h.sf == nil || !h.write {
		return nil
	}
	if err := h.sf.Flush(); err != nil {
		return h.n.fsys.errno("close", h.n.path(), err)
	}
	// Queue the upload before close returns, so that a flush barrier taken
	// after close sees the file.
	h.n.fsys.flusher.Enqueue(h.ino)
	return nil
}

func (h *handle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	if h.sf == nil {
		return nil
	}
	if err := h.n.release(h); err != nil {
		return h.n.fsys.errno("release", h.n.path(), err)
	}
	return nil
}
