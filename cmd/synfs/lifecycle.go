package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/control"
	"github.com/synfs/synfs/fs"
)

// shutdownSignals: the first SIGINT or SIGTERM cancels ctx (unmount, then
// stop); a second one closes force (detach the mount at once).
func shutdownSignals() (ctx context.Context, force <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	forced := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		cancel()
		select {
		case <-sigs:
			close(forced)
		case <-done:
		}
	}()
	return ctx, forced, func() { signal.Stop(sigs); close(done); cancel() }
}

// unmountOnSignal unmounts after a signal. A busy mount is retried for
// 10 s, naming the processes that hold it; then, or at a second signal, it
// is detached lazily and synfs stops without waiting for those processes
// (they then see "transport endpoint is not connected"). It reports whether
// serving ended.
func unmountOnSignal(m *fs.Mounted, force <-chan struct{}, log *slog.Logger) bool {
	err := m.TryUnmount()
	if err == nil {
		return true
	}
	if errors.Is(err, fs.ErrBusy) {
		fmt.Fprintf(os.Stderr, "synfs: %s is busy (%s): retrying for 10 s, then detaching it; press Ctrl-C again to detach now\n", m.Dir, holdersText(m.Dir))
	} else {
		log.Warn(err.Error())
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-force:
		case <-deadline:
		case <-m.Done():
			return true
		case <-time.After(200 * time.Millisecond):
			if m.TryUnmount() == nil {
				return true
			}
			continue
		}
		break
	}
	m.Detach()
	fmt.Fprintf(os.Stderr, "synfs: detached %s; the processes still using it see \"transport endpoint is not connected\"\n", m.Dir)
	return false
}

