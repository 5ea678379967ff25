package fs

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

// Extended attributes: Synapse IDs, upload state and annotations.
//
//   - user.synapse.id, user.synapse.version (files), user.synapse.md5
//     (files), user.synapse.etag: read-only, on every file and folder that
//     exists in Synapse.
//   - user.synfs.state: read-only, on every file: uploaded, dirty,
//     uploading, "failed: <reason>" or empty.
//   - user.KEY: Synapse annotation KEY, as text by remote.ParseAnnotation
//     and remote.FormatAnnotation. On a file with no entity yet, the
//     annotations are kept in the cache (table a/) and the flusher applies
//     them after the upload.
//
// Other namespaces (security., trusted., system.) hold nothing: reads find
// no attribute, writes fail with ENOTSUP.

var (
	_ bfs.NodeGetxattrer    = (*file)(nil)
	_ bfs.NodeListxattrer   = (*file)(nil)
	_ bfs.NodeSetxattrer    = (*file)(nil)
	_ bfs.NodeRemovexattrer = (*file)(nil)
	_ bfs.NodeGetxattrer    = (*dir)(nil)
	_ bfs.NodeListxattrer   = (*dir)(nil)
	_ bfs.NodeSetxattrer    = (*dir)(nil)
	_ bfs.NodeRemovexattrer = (*dir)(nil)
)

const (
	xattrUser    = "user."
	xattrSynapse = "user.synapse."
	xattrSynfs   = "user.synfs."
	xattrState   = "user.synfs.state"
	xattrCreate  = 1 // XATTR_CREATE
	xattrReplace = 2 // XATTR_REPLACE
)

// xtarget is what the xattr code needs to know about a node, copied under
// the node's lock.
type xtarget struct {
	path   string
	id     string // Synapse ID; "" when the file has no entity yet
	parent string // parent container ID
	name   string
	ino    uint64         // staged inode; 0 when nothing is staged
	file   bool           // a file (has user.synfs.state)
	ent    *remote.Entity // files: the entity as the node knows it
	node   *file          // files: the node, to keep a fetched entity
	dir    *dir           // folders: the node
}

func (n *file) xtarget() xtarget {
	n.mu.Lock()
	t := xtarget{parent: n.parent.id, name: n.name, ino: n.ino, file: true, node: n}
	if n.ent != nil {
		c := *n.ent
		t.ent, t.id = &c, c.ID
	}
	d := n.parent
	n.mu.Unlock()
	t.path = d.pathOf(t.name)
	return t
}

