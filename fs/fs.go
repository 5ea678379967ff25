package fs

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/blocks"
	"github.com/synfs/synfs/cache/flusher"
	"github.com/synfs/synfs/cache/meta"
	"github.com/synfs/synfs/remote"
)

var (
	_ bfs.FS         = (*FS)(nil)
	_ bfs.FSStatfser = (*FS)(nil)
)

// Options configures a file system.
type Options struct {
	Client  remote.Client
	Store   *cache.Store
	Flusher *flusher.Flusher
	Meta    *meta.Cache
	User    *remote.User // the caller, from Client.Me
	// ReadCache holds blocks of files read from Synapse; nil means a
	// default one (64 MiB).
	ReadCache *blocks.Cache

	// RootID, when set, is the container shown at the mount root; otherwise
	// the root lists the caller's projects.
	RootID string
	// RootName is shown in log lines for the root ("" = "/").
	RootName string

	// AttrValid is how long the kernel may cache attributes and entries. It
	// should match the metadata cache's TTL (default 1 s).
	AttrValid time.Duration

	// Conn, when set, tells whether Synapse is reachable: while it is not,
	// namespace reads answer from what the mount knows without asking.
	Conn *remote.Connectivity
	// RemoteWait bounds how long a syscall waits for a Synapse read
	// (listing, permissions, size) before answering from what is known
	// (default DefaultRemoteWait; see offline.go).
	RemoteWait time.Duration
	// StageFolders makes mkdir stage every folder in the cache, online too,
	// for the flusher to create (as it does offline), instead of creating it
	// in Synapse before mkdir returns. See docs/benchmarks.md.
	StageFolders bool

	UID, GID uint32
	Logger   *slog.Logger
}

// FS is the synfs file system. Create it with New, serve it with Mount.
type FS struct {
	client  remote.Client
	store   *cache.Store
	flusher *flusher.Flusher
	meta    *meta.Cache
	anns    *annCache // annotations by entity ID, for xattrs
	user    remote.User
	rootID  string
	valid   time.Duration
	uid     uint32
	gid     uint32
	log     *slog.Logger

	// otherXattrReads counts reads of attributes outside user.*: the
	// kernel's security.capability checks before writes (SecurityXattrReads).
	otherXattrReads atomic.Int64

	ctx    context.Context // background work (remote read streams); cancelled by Close
	cancel context.CancelFunc
	vers   *versions     // file version metadata fetches (browse.go)
	blocks *blocks.Cache // the read cache (read.go)

	conn     *remote.Connectivity
	wait     time.Duration      // RemoteWait
	stageDir bool               // StageFolders
	flightMu sync.Mutex         // protects flights; a leaf
	flights  map[string]*flight // bounded reads under way (offline.go)

	srv atomic.Pointer[bfs.Server] // the FUSE server, for kernel cache invalidation

	// slow is set when a bounded read outlived RemoteWait, and cleared when
	// one succeeds: meanwhile reads answer from what is known at once
	// instead of each waiting the bound again (offline.go).
	slow atomic.Bool

	trash *trash // the virtual .Trash-$uid at the mount top

	mu    sync.Mutex       // protects the maps below
	dirs  map[string]*dir  // by Synapse ID
	byID  map[string]*file // file nodes by Synapse ID
	byIno map[uint64]*file // file nodes that have staged bytes, by inode
}

