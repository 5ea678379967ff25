package emulator

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/synfs/synfs/remote"
)

// Multipart limits of Synapse.
const (
	maxFileSize  int64 = 5 << 40
	requestType        = "org.sagebionetworks.repo.model.file.MultipartUploadRequest"
	s3HandleType       = "org.sagebionetworks.repo.model.file.S3FileHandle"
	bucketName         = "proddata.sagebase.org"
	amzDate            = "20060102T150405Z"
)

type handleJSON struct {
	ConcreteType      string `json:"concreteType"`
	ID                string `json:"id"`
	Etag              string `json:"etag"`
	CreatedBy         string `json:"createdBy"`
	CreatedOn         string `json:"createdOn"`
	ModifiedOn        string `json:"modifiedOn"`
	ContentType       string `json:"contentType"`
	ContentMD5        string `json:"contentMd5"`
	FileName          string `json:"fileName"`
	StorageLocationID int64  `json:"storageLocationId"`
	ContentSize       int64  `json:"contentSize"`
	Status            string `json:"status"`
	BucketName        string `json:"bucketName"`
	Key               string `json:"key"`
	PreviewID         string `json:"previewId,omitempty"`
	IsPreview         bool   `json:"isPreview"`
}

func handleOut(h *fileHandle) handleJSON {
	return handleJSON{ConcreteType: s3HandleType, ID: h.ID, Etag: h.Etag, CreatedBy: h.CreatedBy,
		CreatedOn: iso(h.CreatedOn), ModifiedOn: iso(h.CreatedOn), ContentType: h.ContentType, ContentMD5: h.ContentMD5,
		FileName: h.FileName, StorageLocationID: 1, ContentSize: h.ContentSize, Status: "AVAILABLE",
		BucketName: bucketName, Key: h.Key, PreviewID: h.PreviewID}
}

type uploadStatus struct {
	UploadID           string `json:"uploadId"`
	StartedBy          string `json:"startedBy"`
	StartedOn          string `json:"startedOn"`
	UpdatedOn          string `json:"updatedOn"`
	PartsState         string `json:"partsState"`
	State              string `json:"state"`
	ResultFileHandleID string `json:"resultFileHandleId,omitempty"`
}

func statusOut(u *upload) uploadStatus {
	return uploadStatus{UploadID: u.ID, StartedBy: u.StartedBy, StartedOn: iso(u.StartedOn), UpdatedOn: iso(u.UpdatedOn),
		PartsState: u.partsState(), State: u.State, ResultFileHandleID: u.ResultHandleID}
}

func (s *Server) fileRoutes(add func(method, pattern string, h handler)) {
	const f = "/file/v1"
	add("GET", f+"/entity/{id}/uploadDestination", s.hUploadDestination)
	add("POST", f+"/file/multipart", s.hStartUpload)
	add("POST", f+"/file/multipart/{uploadId}/presigned/url/batch", s.hPresignParts)
	add("PUT", f+"/file/multipart/{uploadId}/add/{part}", s.hAddPart)
	add("PUT", f+"/file/multipart/{uploadId}/complete", s.hComplete)
	add("GET", f+"/fileHandle/{id}", s.hGetHandle)
	add("GET", f+"/fileHandle/{id}/url", s.hHandleURL)
	add("POST", f+"/fileHandle/batch", s.hHandleBatch)
	add("GET", f+"/file/{id}", s.hFileURL)
	add("PUT", "/s3/upload/{uploadId}/{part}", s.hPutPart)
	add("GET", "/s3/blob/{handleId}", s.hGetBlob)
}

func (s *Server) hUploadDestination(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.readableLocked(c.u, c.p["id"]); err != nil {
		return err
	}
	return c.reply(http.StatusOK, map[string]any{
		"concreteType":      "org.sagebionetworks.repo.model.file.S3UploadDestination",
		"storageLocationId": 1, "uploadType": "S3", "stsEnabled": false, "baseKey": "",
	})
}

// multipartRequest is a MultipartUploadRequest. Its canonical JSON (this
// struct marshalled, with concreteType filled in) is what resumes key on.
type multipartRequest struct {
	ConcreteType      *string `json:"concreteType"`
	FileName          *string `json:"fileName"`
	ContentType       *string `json:"contentType"`
	ContentMD5Hex     *string `json:"contentMD5Hex"`
	FileSizeBytes     *int64  `json:"fileSizeBytes"`
	PartSizeBytes     *int64  `json:"partSizeBytes"`
	StorageLocationID *int64  `json:"storageLocationId"`
	GeneratePreview   *bool   `json:"generatePreview"`
}

