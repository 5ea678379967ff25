package synapse

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/synfs/synfs/remote"
)

var _ remote.FileReader = (*fileReader)(nil)

// Download returns a random-access reader of file entity e's data: see
// remote.Client.Download. It makes no REST call until the first read.
func (c *Client) Download(ctx context.Context, e *remote.Entity) (remote.FileReader, error) {
	if e == nil || e.ID == "" {
		return nil, c.newError("download", 0, "no entity", remote.ErrInvalid)
	}
	return &fileReader{c: c, entityID: e.ID, handleID: e.FileHandleID}, nil
}

// fileReader holds one presigned URL for a file and reads ranges of it.
type fileReader struct {
	c        *Client
	entityID string

	mu       sync.Mutex // protects the fields below
	handleID string
	url      string
	issued   time.Time // when url was fetched
	refresh  chan struct{}
}

// urlFor returns a usable URL: the one held unless it is about to expire
// or stale names it (refused), else a new one; concurrent readers share
// one fetch.
func (r *fileReader) urlFor(ctx context.Context, stale string) (string, error) {
	for {
		r.mu.Lock()
		if r.url != "" && r.url != stale && !r.expiringLocked() {
			u := r.url
			r.mu.Unlock()
			return u, nil
		}
		if ch := r.refresh; ch != nil {
			r.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return "", canceled("download "+r.entityID, ctx.Err())
			}
		}
		ch := make(chan struct{})
		r.refresh = ch
		handle := r.handleID
		r.mu.Unlock()
		u, h, err := r.fetchURL(ctx, handle)
		r.mu.Lock()
		r.refresh = nil
		if err == nil {
			r.url, r.issued, r.handleID = u, r.c.now(), h
		}
		r.mu.Unlock()
		close(ch)
		return u, err
	}
}

func (r *fileReader) fetchURL(ctx context.Context, handle string) (string, string, error) {
	if handle == "" {
		got, err := r.c.GetEntity(ctx, r.entityID)
		if err != nil {
			return "", "", err
		}
		if got.ConcreteType != TypeFileEntity {
			return "", "", r.c.newError("download "+r.entityID, 0, "not a file", remote.ErrInvalid)
		}
		handle = got.DataFileHandleID
	}
	u, _, err := r.c.DownloadURL(ctx, r.entityID, handle)
	return u, handle, err
}

// expiringLocked reports whether the URL held expires within the margin:
// 5 s, or a quarter of its lifetime for short-lived URLs.
func (r *fileReader) expiringLocked() bool {
	exp, ok := urlExpiry(r.url)
	if !ok {
		return false
	}
	margin := urlMargin
	if life := exp.Sub(r.issued); life > 0 && life/4 < margin {
		margin = life / 4
	}
	return !r.c.now().Before(exp.Add(-margin))
}

// ReadAt reads [off, off+len(p)) with one Range request, fetching a new URL
// and trying again when the one held is refused (403, an expired URL) and
// reconnecting when a transfer breaks.
func (r *fileReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	op := "download " + r.entityID
	var stale string
	done := 0
	for refresh, resumes := 0, 0; ; {
		u, err := r.urlFor(ctx, stale)
		if err != nil {
			return done, err
		}
		resp, err := r.c.GetRange(ctx, u, off+int64(done), int64(len(p)-done))
		var re *remote.Error
		if err != nil && errors.As(err, &re) && re.Status == http.StatusForbidden && refresh < maxDownloadRefreshes {
			refresh++
			stale = u
			continue
		}
		if err != nil {
			return done, err
		}
		if resp.StatusCode == http.StatusOK && off+int64(done) > 0 {
			// The server ignored the range: skip to the offset.
			if _, err := io.CopyN(io.Discard, resp.Body, off+int64(done)); err != nil {
				resp.Body.Close()
				if errors.Is(err, io.EOF) {
					return done, io.EOF
				}
				return done, r.c.transportError(op, err)
			}
		}
		n, err := io.ReadFull(resp.Body, p[done:])
		resp.Body.Close()
		done += n
		switch {
		case err == nil:
			return done, nil
		case errors.Is(err, io.EOF):
			return done, io.EOF // nothing at off: the end of the file (GetRange's 416)
		case errors.Is(err, io.ErrUnexpectedEOF):
			if resp.ContentLength >= 0 && int64(n) < resp.ContentLength {
				break // the transfer broke: resume below
			}
			return done, io.EOF
		case ctx.Err() != nil:
			return done, canceled(op, ctx.Err())
		}
		if resumes >= maxResumes {
			return done, r.c.transportError(op, err)
		}
		resumes++
	}
}
