package flusher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/writeback"
	"github.com/synfs/synfs/remote"
)

// Reasons recorded for files that are not uploaded.
const (
	EmptyReason        = "empty file: Synapse refuses 0-byte files; kept in the cache"
	NotCertifiedReason = "not a Certified User: pass the Certified User quiz at https://www.synapse.org/ (Account Settings) to upload"
)

// Options configures a Flusher.
type Options struct {
	Delay     time.Duration // merge delay after close(2); see writeback.Options
	Transfers int           // files uploaded at a time; see writeback.Options
	Logger    *slog.Logger  // default slog.Default()
	// OnUploaded, if set, is called after a file's upload is final (its
	// bytes have left the cache), with its record and the entity Synapse
	// returned. It runs on an upload goroutine and must not block long.
	OnUploaded func(rec cache.Record, e *remote.Entity)
	// BeforeFinish, if set, is called once the upload has made the file
	// entity e in Synapse and before the staged record is retired, with
	// the record OnUploaded will get. The file system lists the entity
	// there, so that a lookup or listing made while the upload ends finds
	// the staged file or the entity, never neither. The record may still
	// change (or the upload be found stale) after it: then OnUploaded is
	// not called, and the entity, which exists, stays listed.
	BeforeFinish func(rec cache.Record, e *remote.Entity)
	// OnFailed, if set, is called when a file's upload failed permanently
	// (the record is now Failed with reason), instead of logging it here.
	OnFailed func(rec cache.Record, reason string)

	// Absent, if set, reports whether the file system knows (from a fresh
	// listing) that no entity called name is in parentID: the first
	// upload attempt of a new file then skips the lookup before create.
	Absent func(parentID, name string) bool

	// LocalOnly lists name patterns of files never uploaded (see
	// DefaultLocalOnly, which New uses when it is nil; empty: none).
	LocalOnly []string

	BackoffBase, BackoffCap time.Duration    // see writeback.Options
	Now                     func() time.Time // see writeback.Options

	// OnFolderCreated, if set, is called when a staged folder has been
	// created in Synapse, with its record and the entity.
	OnFolderCreated func(fo cache.Folder, e *remote.Entity)

	// Conn, when set, pauses uploads while Synapse is unreachable and
	// resumes them when it is back; a failure while it is offline costs
	// the file no attempt and no backoff.
	Conn *remote.Connectivity
}

// FileStatus describes one staged file for status displays.
type FileStatus struct {
	Ino       uint64
	ParentID  string
	Name      string
	Dir       string // the folder's path under the mount when staged ("" if unknown)
	Size      int64
	State     string          // the cache state's name: open, dirty, uploading, failed, empty
	Cache     cache.State     // the cache state itself
	Queued    bool            // in the upload queue
	Queue     writeback.State // its queue state, when Queued
	Due       time.Time       // next start, when waiting or backing off
	Attempts  int
	Err       string // last failure reason
	PartsOf   int    // parts of the upload in progress (0 when none)
	PartsDone int    // parts added so far
	BytesDone int64  // bytes in those parts
	// Incomplete: a write to the file failed; it is never uploaded until
	// it is rewritten (see cache.Record.Incomplete).
	Incomplete bool
}

// Flusher uploads staged files. Its methods are safe for concurrent use.
type Flusher struct {
	store  *cache.Store
	client remote.Client
	o      Options
	log    *slog.Logger
	q      *writeback.Queue

	mu       sync.Mutex          // protects progress
	progress map[uint64]progress // uploads in progress

	stopWatch context.CancelFunc // ends watchConn
	// folders holds one token: whoever holds it is the only one creating
	// or removing staged folders (folders.go).
	folders chan struct{}
}

// New returns a Flusher; Start queues the files already staged.
func New(store *cache.Store, client remote.Client, o Options) *Flusher {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LocalOnly == nil {
		o.LocalOnly = DefaultLocalOnly
	}
	f := &Flusher{store: store, client: client, o: o, log: o.Logger, progress: map[uint64]progress{},
		folders: make(chan struct{}, 1)}
	f.q = writeback.New(writeback.Options{
		Delay: o.Delay, Transfers: o.Transfers,
		BackoffBase: o.BackoffBase, BackoffCap: o.BackoffCap,
		Now: o.Now, Logger: o.Logger,
	})
	var ctx context.Context
	ctx, f.stopWatch = context.WithCancel(context.Background())
	if o.Conn != nil {
		go f.watchConn(ctx)
	}
	return f
}