func (s *Server) hStartUpload(c *call) error {
	var in multipartRequest
	if err := c.decode(&in); err != nil {
		return err
	}
	if c.u == nil {
		return errf(http.StatusForbidden, "Anonymous cannot upload files.")
	}
	ct := requestType
	if in.ConcreteType != nil && *in.ConcreteType != requestType {
		return errf(http.StatusBadRequest, "Unsupported upload request type: %s", *in.ConcreteType)
	}
	in.ConcreteType = &ct
	switch {
	case in.FileName == nil:
		return errf(http.StatusBadRequest, "MultipartUploadRequest.fileName is required.")
	case in.FileSizeBytes == nil:
		return errf(http.StatusBadRequest, "MultipartUploadRequest.fileSizeBytes is required.")
	case in.PartSizeBytes == nil:
		return errf(http.StatusBadRequest, "MultipartUploadRequest.partSizeBytes is required.")
	case in.ContentMD5Hex == nil || *in.ContentMD5Hex == "":
		return errf(http.StatusBadRequest, "MultipartUploadRequest.contentMD5Hex is required and must not be the empty string.")
	}
	if msg := remote.NameProblem(javaTrim(*in.FileName)); msg != "" {
		return errf(http.StatusBadRequest, "%s", msg)
	}
	size, ps := *in.FileSizeBytes, *in.PartSizeBytes
	if size < 1 {
		return errf(http.StatusBadRequest, "File size must be at least one byte")
	}
	if size > maxFileSize {
		return errf(http.StatusBadRequest, "File size must not exceed %d bytes", maxFileSize)
	}
	if ps < remote.MinPartSize {
		return errf(http.StatusBadRequest, "The part size must be at least %d bytes.", remote.MinPartSize)
	}
	if ps > remote.MaxPartSize {
		return errf(http.StatusBadRequest, "The part size must not exceed %d bytes.", int64(remote.MaxPartSize))
	}
	parts := (size + ps - 1) / ps
	if parts > remote.MaxParts {
		return errf(http.StatusBadRequest, "File Upload would require %d parts, which exceeds the maximum number of allowed parts of: %d. Please choose a larger part size.", parts, remote.MaxParts)
	}
	canon, _ := json.Marshal(in)
	sum := md5.Sum(canon)
	key := c.u.ID + "/" + hex.EncodeToString(sum[:])
	force := strings.EqualFold(c.r.URL.Query().Get("forceRestart"), "true")

	s.mu.Lock()
	var drop []string
	defer func() {
		s.mu.Unlock()
		for _, k := range drop {
			s.blobs.remove(k)
		}
	}()
	if id, ok := s.st.UploadKeys[key]; ok {
		old := s.st.Uploads[id]
		if old != nil && !force {
			return c.reply(http.StatusCreated, statusOut(old))
		}
		if old != nil && old.State != "COMPLETED" {
			for _, b := range old.Staged {
				drop = append(drop, b.Key)
			}
			for n, b := range old.Added {
				if old.Staged[n].Key != b.Key {
					drop = append(drop, b.Key)
				}
			}
			delete(s.st.Uploads, id)
		}
	}
	now := s.now()
	u := &upload{ID: strconv.FormatInt(s.st.NextUpload, 10), StartedBy: c.u.ID, StartedOn: now, UpdatedOn: now, Key: key,
		FileName: *in.FileName, ContentMD5: *in.ContentMD5Hex, FileSize: size, PartSize: ps, NumParts: int(parts),
		GeneratePreview: in.GeneratePreview == nil || *in.GeneratePreview,
		Staged:          map[int]blobRef{}, Added: map[int]blobRef{}, State: "UPLOADING"}
	if in.ContentType != nil {
		u.ContentType = *in.ContentType
	}
	s.st.NextUpload++
	s.st.Uploads[u.ID] = u
	s.st.UploadKeys[key] = u.ID
	c.changedLocked()
	s.count(func(st *Stats) { st.UploadsStarted++ })
	return c.reply(http.StatusCreated, statusOut(u))
}

