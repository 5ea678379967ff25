package flusher

import (
	"context"
	"errors"
	"fmt"

	"github.com/synfs/synfs/remote"
)

// errAnnotations marks a failure to apply a staged file's annotations, so
// that the status says the annotations were refused, not the file.
var errAnnotations = errors.New("annotations")

// annotate applies the annotations kept with staged file ino (set with
// setfattr before the file had an entity) to entity e, which the upload
// has just created or versioned. It runs before Finish, so the file does
// not count as uploaded until its annotations are in Synapse. The write
// merges with what the entity already has and retries a 412 on fresh
// values. A set changed while it was being written is applied again. On
// success e.Etag is the entity's new etag.
func (f *Flusher) annotate(ctx context.Context, ino uint64, e *remote.Entity) error {
	for {
		want, err := f.store.Annotations(ino)
		if err != nil || len(want) == 0 {
			return err
		}
		got, err := remote.UpdateAnnotations(ctx, f.client, e.ID, nil, func(m map[string]remote.AnnotationValue) error {
			for k, v := range want {
				m[k] = remote.AnnotationValue{Type: v.Type, Values: v.Values}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%w of %s: %w", errAnnotations, e.ID, err)
		}
		e.Etag = got.Etag
		dropped, err := f.store.DropAnnotations(ino, want)
		if err != nil || dropped {
			return err
		}
	}
}

// annotateLate applies annotations set while the upload was finishing
// (after annotate and before the file system learnt the entity). The file
// counts as uploaded already, so a failure is logged, not retried.
func (f *Flusher) annotateLate(ctx context.Context, ino uint64, e *remote.Entity) {
	if err := f.annotate(ctx, ino, e); err != nil {
		f.log.Warn("annotations set while the upload finished were not applied", "id", e.ID, "err", err)
	}
}

// pruneAnnotations drops the annotations of files removed while staged.
func (f *Flusher) pruneAnnotations() {
	if n, err := f.store.PruneAnnotations(); err != nil {
		f.log.Warn("pruning annotations of removed files", "err", err)
	} else if n > 0 {
		f.log.Debug("pruned annotations of removed files", "count", n)
	}
}
