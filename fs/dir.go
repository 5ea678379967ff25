package fs

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

var (
	_ bfs.Node                = (*dir)(nil)
	_ bfs.NodeRequestLookuper = (*dir)(nil)
	_ bfs.HandleReadDirAller  = (*dir)(nil)
	_ bfs.NodeCreater         = (*dir)(nil)
	_ bfs.NodeMkdirer         = (*dir)(nil)
	_ bfs.NodeRemover         = (*dir)(nil)
	_ bfs.NodeRenamer         = (*dir)(nil)
	_ bfs.NodeForgetter       = (*dir)(nil)
	_ bfs.NodeFsyncer         = (*dir)(nil)
	_ bfs.NodeSymlinker       = (*dir)(nil)
	_ bfs.NodeLinker          = (*dir)(nil)
)

// dir is a Synapse Project or Folder, or the projects root (id "").
type dir struct {
	fsys *FS
	id   string // Synapse ID; "" for the projects root
	root bool

	mu   sync.Mutex // protects the fields below
	ent  remote.Entity
	path string // for log lines only
}

func (d *dir) setEntity(e remote.Entity, path string) {
	d.mu.Lock()
	if e.Name != "" || d.ent.ID == "" {
		d.ent = e
	}
	if path != "" {
		d.path = path
	}
	d.mu.Unlock()
}

// dirPath is d's path under the mount, "/" for the root.
func (d *dir) dirPath() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.path == "" {
		return "/"
	}
	return d.path
}

func (d *dir) pathOf(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.path == "" {
		return "/" + name
	}
	return d.path + "/" + name
}

func (d *dir) Attr(ctx context.Context, a *fuse.Attr) error {
	d.mu.Lock()
	e := d.ent
	d.mu.Unlock()
	a.Valid = d.fsys.attrValid()
	a.Mode = os.ModeDir | 0o755
	a.Nlink = 2
	a.Uid, a.Gid = d.fsys.uid, d.fsys.gid
	a.Mtime, a.Ctime = e.ModifiedOn, e.ModifiedOn
	return nil
}

// entry finds name in d: its staged record and/or its Synapse entity. The
// record is read before the listing, as in ReadDirAll.
func (d *dir) entry(ctx context.Context, name string) (*cache.Record, *remote.Entity, error) {
	if err := nameLen(name); err != nil {
		return nil, nil, err
	}
	var rec *cache.Record
	if d.id != "" {
		sid := d.fsys.resolveID(d.id)
		r, err := d.fsys.store.Lookup(sid, name)
		switch {
		case err == nil:
			rec = r
		case !errors.Is(err, cache.ErrNotFound):
			return nil, nil, err
		}
		if fo, err := d.fsys.store.LookupFolder(sid, name); err == nil {
			e := stagedFolderEntity(fo)
			return rec, &e, nil
		} else if !errors.Is(err, cache.ErrNotFound) {
			return nil, nil, err
		}
	}
	l, err := d.fsys.listing(ctx, d.id)
	if err != nil {
		if rec != nil && remote.IsTransient(err) {
			return rec, nil, nil // offline: the staged file is still there
		}
		return nil, nil, err
	}
	if e, ok := l.Get(name); ok && e.Kind != remote.KindOther {
		return rec, &e, nil
	}
	if rec == nil {
		return nil, nil, cache.ErrNotFound
	}
	return rec, nil, nil
}

// Lookup answers with an entry the kernel may cache for --attr-ttl, like
// attributes, rather than bazil's default minute: a name removed elsewhere
// then goes as soon as the listing says so.
func (d *dir) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (bfs.Node, error) {
	resp.EntryValid = d.fsys.attrValid()
	return d.lookup(ctx, req.Name)
}

func (d *dir) lookup(ctx context.Context, name string) (bfs.Node, error) {
	if d.root && name == StatusDirName {
		return &statusDir{fsys: d.fsys}, nil
	}
	if d.root && name == trashDirName(d.fsys.uid) {
		return &trashRoot{d.fsys.trash}, nil
	}
	rec, e, err := d.entry(ctx, name)
	if err != nil {
		return nil, d.fsys.errno("lookup", d.pathOf(name), err)
	}
	if e != nil && e.Kind.IsContainer() {
		return d.fsys.dirNode(*e, d, d.pathOf(name)), nil
	}
	return d.fsys.fileNode(d, name, e, rec), nil
}

