package fs

import (
	"context"
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

// slices serves one READ of n bytes at off from the block cache, as slices
// of the cached blocks it touches (no copy), and moves the read-ahead on.
// It returns no slice at or past the end of the file. The caller calls
// release once the slices have been written (on error too).
func (rf *remoteFile) slices(ctx context.Context, bc *blocks.Cache, off int64, n int) (v [][]byte, release func(), err error) {
	if rf.size >= 0 && off >= rf.size {
		return nil, func() {}, nil
	}
	rf.readAhead(bc, off, int64(n))
	return bc.Slices(ctx, rf.key, rf.size, rf.fetch, off, n, make([][]byte, 0, 2))
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
