package synapse

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/synfs/synfs/remote"
)

// Download tuning.
const (
	maxDownloadRefreshes = 3               // new URLs per open after 403
	maxResumes           = 5               // reconnects after a broken stream
	urlMargin            = 5 * time.Second // refresh a URL this close to expiry
)

// DownloadURL returns a presigned URL for file handle handleID of file
// entity entityID (POST /fileHandle/batch), and the handle.
func (c *Client) DownloadURL(ctx context.Context, entityID, handleID string) (string, *FileHandle, error) {
	op := "POST /fileHandle/batch"
	res, err := c.FileHandleBatch(ctx, []FileHandleAssociation{{
		FileHandleID: handleID, AssociateObjectID: entityID, AssociateObjectType: "FileEntity",
	}}, true)
	if err != nil {
		return "", nil, err
	}
	for i := range res {
		if res[i].FileHandleID != handleID {
			continue
		}
		if err := c.fileFailure(op, res[i].FailureCode); err != nil {
			return "", nil, err
		}
		if res[i].PreSignedURL == "" {
			return "", nil, c.newError(op, http.StatusCreated, "answer has no preSignedURL", remote.ErrInvalid)
		}
		return res[i].PreSignedURL, res[i].FileHandle, nil
	}
	return "", nil, c.newError(op, http.StatusCreated, "answer lacks the requested file handle", remote.ErrInvalid)
}

// GetRange GETs bytes [off, off+length) of a presigned URL (length < 0: to
// the end) with no Authorization header, retrying transient failures. It
// returns the response (200 or 206) for the caller to read and close; a 416
// is returned as an empty 206 response.
func (c *Client) GetRange(ctx context.Context, rawURL string, off, length int64) (*http.Response, error) {
	op := "GET file range"
	hdr := http.Header{}
	switch {
	case length >= 0:
		hdr.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+length-1, 10))
	case off > 0:
		hdr.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	resp, err := c.presigned(ctx, op, http.MethodGet, rawURL, hdr, nil, 0)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
		return resp, nil
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		resp.StatusCode = http.StatusPartialContent
		resp.Body = http.NoBody
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	return nil, c.statusError(op, resp.StatusCode, b)
}

// Open returns a reader of length bytes (length < 0: to the end) of file
// entity e's data from offset off. It fetches a presigned URL, refreshes it
// on 403 or near expiry, and reconnects from the current offset when the
// stream breaks. Reading stops when ctx is done.
func (c *Client) Open(ctx context.Context, e *remote.Entity, off, length int64) (io.ReadCloser, error) {
	if e == nil || e.ID == "" {
		return nil, c.newError("open", 0, "no entity", remote.ErrInvalid)
	}
	op := "open " + e.ID
	if off < 0 {
		return nil, c.newError(op, 0, "negative offset", remote.ErrInvalid)
	}
	if length == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	handle := e.FileHandleID
	if handle == "" {
		got, err := c.GetEntity(ctx, e.ID)
		if err != nil {
			return nil, err
		}
		if got.ConcreteType != TypeFileEntity {
			return nil, c.newError(op, 0, "not a file", remote.ErrInvalid)
		}
		handle = got.DataFileHandleID
	}
	r := &rangeReader{c: c, ctx: ctx, op: op, entityID: e.ID, handleID: handle, pos: off, end: -1}
	if length > 0 {
		r.end = off + length
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// rangeReader streams [pos, end) of a file, reconnecting as needed. It is
// not safe for concurrent use, like any io.Reader.
type rangeReader struct {
	c        *Client
	ctx      context.Context
	op       string
	entityID string
	handleID string
	url      string

	pos, end int64 // end < 0: to the end of the file
	body     io.ReadCloser
	resumes  int
	closed   bool
}

// open (re)connects at r.pos.
func (r *rangeReader) open() error {
	for refresh := 0; ; refresh++ {
		if r.url == "" || r.expiring() {
			u, _, err := r.c.DownloadURL(r.ctx, r.entityID, r.handleID)
			if err != nil {
				return err
			}
			r.url = u
		}
		length := int64(-1)
		if r.end >= 0 {
			length = r.end - r.pos
		}
		resp, err := r.c.GetRange(r.ctx, r.url, r.pos, length)
		var re *remote.Error
		if err != nil && errors.As(err, &re) && re.Status == http.StatusForbidden && refresh < maxDownloadRefreshes {
			r.url = ""
			continue
		}
		if err != nil {
			return err
		}
		body := resp.Body
		if resp.StatusCode == http.StatusOK && r.pos > 0 {
			// The server ignored the range: skip to the offset.
			if _, err := io.CopyN(io.Discard, body, r.pos); err != nil {
				body.Close()
				if errors.Is(err, io.EOF) {
					r.body = http.NoBody
					return nil
				}
				return r.c.transportError(r.op, err)
			}
		}
		r.body = body
		return nil
	}
}

func (r *rangeReader) expiring() bool {
	exp, ok := urlExpiry(r.url)
	return ok && !r.c.now().Before(exp.Add(-urlMargin))
}

// Read reads from the current stream, reconnecting after a broken one.
func (r *rangeReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("synapse: read of a closed file reader")
	}
	for {
		if r.end >= 0 {
			if r.pos >= r.end {
				return 0, io.EOF
			}
			if rem := r.end - r.pos; int64(len(p)) > rem {
				p = p[:rem]
			}
		}
		n, err := r.body.Read(p)
		r.pos += int64(n)
		switch {
		case err == nil || errors.Is(err, io.EOF):
			if n > 0 {
				return n, nil
			}
			return 0, err
		case r.ctx.Err() != nil:
			return n, canceled(r.op, r.ctx.Err())
		}
		if n > 0 {
			// Report the bytes; the next Read meets the error again.
			return n, nil
		}
		if r.resumes >= maxResumes {
			return 0, r.c.transportError(r.op, err)
		}
		r.resumes++
		r.c.log.LogAttrs(r.ctx, slogWarn, "synapse: download broke; reconnecting", attrOp(r.op), attrErr(err), attrAttempt(r.resumes))
		r.body.Close()
		if err := r.open(); err != nil {
			return 0, err
		}
	}
}

// Close releases the connection.
func (r *rangeReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.body.Close()
}