// New returns a file system over o's client, cache and flusher.
func New(o Options) *FS {
	if o.AttrValid <= 0 {
		o.AttrValid = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Meta == nil {
		o.Meta = meta.New(meta.Options{TTL: 10 * o.AttrValid})
	}
	if o.RemoteWait <= 0 {
		o.RemoteWait = DefaultRemoteWait
	}
	fsys := &FS{
		client: o.Client, store: o.Store, flusher: o.Flusher, meta: o.Meta,
		rootID: o.RootID, valid: o.AttrValid, uid: o.UID, gid: o.GID, log: o.Logger,
		dirs: map[string]*dir{}, byID: map[string]*file{}, byIno: map[uint64]*file{},
		anns: newAnnCache(10 * o.AttrValid),
		vers: newVersions(), blocks: o.ReadCache,
		conn: o.Conn, wait: o.RemoteWait, flights: map[string]*flight{}, stageDir: o.StageFolders,
	}
	if fsys.blocks == nil {
		fsys.blocks = blocks.New(blocks.Options{})
	}
	if o.User != nil {
		fsys.user = *o.User
	}
	fsys.ctx, fsys.cancel = context.WithCancel(context.Background())
	fsys.trash = newTrash(fsys)
	return fsys
}

// Close stops background reads. Call it after the mount has ended.
func (fsys *FS) Close() {
	fsys.cancel()
	fsys.blocks.Close()
}

// Root returns the mount root: the caller's projects, or the RootID entity.
func (fsys *FS) Root() (bfs.Node, error) {
	d := fsys.dirNode(remote.Entity{ID: fsys.rootID, Kind: remote.KindFolder}, nil, "")
	d.root = true
	return d, nil
}

// Statfs reports the space the write cache can still take, so that file
// managers that check free space before copying see the truth.
func (fsys *FS) Statfs(ctx context.Context, req *fuse.StatfsRequest, resp *fuse.StatfsResponse) error {
	const bsize = 4096
	_, avail := fsys.store.Space()
	used := fsys.store.Used()
	// df shows what the cache holds as used and what it can still take as
	// available; Synapse has no quota to show. There is no inode count.
	resp.Bsize, resp.Frsize = bsize, bsize
	resp.Blocks = uint64(used+avail+bsize-1) / bsize
	resp.Bfree, resp.Bavail = uint64(avail)/bsize, uint64(avail)/bsize
	resp.Files, resp.Ffree = 0, 0
	resp.Namelen = remote.MaxNameLen
	return nil
}

// Stored is the flusher's BeforeFinish hook: the upload of staged file rec
// has made entity e in Synapse, and the staged record is about to be
// retired. The version's size, MD5, mtime and mode are kept, and the
// parent's cached listing learns the entity now, before the record goes:
// lookups and readdir read the staged records first and the listing
// second, so that they find the file as one or the other, never neither.
// The listing is changed under the record's lock (Store.WhileAt) and only
// while the file is still at e's place: a rename or removal of the file,
// which corrects the listing after it, waits for it, and one that came
// first leaves the listing alone (a file renamed while its upload ran is
// not listed again under the name it had). The node of the staged file
// becomes the entity's node too, so that a lookup by the entity finds the
// same node, an open that finds the record gone opens the entity, and its
// handles that read from Synapse move to the new version (handle.remote)
// as soon as the staged bytes are gone.
func (fsys *FS) Stored(rec cache.Record, e *remote.Entity) {
	if e == nil {
		return
	}
	fsys.keepVersion(rec, e)
	fsys.mu.Lock()
	n := fsys.byIno[rec.Ino]
	fsys.mu.Unlock()
	at, err := fsys.store.WhileAt(rec.Ino, e.ParentID, e.Name, func() { fsys.meta.Put(*e) })
	if err != nil {
		fsys.log.Debug("listing an uploaded file", "file", e.Name, "err", err)
	}
	if at && n != nil {
		n.stored(rec.Ino, e) // not under the record's lock: file.mu comes first
		// n is the node at e's place, even when another node had e: a file
		// renamed over an uploaded one becomes a new version of its entity,
		// and the node it replaced must not answer the next lookup (the
		// kernel would get a second inode, with its own size, for a file
		// still open through the first).
		fsys.mu.Lock()
		fsys.byID[e.ID] = n
		fsys.mu.Unlock()
	}
}

// Uploaded is the flusher's OnUploaded hook: the staged file rec is now
// entity e in Synapse. The node keeps its identity and now reads from
// Synapse. The parent's cached listing learnt the entity in Stored, before
// the record was retired; it is not put there again here, because the
// file may have been renamed since (the rename finds the entity, moves it,
// and a Put of e would list it again at the name it had).
//
// A node with handles still open keeps its staged inode: those handles
// read and write the staged bytes, and a later write stages the file
// again under the same node. A node without handles drops it, and the
// kernel's cached pages of the file are invalidated, so that reads follow
// the new version.
func (fsys *FS) Uploaded(rec cache.Record, e *remote.Entity) {
	fsys.keepLateAttrs(rec, e)
	if now, err := fsys.store.Get(rec.Ino); err == nil && (now.ParentID != e.ParentID || now.Name != e.Name) {
		// Renamed while this upload was under way (a writer had it open,
		// so the rename did not wait): e is where the entity was, not
		// where it is. Forget both places rather than list a ghost.
		fsys.meta.Drop(e.ParentID, e.Name)
		fsys.meta.Invalidate(e.ParentID)
		fsys.meta.Invalidate(now.ParentID)
	}
	// The listing learnt e in Created, before the record went. Putting it
	// again here would bring back a name that a rename or an unlink took
	// away in between.
	fsys.anns.drop(e.ID)
	fsys.mu.Lock()
	n := fsys.byIno[rec.Ino]
	if n == nil {
		n = fsys.byID[e.ID]
	}
	fsys.mu.Unlock()
	if n == nil {
		return
	}
	dropped := n.uploaded(rec.Ino, e) // file.mu before FS.mu
	fsys.mu.Lock()
	if dropped && fsys.byIno[rec.Ino] == n {
		delete(fsys.byIno, rec.Ino)
	}
	if _, taken := fsys.byID[e.ID]; !taken {
		fsys.byID[e.ID] = n
	}
	fsys.mu.Unlock()
	if dropped {
		fsys.invalidate(n, "", nil)
	}
}

// invalidate tells the kernel, from its own goroutine, to drop its cached
// pages and attributes of node n and, when name is set, the entry name in
// directory d. Invalidations are sent outside FUSE request handlers: the
// kernel may need the handler's answer before it can take them.
func (fsys *FS) invalidate(n bfs.Node, name string, d *dir) {
	srv := fsys.srv.Load()
	if srv == nil {
		return
	}
	go func() {
		if n != nil {
			_ = srv.InvalidateNodeData(n)
		}
		if d != nil && name != "" {
			_ = srv.InvalidateEntry(d, name)
		}
	}()
}

// retire forgets node n, a write to which failed: the kernel believes the
// size the program wrote, which synfs does not hold, and it trusts its own
// size of a file it writes back. The next lookup of the name makes a new
// node, so the kernel sees the staged size and bytes, not zeros. It runs
// in the handler of the first failed write (or close), before it answers:
// no lock is held, and the kernel takes only the directory's lock for the
// invalidation, which neither holds.
func (fsys *FS) retire(n *file) {
	n.mu.Lock()
	d, name, ino, id := n.parent, n.name, n.ino, ""
	if n.ent != nil {
		id = n.ent.ID
	}
	done := n.retired
	n.retired = true
	n.mu.Unlock()
	if done {
		return
	}
	fsys.forgetFile(n, id, ino)
	if srv := fsys.srv.Load(); srv != nil && d != nil {
		_ = srv.InvalidateEntry(d, name)
	}
}

// Absent reports whether the mount's listing of parentID, as last known,
// has no entity called name (the flusher's Options.Absent). It need not be
// fresh: the mount's own creates and moves keep it up to date, and a name
// another client took since makes the create clash (409), which Upload
// answers with a lookup and an update; so a large copy that outlives the
// listing's TTL still costs no lookup per file.
func (fsys *FS) Absent(parentID, name string) bool {
	l := fsys.meta.StaleListing(parentID)
	if l == nil {
		return false
	}
	_, ok := l.Get(name)
	return !ok
}

// dirNode returns the one node for container e.
func (fsys *FS) dirNode(e remote.Entity, parent *dir, path string) *dir {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if d := fsys.dirs[e.ID]; d != nil {
		d.setEntity(e, path)
		return d
	}
	d := &dir{fsys: fsys, id: e.ID}
	d.setEntity(e, path)
	fsys.dirs[e.ID] = d
	return d
}

// fileNode returns the one node for the file that is entity e (may be nil)
// and/or staged record rec (may be nil), in directory d.
func (fsys *FS) fileNode(d *dir, name string, e *remote.Entity, rec *cache.Record) *file {
	stale := fsys.staleNode(e)
	fsys.mu.Lock()
	var n *file
	if rec != nil {
		n = fsys.byIno[rec.Ino]
	}
	if n == nil && e != nil {
		n = fsys.byID[e.ID]
		if n != nil && n == stale {
			n = nil
		}
	}
	if n == nil {
		n = &file{fsys: fsys}
	}
	if e != nil {
		fsys.byID[e.ID] = n
	}
	if rec != nil {
		fsys.byIno[rec.Ino] = n
	}
	fsys.mu.Unlock() // lock order: file.mu before FS.mu, never inside it
	n.set(d, name, e, rec)
	return n
}

// stagedNode registers n as the node of staged inode ino.
func (fsys *FS) stagedNode(n *file, ino uint64) {
	fsys.mu.Lock()
	fsys.byIno[ino] = n
	fsys.mu.Unlock()
}

// forgetFile drops n from the maps when the kernel forgets it.
func (fsys *FS) forgetFile(n *file, id string, ino uint64) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if id != "" && fsys.byID[id] == n {
		delete(fsys.byID, id)
	}
	if ino != 0 && fsys.byIno[ino] == n {
		delete(fsys.byIno, ino)
	}
}

