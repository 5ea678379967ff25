package fs

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
)

// The freedesktop.org trash at the mount top, so that file managers'
// Delete (gio trash) works: GIO looks for $topdir/.Trash-$uid with the
// subdirectories info/ and files/, creates NAME.trashinfo in info/ and then
// renames the file or folder into files/NAME. synfs serves that directory
// virtually: the rename into files/ moves the entity to Synapse's own trash
// (restorable on synapse.org), and the .trashinfo files are kept in memory.
// files/ lists what was trashed through this mount since it started.
// Emptying it (unlinking from files/) is refused with EPERM: Synapse's
// trash is emptied on synapse.org, where its entries can also be restored.

var (
	_ bfs.NodeStringLookuper = (*trashRoot)(nil)
	_ bfs.NodeMkdirer        = (*trashRoot)(nil)
	_ bfs.NodeStringLookuper = (*trashInfoDir)(nil)
	_ bfs.NodeCreater        = (*trashInfoDir)(nil)
	_ bfs.NodeRemover        = (*trashInfoDir)(nil)
	_ bfs.NodeRenamer        = (*trashInfoDir)(nil)
	_ bfs.NodeStringLookuper = (*trashFilesDir)(nil)
	_ bfs.NodeRemover        = (*trashFilesDir)(nil)
	_ bfs.NodeRenamer        = (*trashFilesDir)(nil)
	_ bfs.HandleReader       = (*trashInfoFile)(nil)
	_ bfs.HandleWriter       = (*trashInfoFile)(nil)
	_ bfs.NodeSetattrer      = (*trashInfoFile)(nil)
)

// trashDirName is the trash directory of user uid at the mount top.
func trashDirName(uid uint32) string { return fmt.Sprintf(".Trash-%d", uid) }

// errTrashPurge refuses to empty the trash: Synapse's is emptied on synapse.org.
var errTrashPurge = fmt.Errorf("synfs does not empty Synapse's trash: what was trashed is in your Synapse trash on synapse.org (restore or delete it there; Synapse empties it after 30 days): %w", syscall.EPERM)

// trashed is one entry of files/: what a rename into it sent to the trash.
type trashed struct {
	id   string // Synapse ID; "" for a file deleted before it was uploaded
	dir  bool
	size int64
}

// trash holds the state of the virtual trash directory.
type trash struct {
	fsys *FS

	mu    sync.Mutex         // protects the maps
	files map[string]trashed // name in files/
	info  map[string][]byte  // name in info/ → contents
	nodes map[string]*trashInfoFile
}

func newTrash(fsys *FS) *trash {
	return &trash{fsys: fsys, files: map[string]trashed{}, info: map[string][]byte{}, nodes: map[string]*trashInfoFile{}}
}

func (t *trash) dirAttr(a *fuse.Attr) {
	a.Mode = os.ModeDir | 0o700
	a.Nlink = 2
	a.Uid, a.Gid = t.fsys.uid, t.fsys.gid
}

// trashRoot is .Trash-$uid.
type trashRoot struct{ t *trash }

func (r *trashRoot) Attr(ctx context.Context, a *fuse.Attr) error { r.t.dirAttr(a); return nil }

func (r *trashRoot) Lookup(ctx context.Context, name string) (bfs.Node, error) {
	switch name {
	case "files":
		return &trashFilesDir{r.t}, nil
	case "info":
		return &trashInfoDir{r.t}, nil
	}
	return nil, fuse.Errno(syscall.ENOENT)
}

func (r *trashRoot) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	return []fuse.Dirent{{Name: ".", Type: fuse.DT_Dir}, {Name: "..", Type: fuse.DT_Dir},
		{Name: "files", Type: fuse.DT_Dir}, {Name: "info", Type: fuse.DT_Dir}}, nil
}

func (r *trashRoot) Mkdir(ctx context.Context, req *fuse.MkdirRequest) (bfs.Node, error) {
	if req.Name == "files" || req.Name == "info" {
		return nil, fuse.Errno(syscall.EEXIST)
	}
	return nil, fuse.Errno(syscall.EPERM)
}

// trashFilesDir is .Trash-$uid/files.
type trashFilesDir struct{ t *trash }

