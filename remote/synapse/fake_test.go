package synapse

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
)

// fake is a small in-memory Synapse for this package's tests: enough of the
// REST API for every remote.Client method, with hooks to misbehave.
type fake struct {
	srv *httptest.Server

	// hook, when set, sees every request first; returning true means it
	// answered.
	hook atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
	// restGate, when set, runs while a REST request is counted in flight.
	restGate atomic.Pointer[func()]
	// s3Gate, when set, runs while a part PUT is counted in flight.
	s3Gate atomic.Pointer[func()]

	mu         sync.Mutex // protects everything below
	users      map[string]*fuser
	next       int
	ents       map[string]*fent
	handles    map[string]*fhandle
	uploads    map[string]*fupload
	uploadKey  map[string]string
	preset     map[string]string // fileName → partsState to preset on a new upload
	counts     map[string]int    // "METHOD /route" → requests
	partPuts   []int64           // part numbers PUT, in order
	restNow    int
	restMax    int
	s3Now      int
	s3Max      int
	authLeaked bool // a presigned request carried Authorization
}

type fuser struct {
	id, name  string
	certified bool
}

type fent struct {
	e       Entity
	handles []string // data handle per version, versions from 1
	annos   map[string]AnnotationsValue
	trashed bool
	writers map[string]bool // projects only
}

type fhandle struct {
	h    FileHandle
	data []byte
}

type fupload struct {
	id    string
	user  string
	req   MultipartUploadRequest
	parts map[int64][]byte
	state []byte
	done  string
}

const fakeRoot = "syn4489"

func newFake(t testing.TB) *fake {
	f := &fake{
		users:     map[string]*fuser{},
		ents:      map[string]*fent{},
		handles:   map[string]*fhandle{},
		uploads:   map[string]*fupload{},
		uploadKey: map[string]string{},
		preset:    map[string]string{},
		counts:    map[string]int{},
		next:      100,
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// addUser registers a token.
func (f *fake) addUser(token, name string, certified bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	id := strconv.Itoa(f.next)
	f.users[token] = &fuser{id: id, name: name, certified: certified}
	return id
}

// addProject creates a project writable by the given principals.
func (f *fake) addProject(name string, writers ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.newIDLocked()
	w := map[string]bool{}
	for _, p := range writers {
		w[p] = true
	}
	f.ents[id] = &fent{e: Entity{ConcreteType: TypeProject, ID: id, Name: name, ParentID: fakeRoot, Etag: f.etagLocked(), CreatedOn: "2024-01-01T00:00:00.000Z", ModifiedOn: "2024-01-01T00:00:00.000Z"}, writers: w}
	return id
}

func (f *fake) client(t testing.TB, token string, mod func(*Config)) *Client {
	t.Helper()
	repo, file, auth := Endpoints(f.srv.URL)
	cfg := Config{RepoEndpoint: repo, FileEndpoint: file, AuthEndpoint: auth, Token: token,
		RetryBase: time.Millisecond, RetryCap: 5 * time.Millisecond, RatePerMinute: 1 << 20}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func (f *fake) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	if h == nil {
		f.hook.Store(nil)
		return
	}
	f.hook.Store(&h)
}

func (f *fake) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[route]
}

func (f *fake) newIDLocked() string {
	f.next++
	return "syn" + strconv.Itoa(f.next)
}

func (f *fake) etagLocked() string {
	f.next++
	return fmt.Sprintf("etag-%d", f.next)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeReason(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, map[string]string{"concreteType": "org.sagebionetworks.repo.model.ErrorResponse", "reason": reason})
}

// route names a request for counting: ids and numbers become {id}.
func route(method, p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, "syn") || (s != "" && strings.Trim(s, "0123456789") == "") {
			parts[i] = "{id}"
		}
	}
	return method + " " + strings.Join(parts, "/")
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := f.hook.Load(); h != nil && (*h)(w, r) {
		return
	}
	f.serve(w, r)
}

