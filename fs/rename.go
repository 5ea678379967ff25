package fs

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

// Rename within the mount: of staged files, uploaded entities and staged
// folders, within and between folders, and over an existing name (whose
// entity goes to the trash when the source has its own entity to move
// there); an upload that ends meanwhile is settled first.

func (d *dir) Rename(ctx context.Context, req *fuse.RenameRequest, newDir bfs.Node) error {
	if td, ok := newDir.(*trashFilesDir); ok {
		return d.fsys.errno("trash", d.pathOf(req.OldName), d.moveToTrash(ctx, req.OldName, td.t, req.NewName))
	}
	nd, ok := newDir.(*dir)
	if !ok {
		return fuse.Errno(syscall.EXDEV)
	}
	return d.fsys.errno("rename", d.pathOf(req.OldName)+" → "+nd.pathOf(req.NewName), d.rename(ctx, req.OldName, nd, req.NewName))
}

// rename retries renameOnce when a staged file's upload started (or ended)
// after rename looked at it: the next attempt sees the upload and settles
// it, or finds the entity it made. Past renameTries the rename fails with
// EBUSY.
func (d *dir) rename(ctx context.Context, oldName string, nd *dir, newName string) error {
	for try := 1; ; try++ {
		err := d.renameOnce(ctx, oldName, nd, newName)
		if !errors.Is(err, errRenameAgain) || try == renameTries {
			return err
		}
	}
}

// errRenameAgain asks rename for another attempt.
var errRenameAgain = fmt.Errorf("%w: its upload moved on meanwhile", cache.ErrUploading)

// holdUpload holds staged file ino's upload (Store.HoldUpload) for a
// rename; an upload under way, or one that ended since the rename looked,
// asks for another attempt.
func (fsys *FS) holdUpload(ino uint64) (release func(), err error) {
	release, err = fsys.store.HoldUpload(ino)
	if errors.Is(err, cache.ErrUploading) || errors.Is(err, cache.ErrNotFound) {
		return nil, errRenameAgain
	}
	return release, err
}

// renameTries bounds rename's attempts.
const renameTries = 3

func (d *dir) renameOnce(ctx context.Context, oldName string, nd *dir, newName string) error {
	if err := d.fsys.validName(newName); err != nil {
		return err
	}
	if nd.id == "" || d.id == "" {
		return errNoProjects
	}
	srcRec, srcEnt, err := d.entry(ctx, oldName)
	if err != nil {
		return err
	}
	if srcRec != nil && srcRec.State == cache.StateUploading {
		if srcRec, srcEnt, err = d.settleUpload(ctx, oldName, srcRec, srcEnt); err != nil {
			return err
		}
	}
	if srcRec != nil && srcRec.State != cache.StateUploading {
		// No upload may start under the old name while the rename runs
		// (it would leave its entity there). One that started since the
		// look above fails this attempt; the next one settles it. (An
		// upload settled by cancelling it is not queued until the rename
		// restarts it.)
		release, err := d.fsys.holdUpload(srcRec.Ino)
		if err != nil {
			return err
		}
		defer release()
	}
	dstRec, dstEnt, err := nd.entry(ctx, newName)
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		return err
	}
	if dstRec != nil && (srcRec == nil || dstRec.Ino != srcRec.Ino) {
		// The target's upload, too, must not create its entity while the
		// rename replaces it: one under way is waited for (then the
		// rename looks again), and none may start meanwhile.
		if dstRec.State == cache.StateUploading {
			wctx, cancel := context.WithTimeout(ctx, settleWait)
			err := d.fsys.flusher.Flush(wctx, dstRec.Ino)
			cancel()
			if err == nil {
				// The upload listed its entity before it retired the
				// record (FS.Stored): the next look finds it as is.
				return errRenameAgain
			}
			// Not over in time: it is cancelled below, and the target
			// looked up again.
		} else {
			release, err := d.fsys.holdUpload(dstRec.Ino)
			if err != nil {
				return err
			}
			defer release()
		}
	}
	if dstEnt != nil && srcEnt != nil && dstEnt.ID == srcEnt.ID {
		return nil
	}
	srcIsDir := srcEnt != nil && srcEnt.Kind.IsContainer()
	if dstEnt != nil && dstEnt.Kind.IsContainer() {
		if !srcIsDir {
			return errIsDir
		}
		if err := d.fsys.checkEmpty(ctx, dstEnt.ID); err != nil {
			return err
		}
	} else if dstEnt != nil && srcIsDir {
		return errNotDir
	}
	if dstRec != nil || (dstEnt != nil && dstEnt.Kind == remote.KindFile) {
		// A program holding the target open keeps it (unlink.go).
		if err := d.fsys.keepAllUnlinked(ctx, d.fsys.nodesOf(dstRec, dstEnt), d.fsys.nodesOf(srcRec, srcEnt)); err != nil {
			return err
		}
	}
	// POSIX rename replaces the target: drop what is staged there, and
	// trash the entity there when the source has its own entity to move.
	if dstRec != nil && (srcRec == nil || dstRec.Ino != srcRec.Ino) {
		if err := d.fsys.unstage(ctx, dstRec.Ino); err != nil {
			return err
		}
		// An upload of the target that was under way may have created its
		// entity just now (as in remove): look again, uncached.
		if dstEnt == nil {
			if got, err := d.fsys.client.Lookup(ctx, nd.id, newName); err == nil && got.Kind == remote.KindFile {
				dstEnt = got
			}
		}
	}
	if srcEnt != nil && cache.IsLocalID(srcEnt.ID) && (dstEnt == nil || !cache.IsLocalID(dstEnt.ID)) {
		done, err := d.fsys.renameStagedFolder(srcEnt.ID, nd, newName)
		if err != nil {
			return err
		}
		if done {
			d.fsys.renamed(nil, srcEnt, nd, newName)
			return nil
		}
		c := *srcEnt // created meanwhile: move the entity
		c.ID = d.fsys.resolveID(srcEnt.ID)
		srcEnt = &c
	}
	target := d.fsys.resolveID(nd.id)
	if srcEnt != nil {
		if cache.IsLocalID(target) || cache.IsLocalID(srcEnt.ID) || (dstEnt != nil && cache.IsLocalID(dstEnt.ID)) {
			return errNotInSynapseYet
		}
		if dstEnt != nil {
			if err := d.fsys.change(ctx, func(ctx context.Context) error { return d.fsys.client.Delete(ctx, dstEnt.ID) }); err != nil {
				return err
			}
			d.fsys.deleted(dstEnt.ID)
			d.fsys.meta.Drop(target, newName)
		}
		var moved *remote.Entity
		err := d.fsys.change(ctx, func(ctx context.Context) (err error) {
			moved, err = d.fsys.client.Move(ctx, srcEnt.ID, target, newName)
			return err
		})
		if err != nil {
			return err
		}
		d.fsys.meta.Drop(d.fsys.resolveID(d.id), oldName)
		d.fsys.meta.Put(*moved)
		srcEnt = moved
	}
	if srcRec == nil && srcEnt != nil {
		// An uploaded file still open for writing keeps its staged bytes
		// (FS.Uploaded): they move with it, so that a later write uploads
		// under the new name, not the old one.
		if ino := d.fsys.heldIno(srcEnt.ID); ino != 0 {
			if err := d.fsys.store.Rename(ino, nd.id, newName, nd.dirPath()); err != nil && !errors.Is(err, cache.ErrNotFound) {
				return err
			}
		}
	}
	if srcRec != nil {
		// A staged file uploads under the name it has when its upload
		// starts; if the target name holds a file in Synapse, the upload
		// becomes a new version of it.
		if err := d.fsys.store.Rename(srcRec.Ino, target, newName, nd.dirPath()); err != nil {
			return err
		}
		// An upload under the old name is cancelled, and a file held back
		// (local-only name, empty, failed) is looked at again under its
		// new name.
		d.fsys.flusher.Restart(srcRec.Ino)
	}
	d.fsys.renamed(srcRec, srcEnt, nd, newName)
	return nil
}