func (d *trashFilesDir) Attr(ctx context.Context, a *fuse.Attr) error { d.t.dirAttr(a); return nil }

func (d *trashFilesDir) Lookup(ctx context.Context, name string) (bfs.Node, error) {
	d.t.mu.Lock()
	e, ok := d.t.files[name]
	d.t.mu.Unlock()
	if !ok {
		return nil, fuse.Errno(syscall.ENOENT)
	}
	return &trashEntry{t: d.t, e: e}, nil
}

func (d *trashFilesDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	out := []fuse.Dirent{{Name: ".", Type: fuse.DT_Dir}, {Name: "..", Type: fuse.DT_Dir}}
	for _, name := range sortedKeys(d.t.files) {
		typ := fuse.DT_File
		if d.t.files[name].dir {
			typ = fuse.DT_Dir
		}
		out = append(out, fuse.Dirent{Name: name, Type: typ})
	}
	return out, nil
}

func (d *trashFilesDir) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	return d.t.fsys.errno("empty trash", trashDirName(d.t.fsys.uid)+"/files/"+req.Name, errTrashPurge)
}

// Rename out of the trash (restore) is refused: restore on synapse.org.
func (d *trashFilesDir) Rename(ctx context.Context, req *fuse.RenameRequest, newDir bfs.Node) error {
	return d.t.fsys.errno("restore from trash", req.OldName, fmt.Errorf("restore it from your Synapse trash on synapse.org: %w", syscall.EPERM))
}

// trashEntry is a read-only stand-in for something in files/.
type trashEntry struct {
	t *trash
	e trashed
}

func (n *trashEntry) Attr(ctx context.Context, a *fuse.Attr) error {
	a.Uid, a.Gid = n.t.fsys.uid, n.t.fsys.gid
	if n.e.dir {
		a.Mode, a.Nlink = os.ModeDir|0o500, 2
		return nil
	}
	a.Mode, a.Nlink, a.Size = 0o400, 1, uint64(max(n.e.size, 0))
	return nil
}

// trashInfoDir is .Trash-$uid/info.
type trashInfoDir struct{ t *trash }

func (d *trashInfoDir) Attr(ctx context.Context, a *fuse.Attr) error { d.t.dirAttr(a); return nil }

func (d *trashInfoDir) Lookup(ctx context.Context, name string) (bfs.Node, error) {
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	n := d.t.nodes[name]
	if n == nil {
		return nil, fuse.Errno(syscall.ENOENT)
	}
	return n, nil
}

func (d *trashInfoDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	out := []fuse.Dirent{{Name: ".", Type: fuse.DT_Dir}, {Name: "..", Type: fuse.DT_Dir}}
	for _, name := range sortedKeys(d.t.info) {
		out = append(out, fuse.Dirent{Name: name, Type: fuse.DT_File})
	}
	return out, nil
}

func (d *trashInfoDir) Create(ctx context.Context, req *fuse.CreateRequest, resp *fuse.CreateResponse) (bfs.Node, bfs.Handle, error) {
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	if n := d.t.nodes[req.Name]; n != nil {
		if req.Flags&fuse.OpenExclusive != 0 {
			return nil, nil, fuse.Errno(syscall.EEXIST)
		}
		resp.Flags |= fuse.OpenDirectIO
		return n, n, nil
	}
	n := &trashInfoFile{t: d.t, name: req.Name}
	d.t.info[req.Name] = nil
	d.t.nodes[req.Name] = n
	resp.Flags |= fuse.OpenDirectIO
	return n, n, nil
}

// Remove of an info file is allowed while nothing of that name is in
// files/ (GIO removes it when the move into files/ failed); otherwise it
// would empty the trash.
func (d *trashInfoDir) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	name := req.Name
	if len(name) > len(".trashinfo") && name[len(name)-len(".trashinfo"):] == ".trashinfo" {
		if _, ok := d.t.files[name[:len(name)-len(".trashinfo")]]; ok {
			return d.t.fsys.errno("empty trash", trashDirName(d.t.fsys.uid)+"/info/"+name, errTrashPurge)
		}
	}
	if _, ok := d.t.info[name]; !ok {
		return fuse.Errno(syscall.ENOENT)
	}
	delete(d.t.info, name)
	delete(d.t.nodes, name)
	return nil
}