// serve answers r without the hook.
func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/s3/"):
		f.s3Put(w, r)
		return
	case strings.HasPrefix(p, "/s3get/"):
		f.s3Get(w, r)
		return
	}
	var svc string
	switch {
	case strings.HasPrefix(p, "/repo/v1"):
		svc, p = "repo", strings.TrimPrefix(p, "/repo/v1")
	case strings.HasPrefix(p, "/file/v1"):
		svc, p = "file", strings.TrimPrefix(p, "/file/v1")
	default:
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.counts[route(r.Method, p)]++
	f.restNow++
	f.restMax = max(f.restMax, f.restNow)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.restNow--
		f.mu.Unlock()
	}()
	if g := f.restGate.Load(); g != nil {
		(*g)()
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[tok]
	if !ok || u == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Synapse Repository Services"`)
		writeReason(w, 401, "Invalid access token")
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.serveLocked(w, r, svc, p, u, body)
}

func (f *fake) serveLocked(w http.ResponseWriter, r *http.Request, svc, p string, u *fuser, body []byte) {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	m := r.Method
	switch {
	case svc == "repo" && p == "/userProfile" && m == "GET":
		writeJSON(w, 200, UserProfile{OwnerID: u.id, UserName: u.name})
	case svc == "repo" && len(seg) == 3 && seg[0] == "user" && seg[2] == "certifiedUserPassingRecord":
		if !u.certified {
			writeReason(w, 404, "no record")
			return
		}
		writeJSON(w, 200, PassingRecord{UserID: u.id, Passed: true, Certified: true})
	case svc == "repo" && p == "/entity" && m == "POST":
		f.createLocked(w, u, body)
	case svc == "repo" && p == "/entity/child" && m == "POST":
		var req EntityLookupRequest
		if json.Unmarshal(body, &req) != nil {
			writeReason(w, 400, "bad json")
			return
		}
		parent := fakeRoot
		if req.ParentID != nil {
			parent = *req.ParentID
			if st, why := f.accessLocked(u, parent, false); st != 0 {
				writeReason(w, st, why)
				return
			}
		}
		for _, e := range f.ents {
			if !e.trashed && e.e.ParentID == parent && e.e.Name == req.EntityName {
				writeJSON(w, 200, EntityID{ID: e.e.ID})
				return
			}
		}
		writeReason(w, 404, fmt.Sprintf("Child not found for parent: '%s' with name: '%s'", parent, req.EntityName))
	case svc == "repo" && p == "/entity/children" && m == "POST":
		f.childrenLocked(w, u, body)
	case svc == "repo" && len(seg) == 2 && seg[0] == "entity":
		f.entityLocked(w, r, u, seg[1], body)
	case svc == "repo" && len(seg) == 3 && seg[0] == "entity" && seg[2] == "permissions" && m == "GET":
		if st, why := f.accessLocked(u, seg[1], false); st == 404 {
			writeReason(w, st, why)
			return
		} else {
			can := st == 0
			writeJSON(w, 200, UserEntityPermissions{CanView: can, CanEdit: can, CanAddChild: can, CanDelete: can, CanDownload: can,
				IsCertifiedUser: u.certified, IsCertificationRequired: true})
		}
	case svc == "repo" && len(seg) == 3 && seg[0] == "entity" && seg[2] == "bundle2" && m == "POST":
		f.bundleLocked(w, u, seg[1], body)
	case svc == "repo" && len(seg) == 3 && seg[0] == "entity" && seg[2] == "annotations2":
		f.annotationsLocked(w, r, u, seg[1], body)
	case svc == "file" && len(seg) == 3 && seg[0] == "entity" && seg[2] == "uploadDestination" && m == "GET":
		if st, why := f.accessLocked(u, seg[1], false); st != 0 {
			writeReason(w, st, why)
			return
		}
		writeJSON(w, 200, UploadDestination{ConcreteType: "org.sagebionetworks.repo.model.file.S3UploadDestination", StorageLocationID: 1, UploadType: "S3"})
	case svc == "file" && strings.HasPrefix(p, "/file/multipart"):
		f.multipartLocked(w, r, u, seg, body)
	case svc == "file" && len(seg) == 2 && seg[0] == "fileHandle" && seg[1] == "batch" && m == "POST":
		f.batchLocked(w, u, body)
	case svc == "file" && len(seg) == 2 && seg[0] == "fileHandle" && m == "GET":
		h := f.handles[seg[1]]
		if h == nil {
			writeReason(w, 404, "no handle")
			return
		}
		if h.h.CreatedBy != u.id {
			writeReason(w, 403, "Only the creator of a FileHandle can access it directly by its ID.")
			return
		}
		writeJSON(w, 200, h.h)
	default:
		writeReason(w, 404, "no such endpoint: "+m+" "+p)
	}
}

