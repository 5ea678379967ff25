package synapse

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synfs/synfs/remote"
)

// Upload tuning.
const (
	maxUploadAttempts = 4                // whole multipart attempts (each resumes the last)
	maxPartTries      = 3                // PUT+add rounds per part after ADD_FAILED
	maxURLRefreshes   = 3                // presigned URL refreshes per part after 403
	urlBatch          = 100              // parts per presigned URL request
	urlFreshFor       = 10 * time.Minute // part URLs last 15 minutes; refresh before that
)

// Upload stores req's bytes by multipart upload and attaches them to the
// File entity, creating it or adding a version; see remote.Client.Upload.
//
// It is exactly-once: the existing entity is found (by req.EntityID or by
// name) before any bytes move, and if it already holds content with req's
// MD5 and size nothing is uploaded or changed. The multipart request is a
// pure function of req and the parent's upload destination, so a repeated
// call resumes Synapse's upload (sending only missing parts) or gets back
// its completed file handle. A create whose answer is lost is followed by a
// lookup before any second create.
func (c *Client) Upload(ctx context.Context, req *remote.UploadRequest) (*remote.Entity, error) {
	op := "upload " + req.Name
	if err := remote.ValidateName(req.Name); err != nil {
		return nil, err
	}
	if req.Size < 1 {
		return nil, c.newError(op, http.StatusBadRequest, "File size must be at least one byte", remote.ErrInvalid)
	}
	md5hex := strings.ToLower(req.MD5)
	if b, err := hex.DecodeString(md5hex); err != nil || len(b) != md5.Size {
		return nil, c.newError(op, 0, "MD5 must be 32 hexadecimal digits", remote.ErrInvalid)
	}
	if req.Source == nil {
		return nil, c.newError(op, 0, "no source", remote.ErrInvalid)
	}
	if req.ParentID == "" && req.EntityID == "" {
		return nil, c.newError(op, 0, "no parent or entity", remote.ErrInvalid)
	}
	plan := uploadPlan{req: req, md5: md5hex, fileName: req.FileName, partSize: req.PartSize, contentType: req.ContentType}
	if plan.fileName == "" {
		plan.fileName = req.Name
	}
	if plan.partSize == 0 {
		plan.partSize = remote.PartSizeFor(req.Size)
	}
	if plan.contentType == "" {
		plan.contentType = guessContentType(plan.fileName)
	}
	if plan.partSize < remote.MinPartSize || plan.partSize > remote.MaxPartSize {
		return nil, c.newError(op, 0, "part size "+strconv.FormatInt(plan.partSize, 10)+" out of range", remote.ErrInvalid)
	}
	plan.parts = max(1, (req.Size+plan.partSize-1)/plan.partSize)
	if plan.parts > remote.MaxParts {
		return nil, c.newError(op, 0, fmt.Sprintf("File Upload would require %d parts, which exceeds the maximum number of allowed parts of: %d. Please choose a larger part size.", plan.parts, remote.MaxParts), remote.ErrInvalid)
	}

	// Find the entity first: identical content means there is nothing to do.
	// A caller that knows the name is free (a fresh listing) saves the
	// lookup: a create that clashes falls back to a lookup and an update.
	var cur *Entity
	if !req.Absent || req.EntityID != "" {
		var err error
		if cur, err = c.uploadTarget(ctx, req); err != nil {
			return nil, err
		}
	}
	parent := req.ParentID
	if cur != nil {
		if parent == "" {
			parent = cur.ParentID
		}
		if r, ok, err := c.holds(ctx, cur, &plan, ""); err != nil || ok {
			return r, err
		}
		if req.EntityID != "" && req.Etag != "" && cur.Etag != req.Etag {
			return nil, c.staleError(cur)
		}
	}
	fh, err := c.uploadBytes(ctx, parent, &plan)
	if err != nil {
		return nil, err
	}
	return c.attach(ctx, parent, &plan, fh, cur)
}

// landWait bounds how long an upload cancelled while it creates or
// updates its entity waits for Synapse's answer.
const landWait = 10 * time.Second

// uploadPlan is an Upload's request with defaults filled in.
type uploadPlan struct {
	req         *remote.UploadRequest
	md5         string
	fileName    string
	partSize    int64
	contentType string
	parts       int64

	partsMu sync.Mutex // serializes calls to req.Parts
}

func (p *uploadPlan) partDone(n int64) {
	if p.req.Parts == nil {
		return
	}
	p.partsMu.Lock()
	defer p.partsMu.Unlock()
	p.req.Parts(int(n), int(p.parts))
}