// Rename within info/: GIO writes a .trashinfo file's contents to a
// temporary file and renames it over the file.
func (d *trashInfoDir) Rename(ctx context.Context, req *fuse.RenameRequest, newDir bfs.Node) error {
	if _, ok := newDir.(*trashInfoDir); !ok {
		return fuse.Errno(syscall.EXDEV)
	}
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	b, ok := d.t.info[req.OldName]
	if !ok {
		return fuse.Errno(syscall.ENOENT)
	}
	// The node moves with its name: the kernel keeps using it.
	n := d.t.nodes[req.OldName]
	delete(d.t.info, req.OldName)
	delete(d.t.nodes, req.OldName)
	n.name = req.NewName
	d.t.info[req.NewName] = b
	d.t.nodes[req.NewName] = n
	return nil
}

// trashInfoFile is a .trashinfo file, in memory; it is its own handle.
type trashInfoFile struct {
	t    *trash
	name string // guarded by t.mu
}

func (f *trashInfoFile) Attr(ctx context.Context, a *fuse.Attr) error {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	a.Mode, a.Nlink = 0o600, 1
	a.Uid, a.Gid = f.t.fsys.uid, f.t.fsys.gid
	a.Size = uint64(len(f.t.info[f.name]))
	return nil
}

func (f *trashInfoFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (bfs.Handle, error) {
	resp.Flags |= fuse.OpenDirectIO
	return f, nil
}

func (f *trashInfoFile) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	b := f.t.info[f.name]
	if req.Offset < int64(len(b)) {
		resp.Data = append([]byte(nil), b[req.Offset:min(int64(len(b)), req.Offset+int64(req.Size))]...)
	}
	return nil
}

func (f *trashInfoFile) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	b := f.t.info[f.name]
	end := req.Offset + int64(len(req.Data))
	if end > 1<<20 {
		return fuse.Errno(syscall.EFBIG)
	}
	if end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[req.Offset:], req.Data)
	f.t.info[f.name] = b
	resp.Size = len(req.Data)
	return nil
}

func (f *trashInfoFile) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	if req.Valid.Size() {
		f.t.mu.Lock()
		b := f.t.info[f.name]
		if n := int(req.Size); n <= len(b) {
			f.t.info[f.name] = b[:n]
		} else if n <= 1<<20 {
			f.t.info[f.name] = append(b, make([]byte, n-len(b))...)
		}
		f.t.mu.Unlock()
	}
	return f.Attr(ctx, &resp.Attr)
}

// moveToTrash is rename's answer to a move into files/: the file or folder
// name in d goes to Synapse's trash and is listed in files/ as newName.
// A folder goes with everything in it, as synapse.org's delete does; a
// file not yet uploaded has nothing in Synapse, and is removed like rm.
func (d *dir) moveToTrash(ctx context.Context, name string, t *trash, newName string) error {
	if d.id == "" {
		return errNoProjects
	}
	rec, e, err := d.entry(ctx, name)
	if err != nil {
		return err
	}
	entry := trashed{}
	if e != nil && e.Kind.IsContainer() {
		if err := d.fsys.change(ctx, func(ctx context.Context) error { return d.fsys.client.Delete(ctx, e.ID) }); err != nil {
			return err
		}
		d.fsys.meta.Drop(d.id, name)
		d.fsys.meta.Invalidate(e.ID)
		entry = trashed{id: e.ID, dir: true}
	} else {
		if rec != nil {
			entry.size = rec.Size
		} else if e != nil {
			entry.size = e.Size
		}
		if e != nil {
			entry.id = e.ID
		}
		if err := d.remove(ctx, name, false); err != nil {
			return err
		}
	}
	t.mu.Lock()
	t.files[newName] = entry
	t.mu.Unlock()
	what := "deleted before upload (nothing was in Synapse)"
	if entry.id != "" {
		what = "moved " + entry.id + " to the Synapse trash"
	}
	d.fsys.log.Info("trash " + d.pathOf(name) + ": " + what)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