func (d *dir) xtarget() xtarget {
	id := d.fsys.resolveID(d.id)
	if cache.IsLocalID(id) {
		id = "" // a staged folder has no entity, hence no annotations, yet
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return xtarget{path: d.path, id: id, parent: d.ent.ParentID, name: d.ent.Name, dir: d}
}

func (n *file) Getxattr(ctx context.Context, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	return n.fsys.getxattr(ctx, n.xtarget(), req, resp)
}

func (n *file) Listxattr(ctx context.Context, req *fuse.ListxattrRequest, resp *fuse.ListxattrResponse) error {
	return n.fsys.listxattr(ctx, n.xtarget(), resp)
}

func (n *file) Setxattr(ctx context.Context, req *fuse.SetxattrRequest) error {
	return n.fsys.setxattr(ctx, n.xtarget(), req.Name, req.Xattr, req.Flags, false)
}

func (n *file) Removexattr(ctx context.Context, req *fuse.RemovexattrRequest) error {
	return n.fsys.setxattr(ctx, n.xtarget(), req.Name, nil, 0, true)
}

func (d *dir) Getxattr(ctx context.Context, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	return d.fsys.getxattr(ctx, d.xtarget(), req, resp)
}

func (d *dir) Listxattr(ctx context.Context, req *fuse.ListxattrRequest, resp *fuse.ListxattrResponse) error {
	return d.fsys.listxattr(ctx, d.xtarget(), resp)
}

func (d *dir) Setxattr(ctx context.Context, req *fuse.SetxattrRequest) error {
	return d.fsys.setxattr(ctx, d.xtarget(), req.Name, req.Xattr, req.Flags, false)
}

func (d *dir) Removexattr(ctx context.Context, req *fuse.RemovexattrRequest) error {
	return d.fsys.setxattr(ctx, d.xtarget(), req.Name, nil, 0, true)
}

// SecurityXattrReads returns how many times the kernel has asked for an
// attribute outside user.* (security.capability, before writes): a
// statistic for tests and diagnostics.
func (fsys *FS) SecurityXattrReads() int64 { return fsys.otherXattrReads.Load() }

func (fsys *FS) getxattr(ctx context.Context, t xtarget, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	if !strings.HasPrefix(req.Name, xattrUser) {
		// The kernel asks for security.capability before writes (once
		// per attribute refresh, with HandleKillPriv: mount.go): answer
		// at once and without a log line.
		fsys.otherXattrReads.Add(1)
		return fuse.Errno(Errno(errNoAttr))
	}
	v, err := fsys.xattrValue(ctx, t, req.Name)
	if err != nil {
		return fsys.errno("getxattr "+req.Name, t.path, err)
	}
	resp.Xattr = []byte(v)
	return nil
}

// xattrValue returns the text of attribute name of t, or errNoAttr.
func (fsys *FS) xattrValue(ctx context.Context, t xtarget, name string) (string, error) {
	if strings.HasPrefix(name, xattrSynapse) || strings.HasPrefix(name, xattrSynfs) {
		attrs, err := fsys.readOnlyXattrs(ctx, t, name)
		if err != nil {
			return "", err
		}
		if v, ok := attrs[name]; ok {
			return v, nil
		}
		return "", errNoAttr
	}
	m, err := fsys.annotationsOf(ctx, t)
	if err != nil {
		return "", err
	}
	v, ok := m[strings.TrimPrefix(name, xattrUser)]
	if !ok {
		return "", errNoAttr
	}
	return remote.FormatAnnotation(v), nil
}

func (fsys *FS) listxattr(ctx context.Context, t xtarget, resp *fuse.ListxattrResponse) error {
	attrs, err := fsys.readOnlyXattrs(ctx, t, "")
	if err != nil {
		return fsys.errno("listxattr", t.path, err)
	}
	m, err := fsys.annotationsOf(ctx, t)
	if err != nil {
		return fsys.errno("listxattr", t.path, err)
	}
	var names []string
	for k := range attrs {
		names = append(names, k)
	}
	for k := range m {
		if name := xattrUser + k; !readOnlyName(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	resp.Append(names...)
	return nil
}

func readOnlyName(name string) bool {
	return strings.HasPrefix(name, xattrSynapse) || strings.HasPrefix(name, xattrSynfs)
}

// readOnlyXattrs returns the user.synapse.* and user.synfs.* attributes of
// t. want names the one attribute the caller needs ("" for all), so that a
// read of user.synapse.id costs no REST call.
func (fsys *FS) readOnlyXattrs(ctx context.Context, t xtarget, want string) (map[string]string, error) {
	out := map[string]string{}
	need := func(name string) bool { return want == "" || want == name }
	if t.file {
		st, err := fsys.stateOf(t)
		if err != nil {
			return nil, err
		}
		out[xattrState] = st
	}
	if t.id == "" {
		return out, nil
	}
	out[xattrSynapse+"id"] = t.id
	if t.file && (need(xattrSynapse+"md5") || need(xattrSynapse+"version")) {
		e := *t.ent
		if e.MD5 == "" && e.Version != 0 {
			e.MD5 = fsys.anns.sum(e.ID, e.Version)
		}
		if e.MD5 == "" || e.Version == 0 {
			got, err := fsys.client.Get(ctx, t.id)
			if err != nil {
				return nil, err
			}
			t.node.keepEntity(got)
			e = *got
		}
		fsys.anns.setSum(e.ID, e.Version, e.MD5)
		out[xattrSynapse+"md5"] = e.MD5
		out[xattrSynapse+"version"] = strconv.FormatInt(e.Version, 10)
	}
	if need(xattrSynapse + "etag") {
		a, err := fsys.remoteAnnotations(ctx, t)
		if err != nil {
			return nil, err
		}
		out[xattrSynapse+"etag"] = a.Etag
	}
	return out, nil
}

// stateOf is a file's user.synfs.state.
func (fsys *FS) stateOf(t xtarget) (string, error) {
	if t.ino != 0 {
		rec, err := fsys.store.Get(t.ino)
		switch {
		case err == nil:
			switch rec.State {
			case cache.StateOpen:
				return "open", nil
			case cache.StateDirty:
				return "dirty", nil
			case cache.StateUploading:
				return "uploading", nil
			case cache.StateFailed:
				return "failed: " + rec.Err, nil
			case cache.StateEmpty:
				return "empty", nil
			case cache.StateLocal:
				return "local", nil
			}
			return "uploaded", nil
		case !errors.Is(err, cache.ErrNotFound):
			return "", err
		}
	}
	if t.id != "" {
		return "uploaded", nil
	}
	return "", cache.ErrNotFound
}

// keepEntity stores a freshly fetched entity in the node, as Attr does.
func (n *file) keepEntity(e *remote.Entity) {
	n.mu.Lock()
	if n.ent == nil || n.ent.ID == e.ID {
		c := *e
		n.ent = &c
	}
	n.mu.Unlock()
}

// annotationsOf returns t's annotations: from Synapse (through the
// annotation cache) when t has an entity, otherwise those kept in the cache
// for the staged file.
func (fsys *FS) annotationsOf(ctx context.Context, t xtarget) (map[string]remote.AnnotationValue, error) {
	if t.id != "" {
		a, err := fsys.remoteAnnotations(ctx, t)
		if err != nil {
			return nil, err
		}
		return a.Values, nil
	}
	if t.ino == 0 {
		return nil, nil
	}
	kept, err := fsys.store.Annotations(t.ino)
	if err != nil {
		return nil, err
	}
	return fromKept(kept), nil
}

func fromKept(kept map[string]cache.Annotation) map[string]remote.AnnotationValue {
	m := make(map[string]remote.AnnotationValue, len(kept))
	for k, v := range kept {
		m[k] = remote.AnnotationValue{Type: v.Type, Values: v.Values}
	}
	return m
}

func toKept(m map[string]remote.AnnotationValue) map[string]cache.Annotation {
	kept := make(map[string]cache.Annotation, len(m))
	for k, v := range m {
		kept[k] = cache.Annotation{Type: v.Type, Values: v.Values}
	}
	return kept
}

// setxattr sets (or, with remove, removes) attribute name of t.
func (fsys *FS) setxattr(ctx context.Context, t xtarget, name string, value []byte, flags uint32, remove bool) error {
	op := "setxattr " + name
	if remove {
		op = "removexattr " + name
	}
	err := fsys.changeAnnotation(ctx, t, name, value, flags, remove)
	return fsys.errno(op, t.path, err)
}

func (fsys *FS) changeAnnotation(ctx context.Context, t xtarget, name string, value []byte, flags uint32, remove bool) error {
	if !strings.HasPrefix(name, xattrUser) {
		return errXattrNamespace
	}
	if readOnlyName(name) {
		return errXattrReadOnly
	}
	key := strings.TrimPrefix(name, xattrUser)
	if err := remote.ValidateAnnotationKey(key); err != nil {
		return err
	}
	v := remote.ParseAnnotation(string(value))
	if !remove {
		if err := remote.ValidateAnnotations(map[string]remote.AnnotationValue{key: v}); err != nil {
			return err
		}
	}
	change := func(m map[string]remote.AnnotationValue) error {
		_, exists := m[key]
		switch {
		case remove && !exists, flags&xattrReplace != 0 && !exists:
			return errNoAttr
		case flags&xattrCreate != 0 && exists:
			return errAttrExists
		case remove:
			delete(m, key)
		default:
			m[key] = v
		}
		return nil
	}
	if t.id == "" && t.dir != nil {
		if cache.IsLocalID(t.dir.id) {
			return errNotInSynapseYet // a staged folder: no entity to annotate yet
		}
		return errNoProjects // the projects root
	}
	if t.id == "" {
		err := fsys.changeKept(t, change)
		if !errors.Is(err, cache.ErrNotFound) {
			return err
		}
		// Uploaded meanwhile: the record is gone, the entity exists.
		e, lerr := fsys.client.Lookup(ctx, t.parent, t.name)
		if lerr != nil {
			return err
		}
		t.id = e.ID
	}
	return fsys.changeRemote(ctx, t, change)
}

// changeKept applies change to the annotations kept for a staged file.
func (fsys *FS) changeKept(t xtarget, change func(map[string]remote.AnnotationValue) error) error {
	if t.ino == 0 {
		return cache.ErrNotFound
	}
	kept, err := fsys.store.Annotations(t.ino)
	if err != nil {
		return err
	}
	m := fromKept(kept)
	if err := change(m); err != nil {
		return err
	}
	if err := remote.ValidateAnnotations(m); err != nil {
		return err
	}
	if err := fsys.store.SetAnnotations(t.ino, toKept(m)); err != nil {
		return err
	}
	if rec, err := fsys.store.Get(t.ino); err == nil && rec.State == cache.StateFailed {
		fsys.flusher.Enqueue(t.ino) // perhaps failed for these annotations: try again
	}
	return nil
}

// changeRemote applies change to entity t.id's annotations in Synapse,
// starting from the cached annotations when they are fresh.
func (fsys *FS) changeRemote(ctx context.Context, t xtarget, change func(map[string]remote.AnnotationValue) error) error {
	stamp := fsys.listingStamp(ctx, t)
	cur := fsys.anns.get(t.id, stamp)
	var a *remote.Annotations
	err := fsys.change(ctx, func(ctx context.Context) (err error) {
		a, err = remote.UpdateAnnotations(ctx, fsys.client, t.id, cur, change)
		return err
	})
	if err != nil {
		if errors.Is(err, remote.ErrStale) {
			fsys.anns.drop(t.id)
		}
		return err
	}
	fsys.anns.put(t.id, a, stamp)
	return nil
}

// remoteAnnotations returns entity t.id's annotations, from the annotation
// cache while they are fresh (see annCache), otherwise from Synapse.
func (fsys *FS) remoteAnnotations(ctx context.Context, t xtarget) (*remote.Annotations, error) {
	stamp := fsys.listingStamp(ctx, t)
	if a := fsys.anns.get(t.id, stamp); a != nil {
		return a, nil
	}
	a, err := fsys.boundedAnnotations(ctx, t.id)
	if err != nil {
		return nil, err
	}
	fsys.anns.put(t.id, a, stamp)
	return a, nil
}

// listingStamp is the modifiedOn of t in its parent's listing, which
// Synapse changes together with the etag; "" when it is not known (the
// mount root). The listing is the one lookups use: one call per folder and
// listing TTL, shared by all its files.
func (fsys *FS) listingStamp(ctx context.Context, t xtarget) string {
	if t.name == "" {
		return ""
	}
	l, err := fsys.listing(ctx, t.parent)
	if err != nil {
		return ""
	}
	e, ok := l.Get(t.name)
	if !ok || e.ID != t.id {
		return ""
	}
	return e.ModifiedOn.UTC().Format("2006-01-02T15:04:05.000000000Z")
}