// watchConn pauses the queue while Synapse is unreachable and resumes it
// when it answers again.
func (f *Flusher) watchConn(ctx context.Context) {
	for {
		ch := f.o.Conn.Changed()
		if f.o.Conn.Online() {
			f.q.Resume()
		} else {
			f.q.Pause()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// offline returns nil while Synapse is reachable. Otherwise it pauses the
// queue and returns the error (err, or Synapse's unreachability) wrapped so
// that the queue keeps the file waiting without counting the attempt.
func (f *Flusher) offline(err error) error {
	if f.o.Conn.Online() {
		return nil
	}
	// Only if it still is: Synapse may have come back since the look, and
	// watchConn's Resume for that must not be undone.
	f.q.PauseIf(func() bool { return !f.o.Conn.Online() })
	if err == nil {
		err = f.o.Conn.Err("upload")
	}
	return writeback.Later(err)
}

// Start queues, without delay, every file the store still has to upload:
// those staged before a restart or crash.
func (f *Flusher) Start(ctx context.Context) error {
	f.pruneAnnotations()
	if err := f.startFolders(); err != nil {
		return err
	}
	inos, err := f.store.Pending()
	if err != nil {
		return err
	}
	for _, ino := range inos {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.add(ino, true)
	}
	if len(inos) > 0 {
		f.log.Info("resuming uploads of staged files", "count", len(inos))
	}
	return nil
}

// Enqueue queues ino for upload after the delay (after close(2)). An
// upload of ino under way goes on (the store's generations stop one whose
// content changed) and ino is looked at again when it ends.
func (f *Flusher) Enqueue(ino uint64) {
	// A close queues the file, and its release again: the second finds it
	// queued and only pushes its start back.
	if !f.q.Retouch(ino) {
		f.q.Touch(ino, f.put(ino))
	}
}

// Restart queues ino for upload after the delay and cancels an upload of
// it under way, which the change (a rename: a new target) made wrong.
func (f *Flusher) Restart(ino uint64) { f.add(ino, false) }

// EnqueueNow queues ino for upload at once (fsync).
func (f *Flusher) EnqueueNow(ino uint64) { f.add(ino, true) }

func (f *Flusher) add(ino uint64, now bool) {
	if now {
		f.q.AddNow(ino, f.put(ino))
	} else {
		f.q.Add(ino, f.put(ino))
	}
}

// Cancel drops ino from the queue and cancels its upload (the file was
// deleted before it was uploaded).
func (f *Flusher) Cancel(ino uint64) { f.q.Remove(ino) }

// CancelWait is Cancel, and then waits until an upload of ino that was
// running has returned, or ctx ends: after it, any entity that upload
// created or updated is in Synapse, and the upload changes nothing more
// (Upload waits for the answer to a create or update it sent).
func (f *Flusher) CancelWait(ctx context.Context, ino uint64) error {
	return f.q.Cancel(ctx, ino)
}

// Flush waits until ino (0: every queued file) is uploaded, starting it now
// if it is waiting. It returns a permanent failure, or ctx's error.
func (f *Flusher) Flush(ctx context.Context, ino uint64) error { return f.q.Flush(ctx, ino) }

// Close cancels uploads in progress and waits for them to return. Files
// not uploaded stay staged and are resumed by the next Start.
func (f *Flusher) Close() {
	f.stopWatch()
	f.q.Close()
}

// Paused reports whether uploads wait for Synapse to be reachable.
func (f *Flusher) Paused() bool { return f.q.Paused() }

// Status lists every staged file with its queue state and progress.
func (f *Flusher) Status() []FileStatus {
	recs, err := f.store.Records()
	if err != nil {
		f.log.Warn("status: reading staged files", "err", err)
	}
	items := map[uint64]writeback.Item{}
	for _, it := range f.q.Queue() {
		items[it.ID] = it
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FileStatus, 0, len(recs))
	for _, r := range recs {
		st := FileStatus{
			Ino: r.Ino, ParentID: r.ParentID, Name: r.Name, Dir: r.Dir, Size: r.Size,
			State: r.State.String(), Cache: r.State,
			Attempts: r.Attempts, Err: r.Err, Incomplete: r.Incomplete,
		}
		if it, ok := items[r.Ino]; ok {
			st.Queued, st.Queue, st.Due = true, it.State, it.Due
		}
		if p, ok := f.progress[r.Ino]; ok {
			st.PartsDone, st.PartsOf, st.BytesDone = p.done, p.of, p.bytes()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ino < out[j].Ino })
	return out
}

func (f *Flusher) put(ino uint64) writeback.PutFn {
	return func(ctx context.Context) error {
		defer f.setProgress(ino, progress{})
		// Its REST calls yield to the ones a person waits on (remote.Background).
		return f.upload(remote.Background(ctx), ino)
	}
}

// progress is how far one upload in progress is.
type progress struct {
	done, of       int // parts added, parts in all
	size, partSize int64
}

func (p progress) bytes() int64 { return min(p.size, int64(p.done)*p.partSize) }

func (f *Flusher) setProgress(ino uint64, p progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.of == 0 {
		delete(f.progress, ino)
		return
	}
	f.progress[ino] = p
}

// PartBytes is the bytes in the parts added so far of the uploads in
// progress. Unlike Status it reads no staged file's record, so a progress
// display may call it every second whatever the number of staged files.
func (f *Flusher) PartBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, p := range f.progress {
		n += p.bytes()
	}
	return n
}

// requeue queues ino again after a change during its upload. Called from
// the upload function, it makes the queue cancel and requeue the item when
// the function returns.
func (f *Flusher) requeue(ino uint64) error {
	f.add(ino, false)
	return cache.ErrChanged
}

// upload is the PutFn for one file; see the package comment.
func (f *Flusher) upload(ctx context.Context, ino uint64) error {
	s := f.store
	rec, err := s.Get(ino)
	if errors.Is(err, cache.ErrNotFound) {
		return nil // removed, or already uploaded
	}
	if err != nil {
		return err
	}
	if s.Writing(ino) {
		// Still open for writing: the last close queues it again.
		return nil
	}
	if p, ok := f.localOnly(rec.Name); ok {
		if rec.State == cache.StateLocal {
			return nil
		}
		err := s.SetState(ino, rec.Gen, cache.StateLocal, "local only: the name matches "+p+"; kept in the cache, not uploaded")
		if errors.Is(err, cache.ErrChanged) {
			return f.requeue(ino)
		}
		return err
	}
	if rec.Incomplete {
		// A write to it failed: its bytes are not what the program wrote.
		return writeback.Permanent(fmt.Errorf("%s", rec.Err))
	}
	if later := f.offline(nil); later != nil {
		return later
	}
	r, size, gen, err := s.Reader(ino)
	if errors.Is(err, cache.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if gen != rec.Gen {
		return f.requeue(ino)
	}
	if size == 0 {
		if err := s.SetState(ino, gen, cache.StateEmpty, EmptyReason); errors.Is(err, cache.ErrChanged) {
			return f.requeue(ino)
		} else if err != nil {
			return err
		}
		f.log.Info("not uploaded: "+EmptyReason, "file", rec.Name, "parent", rec.ParentID)
		return nil
	}
	u := rec.Upload
	if u == nil || u.Gen != gen || u.Size != size {
		sum := rec.MD5
		if sum == "" {
			f.log.Debug("hashing a file written out of order", "file", rec.Name, "size", size)
			var g uint64
			if sum, g, err = s.ComputeMD5(ino); errors.Is(err, cache.ErrChanged) || (err == nil && g != gen) {
				return f.requeue(ino)
			} else if err != nil {
				return err
			}
		}
		u = &cache.Upload{
			Gen: gen, FileName: rec.Name, PartSize: remote.PartSizeFor(size),
			MD5: sum, Size: size, ContentType: contentType(rec.Name),
		}
		if err := s.SetUpload(ino, u); err != nil {
			return err
		}
	}
	parentID, err := f.resolveParent(ctx, rec.ParentID)
	if err != nil {
		return f.failed(ctx, rec, gen, err)
	}
	if parentID != rec.ParentID {
		return f.requeue(ino) // the file now names the folder's entity
	}
	// A first attempt at a new name the listing knows to be free needs no
	// lookup; after any failure or restart, Upload looks the name up.
	absent := rec.Attempts == 0 && rec.EntityID == "" && f.o.Absent != nil && f.o.Absent(rec.ParentID, rec.Name)
	if err := s.SetState(ino, gen, cache.StateUploading, ""); errors.Is(err, cache.ErrChanged) {
		return f.requeue(ino)
	} else if err != nil {
		return err
	}
	// The target is resolved by folder and name when the upload starts (no
	// EntityID): an overwrite versions whatever file holds the name now,
	// and one whose entity was deleted elsewhere meanwhile creates it anew.
	e, err := f.client.Upload(ctx, &remote.UploadRequest{
		ParentID: rec.ParentID, Name: rec.Name, Size: size, MD5: u.MD5, Source: r,
		FileName: u.FileName, PartSize: u.PartSize, ContentType: u.ContentType, Absent: absent,
		Parts: func(part, of int) {
			f.setProgress(ino, progress{done: part, of: of, size: size, partSize: u.PartSize})
		},
	})
	if err == nil && (e == nil || e.Size != size || e.MD5 != u.MD5) {
		got := "no entity"
		if e != nil {
			got = fmt.Sprintf("size %d, MD5 %s", e.Size, e.MD5)
		}
		err = fmt.Errorf("Synapse reports %s after upload, want size %d, MD5 %s", got, size, u.MD5)
	}
	if err == nil {
		err = f.annotate(ctx, ino, e)
	}
	if err != nil {
		return f.failed(ctx, rec, gen, err)
	}
	done := *rec
	done.Size, done.MD5, done.Gen, done.State, done.Upload = size, u.MD5, gen, cache.StateDone, u
	if done.EntityID == "" {
		done.EntityID = e.ID
	}
	if f.o.BeforeFinish != nil {
		f.o.BeforeFinish(done, e)
	}
	switch err := s.Finish(ino, gen); {
	case errors.Is(err, cache.ErrChanged):
		return f.requeue(ino)
	case errors.Is(err, cache.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	f.log.Debug("uploaded", "file", rec.Name, "parent", rec.ParentID, "id", e.ID, "size", size)
	if f.o.OnUploaded != nil {
		f.o.OnUploaded(done, e)
	}
	f.annotateLate(ctx, ino, e)
	return nil
}

// failed records a failed upload and tells the queue whether to retry.
func (f *Flusher) failed(ctx context.Context, rec *cache.Record, gen uint64, err error) error {
	switch {
	case errors.Is(err, cache.ErrChanged):
		return f.requeue(rec.Ino)
	case errors.Is(err, cache.ErrNotFound):
		return nil
	case ctx.Err() != nil:
		// Cancelled: re-added, removed, or shutting down. The record stays
		// Uploading, which Pending resumes after a restart.
		return ctx.Err()
	}
	if reason, ok := permanentReason(err); ok {
		if serr := f.store.SetState(rec.Ino, gen, cache.StateFailed, reason); errors.Is(serr, cache.ErrChanged) {
			return f.requeue(rec.Ino)
		}
		if f.o.OnFailed != nil {
			failed := *rec
			failed.State, failed.Err = cache.StateFailed, reason
			f.o.OnFailed(failed, reason)
		} else {
			f.log.Warn("upload failed: "+reason, "file", rec.Name, "parent", rec.ParentID)
		}
		return writeback.Permanent(err)
	}
	_ = f.store.SetState(rec.Ino, gen, cache.StateDirty, err.Error())
	if later := f.offline(err); later != nil {
		f.log.Info("upload waits for Synapse", "file", rec.Name, "parent", rec.ParentID, "err", err)
		return later
	}
	f.log.Warn("upload failed, will retry", "file", rec.Name, "parent", rec.ParentID, "err", err)
	return err
}

// permanentReason maps the errors that retrying cannot fix to a plain
// reason. A refused token (401) is never one: while Synapse refuses it the
// connection is offline and uploads wait, and a 401 answering a call sent
// before a probe found the token accepted again is retried.
func permanentReason(err error) (string, bool) {
	if errors.Is(err, remote.ErrUnauthenticated) {
		return "", false
	}
	detail := ""
	var re *remote.Error
	if errors.As(err, &re) && re.Reason != "" {
		detail = ": " + re.Reason
	}
	if errors.Is(err, errAnnotations) && !errors.Is(err, remote.ErrTransient) && !errors.Is(err, remote.ErrStale) {
		// The file is in Synapse; its annotations were refused.
		if detail == "" {
			detail = ": " + err.Error()
		}
		return "the file is in Synapse, but Synapse refused its annotations (fix them with setfattr)" + detail, true
	}
	switch {
	case errors.Is(err, remote.ErrNotCertified):
		return NotCertifiedReason, true
	case errors.Is(err, remote.ErrPermission):
		return "permission denied: you may not create or update files in this folder" + detail, true
	case errors.Is(err, remote.ErrInvalid):
		return "Synapse refused the file" + detail, true
	case errors.Is(err, remote.ErrTooLarge):
		return "too large for Synapse" + detail, true
	case errors.Is(err, remote.ErrExist):
		return "the name is taken in Synapse by something that is not a file" + detail, true
	case errors.Is(err, remote.ErrNotFound):
		return "the target folder no longer exists in Synapse" + detail, true
	}
	return "", false
}

// contentType guesses a MIME type from the file name, without parameters.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	// Common data formats are fixed here, so that the type (part of the
	// resumable multipart request) does not depend on the host's MIME tables.
	switch ext {
	case ".txt":
		return "text/plain"
	case ".csv":
		return "text/csv"
	case ".tsv":
		return "text/tab-separated-values"
	case ".json":
		return "application/json"
	case ".gz":
		return "application/gzip"
	case ".zip":
		return "application/zip"
	case ".pdf":
		return "application/pdf"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".html":
		return "text/html"
	case ".md":
		return "text/markdown"
	}
	t := mime.TypeByExtension(ext)
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	if t == "" {
		return "application/octet-stream"
	}
	return t
}
