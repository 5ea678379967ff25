package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/flusher"
	"github.com/synfs/synfs/cache/writeback"
	"github.com/synfs/synfs/control"
	"github.com/synfs/synfs/fs"
	"github.com/synfs/synfs/remote"
)

// mountControl answers the control socket for one mount: it joins the
// flusher's view of the staged files with their paths under the mount, and
// keeps the upload counters and rate.
type mountControl struct {
	mountpoint, cacheDir string
	owner                cache.Owner
	store                *cache.Store
	fl                   *flusher.Flusher
	fsys                 *fs.FS
	refused              *refusals
	log                  *slog.Logger

	mu            sync.Mutex
	m             *fs.Mounted
	uploadedFiles int
	uploadedBytes int64
	samples       []sample // bytes moved, one a second, the last 31
	stop          chan struct{}
}

type sample struct {
	t time.Time
	n int64
}

func newMountControl(mc *mountControl) *mountControl {
	mc.stop = make(chan struct{})
	go mc.sampleLoop()
	return mc
}

func (mc *mountControl) close() { close(mc.stop) }

func (mc *mountControl) setMounted(m *fs.Mounted) {
	mc.mu.Lock()
	mc.m = m
	mc.mu.Unlock()
}

// uploaded is called for each file that reached Synapse.
func (mc *mountControl) uploaded(rec cache.Record, e *remote.Entity) {
	mc.mu.Lock()
	mc.uploadedFiles++
	mc.uploadedBytes += rec.Size
	mc.mu.Unlock()
	path := mc.pathOf(rec.ParentID, rec.Dir, rec.Name)
	mc.log.Info("uploaded "+path, "id", e.ID, "version", e.Version, "size", rec.Size)
}

// failed is called for each file Synapse refused for good.
func (mc *mountControl) failed(rec cache.Record, reason string) {
	path := mc.pathOf(rec.ParentID, rec.Dir, rec.Name)
	mc.log.Info("upload failed for good: "+path+": "+reason, "size", rec.Size, "fix", "synfs retry PATH after fixing the cause, or synfs discard PATH")
}

// moved is the bytes in Synapse since the mount started, counting parts of
// uploads in progress. It reads no staged file's record: the sampler calls
// it every second, and a scan of 100,000 staged files would cost seconds.
func (mc *mountControl) moved() int64 {
	mc.mu.Lock()
	n := mc.uploadedBytes
	mc.mu.Unlock()
	return n + mc.fl.PartBytes()
}

func (mc *mountControl) sampleLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-mc.stop:
			return
		case now := <-t.C:
			n := mc.moved()
			mc.mu.Lock()
			mc.samples = append(mc.samples, sample{now, n})
			if len(mc.samples) > 31 {
				mc.samples = mc.samples[1:]
			}
			mc.mu.Unlock()
		}
	}
}

// rate is bytes per second over the samples (up to 30 s).
func (mc *mountControl) rate(now time.Time, moved int64) float64 {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if len(mc.samples) == 0 {
		return 0
	}
	first := mc.samples[0]
	d := now.Sub(first.t).Seconds()
	if d < 0.5 || moved <= first.n {
		return 0
	}
	return float64(moved-first.n) / d
}

// pathOf names a staged file by its path under the mount: from the
// folder's node when it has been visited since the mount started, else from
// the folder path recorded at staging, else "synID/name".
func (mc *mountControl) pathOf(parentID, dir, name string) string {
	p, known := mc.fsys.PathOf(parentID, name)
	if !known && dir != "" {
		return path.Join(dir, name)
	}
	return p
}

