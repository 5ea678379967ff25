package fs

import (
	"fmt"
	"strings"
	"time"

	"bazil.org/fuse"
)

// ErrBusy means the kernel refused to unmount because a process uses the
// mount (a shell cd'd into it, an open file).
var ErrBusy = fmt.Errorf("mount is busy")

// TryUnmount unmounts once, without retrying or detaching: a busy mount
// gives ErrBusy at once. On success it waits for serving to end.
func (m *Mounted) TryUnmount() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	if err := fuse.Unmount(m.Dir); err != nil {
		if strings.Contains(err.Error(), "busy") {
			return ErrBusy
		}
		return fmt.Errorf("unmount %s: %w", m.Dir, err)
	}
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
	}
	return nil
}

// Detach unmounts lazily: the mount leaves the namespace now and the kernel
// lets it go when its last user does.
func (m *Mounted) Detach() { lazyUnmount(m.Dir) }
