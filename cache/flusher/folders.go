package flusher

import (
	"context"
	"errors"
	"fmt"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/writeback"
	"github.com/synfs/synfs/remote"
)

// Staged folders (cache/folder.go) are created here: parent first, before
// any file inside them is uploaded, and once. Before a create is sent, the
// folder's record says where it goes (SentParent, SentName); a create
// whose answer was lost, or cut by a crash, is resolved by CreateFolder's
// own lookup-before-create and by the ErrExist answer, which returns the
// folder already there. Renames and removals made meanwhile are applied to
// the entity once it exists.

// maxFolderDepth bounds a chain of staged folders (Synapse allows 50 levels).
const maxFolderDepth = 64

// errFolderGone means a staged folder was removed while it was being
// created.
var errFolderGone = errors.New("the folder was removed before it reached Synapse")

// EnqueueFolder queues the creation of staged folder ino, at once.
func (f *Flusher) EnqueueFolder(ino uint64) {
	f.q.AddNow(ino, f.putFolder(ino))
}

func (f *Flusher) putFolder(ino uint64) writeback.PutFn {
	return func(ctx context.Context) error {
		if later := f.offline(nil); later != nil {
			return later
		}
		_, err := f.ensureFolder(remote.Background(ctx), ino)
		switch {
		case err == nil, errors.Is(err, cache.ErrNotFound):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if reason, ok := permanentReason(err); ok {
			_ = f.store.UpdateFolder(ino, func(fo *cache.Folder) error { fo.Err = reason; return nil })
			f.log.Warn("folder not created: "+reason, "folder", cache.LocalID(ino))
			return writeback.Permanent(err)
		}
		_ = f.store.UpdateFolder(ino, func(fo *cache.Folder) error { fo.Err = err.Error(); return nil })
		if later := f.offline(err); later != nil {
			return later
		}
		return err
	}
}

// resolveParent returns the Synapse ID of parentID: itself, or the entity
// of the staged folder it names, created now if need be.
func (f *Flusher) resolveParent(ctx context.Context, parentID string) (string, error) {
	ino, ok := cache.ParseLocalID(parentID)
	if !ok {
		return parentID, nil
	}
	return f.ensureFolder(ctx, ino)
}

// ensureFolder makes staged folder ino exist in Synapse where it now is,
// and returns its ID. Folder creation is serialised: folders are few, and
// a parent must exist before its children.
func (f *Flusher) ensureFolder(ctx context.Context, ino uint64) (string, error) {
	unlock, err := f.LockFolders(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	return f.ensureFolderLocked(ctx, ino, 0)
}

// LockFolders waits until no staged folder is being created, and keeps it
// so until unlock is called (or fails with ctx's error). rmdir of a staged
// folder holds it while it decides: a create in flight could otherwise
// reach Synapse after rmdir saw no entity, leaving the removed folder in
// Synapse.
func (f *Flusher) LockFolders(ctx context.Context) (unlock func(), err error) {
	select {
	case f.folders <- struct{}{}:
		return func() { <-f.folders }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *Flusher) ensureFolderLocked(ctx context.Context, ino uint64, depth int) (string, error) {
	if depth > maxFolderDepth {
		return "", fmt.Errorf("staged folders nested deeper than %d", maxFolderDepth)
	}
	fo, err := f.store.Folder(ino)
	if err != nil {
		return "", err
	}
	parent := fo.ParentID
	if pino, ok := cache.ParseLocalID(parent); ok {
		if parent, err = f.ensureFolderLocked(ctx, pino, depth+1); err != nil {
			return "", err
		}
	}
	if fo.EntityID == "" {
		if fo, err = f.createFolder(ctx, fo, parent); err != nil {
			return "", err
		}
	}
	if fo.SentParent != parent || fo.SentName != fo.Name {
		// Renamed or moved while it was being created.
		e, err := f.client.Move(ctx, fo.EntityID, parent, fo.Name)
		if err != nil {
			return "", err
		}
		err = f.store.UpdateFolder(ino, func(cur *cache.Folder) error {
			cur.SentParent, cur.SentName, cur.Err = e.ParentID, e.Name, ""
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	if err := f.adoptChildren(fo.LocalID(), fo.EntityID); err != nil {
		return "", err
	}
	return fo.EntityID, nil
}

// createFolder creates staged folder fo under parent (a Synapse ID) and
// records the entity. It returns the record as it is afterwards.
func (f *Flusher) createFolder(ctx context.Context, fo *cache.Folder, parent string) (*cache.Folder, error) {
	var e *remote.Entity
	if fo.SentParent != "" && (fo.SentParent != parent || fo.SentName != fo.Name) {
		// An earlier create went elsewhere and its outcome is unknown
		// (crash, or renamed meanwhile): adopt what it made.
		if got, err := f.client.Lookup(ctx, fo.SentParent, fo.SentName); err == nil && got.Kind == remote.KindFolder {
			e = got
		} else if err != nil && !errors.Is(err, remote.ErrNotFound) {
			return nil, err
		}
	}
	if e == nil {
		err := f.store.UpdateFolder(fo.Ino, func(cur *cache.Folder) error {
			cur.SentParent, cur.SentName = parent, cur.Name
			return nil
		})
		if err != nil {
			return nil, err
		}
		name := fo.Name
		e, err = f.client.CreateFolder(ctx, parent, name)
		switch {
		case errors.Is(err, remote.ErrExist) && e != nil && e.Kind == remote.KindFolder:
			// There already (our own create whose answer was lost, or a
			// folder of that name): use it, as mkdir -p would.
		case errors.Is(err, remote.ErrExist):
			return nil, fmt.Errorf("%w: %s is taken in Synapse by something that is not a folder", err, name)
		case err != nil:
			return nil, err
		}
	}
	var cur cache.Folder
	err := f.store.UpdateFolder(fo.Ino, func(r *cache.Folder) error {
		r.EntityID, r.SentParent, r.SentName, r.Err = e.ID, e.ParentID, e.Name, ""
		cur = *r
		return nil
	})
	if errors.Is(err, cache.ErrNotFound) {
		// Removed (rmdir) while it was being created: honour the removal.
		if derr := f.client.Delete(ctx, e.ID); derr != nil {
			return nil, derr
		}
		return nil, errFolderGone
	}
	if err != nil {
		return nil, err
	}
	f.log.Info("created staged folder", "name", cur.Name, "id", e.ID)
	if f.o.OnFolderCreated != nil {
		f.o.OnFolderCreated(cur, e)
	}
	return &cur, nil
}

// adoptChildren moves what is staged inside local folder localID to its
// entity: files and folders staged under the local ID now name the entity.
func (f *Flusher) adoptChildren(localID, entityID string) error {
	recs, err := f.store.List(localID)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := f.store.Rename(r.Ino, entityID, r.Name, r.Dir); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return err
		}
	}
	subs, err := f.store.Folders(localID)
	if err != nil {
		return err
	}
	for _, s := range subs {
		err := f.store.UpdateFolder(s.Ino, func(cur *cache.Folder) error {
			if cur.ParentID == localID {
				cur.ParentID = entityID
			}
			return nil
		})
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			return err
		}
	}
	return nil
}

// startFolders queues every staged folder not yet created, and forgets
// those created before a restart once their children are adopted.
func (f *Flusher) startFolders() error {
	all, err := f.store.Folders("")
	if err != nil {
		return err
	}
	for _, fo := range all {
		if fo.EntityID == "" {
			f.EnqueueFolder(fo.Ino)
			continue
		}
		if err := f.adoptChildren(fo.LocalID(), fo.EntityID); err != nil {
			return err
		}
		if err := f.store.RemoveFolder(fo.Ino); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Folders lists the staged folders not yet created, for status displays.
func (f *Flusher) Folders() []cache.Folder {
	all, err := f.store.Folders("")
	if err != nil {
		f.log.Warn("status: reading staged folders", "err", err)
	}
	out := all[:0]
	for _, fo := range all {
		if fo.EntityID == "" {
			out = append(out, fo)
		}
	}
	return out
}