// settleUpload is rename's answer to a file whose upload is under way: the
// upload may create the entity under the old name at any moment. It waits a
// little for the upload to end, so that the entity is simply moved; failing
// that, it cancels the upload and picks up any entity it already created, so
// that the rename moves it too and the re-upload under the new name finds it
// rather than creating a second one.
func (d *dir) settleUpload(ctx context.Context, name string, rec *cache.Record, e *remote.Entity) (*cache.Record, *remote.Entity, error) {
	if err := d.fsys.interruptedUpload(rec); err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, settleWait)
	err := d.fsys.flusher.Flush(wctx, rec.Ino)
	cancel()
	if err == nil {
		d.fsys.meta.Invalidate(d.fsys.resolveID(d.id))
		return d.entry(ctx, name)
	}
	if err := d.fsys.flusher.CancelWait(ctx, rec.Ino); err != nil {
		return nil, nil, err
	}
	if pid := d.fsys.resolveID(d.id); e == nil && !cache.IsLocalID(pid) {
		if got, lerr := d.fsys.client.Lookup(ctx, pid, name); lerr == nil && got.Kind == remote.KindFile {
			e = got
		}
	}
	return rec, e, nil
}

// settleWait bounds how long a rename waits for an upload under way.
const settleWait = 30 * time.Second

// heldIno returns the staged inode the node of file entity id holds, or 0.
func (fsys *FS) heldIno(id string) uint64 {
	fsys.mu.Lock()
	n := fsys.byID[id]
	fsys.mu.Unlock()
	if n == nil {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ino
}

// deleted marks the node of file entity id, if any, as deleted through the
// mount, for the handles still open on it.
func (fsys *FS) deleted(id string) {
	fsys.mu.Lock()
	n := fsys.byID[id]
	fsys.mu.Unlock()
	if n != nil {
		n.mu.Lock()
		n.deleted = true
		n.mu.Unlock()
	}
}

// renamed points the node of the moved file or folder at its new place.
func (fsys *FS) renamed(rec *cache.Record, e *remote.Entity, nd *dir, name string) {
	fsys.mu.Lock()
	var n *file
	if rec != nil {
		n = fsys.byIno[rec.Ino]
	}
	if n == nil && e != nil {
		n = fsys.byID[e.ID]
	}
	dd := (*dir)(nil)
	if e != nil {
		dd = fsys.dirs[e.ID]
	}
	fsys.mu.Unlock()
	if n != nil {
		n.moved(nd, name, e)
	}
	if dd != nil {
		dd.setEntity(*e, nd.pathOf(name))
	}
}