// projectLocked returns the project that id lives in, or nil.
func (f *fake) projectLocked(id string) *fent {
	for range 100 {
		e := f.ents[id]
		if e == nil || e.trashed {
			return nil
		}
		if e.e.ConcreteType == TypeProject {
			return e
		}
		id = e.e.ParentID
	}
	return nil
}

// accessLocked checks read (or write) access to id: 0, or a status and reason.
func (f *fake) accessLocked(u *fuser, id string, write bool) (int, string) {
	e := f.ents[id]
	if e == nil {
		return 404, "Resource: '" + id + "' does not exist"
	}
	if e.trashed {
		return 404, "Entity " + id + " is in trash can."
	}
	p := f.projectLocked(id)
	if p == nil {
		return 404, "Entity " + id + " is in trash can."
	}
	if !p.writers[u.id] {
		if write {
			return 403, "You lack CREATE access to the requested entity."
		}
		return 403, "You lack READ access to the requested entity."
	}
	return 0, ""
}

func (f *fake) clashLocked(parent, name, except string) bool {
	for _, e := range f.ents {
		if !e.trashed && e.e.ParentID == parent && e.e.Name == name && e.e.ID != except {
			return true
		}
	}
	return false
}

func (f *fake) createLocked(w http.ResponseWriter, u *fuser, body []byte) {
	var e Entity
	if err := json.Unmarshal(body, &e); err != nil {
		writeReason(w, 400, "bad json")
		return
	}
	e.Name = strings.TrimSpace(e.Name)
	if msg := remote.NameProblem(e.Name); msg != "" {
		writeReason(w, 400, msg)
		return
	}
	switch e.ConcreteType {
	case TypeProject:
		e.ParentID = fakeRoot
	case TypeFolder, TypeFileEntity:
		pe := f.ents[e.ParentID]
		if pe == nil || pe.trashed || f.projectLocked(e.ParentID) == nil {
			writeReason(w, 404, "The given parent: "+e.ParentID+" does not exist")
			return
		}
		if !u.certified {
			writeReason(w, 403, remote.CertifiedOnlyReason)
			return
		}
		if st, why := f.accessLocked(u, e.ParentID, true); st != 0 {
			writeReason(w, st, why)
			return
		}
	default:
		writeReason(w, 400, "unsupported type")
		return
	}
	if e.ConcreteType == TypeFileEntity {
		h := f.handles[e.DataFileHandleID]
		if e.DataFileHandleID == "" {
			writeReason(w, 400, "FileEntity.dataFileHandleId cannot be null")
			return
		}
		if h == nil || h.h.CreatedBy != u.id {
			writeReason(w, 403, "Only the creator of a FileHandle can access it directly by its ID.")
			return
		}
	}
	if f.clashLocked(e.ParentID, e.Name, "") {
		writeReason(w, 409, "An entity with the name: "+e.Name+" already exists with a parentId: "+e.ParentID)
		return
	}
	e.ID = f.newIDLocked()
	e.Etag = f.etagLocked()
	e.CreatedBy, e.ModifiedBy = u.id, u.id
	e.CreatedOn, e.ModifiedOn = time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	fe := &fent{e: e, annos: map[string]AnnotationsValue{}}
	if e.ConcreteType == TypeFileEntity {
		fe.e.VersionNumber = 1
		fe.e.VersionLabel = "1"
		fe.handles = []string{e.DataFileHandleID}
	}
	if e.ConcreteType == TypeProject {
		fe.writers = map[string]bool{u.id: true}
	}
	fe.e.Extra = nil
	f.ents[e.ID] = fe
	writeJSON(w, 201, fe.e)
}

