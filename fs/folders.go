package fs

import (
	"context"
	"errors"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

// Staged folders: mkdir while Synapse is unreachable (or inside a folder
// that is itself staged) makes the folder in the cache (cache/folder.go),
// and the flusher creates it in Synapse before the files inside it. Until
// then the folder's node has the folder's local ID; afterwards the node
// keeps that ID and resolves it to the entity's (resolveID).

// resolveID returns the ID to use for container id now: a staged folder's
// entity once it exists, else id itself.
func (fsys *FS) resolveID(id string) string {
	ino, ok := cache.ParseLocalID(id)
	if !ok {
		return id
	}
	if fo, err := fsys.store.Folder(ino); err == nil && fo.EntityID != "" {
		return fo.EntityID
	}
	return id
}

// stagedFolderEntity is how a staged folder appears in its parent.
func stagedFolderEntity(fo *cache.Folder) remote.Entity {
	return remote.Entity{ID: fo.LocalID(), Name: fo.Name, ParentID: fo.ParentID, Kind: remote.KindFolder,
		CreatedOn: fo.Mtime, ModifiedOn: fo.Mtime}
}

// mkdirStaged stages folder name in d. sent says a create of it was sent
// to Synapse already, which may have made it: the record says where
// (SentParent, SentName) before the flusher sees it.
func (d *dir) mkdirStaged(name string, sent bool) (*remote.Entity, error) {
	parent := d.fsys.resolveID(d.id)
	fo, err := d.fsys.store.MakeFolder(parent, name, d.dirPath())
	if err != nil {
		return nil, err
	}
	if sent {
		err := d.fsys.store.UpdateFolder(fo.Ino, func(cur *cache.Folder) error {
			cur.SentParent, cur.SentName = parent, name
			return nil
		})
		if err != nil {
			d.fsys.log.Warn("cache: recording a folder's create", "folder", fo.LocalID(), "err", err)
		}
	}
	d.fsys.flusher.EnqueueFolder(fo.Ino)
	e := stagedFolderEntity(fo)
	return &e, nil
}

// shouldStageMkdir reports whether mkdir in container id stages the
// folder instead of creating it now: Synapse is unreachable, the parent is
// itself staged, or StageFolders is set.
func (fsys *FS) shouldStageMkdir(id string) bool {
	return fsys.stageDir || !fsys.conn.Online() || cache.IsLocalID(fsys.resolveID(id))
}

// FolderCreated is the flusher's OnFolderCreated hook: staged folder fo is
// now entity e. The parent's listing learns it, and the node made for the
// local ID answers for the entity's ID too.
func (fsys *FS) FolderCreated(fo cache.Folder, e *remote.Entity) {
	fsys.meta.Put(*e)
	if fsys.meta.Listing(e.ID) == nil {
		fsys.meta.SetListing(e.ID, nil) // new: empty but for what uploads into it
	}
	if p, ok := fsys.meta.StalePerms(e.ParentID); ok {
		fsys.meta.SetPerms(e.ID, p)
	}
	fsys.mu.Lock()
	d := fsys.dirs[fo.LocalID()]
	if d != nil {
		if _, taken := fsys.dirs[e.ID]; !taken {
			fsys.dirs[e.ID] = d
		}
		d.setEntity(*e, "") // dir.mu is a leaf under FS.mu; forgetDir drops the alias by it
	}
	fsys.mu.Unlock()
}

// removeStagedFolder is rmdir of a staged folder: it must be empty of
// staged files and folders. One created meanwhile is removed in Synapse.
// No staged folder is created while it decides (Flusher.LockFolders), so
// that a create in flight cannot land after it found no entity; a create
// sent before whose outcome is unknown is looked up, as the flusher's next
// attempt would.
func (fsys *FS) removeStagedFolder(ctx context.Context, localID string) error {
	ino, _ := cache.ParseLocalID(localID)
	unlock, err := fsys.flusher.LockFolders(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	fo, err := fsys.store.Folder(ino)
	if err != nil {
		return err
	}
	id := fo.EntityID
	if id == "" && fo.SentParent != "" {
		// A mkdir's create that outlived its bound may still be on its way.
		if err := fsys.waitFlight(ctx, mkdirKey(fo.SentParent, fo.SentName)); err != nil {
			return err
		}
		got, err := fsys.client.Lookup(ctx, fo.SentParent, fo.SentName)
		switch {
		case err == nil && got.Kind == remote.KindFolder:
			id = got.ID
		case err != nil && !errors.Is(err, remote.ErrNotFound):
			return err
		}
	}
	if err := fsys.checkEmpty(ctx, localID); err != nil {
		return err
	}
	if id != "" {
		if err := fsys.checkEmpty(ctx, id); err != nil {
			return err
		}
		if err := fsys.change(ctx, func(ctx context.Context) error { return fsys.client.Delete(ctx, id) }); err != nil {
			return err
		}
		fsys.meta.Drop(fo.SentParent, fo.SentName)
		fsys.meta.Drop(fo.ParentID, fo.Name)
	}
	fsys.flusher.Cancel(ino)
	if err := fsys.store.RemoveFolder(ino); err != nil && !errors.Is(err, cache.ErrNotFound) {
		return err
	}
	return nil
}

// errCreated stops renameStagedFolder when the folder reached Synapse.
var errCreated = errors.New("created meanwhile")

// renameStagedFolder moves a staged folder not yet created. It reports
// false when the folder was created meanwhile: the caller then moves the
// entity.
func (fsys *FS) renameStagedFolder(localID string, nd *dir, name string) (bool, error) {
	ino, _ := cache.ParseLocalID(localID)
	target := fsys.resolveID(nd.id)
	if target == localID {
		return true, errIsDir // into itself
	}
	err := fsys.store.UpdateFolder(ino, func(fo *cache.Folder) error {
		if fo.EntityID != "" {
			return errCreated
		}
		fo.ParentID, fo.Name, fo.Dir = target, name, nd.dirPath()
		return nil
	})
	if errors.Is(err, errCreated) {
		return false, nil
	}
	return err == nil, err
}
