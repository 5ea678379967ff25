package fs

import (
	"context"
	"unicode/utf8"

	"github.com/synfs/synfs/remote"
)

// nameLen fails a name longer than Synapse's limit (256 characters) with
// errNameTooLong (ENAMETOOLONG), so that every operation that takes a name
// (lookup, create, mkdir, rename, unlink, rmdir) says so at once, before
// anything is asked of Synapse. Statfs reports the same limit.
func nameLen(name string) error {
	if len(name) > remote.MaxNameLen && utf8.RuneCountInString(name) > remote.MaxNameLen {
		return errNameTooLong
	}
	return nil
}

// validName checks a name a new entity would get: ENAMETOOLONG when too
// long, else Synapse's own rules (EINVAL).
func validName(name string) error {
	if err := nameLen(name); err != nil {
		return err
	}
	return remote.ValidateName(name)
}

// Entities that are neither files nor containers (tables, views, links,
// datasets, Docker repositories, ...) are hidden: readdir leaves them out
// and a lookup of their name is ENOENT, since synfs can neither read nor
// write them as files. Creating a file under the name of one fails at once
// with EEXIST (Synapse would refuse the upload with 409 much later).

// hiddenHolds returns an ErrExist error when a hidden entity holds name in d.
func (d *dir) hiddenHolds(ctx context.Context, name string) error {
	l, err := d.fsys.listing(ctx, d.id)
	if err != nil {
		return nil // the upload reports any clash
	}
	if e, ok := l.Get(name); ok && e.Kind == remote.KindOther {
		return &remote.Error{Op: "create", Status: 409, Kind: remote.ErrExist,
			Reason: "a Synapse " + typeName(e.Type) + " called " + name + " is in this folder (" + e.ID + "); synfs does not show such entities"}
	}
	return nil
}

// typeName turns a concreteType into a short name ("TableEntity" → "table").
func typeName(concrete string) string {
	for i := len(concrete) - 1; i >= 0; i-- {
		if concrete[i] == '.' {
			concrete = concrete[i+1:]
			break
		}
	}
	if concrete == "" {
		return "entity"
	}
	return concrete
}