func (c *Client) staleError(e *Entity) error {
	return c.newError("PUT /entity/"+e.ID, http.StatusPreconditionFailed,
		"Object: "+e.ID+" was updated since you last fetched it, retrieve it again and re-apply the update", remote.ErrStale)
}

// uploadTarget returns the File entity an upload updates, or nil when a new
// one must be created.
func (c *Client) uploadTarget(ctx context.Context, req *remote.UploadRequest) (*Entity, error) {
	id := req.EntityID
	if id == "" {
		var err error
		id, err = c.LookupChild(ctx, req.ParentID, req.Name)
		if errors.Is(err, remote.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	e, err := c.GetEntity(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.ConcreteType != TypeFileEntity {
		return nil, c.newError("upload "+req.Name, http.StatusConflict,
			"An entity with the name: "+e.Name+" already exists with a parentId: "+e.ParentID+" and is not a File", remote.ErrExist)
	}
	return e, nil
}

// holds reports whether file entity e already carries the planned content:
// its data handle is newHandle, or has the planned MD5 and size. It returns
// the entity with Size and MD5 when it does.
func (c *Client) holds(ctx context.Context, e *Entity, p *uploadPlan, newHandle string) (*remote.Entity, bool, error) {
	if e.DataFileHandleID == "" {
		return nil, false, nil
	}
	h, err := c.dataHandle(ctx, e)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, err
		}
		if e.DataFileHandleID != newHandle {
			// An unreadable handle cannot prove the content is there.
			return nil, false, nil
		}
		r := toEntity(e)
		r.Size, r.MD5 = p.req.Size, p.md5
		return r, true, nil
	}
	if e.DataFileHandleID == newHandle || (strings.EqualFold(h.ContentMD5, p.md5) && h.ContentSize == p.req.Size) {
		return withHandle(toEntity(e), h), true, nil
	}
	return nil, false, nil
}

// attach points the File entity at handle fh: it creates the entity, or
// updates the existing one unless it already holds this content. found is
// what Upload's lookup found (nil: nothing, or no lookup); the first try
// uses it rather than asking again, since a create that clashes and an
// update that is stale both fall back to a fresh read.
//
// A create or update once sent may be carried out even if the caller gives
// up on it, so attach waits up to landWait after ctx ends for the answer to
// a call already sent, and sends nothing once ctx has ended (admitWithin):
// when Upload returns, whatever it made in Synapse is there (a caller that
// cancels an upload, waits for it to return, and then looks up the name
// finds it).
func (c *Client) attach(ctx context.Context, parent string, p *uploadPlan, fh *FileHandle, found *Entity) (*remote.Entity, error) {
	outer := ctx
	lctx, cancel := remote.Outlive(ctx, landWait)
	defer cancel()
	ctx = admitWithin(lctx, outer)
	req := p.req
	var last error
	for try := range maxUpdateTries {
		if err := outer.Err(); err != nil {
			return nil, canceled("upload "+req.Name, err)
		}
		cur := found
		if try > 0 {
			var err error
			if cur, err = c.uploadTarget(ctx, req); err != nil {
				return nil, err
			}
		}
		if cur == nil {
			e := &Entity{ConcreteType: TypeFileEntity, Name: req.Name, ParentID: parent, DataFileHandleID: fh.ID}
			got, how, err := c.createOnce(ctx, e)
			if err != nil {
				return nil, err
			}
			if how == created {
				return withHandle(toEntity(got), fh), nil
			}
			if got.ConcreteType != TypeFileEntity {
				return nil, c.existError(e)
			}
			cur = got
		}
		// Upload checked found's content before the bytes moved, and no
		// one else knows fh yet: only an entity read since needs a look.
		if try > 0 || cur != found {
			if r, ok, err := c.holds(ctx, cur, p, fh.ID); err != nil || ok {
				return r, err
			}
		}
		if req.EntityID != "" && req.Etag != "" && cur.Etag != req.Etag {
			return nil, c.staleError(cur)
		}
		cur.DataFileHandleID = fh.ID
		out, err := c.UpdateEntity(ctx, cur, false)
		if err == nil {
			return withHandle(toEntity(out), fh), nil
		}
		if !errors.Is(err, remote.ErrStale) {
			return nil, err
		}
		last = err
	}
	return nil, last
}

// uploadBytes runs the multipart upload and returns the verified handle.
func (c *Client) uploadBytes(ctx context.Context, parent string, p *uploadPlan) (*FileHandle, error) {
	dest, err := c.uploadDestination(ctx, parent)
	if err != nil {
		return nil, err
	}
	mreq := &MultipartUploadRequest{
		ConcreteType:    TypeMultipartUpload,
		FileName:        p.fileName,
		FileSizeBytes:   p.req.Size,
		PartSizeBytes:   p.partSize,
		ContentMD5Hex:   p.md5,
		ContentType:     p.contentType,
		GeneratePreview: false,
	}
	if dest.StorageLocationID != 0 {
		loc := dest.StorageLocationID
		mreq.StorageLocationID = &loc
	}
	op := "upload " + p.req.Name
	force, rechecked := false, false
	for attempt := 0; ; attempt++ {
		fh, err := c.multipart(ctx, mreq, force, p)
		if err == nil {
			if fh.ContentSize == p.req.Size && strings.EqualFold(fh.ContentMD5, p.md5) {
				return fh, nil
			}
			err = c.newError(op, 0, fmt.Sprintf("file handle %s has size %d and MD5 %q, want %d and %q",
				fh.ID, fh.ContentSize, fh.ContentMD5, p.req.Size, p.md5), remote.ErrInvalid)
			if force {
				return nil, err
			}
			// The upload Synapse kept for this request is not this content:
			// start it again from scratch, once.
			force = true
			continue
		}
		if ctx.Err() == nil && errors.Is(err, remote.ErrInvalid) && !force && !rechecked {
			// Synapse keeps one upload per user and request, and the
			// request names no folder: the same content under the same
			// name uploaded elsewhere at once is the same upload, and the
			// other may complete it while this one adds parts ("Cannot add
			// parts to completed file upload."). Starting again finds it
			// completed and checks its handle.
			rechecked = true
			c.log.LogAttrs(ctx, slogWarn, "synapse: upload refused; looking at its state again", attrOp(op), attrErr(err))
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, remote.ErrTransient) || attempt+1 >= maxUploadAttempts {
			return nil, err
		}
		d := c.backoff(attempt, 0)
		c.log.LogAttrs(ctx, slogWarn, "synapse: resuming upload", attrOp(op), attrErr(err), attrAttempt(attempt+1), attrWait(d))
		if err := remote.Sleep(ctx, d); err != nil {
			return nil, canceled(op, err)
		}
		force = false
	}
}

// multipart runs one attempt: start or resume, send the missing parts,
// complete, and read the resulting handle.
func (c *Client) multipart(ctx context.Context, mreq *MultipartUploadRequest, force bool, p *uploadPlan) (*FileHandle, error) {
	st, err := c.StartMultipart(ctx, mreq, force)
	if err != nil {
		return nil, err
	}
	resumed := st.State == StateCompleted
	if st.State != StateCompleted {
		if int64(len(st.PartsState)) != p.parts {
			return nil, c.newError("POST /file/multipart", http.StatusCreated,
				fmt.Sprintf("partsState has %d entries, want %d", len(st.PartsState), p.parts), remote.ErrInvalid)
		}
		var missing []int64
		for i := range len(st.PartsState) {
			if st.PartsState[i] != '1' {
				missing = append(missing, int64(i+1))
			}
		}
		if len(missing) > 0 {
			if err := c.sendParts(ctx, st.UploadID, missing, p); err != nil {
				return nil, err
			}
		}
		if st, err = c.CompleteMultipart(ctx, st.UploadID); err != nil {
			return nil, err
		}
	}
	if st.ResultFileHandleID == "" {
		return nil, c.newError("POST /file/multipart", http.StatusCreated, "completed upload has no resultFileHandleId", remote.ErrInvalid)
	}
	if !resumed {
		// Synapse copies the handle's MD5 and size from the request and
		// checked every part's MD5 as it was added: reading the handle
		// back would only echo the request.
		return &FileHandle{ConcreteType: "org.sagebionetworks.repo.model.file.S3FileHandle", ID: st.ResultFileHandleID,
			ContentMD5: p.md5, ContentSize: p.req.Size, FileName: p.fileName, ContentType: p.contentType}, nil
	}
	// An upload Synapse had already completed: check what it holds.
	return c.GetFileHandle(ctx, st.ResultFileHandleID)
}

// sendParts uploads and adds the given parts with at most PartConcurrency
// in flight. Parts are streamed from the source; no part is held in memory.
func (c *Client) sendParts(ctx context.Context, uploadID string, parts []int64, p *uploadPlan) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	urls := newPartURLs(c, uploadID, parts)
	hashers := newPartHashers(int(p.parts))
	defer hashers.Close()
	work := make(chan int64)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(c.cfg.PartConcurrency, len(parts)) {
		wg.Go(func() {
			h := hashers.get()
			defer h.Close()
			for n := range work {
				if err := c.sendPart(ctx, urls, uploadID, n, p, h); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
feed:
	for _, n := range parts {
		select {
		case work <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return canceled("upload "+p.req.Name, err)
	}
	return nil
}

// sendPart PUTs part n to its presigned URL and adds it, again after an
// ADD_FAILED answer.
func (c *Client) sendPart(ctx context.Context, urls *partURLs, uploadID string, n int64, p *uploadPlan, h hash.Hash) error {
	off := (n - 1) * p.partSize
	length := min(p.partSize, p.req.Size-off)
	var last error
	for range maxPartTries {
		// The part's MD5 is computed from the bytes as they are sent: one
		// read of the source per part, not two.
		sum, err := c.putPart(ctx, urls, n, p.req.Source, off, length, h)
		if err != nil {
			return err
		}
		if sum == "" {
			if sum, err = c.partMD5(ctx, p.req.Source, off, length, n); err != nil {
				return err
			}
		}
		err = c.AddPart(ctx, uploadID, n, sum)
		if err == nil {
			p.partDone(n)
			return nil
		}
		var ape *AddPartError
		if !errors.As(err, &ape) {
			return err
		}
		c.log.LogAttrs(ctx, slogWarn, "synapse: part not added; sending it again", attrOp(ape.Err.Op), attrErr(err))
		last = err
	}
	return last
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// partMD5 hashes length bytes of src at off, streaming.
func (c *Client) partMD5(ctx context.Context, src io.ReaderAt, off, length, n int64) (string, error) {
	h := md5.New()
	got, err := io.CopyBuffer(h, ctxReader{ctx, io.NewSectionReader(src, off, length)}, make([]byte, 64<<10))
	op := "read part " + strconv.FormatInt(n, 10)
	if ctx.Err() != nil {
		return "", canceled(op, ctx.Err())
	}
	if err != nil {
		return "", c.newError(op, 0, err.Error(), remote.ErrInvalid)
	}
	if got != length {
		return "", c.newError(op, 0, fmt.Sprintf("source gave %d bytes, want %d", got, length), remote.ErrInvalid)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// PutPart sends length bytes of src at off to a presigned part URL with
// exactly the signed headers, a real Content-Length and no Authorization.
// Transient failures are retried; the answer's status is returned as an
// error of the matching kind (403 usually means the URL has expired).
func (c *Client) PutPart(ctx context.Context, u *PartPresignedURL, src io.ReaderAt, off, length int64) error {
	_, err := c.putPartSum(ctx, u, src, off, length, md5.New())
	return err
}

// putPartSum is PutPart that also returns the lowercase hex MD5 of the
// bytes the successful attempt sent, or "" if it did not send them all.
// h hashes the bytes; it is reset first and not used once this returns.
func (c *Client) putPartSum(ctx context.Context, u *PartPresignedURL, src io.ReaderAt, off, length int64, h hash.Hash) (string, error) {
	op := "PUT part " + strconv.FormatInt(u.PartNumber, 10)
	hdr := http.Header{}
	for k, v := range u.SignedHeaders {
		hdr.Set(k, v)
	}
	var last *hashingBody
	resp, err := c.presigned(ctx, op, http.MethodPut, u.UploadPresignedURL, hdr, func() io.ReadCloser {
		if last != nil {
			last.Close() // an earlier attempt's, if the transport has not
		}
		last = newHashingBody(io.NewSectionReader(src, off, length), length, h)
		return last
	}, length)
	if last != nil {
		defer last.Close()
	}
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if last == nil {
			return "", nil
		}
		return last.md5(), nil
	}
	return "", c.statusError(op, resp.StatusCode, b)
}

// putPart PUTs part n, refreshing its URL after a 403, and returns the MD5
// of what it sent ("" when unknown).
func (c *Client) putPart(ctx context.Context, urls *partURLs, n int64, src io.ReaderAt, off, length int64, h hash.Hash) (string, error) {
	for refresh := 0; ; refresh++ {
		u, err := urls.get(ctx, n)
		if err != nil {
			return "", err
		}
		sum, err := c.putPartSum(ctx, &u, src, off, length, h)
		var re *remote.Error
		if err != nil && errors.As(err, &re) && re.Status == http.StatusForbidden && refresh < maxURLRefreshes {
			urls.invalidate(n, u.UploadPresignedURL)
			continue
		}
		return sum, err
	}
}

// partURLs fetches presigned part URLs in batches, in send order, and
// refreshes them before they expire.
type partURLs struct {
	c        *Client
	uploadID string
	order    []int64
	pos      map[int64]int

	mu   sync.Mutex // protects urls; held across a fetch so that one batch serves all waiters
	urls map[int64]partURL
}

type partURL struct {
	u       PartPresignedURL
	fetched time.Time
}

func newPartURLs(c *Client, uploadID string, order []int64) *partURLs {
	p := &partURLs{c: c, uploadID: uploadID, order: order, pos: make(map[int64]int, len(order)), urls: map[int64]partURL{}}
	for i, n := range order {
		p.pos[n] = i
	}
	return p
}

// freshLocked reports whether part n has a usable URL. Caller holds p.mu.
func (p *partURLs) freshLocked(n int64, now time.Time) bool {
	e, ok := p.urls[n]
	if !ok || now.Sub(e.fetched) >= urlFreshFor {
		return false
	}
	exp, ok := urlExpiry(e.u.UploadPresignedURL)
	return !ok || now.Before(exp.Add(-30*time.Second))
}

func (p *partURLs) get(ctx context.Context, n int64) (PartPresignedURL, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.c.now()
	if p.freshLocked(n, now) {
		return p.urls[n].u, nil
	}
	batch := []int64{n}
	for i := p.pos[n] + 1; i < len(p.order) && len(batch) < urlBatch; i++ {
		if m := p.order[i]; !p.freshLocked(m, now) {
			batch = append(batch, m)
		}
	}
	got, err := p.c.PresignedPartURLs(ctx, p.uploadID, batch)
	if err != nil {
		return PartPresignedURL{}, err
	}
	for _, u := range got {
		if u.UploadPresignedURL != "" {
			p.urls[u.PartNumber] = partURL{u: u, fetched: now}
		}
	}
	e, ok := p.urls[n]
	if !ok {
		return PartPresignedURL{}, p.c.newError("POST /file/multipart/"+p.uploadID+"/presigned/url/batch", http.StatusCreated,
			"no URL for part "+strconv.FormatInt(n, 10), remote.ErrInvalid)
	}
	return e.u, nil
}

// invalidate forgets part n's URL if it is still used.
func (p *partURLs) invalidate(n int64, used string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.urls[n]; ok && e.u.UploadPresignedURL == used {
		delete(p.urls, n)
	}
}

// urlExpiry reads the expiry of an S3-style presigned URL from its
// X-Amz-Date and X-Amz-Expires parameters.
func urlExpiry(raw string) (time.Time, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return time.Time{}, false
	}
	q := u.Query()
	d, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return time.Time{}, false
	}
	s, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil {
		return time.Time{}, false
	}
	return d.Add(time.Duration(s) * time.Second), true
}

// guessContentType returns the MIME type for a file name from a fixed
// table, or application/octet-stream. The table does not depend on the host's
// MIME database, so that the multipart request (and with it resumption)
// never changes between machines or system updates.
func guessContentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".txt":
		return "text/plain"
	case ".csv":
		return "text/csv"
	case ".tsv":
		return "text/tab-separated-values"
	case ".htm", ".html":
		return "text/html"
	case ".md":
		return "text/markdown"
	case ".xml":
		return "text/xml"
	case ".json":
		return "application/json"
	case ".pdf":
		return "application/pdf"
	case ".zip":
		return "application/zip"
	case ".gz":
		return "application/gzip"
	case ".tar":
		return "application/x-tar"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".tif", ".tiff":
		return "image/tiff"
	}
	return "application/octet-stream"
}

// uploadDestination is UploadDestination remembered per container: a
// folder's storage location does not change under a running upload, and
// asking once saves one REST call per file. Concurrent uploads into one
// folder ask once between them.
func (c *Client) uploadDestination(ctx context.Context, parent string) (*UploadDestination, error) {
	if d, ok := c.dests.Load(parent); ok {
		return d.(*UploadDestination), nil
	}
	v, _ := c.destCalls.LoadOrStore(parent, &destCall{})
	call := v.(*destCall)
	call.mu.Lock()
	defer call.mu.Unlock()
	if d, ok := c.dests.Load(parent); ok {
		return d.(*UploadDestination), nil
	}
	d, err := c.UploadDestination(ctx, parent)
	if err != nil {
		return nil, err
	}
	c.dests.Store(parent, d)
	return d, nil
}

// destCall serializes the first UploadDestination call of a container.
type destCall struct{ mu sync.Mutex }