// ReadDirAll lists the staged files and folders before Synapse's listing:
// an upload that ends meanwhile puts its entity into the listing before
// it retires the staged record (FS.Stored), so the file is found as one or
// the other. (Read the other way round, both could miss it.)
func (d *dir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	var staged []cache.Record
	var folders []cache.Folder
	if d.id != "" {
		sid := d.fsys.resolveID(d.id)
		var serr error
		staged, serr = d.fsys.store.List(sid)
		if serr == nil {
			folders, serr = d.fsys.store.Folders(sid)
		}
		if serr != nil {
			return nil, d.fsys.errno("readdir", d.pathOf(""), serr)
		}
	}
	l, err := d.fsys.listing(ctx, d.id)
	if err != nil && !(remote.IsTransient(err) && len(staged)+len(folders) > 0) {
		return nil, d.fsys.errno("readdir", d.pathOf(""), err)
	}
	out := []fuse.Dirent{{Name: ".", Type: fuse.DT_Dir}, {Name: "..", Type: fuse.DT_Dir}}
	seen := map[string]bool{".": true, "..": true}
	if d.root {
		out = append(out, fuse.Dirent{Name: StatusDirName, Type: fuse.DT_Dir})
		seen[StatusDirName] = true
	}
	for _, r := range staged {
		seen[r.Name] = true
		out = append(out, fuse.Dirent{Name: r.Name, Type: fuse.DT_File})
	}
	for _, fo := range folders {
		if !seen[fo.Name] {
			seen[fo.Name] = true
			out = append(out, fuse.Dirent{Name: fo.Name, Type: fuse.DT_Dir})
		}
	}
	if l != nil {
		for _, e := range l.Entries() {
			if seen[e.Name] || e.Kind == remote.KindOther {
				continue
			}
			t := fuse.DT_File
			if e.Kind.IsContainer() {
				t = fuse.DT_Dir
			}
			out = append(out, fuse.Dirent{Name: e.Name, Type: t})
		}
	}
	return out, nil
}

func (d *dir) Create(ctx context.Context, req *fuse.CreateRequest, resp *fuse.CreateResponse) (bfs.Node, bfs.Handle, error) {
	n, h, err := d.create(ctx, req.Name, req.Flags)
	if err != nil {
		return nil, nil, d.fsys.errno("create", d.pathOf(req.Name), err)
	}
	resp.Flags |= fuse.OpenKeepCache
	resp.EntryValid = d.fsys.attrValid()
	return n, h, nil
}

