package fs

import (
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