func (fsys *FS) forgetDir(d *dir) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if fsys.dirs[d.id] == d && !d.root {
		delete(fsys.dirs, d.id)
	}
	d.mu.Lock()
	alias := d.ent.ID // a staged folder's entity, once created (FolderCreated)
	d.mu.Unlock()
	if alias != d.id && fsys.dirs[alias] == d {
		delete(fsys.dirs, alias)
	}
}

// canAdd decides at create/mkdir time whether the caller may add children to
// container id, so that the syscall fails at once with EACCES rather than
// the upload failing later. When Synapse cannot be asked in time (outage,
// or slower than RemoteWait), it uses the last answer known, and without
// one it allows the create: the bytes are kept and the flusher reports any
// refusal in the file's failed state.
func (fsys *FS) canAdd(ctx context.Context, id string) error {
	if id == "" {
		return errNoProjects
	}
	if !fsys.user.Certified {
		return &remote.Error{Op: "create", Status: 403, Reason: remote.CertifiedOnlyReason, Kind: remote.ErrNotCertified}
	}
	if id = fsys.resolveID(id); cache.IsLocalID(id) {
		return nil // a staged folder: its parent's permissions were checked at mkdir
	}
	p, ok, err := fsys.permsOf(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return nil // Synapse cannot be asked and nothing is known
	}
	if !p.CanAddChild {
		return &remote.Error{Op: "create", Status: 403, Kind: remote.ErrPermission,
			Reason: "you lack permission to add files or folders to " + id + " in Synapse (ask its administrator for Edit access)"}
	}
	return nil
}

func (fsys *FS) attrValid() time.Duration { return fsys.valid }