// files lists the staged files in status form.
func (mc *mountControl) files() []control.File {
	st := mc.fl.Status()
	out := make([]control.File, 0, len(st))
	for _, s := range st {
		f := control.File{
			ID: s.Ino, ParentID: s.ParentID, Name: s.Name, Size: s.Size,
			Attempts: s.Attempts, Error: s.Err, PartsDone: s.PartsDone, PartsTotal: s.PartsOf,
		}
		f.Path = mc.pathOf(s.ParentID, s.Dir, s.Name)
		f.Incomplete = s.Incomplete
		f.State = fileState(s)
		f.BytesDone = s.BytesDone
		if s.Queued && (s.Queue == writeback.StateWaiting || s.Queue == writeback.StateBackoff) && !s.Due.IsZero() {
			due := s.Due.UTC()
			f.NextAttempt = &due
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// fileState names a staged file's state for status.
func fileState(s flusher.FileStatus) string {
	switch s.Cache {
	case cache.StateOpen:
		return control.StateOpen
	case cache.StateUploading:
		if s.Queued && s.Queue == writeback.StateBackoff {
			return control.StateRetrying
		}
		return control.StateUploading
	case cache.StateFailed:
		return control.StateFailed
	case cache.StateEmpty:
		return control.StateEmpty
	case cache.StateLocal:
		return control.StateLocal
	}
	if s.Queued && s.Queue == writeback.StateUploading {
		return control.StateUploading
	}
	if s.Err != "" || (s.Queued && s.Queue == writeback.StateBackoff) {
		return control.StateRetrying
	}
	return control.StateDirty
}

// Status implements control.Handler.
func (mc *mountControl) Status() control.Status {
	now := time.Now()
	files := mc.files()
	st := control.Status{
		Format: control.StatusFormat, Time: now.UTC(), PID: os.Getpid(),
		Mountpoint: mc.mountpoint, CacheDir: mc.cacheDir,
		Endpoint: mc.owner.Endpoint, User: mc.owner.UserName, UserID: mc.owner.UserID,
		Files: files, Refused: mc.refused.list(),
	}
	proc := control.ReadProcess()
	st.Process = &proc
	t := &st.Totals
	t.ByState = map[string]int{}
	for _, f := range files {
		t.Files++
		t.Bytes += f.Size
		t.ByState[f.State]++
		if f.Waiting() {
			t.BytesToGo += f.Size - f.BytesDone
		}
	}
	mc.mu.Lock()
	t.UploadedFiles, t.UploadedBytes = mc.uploadedFiles, mc.uploadedBytes
	mc.mu.Unlock()
	t.Rate = mc.rate(now, mc.moved())
	if t.Rate > 0 && t.BytesToGo > 0 {
		eta := float64(t.BytesToGo) / t.Rate
		t.ETASeconds = &eta
	}
	t.CacheUsed, t.CacheMax = mc.store.Used(), mc.store.MaxSize()
	if err := mc.store.Health(); err != nil {
		st.Problem = err.Error()
	}
	c := mc.fsys.Connection()
	st.Synapse = control.Connection{Online: c.Online, Reason: c.Reason, TokenRefused: c.TokenRefused, Text: c.String()}
	if !c.Since.IsZero() {
		t := c.Since.UTC()
		st.Synapse.Since = &t
	}
	if !c.NextProbe.IsZero() {
		t := c.NextProbe.UTC()
		st.Synapse.NextProbe = &t
	}
	return st
}

// match finds the staged files a command-line argument names: a path under
// the mount (a folder names everything under it), "synID/name", or an ID.
func (mc *mountControl) match(arg string, all bool, ok func(control.File) bool) ([]control.File, error) {
	var out []control.File
	id, idErr := strconv.ParseUint(arg, 10, 64)
	dir := strings.TrimSuffix(arg, "/") + "/"
	for _, f := range mc.files() {
		hit := all || f.Path == arg || f.ParentID+"/"+f.Name == arg || (idErr == nil && f.ID == id) ||
			(arg != "" && strings.HasPrefix(f.Path, dir))
		if hit && ok(f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 && !all {
		return nil, fmt.Errorf("no staged file matches %s", arg)
	}
	return out, nil
}

// Retry implements control.Handler: failed and retrying files start again now.
func (mc *mountControl) Retry(arg string, all bool) ([]string, error) {
	matched, err := mc.match(arg, all, func(f control.File) bool {
		return f.State == control.StateFailed || f.State == control.StateRetrying
	})
	if err != nil {
		return nil, fmt.Errorf("%w that failed or is retrying", err)
	}
	var paths []string
	for _, f := range matched {
		if f.Incomplete {
			if !all {
				return paths, fmt.Errorf("%s is incomplete (a write to it failed): copy it again, or synfs discard it", f.Path)
			}
			continue
		}
		mc.fl.EnqueueNow(f.ID)
		paths = append(paths, f.Path)
		mc.log.Info("retry " + f.Path + " now (asked)")
	}
	return paths, nil
}

// Discard implements control.Handler: a failed or empty file leaves the
// cache. Nothing else is ever deleted.
func (mc *mountControl) Discard(arg string) ([]string, error) {
	if arg == "" {
		return nil, errors.New("discard needs a path")
	}
	matched, err := mc.match(arg, false, func(f control.File) bool {
		return f.State == control.StateFailed || f.State == control.StateEmpty || f.State == control.StateLocal
	})
	if err != nil {
		return nil, fmt.Errorf("%w that failed, is empty or is local (only those can be discarded)", err)
	}
	var paths []string
	for _, f := range matched {
		mc.fl.Cancel(f.ID)
		if err := mc.store.Remove(f.ID); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return paths, fmt.Errorf("discard %s: %w", f.Path, err)
		}
		paths = append(paths, f.Path)
		mc.log.Info("discarded "+f.Path+" (asked): its bytes left the cache", "size", f.Size)
	}
	return paths, nil
}

// Unmount implements control.Handler.
func (mc *mountControl) Unmount() (bool, error) {
	mc.mu.Lock()
	m := mc.m
	mc.mu.Unlock()
	if m == nil {
		return false, errors.New("not mounted yet")
	}
	err := m.TryUnmount()
	if errors.Is(err, fs.ErrBusy) {
		return true, fmt.Errorf("%s is busy", mc.mountpoint)
	}
	return false, err
}

// refusals keeps the last operations the mount refused with a reason from
// Synapse or its rules (invalid name, permission), from the log.
type refusals struct {
	mu   sync.Mutex
	last []control.Refusal
}

func (r *refusals) add(x control.Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = append(r.last, x)
	if len(r.last) > 20 {
		r.last = r.last[len(r.last)-20:]
	}
}

func (r *refusals) list() []control.Refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]control.Refusal{}, r.last...)
}

// refusalHandler passes log records on, and keeps those of operations
// refused with EINVAL, EACCES or EPERM (fs logs one line per failed
// operation, with an errno attribute and the reason).
type refusalHandler struct {
	slog.Handler
	r *refusals
}

var refusedErrnos = map[string]bool{"invalid argument": true, "permission denied": true, "operation not permitted": true, "file name too long": true}

func (h refusalHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelWarn {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "errno" && refusedErrnos[a.Value.String()] {
				h.r.add(control.Refusal{Time: rec.Time.UTC(), Errno: a.Value.String(), Message: rec.Message})
				return false
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, rec)
}

func (h refusalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return refusalHandler{h.Handler.WithAttrs(as), h.r}
}

func (h refusalHandler) WithGroup(name string) slog.Handler {
	return refusalHandler{h.Handler.WithGroup(name), h.r}
}
