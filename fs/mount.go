package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
)

// MountOptions are the kernel mount settings.
type MountOptions struct {
	// AllowOther lets users other than the mounting user see the mount
	// (needs user_allow_other in /etc/fuse.conf for non-root users).
	AllowOther bool
	// FSName is shown in mount tables (default "synfs").
	FSName string
}

// Mounted is a served mount.
type Mounted struct {
	Dir  string
	conn *fuse.Conn
	done chan struct{}
	err  error
}

// CheckMountpoint fails unless dir is an existing, empty directory.
func CheckMountpoint(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", dir, unwrapPath(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("mountpoint %s is not a directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", dir, unwrapPath(err))
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != io.EOF {
		if err == nil {
			return fmt.Errorf("mountpoint %s is not empty", dir)
		}
		return fmt.Errorf("mountpoint %s: %w", dir, err)
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Mount mounts fsys on dir and serves it until Unmount or an external
// unmount. It returns once the kernel has the mount.
func Mount(dir string, fsys *FS, o MountOptions) (*Mounted, error) {
	if err := CheckMountpoint(dir); err != nil {
		return nil, err
	}
	if o.FSName == "" {
		o.FSName = "synfs"
	}
	// The mount table names the mountpoint with symlinks resolved; resolve
	// them now, since looking at the mountpoint once mounted would ask the
	// mount itself, before it serves.
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	opts := []fuse.MountOption{
		fuse.FSName(o.FSName),
		fuse.Subtype("synfs"),
		// The kernel keeps the smaller of this and its own 128 KiB;
		// raiseReadahead (readahead_linux.go) lifts it after the mount.
		fuse.MaxReadahead(readaheadKB << 10),
		// Read-ahead READs go in the background, overlapping the reader's
		// own reads (read.go serves them from the block cache).
		fuse.AsyncRead(),
		// The kernel buffers writes and sends them while cp goes on, and
		// flushes them all before close(2) and fsync(2) return, so those
		// keep their promises (semantics.md). Up to 8 background requests
		// (writeback WRITEs, read-ahead READs) in flight: one at a time
		// left the kernel's writeback waiting on each round trip, so `cp`
		// staged at about 420 MB/s against 650-730 with 8 (2 GiB, the
		// machine of docs/benchmarks.md). The WRITEs then arrive a little
		// out of order; the cache keeps the MD5 running across that
		// (cache/hashorder.go).
		fuse.WritebackCache(),
		fuse.MaxBackground(8),
		// synfs keeps no setuid/setgid bit (modes are 0777 at most) and
		// no security.* attribute, so there is never a privilege for a
		// write or chown to remove, which is what this promises. In
		// return the kernel stops asking for security.capability before
		// every write(2) (once per attribute refresh instead): a round
		// trip that made 10 KiB writes (tar's) 4 times slower than 1 MiB.
		fuse.HandleKillPriv(),
	}
	if o.AllowOther {
		opts = append(opts, fuse.AllowOther())
	}
	c, err := fuse.Mount(dir, opts...)
	if err != nil {
		if strings.Contains(err.Error(), "executable file not found") {
			return nil, fmt.Errorf("mount %s: fusermount3 is missing: install the fuse3 package (apt-get install fuse3)", dir)
		}
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if err := raiseReadahead(real, readaheadKB); err != nil {
		fsys.log.Info("kernel read-ahead stays at its default (128 KiB); sequential reads are slower", "err", err)
	}
	m := &Mounted{Dir: dir, conn: c, done: make(chan struct{})}
	srv := bfs.New(c, nil)
	fsys.srv.Store(srv)
	go func() {
		m.err = srv.Serve(fsys)
		close(m.done)
	}()
	return m, nil
}

// KillPriv reports whether the kernel took the HandleKillPriv promise
// (FUSE 7.33, Linux 5.11 and later): it then asks for security.capability
// once per attribute refresh instead of before every write(2).
func (m *Mounted) KillPriv() bool {
	return m.conn.Features()&fuse.InitHandleKillPrivV2 != 0
}

// Done is closed when serving has ended (after an unmount).
func (m *Mounted) Done() <-chan struct{} { return m.done }

// Err is the serving error, valid after Done is closed.
func (m *Mounted) Err() error { return m.err }

// Unmount unmounts, retrying while the mount is busy until ctx ends; then it
// detaches lazily so that nothing stays mounted. It waits for serving to end.
func (m *Mounted) Unmount(ctx context.Context) error {
	var err error
	for {
		select {
		case <-m.done:
			m.conn.Close()
			return nil
		default:
		}
		if err = fuse.Unmount(m.Dir); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			lazyUnmount(m.Dir)
			select {
			case <-m.done:
			case <-time.After(5 * time.Second):
			}
			m.conn.Close()
			return fmt.Errorf("unmount %s: %w (detached lazily)", m.Dir, err)
		case <-m.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
	<-m.done
	m.conn.Close()
	return nil
}