func (d *dir) create(ctx context.Context, name string, flags fuse.OpenFlags) (*file, *handle, error) {
	if err := d.fsys.validName(name); err != nil {
		return nil, nil, err
	}
	if err := d.fsys.canAdd(ctx, d.id); err != nil {
		return nil, nil, err
	}
	rec, e, err := d.entry(ctx, name)
	if err != nil && !errors.Is(err, cache.ErrNotFound) && !remote.IsTransient(err) {
		return nil, nil, err
	}
	if e != nil && e.Kind.IsContainer() {
		return nil, nil, errIsDir
	}
	if e == nil && rec == nil {
		if err := d.hiddenHolds(ctx, name); err != nil {
			return nil, nil, err
		}
	}
	if rec == nil {
		entityID := ""
		if e != nil {
			entityID = e.ID
		}
		sid := d.fsys.resolveID(d.id)
		rec, err = d.fsys.store.Create(sid, name, entityID, d.dirPath())
		if errors.Is(err, cache.ErrExist) {
			rec, err = d.fsys.store.Lookup(sid, name)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	n := d.fsys.fileNode(d, name, e, rec)
	h, err := n.openStaged(ctx, flags)
	if err != nil {
		return nil, nil, err
	}
	n.opened()
	return n, h, nil
}

func (d *dir) Mkdir(ctx context.Context, req *fuse.MkdirRequest) (bfs.Node, error) {
	path := d.pathOf(req.Name)
	if d.root && req.Name == trashDirName(d.fsys.uid) {
		return nil, fuse.Errno(syscall.EEXIST)
	}
	if err := validName(req.Name); err != nil {
		return nil, d.fsys.errno("mkdir", path, err)
	}
	if err := d.fsys.canAdd(ctx, d.id); err != nil {
		return nil, d.fsys.errno("mkdir", path, err)
	}
	if d.fsys.shouldStageMkdir(d.id) {
		return d.mkdirOffline(ctx, req.Name, path, nil)
	}
	e, c, err := d.fsys.createFolderBounded(ctx, d.fsys.resolveID(d.id), req.Name)
	if remote.IsTransient(err) && (!d.fsys.conn.Online() || errors.Is(err, errSlow)) {
		// Went offline just now, or Synapse is slower than the bound: stage
		// it; the flusher adopts the folder if the create went through.
		return d.mkdirOffline(ctx, req.Name, path, c)
	}
	if err != nil {
		return nil, d.fsys.errno("mkdir", path, err)
	}
	return d.madeFolder(e, path), nil
}

// madeFolder is the node of folder e, just created in Synapse by mkdir.
func (d *dir) madeFolder(e *remote.Entity, path string) bfs.Node {
	d.fsys.meta.Put(*e)
	// A new folder is empty and inherits its parent's permissions: knowing
	// both saves two round trips for the files cp -r puts in it next.
	d.fsys.meta.SetListing(e.ID, nil)
	if p, ok := d.fsys.meta.Perms(e.ParentID); ok {
		d.fsys.meta.SetPerms(e.ID, p)
	}
	d.fsys.log.Info("created folder " + path + " (" + e.ID + ")")
	return d.fsys.dirNode(*e, d, path)
}

// mkdirOffline stages folder name in d (folders.go), after checking, from
// what is known, that the name is free. sent is the create this mkdir sent
// already and stopped waiting for, if any: a folder found in the name's
// place that it made (or may have made) is this mkdir's, and the staged
// folder records where the create went, so that rmdir and the flusher
// look for what it made.
func (d *dir) mkdirOffline(ctx context.Context, name, path string, sent *folderCreate) (bfs.Node, error) {
	rec, e, err := d.entry(ctx, name)
	switch {
	case err == nil && rec == nil && sent.ours(e):
		return d.madeFolder(e, path), nil
	case err == nil && (rec != nil || e != nil):
		return nil, d.fsys.errno("mkdir", path, cache.ErrExist)
	case err != nil && !errors.Is(err, cache.ErrNotFound):
		return nil, d.fsys.errno("mkdir", path, err)
	}
	e, err = d.mkdirStaged(name, sent != nil && sent.mine)
	if err != nil {
		return nil, d.fsys.errno("mkdir", path, err)
	}
	d.fsys.log.Info("staged folder " + path + " (" + e.ID + "); it is created in Synapse when Synapse is reachable")
	return d.fsys.dirNode(*e, d, path), nil
}

func (d *dir) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	op := "unlink"
	if req.Dir {
		op = "rmdir"
	}
	return d.fsys.errno(op, d.pathOf(req.Name), d.remove(ctx, req.Name, req.Dir))
}

func (d *dir) remove(ctx context.Context, name string, isDir bool) error {
	rec, e, err := d.entry(ctx, name)
	if err != nil {
		return err
	}
	if isDir {
		if e == nil || !e.Kind.IsContainer() {
			return errNotDir
		}
		if cache.IsLocalID(e.ID) {
			return d.fsys.removeStagedFolder(ctx, e.ID)
		}
		if err := d.fsys.checkEmpty(ctx, e.ID); err != nil {
			return err
		}
		if err := d.fsys.change(ctx, func(ctx context.Context) error { return d.fsys.client.Delete(ctx, e.ID) }); err != nil {
			return err
		}
		d.fsys.meta.Drop(d.fsys.resolveID(d.id), name)
		d.fsys.meta.Invalidate(e.ID)
		return nil
	}
	if e != nil && e.Kind.IsContainer() {
		return errIsDir
	}
	if rec != nil {
		if err := d.fsys.interruptedUpload(rec); err != nil {
			return err
		}
	}
	// A program holding the file open keeps it (unlink.go).
	if err := d.fsys.keepAllUnlinked(ctx, d.fsys.nodesOf(rec, e), nil); err != nil {
		return err
	}
	if rec != nil {
		if err := d.fsys.unstage(ctx, rec.Ino); err != nil {
			return err
		}
		// An upload that was under way may have created the entity just now:
		// look again, uncached, so the name really goes.
		if pid := d.fsys.resolveID(d.id); e == nil && !cache.IsLocalID(pid) {
			if got, err := d.fsys.client.Lookup(ctx, pid, name); err == nil && got.Kind == remote.KindFile {
				e = got
			}
		}
	}
	if e != nil {
		if err := d.fsys.change(ctx, func(ctx context.Context) error { return d.fsys.client.Delete(ctx, e.ID) }); err != nil {
			return err
		}
		d.fsys.deleted(e.ID)
	}
	d.fsys.meta.Drop(d.fsys.resolveID(d.id), name)
	return nil
}

// validName checks a file name against Synapse's rules, except for the
// names of local-only files, which never reach Synapse.
func (fsys *FS) validName(name string) error {
	if err := nameLen(name); err != nil {
		return err
	}
	err := remote.ValidateName(name)
	if err != nil && fsys.flusher.IsLocalOnly(name) && !strings.ContainsRune(name, '/') {
		return nil
	}
	return err
}

// unstage cancels any upload of ino and drops its staged bytes. An upload
// under way is waited for (while ctx lasts), so that an entity it was
// creating is in Synapse when the caller looks for it.
func (fsys *FS) unstage(ctx context.Context, ino uint64) error {
	if err := fsys.flusher.CancelWait(ctx, ino); err != nil {
		fsys.log.Debug("unstage: stopped waiting for an upload", "ino", ino, "err", err)
	}
	fsys.forgetAttrs(ino)
	if err := fsys.store.Remove(ino); err != nil && !errors.Is(err, cache.ErrNotFound) {
		return err
	}
	fsys.mu.Lock()
	n := fsys.byIno[ino]
	delete(fsys.byIno, ino)
	fsys.mu.Unlock()
	if n != nil {
		n.dropIno(ino)
	}
	return nil
}

// checkEmpty fails with ENOTEMPTY unless container id has no children in
// Synapse (asked afresh) and none staged.
func (fsys *FS) checkEmpty(ctx context.Context, id string) error {
	staged, err := fsys.store.List(id)
	if err != nil {
		return err
	}
	if len(staged) > 0 {
		return errNotEmpty
	}
	if folders, err := fsys.store.Folders(id); err != nil {
		return err
	} else if len(folders) > 0 {
		return errNotEmpty
	}
	if cache.IsLocalID(id) {
		return nil
	}
	fsys.meta.Invalidate(id)
	l, err := fsys.listing(ctx, id)
	if err != nil {
		return err
	}
	if l.Len() > 0 {
		return errNotEmpty
	}
	return nil
}

func (d *dir) Forget() { d.fsys.forgetDir(d) }

// Fsync on a directory has nothing to do: folders are created in Synapse
// before mkdir returns, or staged in the cache (offline), which is durable.
func (d *dir) Fsync(ctx context.Context, req *fuse.FsyncRequest) error { return nil }

// Symlink fails with EPERM: Synapse has no symbolic links that a path could
// name (its Link entities point at entities, not paths).
func (d *dir) Symlink(ctx context.Context, req *fuse.SymlinkRequest) (bfs.Node, error) {
	return nil, d.fsys.errno("symlink", d.pathOf(req.NewName), errNoLinks)
}

// Link fails with EPERM: an entity has one parent in Synapse.
func (d *dir) Link(ctx context.Context, req *fuse.LinkRequest, old bfs.Node) (bfs.Node, error) {
	return nil, d.fsys.errno("link", d.pathOf(req.NewName), errNoLinks)
}