// shutdownMessage counts every staged file left, empty ones too, and names
// the failed and empty ones.
func shutdownMessage(mc *mountControl, cacheDir string) string {
	files := mc.files()
	if len(files) == 0 {
		return "synfs: unmounted; everything was uploaded\n"
	}
	by := map[string]int{}
	var failed, empty []string
	for _, f := range files {
		by[f.State]++
		switch f.State {
		case control.StateFailed:
			failed = append(failed, "  failed: "+f.Path+": "+f.Error+"\n")
		case control.StateEmpty:
			empty = append(empty, "  empty (Synapse refuses 0-byte files; never uploaded): "+f.Path+"\n")
		case control.StateLocal:
			empty = append(empty, "  local (editor or desktop file, by its name; never uploaded): "+f.Path+"\n")
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "synfs: unmounted; %d staged file(s) not in Synapse (%s)", len(files), byStateText(by))
	if waiting := len(files) - len(failed) - len(empty); waiting > 0 {
		fmt.Fprintf(&b, "; %d upload when synfs mounts with --cache-dir %s again", waiting, cacheDir)
	}
	b.WriteString("\n")
	for _, l := range failed {
		b.WriteString(l)
	}
	for _, l := range empty {
		b.WriteString(l)
	}
	if len(failed) > 0 {
		b.WriteString("  after fixing the cause, mount again and run synfs retry --all (or synfs discard PATH)\n")
	}
	return b.String()
}

func byStateText(by map[string]int) string {
	var parts []string
	for _, s := range []string{control.StateOpen, control.StateDirty, control.StateUploading, control.StateRetrying, control.StateFailed, control.StateEmpty, control.StateLocal} {
		if by[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", by[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// prepareMountpoint checks the mountpoint, and first cleans up a dead synfs
// mount of this user left there ("transport endpoint is not connected").
func prepareMountpoint(dir string, log *slog.Logger) error {
	// statfs(2), not stat(2): the kernel may answer a stat of a dead
	// mount's root from its attribute cache, but always asks for statfs.
	var st syscall.Statfs_t
	err := syscall.Statfs(dir, &st)
	if errors.Is(err, syscall.ENOTCONN) {
		m, found := mountAt(dir)
		if !found || (m.UID != -1 && m.UID != os.Getuid()) {
			return fmt.Errorf("%s is a dead mount (transport endpoint is not connected) that is not a synfs mount of yours: run `fusermount3 -u -z %s` (or `sudo umount -l %s`), then mount again", dir, dir, dir)
		}
		if out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput(); err != nil {
			return fmt.Errorf("%s is a dead synfs mount and `fusermount3 -u -z %s` failed: %s", dir, dir, strings.TrimSpace(string(out)))
		}
		log.Info("cleaned up a dead synfs mount at " + dir + " (its process had ended)")
	} else if err == nil {
		if m, found := mountAt(dir); found {
			return fmt.Errorf("%s is already a synfs mount (cache %s): run synfs unmount %s first", dir, m.CacheDir, dir)
		}
	}
	return fs.CheckMountpoint(dir)
}

func mountAt(dir string) (control.Mount, bool) {
	ms, _ := control.Mounts()
	for _, m := range ms {
		if m.Dir == dir {
			return m, true
		}
	}
	return control.Mount{}, false
}

// bindOwner checks that the cache's staged files belong to owner's endpoint
// and user, and records owner. It refuses, uploading nothing, when files
// staged for another Synapse or user are waiting.
func bindOwner(store *cache.Store, owner cache.Owner, cacheDir string, adopt bool, log *slog.Logger) error {
	had, ok, err := store.Owner()
	if err != nil {
		return err
	}
	recs, err := store.Records()
	if err != nil {
		return err
	}
	if len(recs) > 0 && (!ok || !had.Same(owner)) {
		var bytes int64
		for _, r := range recs {
			bytes += r.Size
		}
		what := fmt.Sprintf("cache directory %s holds %d staged file(s) (%d bytes)", cacheDir, len(recs), bytes)
		if ok {
			return fmt.Errorf("%s for %s, not for %s: nothing was uploaded. To upload them, mount with that endpoint and user and the same --cache-dir; to use this Synapse now, give it another --cache-dir", what, describeOwner(had), describeOwner(owner))
		}
		if !adopt {
			return fmt.Errorf("%s from a synfs that did not record which Synapse they are for: nothing was uploaded. If they are meant for %s, mount again with --adopt-staged; otherwise mount with the Synapse they were copied for and --adopt-staged", what, describeOwner(owner))
		}
		log.Warn(fmt.Sprintf("adopting %d staged file(s) for %s (--adopt-staged)", len(recs), describeOwner(owner)))
	}
	if ok && had.Same(owner) && had.UserName == owner.UserName {
		return nil
	}
	if ok && !had.Same(owner) {
		log.Info("cache directory " + cacheDir + " had nothing staged for " + describeOwner(had) + "; it now stages for " + describeOwner(owner))
	}
	return store.SetOwner(owner)
}

func describeOwner(o cache.Owner) string {
	if d, ok := strings.CutPrefix(o.Endpoint, "emulator:"); ok {
		return fmt.Sprintf("user %s (%s) on the embedded emulator (%s)", o.UserName, o.UserID, d)
	}
	return fmt.Sprintf("user %s (%s) at %s", o.UserName, o.UserID, o.Endpoint)
}

// holders lists the processes that use dir: their working directory, root
// or an open file is under it.
func holders(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	me := os.Getpid()
	var out []string
	under := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == me {
			continue
		}
		base := filepath.Join("/proc", e.Name())
		hit := ""
		for _, l := range []string{"cwd", "root"} {
			if p, err := os.Readlink(filepath.Join(base, l)); err == nil && under(p) {
				hit = l + " " + p
			}
		}
		if hit == "" {
			fds, _ := os.ReadDir(filepath.Join(base, "fd"))
			for _, fd := range fds {
				if p, err := os.Readlink(filepath.Join(base, "fd", fd.Name())); err == nil && under(p) {
					hit = "open " + p
					break
				}
			}
		}
		if hit != "" {
			comm, _ := os.ReadFile(filepath.Join(base, "comm"))
			out = append(out, fmt.Sprintf("%s (pid %d, %s)", strings.TrimSpace(string(comm)), pid, hit))
		}
	}
	return out
}

func holdersText(dir string) string {
	h := holders(dir)
	if len(h) == 0 {
		return "no process found using it"
	}
	return "used by " + strings.Join(h, "; ")
}
