package fs

import (
	"context"
	"errors"
	"io"
	"sync"

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
// only in Synapse (ent set), read as one forward stream that is reopened
// when the reader seeks.
type handle struct {
	n     *file
	sf    *cache.File
	ino   uint64
	write bool
	ent   *remote.Entity

	mu  sync.Mutex // protects the stream below
	rc  io.ReadCloser
	pos int64
}

func (h *handle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	buf := make([]byte, req.Size)
	var k int
	var err error
	if h.sf != nil {
		k, err = h.sf.ReadAt(buf, req.Offset)
	} else {
		k, err = h.readRemote(ctx, buf, req.Offset)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return h.n.fsys.errno("read", h.n.path(), err)
	}
	resp.Data = buf[:k]
	return nil
}

// maxSkip is the largest forward seek a remote read stream skips by reading.
const maxSkip = 1 << 20

func (h *handle) readRemote(ctx context.Context, buf []byte, off int64) (int, error) {
	if h.ent.Size >= 0 && off >= h.ent.Size {
		return 0, io.EOF
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rc != nil && off > h.pos && off-h.pos <= maxSkip {
		// A small forward seek: read past the gap rather than reconnect.
		k, err := io.CopyN(io.Discard, h.rc, off-h.pos)
		h.pos += k
		if err != nil {
			h.rc.Close()
			h.rc = nil
		}
	}
	if h.rc == nil || h.pos != off {
		if h.rc != nil {
			h.rc.Close()
		}
		rc, err := h.n.fsys.client.Open(h.n.fsys.ctx, h.ent, off, -1)
		if err != nil {
			h.rc = nil
			return 0, err
		}
		h.rc, h.pos = rc, off
	}
	k, err := io.ReadFull(h.rc, buf)
	h.pos += int64(k)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	if err != nil && !errors.Is(err, io.EOF) {
		h.rc.Close()
		h.rc = nil
	}
	return k, err
}

func (h *handle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	if h.sf == nil || !h.write {
		return h.n.fsys.errno("write", h.n.path(), errReadOnly)
	}
	k, err := h.sf.WriteAt(ctx, req.Data, req.Offset)
	resp.Size = k
	if err != nil {
		// Only a failure pays for the path: this runs for every 128 KiB.
		// The kernel reports a failed write-back at close(2) without
		// asking synfs, so the node is retired here.
		if h.sf.Failed() != nil {
			h.n.fsys.retire(h.n)
		}
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
		if h.sf.Failed() != nil {
			h.n.fsys.retire(h.n)
		}
		return h.n.fsys.errno("close", h.n.path(), err)
	}
	// Queue the upload before close returns, so that a flush barrier taken
	// after close sees the file.
	h.n.fsys.flusher.Enqueue(h.ino)
	return nil
}

func (h *handle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	if h.sf == nil {
		h.mu.Lock()
		if h.rc != nil {
			h.rc.Close()
			h.rc = nil
		}
		h.mu.Unlock()
		return nil
	}
	if err := h.n.release(h); err != nil {
		return h.n.fsys.errno("release", h.n.path(), err)
	}
	return nil
}
