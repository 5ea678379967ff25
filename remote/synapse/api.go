package synapse

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/synfs/synfs/remote"
)

// UserProfile returns the caller's profile (GET /userProfile).
func (c *Client) UserProfile(ctx context.Context) (*UserProfile, error) {
	var p UserProfile
	err := c.rest(ctx, call{method: http.MethodGet, base: c.repo, path: "/userProfile", out: &p})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CertifiedPassingRecord returns principal id's Certified User quiz record
// (GET /user/{id}/certifiedUserPassingRecord). A user who never took the
// quiz gets ErrNotFound.
func (c *Client) CertifiedPassingRecord(ctx context.Context, principalID string) (*PassingRecord, error) {
	var r PassingRecord
	err := c.rest(ctx, call{method: http.MethodGet, base: c.repo,
		path: "/user/" + url.PathEscape(principalID) + "/certifiedUserPassingRecord", out: &r})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// GetEntity returns the current version of entity id (GET /entity/{id}).
func (c *Client) GetEntity(ctx context.Context, id string) (*Entity, error) {
	var e Entity
	err := c.rest(ctx, call{method: http.MethodGet, base: c.repo, path: "/entity/" + url.PathEscape(id), out: &e})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// CreateEntity creates e (POST /entity). It is never re-sent once the
// server may have acted on it: a lost answer comes back as ErrTransient,
// and the caller must look the name up before trying again.
func (c *Client) CreateEntity(ctx context.Context, e *Entity) (*Entity, error) {
	var out Entity
	err := c.rest(ctx, call{method: http.MethodPost, base: c.repo, path: "/entity", body: e, out: &out, once: true})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateEntity replaces entity e.ID with e (PUT /entity/{id}); e must carry
// the etag it was read with (ErrStale on mismatch). newVersion forces a new
// version of a FileEntity; without it Synapse versions a FileEntity only
// when the data file's MD5 changes.
func (c *Client) UpdateEntity(ctx context.Context, e *Entity, newVersion bool) (*Entity, error) {
	var q url.Values
	if newVersion {
		q = url.Values{"newVersion": {"true"}}
	}
	var out Entity
	err := c.rest(ctx, call{method: http.MethodPut, base: c.repo, path: "/entity/" + url.PathEscape(e.ID), query: q, body: e, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteEntity moves entity id to the trash (DELETE /entity/{id}).
func (c *Client) DeleteEntity(ctx context.Context, id string) error {
	return c.rest(ctx, call{method: http.MethodDelete, base: c.repo, path: "/entity/" + url.PathEscape(id)})
}

// LookupChild returns the ID of parentID's child called name
// (POST /entity/child), or ErrNotFound. parentID "" looks up a Project.
func (c *Client) LookupChild(ctx context.Context, parentID, name string) (string, error) {
	req := EntityLookupRequest{EntityName: name}
	if parentID != "" {
		req.ParentID = &parentID
	}
	var out EntityID
	err := c.rest(ctx, call{method: http.MethodPost, base: c.repo, path: "/entity/child", body: &req, out: &out})
	if err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", c.newError("POST /entity/child", http.StatusOK, "answer has no id", remote.ErrInvalid)
	}
	return out.ID, nil
}

// DefaultIncludeTypes returns the entity types that ListChildren asks for
// when given none: those the official client lists by default.
func DefaultIncludeTypes() []string {
	return []string{"folder", "file", "table", "link", "entityview", "dockerrepo", "submissionview", "dataset", "materializedview"}
}

// maxPages bounds a listing, as a guard against a server that never stops
// handing out page tokens (10,000 children fit in 200 pages of 50).
const maxPages = 100000

// ListChildren returns every child of parentID of the given types (nil:
// DefaultIncludeTypes), following page tokens (POST /entity/children).
// parentID "" lists the Projects the caller can read.
func (c *Client) ListChildren(ctx context.Context, parentID string, types []string) ([]EntityHeader, error) {
	req := EntityChildrenRequest{IncludeTypes: types, SortBy: "NAME", SortDirection: "ASC"}
	if req.IncludeTypes == nil {
		req.IncludeTypes = DefaultIncludeTypes()
	}
	if parentID != "" {
		req.ParentID = &parentID
	} else {
		req.IncludeTypes = []string{"project"}
	}
	var all []EntityHeader
	seen := map[string]bool{}
	for range maxPages {
		var page EntityChildrenResponse
		if err := c.rest(ctx, call{method: http.MethodPost, base: c.repo, path: "/entity/children", body: &req, out: &page}); err != nil {
			return nil, err
		}
		all = append(all, page.Page...)
		if page.NextPageToken == "" {
			return all, nil
		}
		if seen[page.NextPageToken] {
			return nil, c.newError("POST /entity/children", http.StatusOK, "page token repeats", remote.ErrInvalid)
		}
		seen[page.NextPageToken] = true
		tok := page.NextPageToken
		req.NextPageToken = &tok
	}
	return nil, c.newError("POST /entity/children", http.StatusOK, "too many pages", remote.ErrTooLarge)
}

// Projects returns the projects shared explicitly with the caller or their
// teams (GET /projects, filter ALL), across all pages. Public-only projects
// are not listed; ListChildren("") lists those too.
func (c *Client) Projects(ctx context.Context) ([]ProjectHeader, error) {
	var all []ProjectHeader
	tok := ""
	seen := map[string]bool{}
	for range maxPages {
		q := url.Values{"filter": {"ALL"}, "sort": {"PROJECT_NAME"}, "sortDirection": {"ASC"}}
		if tok != "" {
			q.Set("nextPageToken", tok)
		}
		var page ProjectHeaderList
		if err := c.rest(ctx, call{method: http.MethodGet, base: c.repo, path: "/projects", query: q, out: &page}); err != nil {
			return nil, err
		}
		all = append(all, page.Results...)
		if page.NextPageToken == "" {
			return all, nil
		}
		if seen[page.NextPageToken] {
			return nil, c.newError("GET /projects", http.StatusOK, "page token repeats", remote.ErrInvalid)
		}
		seen[page.NextPageToken] = true
		tok = page.NextPageToken
	}
	return nil, c.newError("GET /projects", http.StatusOK, "too many pages", remote.ErrTooLarge)
}

// EntityPermissions returns the caller's permissions on entity id
// (GET /entity/{id}/permissions).
func (c *Client) EntityPermissions(ctx context.Context, id string) (*UserEntityPermissions, error) {
	var p UserEntityPermissions
	err := c.rest(ctx, call{method: http.MethodGet, base: c.repo, path: "/entity/" + url.PathEscape(id) + "/permissions", out: &p})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// GetAnnotations returns entity id's annotations
// (GET /entity/{id}/annotations2).
func (c *Client) GetAnnotations(ctx context.Context, id string) (*Annotations, error) {
	var a Annotations
	err := c.rest(ctx, call{method: http.MethodGet, base: c.repo, path: "/entity/" + url.PathEscape(id) + "/annotations2", out: &a})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// PutAnnotations replaces a.ID's annotations (PUT /entity/{id}/annotations2);
// a.Etag must be the entity's current etag. It returns the stored
// annotations with the new etag.
func (c *Client) PutAnnotations(ctx context.Context, a *Annotations) (*Annotations, error) {
	if a.Annotations == nil {
		b := *a
		b.Annotations = map[string]AnnotationsValue{}
		a = &b
	}
	var out Annotations
	err := c.rest(ctx, call{method: http.MethodPut, base: c.repo, path: "/entity/" + url.PathEscape(a.ID) + "/annotations2", body: a, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UploadDestination returns container id's default upload destination
// (GET /entity/{id}/uploadDestination on the file service).
func (c *Client) UploadDestination(ctx context.Context, id string) (*UploadDestination, error) {
	var d UploadDestination
	err := c.rest(ctx, call{method: http.MethodGet, base: c.file, path: "/entity/" + url.PathEscape(id) + "/uploadDestination", out: &d})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// StartMultipart starts a multipart upload, or resumes the one Synapse
// holds for an identical request (POST /file/multipart). forceRestart
// discards any earlier state.
func (c *Client) StartMultipart(ctx context.Context, req *MultipartUploadRequest, forceRestart bool) (*MultipartUploadStatus, error) {
	var s MultipartUploadStatus
	q := url.Values{"forceRestart": {strconv.FormatBool(forceRestart)}}
	err := c.rest(ctx, call{method: http.MethodPost, base: c.file, path: "/file/multipart", query: q, body: req, out: &s})
	if err != nil {
		return nil, err
	}
	if s.UploadID == "" || (s.State != StateUploading && s.State != StateCompleted) {
		return nil, c.newError("POST /file/multipart", http.StatusCreated, "malformed upload status (state "+strconv.Quote(s.State)+")", remote.ErrInvalid)
	}
	return &s, nil
}

// PresignedPartURLs returns upload URLs for the given parts
// (POST /file/multipart/{uploadId}/presigned/url/batch).
func (c *Client) PresignedPartURLs(ctx context.Context, uploadID string, parts []int64) ([]PartPresignedURL, error) {
	var r BatchPresignedUploadURLResponse
	err := c.rest(ctx, call{method: http.MethodPost, base: c.file,
		path: "/file/multipart/" + url.PathEscape(uploadID) + "/presigned/url/batch",
		body: &BatchPresignedUploadURLRequest{UploadID: uploadID, PartNumbers: parts}, out: &r})
	if err != nil {
		return nil, err
	}
	return r.PartPresignedURLs, nil
}

// AddPart tells Synapse that part n (from 1), whose bytes have the MD5
// partMD5, has been uploaded (PUT /file/multipart/{uploadId}/add/{n}). An
// ADD_FAILED answer is returned as an error of kind ErrTransient carrying
// Synapse's message, wrapped in *AddPartError.
func (c *Client) AddPart(ctx context.Context, uploadID string, n int64, partMD5 string) error {
	var r AddPartResponse
	path := "/file/multipart/" + url.PathEscape(uploadID) + "/add/" + strconv.FormatInt(n, 10)
	err := c.rest(ctx, call{method: http.MethodPut, base: c.file, path: path,
		query: url.Values{"partMD5Hex": {partMD5}}, out: &r})
	if err != nil {
		return err
	}
	if r.AddPartState != AddSuccess {
		msg := r.ErrorMessage
		if msg == "" {
			msg = "add part state " + strconv.Quote(r.AddPartState)
		}
		return &AddPartError{Part: n, Err: c.newError("PUT "+path, http.StatusCreated, msg, remote.ErrTransient)}
	}
	return nil
}

// AddPartError is an ADD_FAILED answer: part Part must be uploaded again.
type AddPartError struct {
	Part int64
	Err  *remote.Error
}

func (e *AddPartError) Error() string { return e.Err.Error() }

// Unwrap returns the *remote.Error, so that errors.Is and errors.As see it.
func (e *AddPartError) Unwrap() error { return e.Err }

// CompleteMultipart completes an upload whose parts are all added
// (PUT /file/multipart/{uploadId}/complete). The status is COMPLETED with
// ResultFileHandleID set; any other state is an error.
func (c *Client) CompleteMultipart(ctx context.Context, uploadID string) (*MultipartUploadStatus, error) {
	var s MultipartUploadStatus
	path := "/file/multipart/" + url.PathEscape(uploadID) + "/complete"
	err := c.rest(ctx, call{method: http.MethodPut, base: c.file, path: path, out: &s})
	if err != nil {
		return nil, err
	}
	if s.State != StateCompleted || s.ResultFileHandleID == "" {
		return nil, c.newError("PUT "+path, http.StatusCreated, "upload not completed (state "+strconv.Quote(s.State)+")", remote.ErrTransient)
	}
	return &s, nil
}

// GetFileHandle returns file handle id (GET /fileHandle/{id}); only its
// creator may read it.
func (c *Client) GetFileHandle(ctx context.Context, id string) (*FileHandle, error) {
	var h FileHandle
	err := c.rest(ctx, call{method: http.MethodGet, base: c.file, path: "/fileHandle/" + url.PathEscape(id), out: &h})
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// FileHandleBatch returns file handles and, with urls, presigned download
// URLs for files (POST /fileHandle/batch, at most 100 files). Per-file
// failures are reported in FileResult.FailureCode.
func (c *Client) FileHandleBatch(ctx context.Context, files []FileHandleAssociation, urls bool) ([]FileResult, error) {
	if len(files) > 100 {
		return nil, c.newError("POST /fileHandle/batch", 0, "more than 100 files in one request", remote.ErrInvalid)
	}
	var r BatchFileResult
	err := c.rest(ctx, call{method: http.MethodPost, base: c.file, path: "/fileHandle/batch",
		body: &BatchFileRequest{RequestedFiles: files, IncludePreSignedURLs: urls, IncludeFileHandles: true}, out: &r})
	if err != nil {
		return nil, err
	}
	return r.RequestedFiles, nil
}

// fileFailure maps a FileResult failure code to an error.
func (c *Client) fileFailure(op string, code string) error {
	switch code {
	case "":
		return nil
	case "NOT_FOUND":
		return c.newError(op, http.StatusNotFound, "file handle "+code, remote.ErrNotFound)
	case "UNAUTHORIZED":
		return c.newError(op, http.StatusForbidden, "file handle "+code, remote.ErrPermission)
	}
	return c.newError(op, 0, "file handle "+code, remote.ErrInvalid)
}