func (f *fake) entityLocked(w http.ResponseWriter, r *http.Request, u *fuser, id string, body []byte) {
	switch r.Method {
	case "GET":
		if st, why := f.accessLocked(u, id, false); st != 0 {
			writeReason(w, st, why)
			return
		}
		writeJSON(w, 200, f.ents[id].e)
	case "DELETE":
		e := f.ents[id]
		if e == nil || e.trashed {
			w.WriteHeader(204)
			return
		}
		if st, why := f.accessLocked(u, id, true); st != 0 {
			writeReason(w, st, why)
			return
		}
		e.trashed = true
		e.e.Name = e.e.ID
		w.WriteHeader(204)
	case "PUT":
		if st, why := f.accessLocked(u, id, true); st != 0 {
			writeReason(w, st, why)
			return
		}
		cur := f.ents[id]
		var e Entity
		if err := json.Unmarshal(body, &e); err != nil {
			writeReason(w, 400, "bad json")
			return
		}
		if e.Etag != cur.e.Etag {
			writeReason(w, 412, "Object: "+id+" was updated since you last fetched it, retrieve it again and re-apply the update")
			return
		}
		if cur.e.ConcreteType != TypeProject && !u.certified {
			writeReason(w, 403, remote.CertifiedOnlyReason)
			return
		}
		e.Name = strings.TrimSpace(e.Name)
		if msg := remote.NameProblem(e.Name); msg != "" {
			writeReason(w, 400, msg)
			return
		}
		if e.ParentID != cur.e.ParentID {
			if st, why := f.accessLocked(u, e.ParentID, true); st != 0 {
				writeReason(w, st, why)
				return
			}
		}
		if f.clashLocked(e.ParentID, e.Name, id) {
			writeReason(w, 409, "An entity with the name: "+e.Name+" already exists with a parentId: "+e.ParentID)
			return
		}
		next := cur.e
		next.Name, next.ParentID = e.Name, e.ParentID
		if cur.e.ConcreteType == TypeFileEntity && e.DataFileHandleID != cur.e.DataFileHandleID {
			h := f.handles[e.DataFileHandleID]
			if h == nil || h.h.CreatedBy != u.id {
				writeReason(w, 403, "Only the creator of a FileHandle can access it directly by its ID.")
				return
			}
			old := f.handles[cur.e.DataFileHandleID]
			next.DataFileHandleID = e.DataFileHandleID
			if r.URL.Query().Get("newVersion") == "true" || old == nil || old.h.ContentMD5 != h.h.ContentMD5 {
				next.VersionNumber++
				next.VersionLabel = strconv.FormatInt(next.VersionNumber, 10)
				cur.handles = append(cur.handles, e.DataFileHandleID)
			} else {
				cur.handles[len(cur.handles)-1] = e.DataFileHandleID
			}
		}
		next.Etag = f.etagLocked()
		next.ModifiedBy = u.id
		cur.e = next
		writeJSON(w, 200, cur.e)
	default:
		writeReason(w, 405, "method")
	}
}

