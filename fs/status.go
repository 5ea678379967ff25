package fs

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
)

var (
	_ bfs.NodeStringLookuper = (*statusDir)(nil)
	_ bfs.HandleReadDirAller = (*statusDir)(nil)
	_ bfs.NodeOpener         = (*statusFile)(nil)
	_ bfs.HandleReadAller    = (*statusHandle)(nil)
)

// StatusDirName is the read-only directory at the mount root whose file
// "status" tells what is staged, uploading and failed.
const StatusDirName = ".synfs"

type statusDir struct{ fsys *FS }

func (d *statusDir) Attr(ctx context.Context, a *fuse.Attr) error {
	a.Mode = os.ModeDir | 0o555
	a.Uid, a.Gid = d.fsys.uid, d.fsys.gid
	return nil
}

func (d *statusDir) Lookup(ctx context.Context, name string) (bfs.Node, error) {
	if name == "status" {
		return &statusFile{fsys: d.fsys}, nil
	}
	return nil, fuse.Errno(2) // ENOENT
}

func (d *statusDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	return []fuse.Dirent{{Name: "status", Type: fuse.DT_File}}, nil
}

type statusFile struct{ fsys *FS }

func (f *statusFile) Attr(ctx context.Context, a *fuse.Attr) error {
	a.Mode = 0o444
	a.Size = uint64(len(f.fsys.StatusText()))
	a.Uid, a.Gid = f.fsys.uid, f.fsys.gid
	return nil
}

func (f *statusFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (bfs.Handle, error) {
	if !req.Flags.IsReadOnly() {
		return nil, fuse.Errno(1) // EPERM
	}
	resp.Flags |= fuse.OpenDirectIO
	return &statusHandle{text: f.fsys.StatusText()}, nil
}

type statusHandle struct{ text string }

func (h *statusHandle) ReadAll(ctx context.Context) ([]byte, error) { return []byte(h.text), nil }

// StatusText renders the flusher's view of every staged file: one line per
// file with its state, size, attempts and last error.
func (fsys *FS) StatusText() string {
	st := fsys.flusher.Status()
	sort.Slice(st, func(i, j int) bool {
		if st[i].ParentID != st[j].ParentID {
			return st[i].ParentID < st[j].ParentID
		}
		return st[i].Name < st[j].Name
	})
	counts := map[string]int{}
	var b strings.Builder
	for _, s := range st {
		counts[s.State]++
	}
	fmt.Fprintf(&b, "staged files: %d", len(st))
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, ", %s %d", k, counts[k])
	}
	capacity, avail := fsys.store.Space()
	fmt.Fprintf(&b, "; cache used %d bytes, %d more fit (of %d)\n", fsys.store.Used(), avail, capacity)
	if err := fsys.store.Health(); err != nil {
		fmt.Fprintf(&b, "cache problem: %s\n", errText(err))
	}
	b.WriteString(fsys.Connection().String() + "\n")
	for _, fo := range fsys.flusher.Folders() {
		fmt.Fprintf(&b, "%-10s %s/", "folder", fsys.statusPath(fo.ParentID, fo.Dir, fo.Name))
		if fo.Err != "" {
			fmt.Fprintf(&b, " error=%q", fo.Err)
		}
		b.WriteByte('\n')
	}
	for _, s := range st {
		fmt.Fprintf(&b, "%-10s %s size=%d", s.State, fsys.statusPath(s.ParentID, s.Dir, s.Name), s.Size)
		if s.PartsOf > 0 {
			fmt.Fprintf(&b, " parts=%d/%d", s.PartsDone, s.PartsOf)
		}
		if s.Attempts > 0 {
			fmt.Fprintf(&b, " attempts=%d", s.Attempts)
		}
		if s.Err != "" {
			fmt.Fprintf(&b, " error=%q", s.Err)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// statusPath names a staged file by its path under the mount, with the
// folder's Synapse ID: the folder's current path when it has been visited,
// else the one recorded when the file was staged (after a restart).
func (fsys *FS) statusPath(parentID, dirPath, name string) string {
	fsys.mu.Lock()
	d := fsys.dirs[parentID]
	fsys.mu.Unlock()
	switch {
	case d != nil:
		return d.pathOf(name) + " (" + parentID + ")"
	case dirPath != "":
		return path.Join(dirPath, name) + " (" + parentID + ")"
	}
	return parentID + "/" + name
}
