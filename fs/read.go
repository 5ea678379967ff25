package fs

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/synfs/synfs/cache/blocks"
	"github.com/synfs/synfs/remote"
)

// The read path of a file that is only in Synapse. Opening it costs
// nothing: the presigned URL is fetched on the first read (remote.Client
// Download), and every read goes through the shared block cache
// (cache/blocks), which fetches the missing blocks with HTTP Range
// requests. A handle that reads sequentially prefetches ahead, doubling its
// window up to maxAhead blocks; a random read fetches only the blocks it
// touches. Memory is bounded by the block cache's size whatever the number
// and size of the open files.

// maxAhead is the largest read-ahead window of one handle, in blocks.
const maxAhead = 16

// remoteFile is one open handle's view of a Synapse file version.
type remoteFile struct {
	fr   remote.FileReader
	key  string // entity ID and version: the block cache's file name
	size int64  // -1 when unknown

	mu     sync.Mutex // protects the read-ahead state below
	next   int64      // where a sequential reader reads next
	window int64      // read-ahead window in blocks; 0 after a random read
}

// openRemote opens a read handle on e, a file that is only in Synapse. It
// makes no REST call when the version's size is known (the usual case
// after a listing).
func (fsys *FS) openRemote(ctx context.Context, n *file, e *remote.Entity) (*handle, error) {
	ent := *e
	size := ent.Size
	if v, err := fsys.version(ctx, &ent); err == nil {
		if size < 0 {
			size = v.Size
		}
		if ent.FileHandleID == "" {
			ent.FileHandleID = v.FileHandle
		}
	} else if !remote.IsTransient(err) {
		return nil, err
	}
	fr, err := fsys.client.Download(ctx, &ent)
	if err != nil {
		return nil, err
	}
	rf := &remoteFile{fr: fr, key: ent.ID + "@" + strconv.FormatInt(ent.Version, 10), size: size}
	return &handle{n: n, ent: &ent, rf: rf}, nil
}

func (rf *remoteFile) fetch(ctx context.Context, p []byte, off int64) (int, error) {
	return rf.fr.ReadAt(ctx, p, off)
}

// slice serves one READ of n bytes at off from the block cache without a
// copy when it lies within one block (ok), and moves the read-ahead on.
func (rf *remoteFile) slice(ctx context.Context, bc *blocks.Cache, off int64, n int) (b []byte, ok bool, err error) {
	if rf.size >= 0 && off >= rf.size {
		return nil, true, nil
	}
	if bs := int64(bc.BlockSize()); off%bs+int64(n) > bs {
		return nil, false, nil // spans two blocks: read copies
	}
	rf.readAhead(bc, off, int64(n))
	return bc.Slice(ctx, rf.key, rf.size, rf.fetch, off, n)
}

// read serves one READ from the block cache and moves the read-ahead on.
func (rf *remoteFile) read(ctx context.Context, bc *blocks.Cache, buf []byte, off int64) (int, error) {
	if rf.size >= 0 && off >= rf.size {
		return 0, io.EOF
	}
	rf.readAhead(bc, off, int64(len(buf)))
	k, err := bc.ReadAt(ctx, rf.key, rf.size, rf.fetch, buf, off)
	if errors.Is(err, io.EOF) {
		err = nil
		if k == 0 {
			err = io.EOF
		}
	}
	return k, err
}

// readAhead updates the sequential-read window for a read of n bytes at
// off, and prefetches the blocks after it.
func (rf *remoteFile) readAhead(bc *blocks.Cache, off, n int64) {
	rf.mu.Lock()
	if off == rf.next {
		rf.window = min(max(2*rf.window, 2), maxAhead)
	} else {
		rf.window = 0
	}
	rf.next = off + n
	window := rf.window
	rf.mu.Unlock()
	if window == 0 {
		return
	}
	bs := int64(bc.BlockSize())
	from := (off + n + bs - 1) / bs
	if (off+n)%bs != 0 {
		from = (off + n) / bs // the block this read ends in, if partly read
	}
	bc.Prefetch(rf.key, rf.size, rf.fetch, from, from+window)
}