func (f *fake) childrenLocked(w http.ResponseWriter, u *fuser, body []byte) {
	var req EntityChildrenRequest
	if json.Unmarshal(body, &req) != nil || len(req.IncludeTypes) == 0 {
		writeReason(w, 400, "bad request")
		return
	}
	parent := fakeRoot
	types := map[string]bool{}
	for _, t := range req.IncludeTypes {
		types[t] = true
	}
	if req.ParentID != nil {
		parent = *req.ParentID
		if st, why := f.accessLocked(u, parent, false); st != 0 {
			writeReason(w, st, why)
			return
		}
	} else {
		types = map[string]bool{"project": true}
	}
	short := map[string]string{TypeProject: "project", TypeFolder: "folder", TypeFileEntity: "file"}
	var all []EntityHeader
	for _, e := range f.ents {
		if e.trashed || e.e.ParentID != parent || !types[short[e.e.ConcreteType]] {
			continue
		}
		if parent == fakeRoot && !e.writers[u.id] {
			continue
		}
		all = append(all, EntityHeader{ID: e.e.ID, Name: e.e.Name, Type: e.e.ConcreteType, VersionNumber: max(1, e.e.VersionNumber), CreatedOn: e.e.CreatedOn, ModifiedOn: e.e.ModifiedOn})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	off := 0
	if req.NextPageToken != nil {
		_, o, _ := strings.Cut(*req.NextPageToken, "a")
		off, _ = strconv.Atoi(o)
	}
	resp := EntityChildrenResponse{Page: []EntityHeader{}}
	if off < len(all) {
		end := min(off+50, len(all))
		resp.Page = all[off:end]
		if end < len(all) {
			resp.NextPageToken = "50a" + strconv.Itoa(end)
		}
	}
	writeJSON(w, 200, resp)
}

func (f *fake) annotationsLocked(w http.ResponseWriter, r *http.Request, u *fuser, id string, body []byte) {
	if st, why := f.accessLocked(u, id, r.Method == "PUT"); st != 0 {
		writeReason(w, st, why)
		return
	}
	e := f.ents[id]
	if r.Method == "PUT" {
		var a Annotations
		if json.Unmarshal(body, &a) != nil {
			writeReason(w, 400, "bad json")
			return
		}
		vals := map[string]remote.AnnotationValue{}
		for k, v := range a.Annotations {
			vals[k] = remote.AnnotationValue{Type: v.Type, Values: v.Value}
		}
		if err := remote.ValidateAnnotations(vals); err != nil {
			writeReason(w, 400, err.Error())
			return
		}
		if a.Etag != e.e.Etag {
			writeReason(w, 412, "Object: "+id+" was updated since you last fetched it, retrieve it again and re-apply the update")
			return
		}
		if !u.certified && e.e.ConcreteType != TypeProject {
			writeReason(w, 403, remote.CertifiedOnlyReason)
			return
		}
		e.annos = a.Annotations
		e.e.Etag = f.etagLocked()
	}
	writeJSON(w, 200, Annotations{ID: id, Etag: e.e.Etag, Annotations: e.annos})
}

func (f *fake) multipartLocked(w http.ResponseWriter, r *http.Request, u *fuser, seg []string, body []byte) {
	// seg: file multipart [id [add n | complete | presigned url batch]]
	if len(seg) == 2 && r.Method == "POST" {
		var req MultipartUploadRequest
		if json.Unmarshal(body, &req) != nil {
			writeReason(w, 400, "bad json")
			return
		}
		if req.FileSizeBytes < 1 {
			writeReason(w, 400, "File size must be at least one byte")
			return
		}
		if req.PartSizeBytes < remote.MinPartSize {
			writeReason(w, 400, "The part size must be at least 5242880 bytes.")
			return
		}
		if msg := remote.NameProblem(req.FileName); msg != "" {
			writeReason(w, 400, msg)
			return
		}
		key, _ := json.Marshal(req)
		k := u.id + "|" + string(key)
		up := f.uploads[f.uploadKey[k]]
		if up == nil || r.URL.Query().Get("forceRestart") == "true" {
			n := (req.FileSizeBytes + req.PartSizeBytes - 1) / req.PartSizeBytes
			f.next++
			up = &fupload{id: strconv.Itoa(f.next), user: u.id, req: req, parts: map[int64][]byte{}, state: bytes.Repeat([]byte("0"), int(n))}
			if ps, ok := f.preset[req.FileName]; ok {
				up.state = []byte(ps)
			}
			f.uploads[up.id] = up
			f.uploadKey[k] = up.id
		}
		writeJSON(w, 201, f.statusLocked(up))
		return
	}
	if len(seg) < 4 {
		writeReason(w, 404, "no such endpoint")
		return
	}
	up := f.uploads[seg[2]]
	if up == nil {
		writeReason(w, 404, "no upload")
		return
	}
	if up.user != u.id {
		writeReason(w, 403, "Only the user that started a multipart upload can get part upload pre-signed URLs for that file upload.")
		return
	}
	switch {
	case len(seg) == 6 && seg[3] == "presigned" && r.Method == "POST":
		var req BatchPresignedUploadURLRequest
		if json.Unmarshal(body, &req) != nil || len(req.PartNumbers) == 0 {
			writeReason(w, 400, "bad request")
			return
		}
		var out BatchPresignedUploadURLResponse
		date := time.Now().UTC().Format("20060102T150405Z")
		for _, n := range req.PartNumbers {
			if n < 1 || n > int64(len(up.state)) {
				writeReason(w, 400, "Part number cannot be larger than number of parts.")
				return
			}
			out.PartPresignedURLs = append(out.PartPresignedURLs, PartPresignedURL{PartNumber: n,
				UploadPresignedURL: fmt.Sprintf("%s/s3/%s/%d?X-Amz-Date=%s&X-Amz-Expires=900&sig=x", f.srv.URL, up.id, n, date),
				SignedHeaders:      map[string]string{"X-Test-Signed": "yes"}})
		}
		writeJSON(w, 201, out)
	case len(seg) == 5 && seg[3] == "add" && r.Method == "PUT":
		n, _ := strconv.ParseInt(seg[4], 10, 64)
		if up.done != "" {
			writeReason(w, 400, "Cannot add parts to completed file upload.")
			return
		}
		if n < 1 || n > int64(len(up.state)) {
			writeReason(w, 400, "part number out of range")
			return
		}
		data, ok := up.parts[n]
		sum := md5.Sum(data)
		if !ok || hex.EncodeToString(sum[:]) != r.URL.Query().Get("partMD5Hex") {
			writeJSON(w, 201, AddPartResponse{UploadID: up.id, PartNumber: n, AddPartState: AddFailed,
				ErrorMessage: "The provided MD5 does not match the MD5 of the uploaded part.  Please re-upload the part."})
			return
		}
		up.state[n-1] = '1'
		writeJSON(w, 201, AddPartResponse{UploadID: up.id, PartNumber: n, AddPartState: AddSuccess})
	case len(seg) == 4 && seg[3] == "complete" && r.Method == "PUT":
		if up.done == "" {
			missing := bytes.Count(up.state, []byte("0"))
			if missing > 0 {
				writeReason(w, 400, fmt.Sprintf("Missing %d part(s).  All parts must be successfully added before a file upload can be completed.", missing))
				return
			}
			var all []byte
			for i := range int64(len(up.state)) {
				all = append(all, up.parts[i+1]...)
			}
			f.next++
			id := strconv.Itoa(f.next)
			f.handles[id] = &fhandle{data: all, h: FileHandle{ConcreteType: "org.sagebionetworks.repo.model.file.S3FileHandle", ID: id,
				CreatedBy: u.id, ContentType: up.req.ContentType, ContentMD5: up.req.ContentMD5Hex, FileName: up.req.FileName,
				ContentSize: int64(len(all)), StorageLocationID: 1, Status: "AVAILABLE"}}
			up.done = id
		}
		writeJSON(w, 201, f.statusLocked(up))
	default:
		writeReason(w, 404, "no such endpoint")
	}
}

func (f *fake) statusLocked(up *fupload) MultipartUploadStatus {
	s := MultipartUploadStatus{UploadID: up.id, StartedBy: up.user, PartsState: string(up.state), State: StateUploading}
	if up.done != "" {
		s.State, s.ResultFileHandleID = StateCompleted, up.done
	}
	return s
}

func (f *fake) batchLocked(w http.ResponseWriter, u *fuser, body []byte) {
	var req BatchFileRequest
	if json.Unmarshal(body, &req) != nil {
		writeReason(w, 400, "bad json")
		return
	}
	var out BatchFileResult
	date := time.Now().UTC().Format("20060102T150405Z")
	for _, rf := range req.RequestedFiles {
		res := FileResult{FileHandleID: rf.FileHandleID}
		h := f.handles[rf.FileHandleID]
		e := f.ents[rf.AssociateObjectID]
		switch {
		case h == nil || e == nil || e.trashed:
			res.FailureCode = "NOT_FOUND"
		case !containsStr(e.handles, rf.FileHandleID):
			res.FailureCode = "UNAUTHORIZED"
		default:
			if st, _ := f.accessLocked(u, e.e.ID, false); st != 0 {
				res.FailureCode = "UNAUTHORIZED"
				break
			}
			if req.IncludeFileHandles {
				hh := h.h
				res.FileHandle = &hh
			}
			if req.IncludePreSignedURLs {
				res.PreSignedURL = fmt.Sprintf("%s/s3get/%s?X-Amz-Date=%s&X-Amz-Expires=30", f.srv.URL, h.h.ID, date)
			}
		}
		out.RequestedFiles = append(out.RequestedFiles, res)
	}
	writeJSON(w, 201, out)
}

// bundleLocked answers POST /entity/{id}/bundle2 with the entity and, for
// a readable file, its data file handle.
func (f *fake) bundleLocked(w http.ResponseWriter, u *fuser, id string, body []byte) {
	var req EntityBundleRequest
	if json.Unmarshal(body, &req) != nil {
		writeReason(w, 400, "bad json")
		return
	}
	if st, why := f.accessLocked(u, id, false); st != 0 {
		writeReason(w, st, why)
		return
	}
	e := f.ents[id]
	out := EntityBundle{FileHandles: []FileHandle{}}
	if req.IncludeEntity {
		ee := e.e
		out.Entity = &ee
	}
	if req.IncludeFileHandles && e.e.DataFileHandleID != "" {
		if h := f.handles[e.e.DataFileHandleID]; h != nil {
			out.FileHandles = append(out.FileHandles, h.h)
		}
	}
	writeJSON(w, 200, out)
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fake) s3Put(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if r.Header.Get("Authorization") != "" {
		f.authLeaked = true
	}
	f.s3Now++
	f.s3Max = max(f.s3Max, f.s3Now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.s3Now--
		f.mu.Unlock()
	}()
	if g := f.s3Gate.Load(); g != nil {
		(*g)()
	}
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != "PUT" || len(seg) != 3 {
		http.Error(w, "bad", 400)
		return
	}
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		http.Error(w, "length required", 411)
		return
	}
	if r.Header.Get("X-Test-Signed") != "yes" {
		http.Error(w, "signed header missing", 403)
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	n, _ := strconv.ParseInt(seg[2], 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	up := f.uploads[seg[1]]
	if up == nil {
		http.Error(w, "no upload", 404)
		return
	}
	f.partPuts = append(f.partPuts, n)
	up.parts[n] = data
	w.WriteHeader(200)
}

func (f *fake) s3Get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if r.Header.Get("Authorization") != "" {
		f.authLeaked = true
	}
	h := f.handles[strings.TrimPrefix(r.URL.Path, "/s3get/")]
	f.mu.Unlock()
	if h == nil {
		http.Error(w, "no such key", 404)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.data))
}
