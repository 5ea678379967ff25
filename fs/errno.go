package fs

import (
	"context"
	"errors"
	"log/slog"
	"syscall"

	"bazil.org/fuse"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote"
)

// Errors the fs layer makes itself.
var (
	errIsDir       = errors.New("is a directory")
	errNotDir      = errors.New("not a directory")
	errNotEmpty    = errors.New("directory not empty")
	errNoProjects  = errors.New("the mount root holds Synapse projects: create projects on synapse.org, then folders and files inside them")
	errReadOnly    = errors.New("this entity type is shown read-only")
	errNoLinks     = errors.New("Synapse keeps no symbolic or hard links")
	errNameTooLong = errors.New("Synapse names are at most 256 characters")

	errNoAttr         = errors.New("no such attribute")
	errAttrExists     = errors.New("attribute exists")
	errXattrNamespace = errors.New("only user.* extended attributes are kept (Synapse annotations)")
	errXattrReadOnly  = errors.New("user.synapse.* and user.synfs.* are read-only")

	// errNotInSynapseYet is a remote operation on, or into, a staged folder
	// not created yet. EBUSY, not EAGAIN: the kernel turns an EAGAIN from
	// setxattr into ENOTSUP.
	errNotInSynapseYet = errors.New("the folder is not in Synapse yet; it is created when Synapse is reachable")
)

// Errno maps an error from the remote, the cache or this package to the errno
// the syscall returns. It is the one place where that decision is made.
func Errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	case errors.Is(err, errIsDir):
		return syscall.EISDIR
	case errors.Is(err, errNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, errNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, errNameTooLong):
		return syscall.ENAMETOOLONG
	case errors.Is(err, errNoProjects), errors.Is(err, errReadOnly), errors.Is(err, errNoLinks),
		errors.Is(err, errXattrReadOnly):
		return syscall.EPERM
	case errors.Is(err, errNotInSynapseYet):
		return syscall.EBUSY
	case errors.Is(err, errNoAttr):
		return syscall.ENODATA
	case errors.Is(err, errAttrExists):
		return syscall.EEXIST
	case errors.Is(err, errXattrNamespace):
		return syscall.ENOTSUP
	case errors.Is(err, remote.ErrTooManyAnnotations):
		return syscall.ENOSPC
	case errors.Is(err, remote.ErrAnnotationTooLarge):
		return syscall.E2BIG
	case errors.Is(err, cache.ErrNoSpace):
		return syscall.ENOSPC
	case errors.Is(err, cache.ErrUploading):
		return syscall.EBUSY
	case errors.Is(err, cache.ErrCacheGone):
		return syscall.EROFS
	case errors.Is(err, cache.ErrNotFound), errors.Is(err, remote.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, cache.ErrExist), errors.Is(err, remote.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, remote.ErrStale):
		return syscall.ESTALE
	case errors.Is(err, remote.ErrPermission), errors.Is(err, remote.ErrUnauthenticated):
		return syscall.EACCES
	case errors.Is(err, remote.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, remote.ErrTooLarge):
		return syscall.EFBIG
	case errors.Is(err, remote.ErrOffline):
		return syscall.ENOTCONN
	case errors.Is(err, remote.ErrTransient):
		return syscall.EAGAIN
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}

// errno logs a failed operation in one plain line and returns the error bazil
// hands to the kernel. Expected misses (ENOENT on lookup) are logged at debug.
func (fsys *FS) errno(op, path string, err error) error {
	if err == nil {
		return nil
	}
	n := Errno(err)
	level := slog.LevelWarn
	if n == syscall.ENOENT || n == syscall.EINTR || n == syscall.ENODATA {
		level = slog.LevelDebug
	}
	fsys.log.Log(context.Background(), level, op+" "+path+": "+errText(err), "errno", n.Error())
	return fuse.Errno(n)
}

// errText is the reason a person reads: Synapse's own reason when there is
// one, with the Certified User hint for the certification case.
func errText(err error) string {
	var re *remote.Error
	if errors.As(err, &re) {
		if errors.Is(err, remote.ErrNotCertified) {
			return notCertifiedHint
		}
		return re.Reason
	}
	return err.Error()
}

const notCertifiedHint = "your Synapse account is not a Certified User, and only certified users may upload: " +
	"take the Certified User quiz (synapse.org → your profile → Account Settings → Certification), then try again"