// starterUploadLocked finds upload {uploadId} and checks that the caller
// started it.
func (s *Server) starterUploadLocked(c *call, denial string) (*upload, *apiError) {
	u := s.st.Uploads[c.p["uploadId"]]
	if u == nil {
		return nil, errf(http.StatusNotFound, "MultipartUploadStatus with uploadId: %s does not exist", c.p["uploadId"])
	}
	if c.u == nil || c.u.ID != u.StartedBy {
		return nil, errf(http.StatusForbidden, "%s", denial)
	}
	return u, nil
}

func partRangeError(n, parts int) *apiError {
	if n < 1 {
		return errf(http.StatusBadRequest, "Part number cannot be less than one.")
	}
	return errf(http.StatusBadRequest, "Part number cannot be larger than number of parts. Number of parts: %d, provided part number: %d", parts, n)
}

func (s *Server) hPresignParts(c *call) error {
	var in struct {
		UploadID    flexString `json:"uploadId"`
		PartNumbers []int      `json:"partNumbers"`
		ContentType *string    `json:"contentType"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	s.mu.Lock()
	u, err := s.starterUploadLocked(c, "Only the user that started a multipart upload can get part upload pre-signed URLs for that file upload.")
	var parts int
	if err == nil {
		parts = u.NumParts
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if in.UploadID.set && in.UploadID.v != c.p["uploadId"] {
		return errf(http.StatusBadRequest, "The uploadId of the request body (%s) does not match the uploadId of the URL (%s)", in.UploadID.v, c.p["uploadId"])
	}
	if len(in.PartNumbers) == 0 {
		return errf(http.StatusBadRequest, "BatchPresignedUploadUrlRequest.partNumbers must contain at least one part number")
	}
	ct := ""
	if in.ContentType != nil {
		ct = *in.ContentType
	}
	out := []map[string]any{}
	for _, n := range in.PartNumbers {
		if n < 1 || n > parts {
			return partRangeError(n, parts)
		}
		p := fmt.Sprintf("/s3/upload/%s/%d", u.ID, n)
		headers := map[string]string{}
		if ct != "" {
			headers["Content-Type"] = ct
		}
		out = append(out, map[string]any{"partNumber": n, "uploadPresignedUrl": s.presign(c.r, p, s.o.UploadURLExpiry, nil, ct), "signedHeaders": headers})
	}
	return c.reply(http.StatusCreated, map[string]any{"partPresignedUrls": out})
}

// sign is the HMAC of a presigned URL's path, date, expiry and signed
// content type.
func (s *Server) sign(p, date, expires, contentType string) string {
	m := hmac.New(sha256.New, []byte(s.st.Secret))
	fmt.Fprintf(m, "%s\n%s\n%s\n%s", p, date, expires, contentType)
	return hex.EncodeToString(m.Sum(nil))
}

// presign returns a URL for p on the host the request came in on.
func (s *Server) presign(r *http.Request, p string, expiry time.Duration, extra url.Values, contentType string) string {
	date := s.now().Format(amzDate)
	exp := strconv.FormatInt(int64(expiry/time.Second), 10)
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Date", date)
	q.Set("X-Amz-Expires", exp)
	if contentType != "" {
		q.Set("X-Amz-SignedHeaders", "content-type;host")
	} else {
		q.Set("X-Amz-SignedHeaders", "host")
	}
	for k, v := range extra {
		q[k] = v
	}
	s.mu.Lock()
	q.Set("X-Amz-Signature", s.sign(p, date, exp, contentType))
	s.mu.Unlock()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + p + "?" + q.Encode()
}

// s3Error writes an S3-style XML error.
func s3Error(c *call, status int, code, msg string) error {
	c.status = status
	c.body = rawBody{"application/xml", []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg))}
	return nil
}

// checkPresigned verifies a presigned request's signature and expiry.
func (s *Server) checkPresigned(c *call, contentType string) (bool, error) {
	q := c.r.URL.Query()
	date, exp, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-Signature")
	if strings.Contains(q.Get("X-Amz-SignedHeaders"), "content-type") {
		if contentType == "" {
			return false, s3Error(c, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		}
	} else {
		contentType = ""
	}
	s.mu.Lock()
	want := s.sign(c.r.URL.Path, date, exp, contentType)
	s.mu.Unlock()
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return false, s3Error(c, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
	}
	t, err1 := time.Parse(amzDate, date)
	secs, err2 := strconv.ParseInt(exp, 10, 64)
	if err1 != nil || err2 != nil {
		return false, s3Error(c, http.StatusForbidden, "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed.")
	}
	if s.now().After(t.Add(time.Duration(secs) * time.Second)) {
		return false, s3Error(c, http.StatusForbidden, "AccessDenied", "Request has expired")
	}
	return true, nil
}

func (s *Server) hPutPart(c *call) error {
	if ok, err := s.checkPresigned(c, c.r.Header.Get("Content-Type")); !ok {
		return err
	}
	n, perr := strconv.Atoi(c.p["part"])
	if c.r.ContentLength < 0 {
		return s3Error(c, http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
	}
	if c.r.ContentLength > remote.MaxPartSize {
		return s3Error(c, http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	}
	s.mu.Lock()
	u := s.st.Uploads[c.p["uploadId"]]
	key := ""
	if u != nil && perr == nil && n >= 1 && n <= u.NumParts {
		key = fmt.Sprintf("part-%s-%d-%d", u.ID, n, s.st.NextBlob)
		s.st.NextBlob++
	}
	s.mu.Unlock()
	if key == "" {
		return s3Error(c, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
	}
	var body io.Reader = c.r.Body
	if s.up != nil {
		body = linkReader{ctx: c.r.Context(), r: body, l: s.up}
	}
	sum, err := s.blobs.put(key, body, c.r.ContentLength)
	if err != nil {
		if errors.Is(err, errShortBody) {
			return s3Error(c, http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
		}
		return err
	}
	s.mu.Lock()
	var drop string
	if u = s.st.Uploads[c.p["uploadId"]]; u == nil {
		drop = key
	} else {
		if old, ok := u.Staged[n]; ok && u.Added[n].Key != old.Key {
			drop = old.Key
		}
		u.Staged[n] = blobRef{Key: key, Size: c.r.ContentLength, MD5: sum}
		u.UpdatedOn = s.now()
		c.changedLocked()
	}
	s.mu.Unlock()
	if drop != "" {
		s.blobs.remove(drop)
	}
	if drop == key {
		return s3Error(c, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
	}
	s.count(func(st *Stats) { st.PartsPut++ })
	c.header = http.Header{"Etag": {`"` + sum + `"`}}
	c.status, c.body = http.StatusOK, rawBody{"application/xml", nil}
	return nil
}

func (s *Server) hAddPart(c *call) error {
	md5hex := strings.ToLower(c.r.URL.Query().Get("partMD5Hex"))
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.starterUploadLocked(c, "Only the user that started a multipart upload can add a part to that upload.")
	if err != nil {
		return err
	}
	n, perr := strconv.Atoi(c.p["part"])
	if perr != nil {
		return errf(http.StatusBadRequest, "Invalid part number: %s", c.p["part"])
	}
	if u.State == "COMPLETED" {
		return errf(http.StatusBadRequest, "Cannot add parts to completed file upload.")
	}
	if n < 1 || n > u.NumParts {
		return partRangeError(n, u.NumParts)
	}
	if md5hex == "" {
		return errf(http.StatusBadRequest, "partMD5Hex is required.")
	}
	out := map[string]any{"uploadId": u.ID, "partNumber": n}
	staged, ok := u.Staged[n]
	switch {
	case !ok:
		out["addPartState"] = "ADD_FAILED"
		out["errorMessage"] = "part never uploaded: The specified key does not exist."
		s.count(func(st *Stats) { st.AddPartsFailed++ })
	case staged.MD5 != md5hex:
		out["addPartState"] = "ADD_FAILED"
		out["errorMessage"] = "The provided MD5 does not match the MD5 of the uploaded part.  Please re-upload the part."
		s.count(func(st *Stats) { st.AddPartsFailed++ })
	default:
		u.Added[n] = staged
		u.UpdatedOn = s.now()
		c.changedLocked()
		out["addPartState"] = "ADD_SUCCESS"
		s.count(func(st *Stats) { st.PartsAdded++ })
	}
	return c.reply(http.StatusCreated, out)
}

func (s *Server) hComplete(c *call) error {
	s.mu.Lock()
	u, err := s.starterUploadLocked(c, "Only the user that started a multipart upload can complete that upload.")
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if u.State == "COMPLETED" {
		defer s.mu.Unlock()
		return c.reply(http.StatusCreated, statusOut(u))
	}
	if missing := u.NumParts - len(u.Added); missing > 0 {
		s.mu.Unlock()
		return errf(http.StatusBadRequest, "Missing %d part(s).  All parts must be successfully added before a file upload can be completed.", missing)
	}
	parts := make([]blobRef, u.NumParts)
	for i := range parts {
		parts[i] = u.Added[i+1]
	}
	want := strings.ToLower(u.ContentMD5)
	s.mu.Unlock()
	for i, p := range parts[:len(parts)-1] {
		if p.Size < remote.MinPartSize {
			return errf(http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed size (part %d is %d bytes; every part but the last must be at least %d bytes)", i+1, p.Size, remote.MinPartSize)
		}
	}
	pr := newPartsReader(s.blobs, parts)
	got := want
	if !s.o.SkipAssembledMD5 {
		h := md5.New()
		_, cerr := io.Copy(h, io.NewSectionReader(pr, 0, pr.size))
		if cerr != nil {
			pr.Close()
			return cerr
		}
		got = hex.EncodeToString(h.Sum(nil))
	}
	pr.Close()

	s.mu.Lock()
	defer s.mu.Unlock()
	if u.State == "COMPLETED" {
		return c.reply(http.StatusCreated, statusOut(u))
	}
	if got != want {
		return errf(http.StatusBadRequest, "The MD5 of the assembled file (%s) does not match the contentMD5Hex of the upload request (%s)", got, u.ContentMD5)
	}
	now := s.now()
	fh := &fileHandle{ID: strconv.FormatInt(s.st.NextHandle, 10), Etag: newUUID(), CreatedBy: u.StartedBy, CreatedOn: now,
		ContentType: u.ContentType, ContentMD5: u.ContentMD5, FileName: u.FileName, ContentSize: pr.size,
		Key: u.StartedBy + "/" + newUUID() + "/" + u.FileName, Parts: parts}
	if fh.ContentType == "" {
		fh.ContentType = "application/octet-stream"
	}
	if !u.GeneratePreview {
		fh.PreviewID = fh.ID
	}
	s.st.NextHandle++
	s.st.Handles[fh.ID] = fh
	u.State, u.ResultHandleID, u.UpdatedOn = "COMPLETED", fh.ID, now
	c.changedLocked()
	s.count(func(st *Stats) { st.UploadsCompleted++ })
	return c.reply(http.StatusCreated, statusOut(u))
}

func (s *Server) hGetHandle(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.ownHandleLocked(c)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, handleOut(h))
}

func (s *Server) ownHandleLocked(c *call) (*fileHandle, *apiError) {
	h := s.st.Handles[c.p["id"]]
	if h == nil {
		return nil, errf(http.StatusNotFound, "FileHandle: '%s' does not exist", c.p["id"])
	}
	if c.u == nil || c.u.ID != h.CreatedBy {
		return nil, errf(http.StatusForbidden, "Only the creator of a FileHandle can access it directly by its ID.  FileHandleId = '%s', UserId = '%s'", h.ID, c.userID())
	}
	return h, nil
}

// blobURL is a presigned download URL for h.
func (s *Server) blobURL(r *http.Request, h *fileHandle) string {
	extra := url.Values{"response-content-disposition": {mime.FormatMediaType("attachment", map[string]string{"filename": h.FileName})}}
	return s.presign(r, "/s3/blob/"+h.ID, s.o.DownloadURLExpiry, extra, "")
}

func (c *call) redirect(u string) error {
	if strings.EqualFold(c.r.URL.Query().Get("redirect"), "false") {
		return c.text(http.StatusOK, u)
	}
	c.header = http.Header{"Location": {u}}
	c.status, c.body = http.StatusTemporaryRedirect, rawBody{"text/plain;charset=UTF-8", nil}
	return nil
}

func (s *Server) hHandleURL(c *call) error {
	s.mu.Lock()
	h, err := s.ownHandleLocked(c)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return c.redirect(s.blobURL(c.r, h))
}

// authorizeHandleLocked decides whether the caller may download handle id
// through the given association. It returns "" or a failureCode.
func (s *Server) authorizeHandleLocked(u *user, id, assocType, assocID string) (*fileHandle, string) {
	h := s.st.Handles[id]
	if h == nil {
		return nil, "NOT_FOUND"
	}
	if assocType != "FileEntity" {
		if u != nil && u.ID == h.CreatedBy {
			return h, ""
		}
		return h, "UNAUTHORIZED"
	}
	e, err := s.lookupLocked(assocID)
	if err != nil {
		return h, "NOT_FOUND"
	}
	found := false
	for _, v := range e.Versions {
		found = found || v.FileHandleID == id
	}
	if !found || !s.accessLocked(u, e, accRead) || !s.accessLocked(u, e, accDownload) {
		return h, "UNAUTHORIZED"
	}
	return h, ""
}

func (s *Server) hHandleBatch(c *call) error {
	var in struct {
		RequestedFiles []struct {
			FileHandleID        flexString `json:"fileHandleId"`
			AssociateObjectID   flexString `json:"associateObjectId"`
			AssociateObjectType string     `json:"associateObjectType"`
		} `json:"requestedFiles"`
		IncludePreSignedURLs        bool `json:"includePreSignedURLs"`
		IncludeFileHandles          bool `json:"includeFileHandles"`
		IncludePreviewPreSignedURLs bool `json:"includePreviewPreSignedURLs"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if len(in.RequestedFiles) > 100 {
		return errf(http.StatusBadRequest, "Request exceeds the maximum number of objects per request: 100")
	}
	type result struct {
		h   *fileHandle
		id  string
		bad string
	}
	var rs []result
	s.mu.Lock()
	for _, f := range in.RequestedFiles {
		h, bad := s.authorizeHandleLocked(c.u, f.FileHandleID.v, f.AssociateObjectType, f.AssociateObjectID.v)
		rs = append(rs, result{h, f.FileHandleID.v, bad})
	}
	s.mu.Unlock()
	out := []map[string]any{}
	for _, r := range rs {
		m := map[string]any{"fileHandleId": r.id}
		if r.bad != "" {
			m["failureCode"] = r.bad
		} else {
			if in.IncludeFileHandles {
				m["fileHandle"] = handleOut(r.h)
			}
			if in.IncludePreSignedURLs {
				m["preSignedURL"] = s.blobURL(c.r, r.h)
			}
		}
		out = append(out, m)
	}
	return c.reply(http.StatusCreated, map[string]any{"requestedFiles": out})
}

func (s *Server) hFileURL(c *call) error {
	q := c.r.URL.Query()
	at, aid := q.Get("fileAssociateType"), q.Get("fileAssociateId")
	if at == "" || aid == "" {
		return errf(http.StatusBadRequest, "fileAssociateType and fileAssociateId are required.")
	}
	s.mu.Lock()
	h, bad := s.authorizeHandleLocked(c.u, c.p["id"], at, aid)
	s.mu.Unlock()
	switch bad {
	case "NOT_FOUND":
		return errf(http.StatusNotFound, "FileHandle: '%s' does not exist for %s %s", c.p["id"], at, aid)
	case "UNAUTHORIZED":
		return errf(http.StatusForbidden, "You lack DOWNLOAD access to the requested entity.")
	}
	return c.redirect(s.blobURL(c.r, h))
}

func (s *Server) hEntityFile(c *call) error {
	s.mu.Lock()
	e, v, err := s.versionLocked(c)
	var h *fileHandle
	if err == nil {
		switch {
		case e.Kind != kindFile:
			err = errf(http.StatusBadRequest, "Entity %s is not a FileEntity", synID(e.ID))
		case !s.accessLocked(c.u, e, accDownload):
			err = errf(http.StatusForbidden, "You lack DOWNLOAD access to the requested entity.")
		default:
			h = s.st.Handles[v.FileHandleID]
		}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if h == nil {
		return errf(http.StatusNotFound, "FileHandle: '%s' does not exist", v.FileHandleID)
	}
	return c.redirect(s.blobURL(c.r, h))
}

func (s *Server) hGetBlob(c *call) error {
	if ok, err := s.checkPresigned(c, ""); !ok {
		return err
	}
	s.mu.Lock()
	h := s.st.Handles[c.p["handleId"]]
	s.mu.Unlock()
	if h == nil {
		return s3Error(c, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	}
	pr := newPartsReader(s.blobs, h.Parts)
	defer pr.Close()
	w := c.w
	if s.down != nil {
		w = linkWriter{ResponseWriter: w, ctx: c.r.Context(), l: s.down}
	}
	w.Header().Set("Content-Type", h.ContentType)
	w.Header().Set("ETag", `"`+h.ContentMD5+`"`)
	if cd := c.r.URL.Query().Get("response-content-disposition"); cd != "" {
		w.Header().Set("Content-Disposition", cd)
	}
	c.written = true
	http.ServeContent(w, c.r, path.Base(h.FileName), h.CreatedOn, io.NewSectionReader(pr, 0, pr.size))
	return nil
}
