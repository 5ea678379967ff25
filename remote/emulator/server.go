package emulator

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/synfs/synfs/remote"
)

// Options configures a Server. The zero value is an in-memory emulator
// without throttling.
type Options struct {
	// DataDir, when set, keeps metadata (a JSON snapshot written atomically
	// after every change) and uploaded parts (one file each) in this
	// directory, so that a new Server on the same directory carries on where
	// the last one stopped. "" keeps everything in memory.
	DataDir string
	// SkipAssembledMD5 turns off the emulator's own check, at completion,
	// of the whole file's MD5 against the request's (Synapse does not make
	// it). Benchmarks set it so that they measure the client, not a second
	// hash of every byte on the server.
	SkipAssembledMD5 bool
	// Throttle enforces MaxConcurrent in-flight REST calls per user.
	Throttle bool
	// MaxConcurrent is the per-user limit of in-flight REST calls when
	// Throttle is set; 0 means 3.
	MaxConcurrent int
	// RatePerMinute, when > 0, limits each user to this many REST calls in
	// any 60 seconds (Synapse's is 600).
	RatePerMinute int
	// UploadURLExpiry and DownloadURLExpiry are the lifetimes of presigned
	// part-upload and download URLs; 0 means 15 minutes and 30 seconds.
	UploadURLExpiry   time.Duration
	DownloadURLExpiry time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one Debug record per request; nil discards.
	Logger *slog.Logger
	// FaultSeed seeds the random source of probabilistic faults; 0 means a
	// random seed.
	FaultSeed uint64
	// MaxChildren, MaxDepth and MaxVersions override Synapse's limits of
	// 10000 children per container, a depth of 50 and 15000 versions per
	// entity; 0 keeps Synapse's value.
	MaxChildren, MaxDepth, MaxVersions int
	// RequestLogSize is how many RequestRecords are kept; 0 means 100000.
	RequestLogSize int
	// LinkRate, when > 0, paces presigned transfers to this many bytes a
	// second in each direction, shared by all transfers in it, as the
	// network between a client and S3 would: part PUTs share one rate,
	// blob GETs the other. REST calls are not paced (add latency with a
	// fault, e.g. "*:latency=10ms").
	LinkRate int64
}

// Stats are counters of what the emulator has done since New.
type Stats struct {
	EntityCreates    map[string]int // successful POST /entity (and CreateProject/CreateFolder) by kind: project, folder, file
	VersionsCreated  int            // new FileEntity versions made by updates (first versions are not counted)
	UploadsStarted   int            // multipart uploads started (resumes not counted)
	UploadsCompleted int            // multipart uploads completed
	PartsPut         int            // successful presigned part PUTs
	PartsAdded       int            // add-part calls answered ADD_SUCCESS
	AddPartsFailed   int            // add-part calls answered ADD_FAILED
	Throttled        int            // 429 answers sent, by the throttle or by faults
	FaultsInjected   int            // requests on which at least one fault fired
	Requests         map[string]int // requests by route pattern
}

// RequestRecord describes one request the emulator answered.
type RequestRecord struct {
	Time    time.Time
	Method  string
	Route   string // route pattern, e.g. "GET /repo/v1/entity/{id}"; "" when no route matched
	Path    string
	Status  int    // status sent; 0 when the connection was dropped before any answer
	User    string // userName, "" for anonymous and presigned requests
	Faulted bool   // a fault fired on this request
}

// Server is the Synapse emulator, an http.Handler. It is safe for
// concurrent use.
//
// Lock order: pmu before mu. fmu, tmu, smu and the blob store's lock are
// leaves. No lock is held during blob I/O or while writing a response.
type Server struct {
	o      Options
	log    *slog.Logger
	blobs  blobStore
	routes []route

	// pmu serialises snapshot writes; savedGen is the generation written last.
	pmu      sync.Mutex
	savedGen uint64

	// mu protects the fields below.
	mu     sync.Mutex
	st     *state
	gen    uint64                     // bumped by every change of st
	tokens map[string]*user           // token hash → user
	names  map[string]*user           // userName → user
	kids   map[int64]map[string]int64 // parent → name → child
	// sorted caches each parent's children IDs in name order, kept in step
	// by linkLocked and unlinkLocked: a listing page costs no sort.
	sorted map[int64][]int64
	closed bool

	// fmu protects the fields below.
	fmu       sync.Mutex
	faults    []*faultEntry
	nextFault int
	rng       *rand.Rand

	// up and down pace presigned part PUTs and blob GETs (Options.LinkRate);
	// nil when not paced.
	up, down *link

	// tmu protects the fields below.
	tmu      sync.Mutex
	inflight map[string]int
	recent   map[string][]time.Time

	// smu protects the fields below.
	smu        sync.Mutex
	stats      Stats
	restCounts map[string]int // REST calls by route; see RequestCounts
	reqs       []RequestRecord
	reqNext    int
}

// New returns an emulator configured by o. With o.DataDir it loads the
// state left by an earlier Server on that directory.
func New(o Options) (*Server, error) {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 3
	}
	if o.UploadURLExpiry <= 0 {
		o.UploadURLExpiry = 15 * time.Minute
	}
	if o.DownloadURLExpiry <= 0 {
		o.DownloadURLExpiry = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxChildren <= 0 {
		o.MaxChildren = 10000
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 50
	}
	if o.MaxVersions <= 0 {
		o.MaxVersions = 15000
	}
	if o.RequestLogSize <= 0 {
		o.RequestLogSize = 100000
	}
	s := &Server{
		o:        o,
		log:      o.Logger,
		inflight: map[string]int{},
		recent:   map[string][]time.Time{},
		stats:    Stats{EntityCreates: map[string]int{}, Requests: map[string]int{}},
		up:       newLink(o.LinkRate),
		down:     newLink(o.LinkRate),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	seed := o.FaultSeed
	if seed == 0 {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			return nil, err
		}
		seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if o.DataDir == "" {
		s.st = newState()
		s.blobs = &memBlobs{m: map[string][]byte{}}
	} else {
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return nil, err
		}
		st, err := loadState(o.DataDir)
		if err != nil {
			return nil, err
		}
		s.st = st
		b, err := newDiskBlobs(filepath.Join(o.DataDir, "blobs"))
		if err != nil {
			return nil, err
		}
		s.blobs = b
	}
	s.reindexLocked()
	s.routes = s.routeTable()
	return s, nil
}

// reindexLocked rebuilds the indexes from s.st. Caller must hold s.mu (or
// own s exclusively).
func (s *Server) reindexLocked() {
	s.tokens = map[string]*user{}
	s.names = map[string]*user{}
	s.kids = map[int64]map[string]int64{}
	s.sorted = map[int64][]int64{}
	for _, u := range s.st.Users {
		s.names[u.UserName] = u
		for _, t := range u.Tokens {
			s.tokens[t] = u
		}
	}
	for _, e := range s.st.Entities {
		s.linkLocked(e)
	}
}

func (s *Server) linkLocked(e *entity) {
	m := s.kids[e.ParentID]
	if m == nil {
		m = map[string]int64{}
		s.kids[e.ParentID] = m
	}
	if old, ok := m[e.Name]; ok {
		s.unsortLocked(e.ParentID, e.Name, old)
	}
	m[e.Name] = e.ID
	if ids, ok := s.sorted[e.ParentID]; ok {
		i := s.sortedIndexLocked(ids, e.Name)
		s.sorted[e.ParentID] = slices.Insert(ids, i, e.ID)
	}
}

// sortedIndexLocked is where name is, or goes, in ids (sorted by name).
func (s *Server) sortedIndexLocked(ids []int64, name string) int {
	i, _ := slices.BinarySearchFunc(ids, name, func(id int64, name string) int {
		return strings.Compare(s.st.Entities[id].Name, name)
	})
	return i
}

// unsortLocked takes id, named name, out of parent's sorted children.
func (s *Server) unsortLocked(parent int64, name string, id int64) {
	ids, ok := s.sorted[parent]
	if !ok {
		return
	}
	if i := s.sortedIndexLocked(ids, name); i < len(ids) && ids[i] == id {
		s.sorted[parent] = slices.Delete(ids, i, i+1)
	} else {
		delete(s.sorted, parent) // out of step: sort afresh when next asked
	}
}

func (s *Server) unlinkLocked(e *entity) {
	if m := s.kids[e.ParentID]; m != nil && m[e.Name] == e.ID {
		delete(m, e.Name)
		s.unsortLocked(e.ParentID, e.Name, e.ID)
	}
}

// changedLocked records a change of s.st. Caller must hold s.mu.
func (s *Server) changedLocked() uint64 {
	s.gen++
	return s.gen
}

// commit makes sure that every change up to gen is on disk. Concurrent
// callers share snapshot writes.
func (s *Server) commit(gen uint64) error {
	if s.o.DataDir == "" || gen == 0 {
		return nil
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.savedGen >= gen {
		return nil
	}
	s.mu.Lock()
	data, err := json.Marshal(s.st)
	g := s.gen
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeState(s.o.DataDir, data); err != nil {
		return err
	}
	s.savedGen = g
	return nil
}

// Close writes the state to DataDir. The Server must not be used afterwards.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	g := s.changedLocked()
	s.mu.Unlock()
	return s.commit(g)
}

func (s *Server) now() time.Time { return s.o.Now().UTC() }

func (s *Server) count(f func(*Stats)) {
	s.smu.Lock()
	f(&s.stats)
	s.smu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.smu.Lock()
	defer s.smu.Unlock()
	st := s.stats
	st.EntityCreates = map[string]int{}
	for k, v := range s.stats.EntityCreates {
		st.EntityCreates[k] = v
	}
	st.Requests = map[string]int{}
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	return st
}

// Requests returns the most recent requests, oldest first (at most
// Options.RequestLogSize of them).
func (s *Server) Requests() []RequestRecord {
	s.smu.Lock()
	defer s.smu.Unlock()
	if len(s.reqs) < s.o.RequestLogSize {
		return append([]RequestRecord(nil), s.reqs...)
	}
	out := make([]RequestRecord, 0, len(s.reqs))
	out = append(out, s.reqs[s.reqNext:]...)
	return append(out, s.reqs[:s.reqNext]...)
}

func (s *Server) record(rr RequestRecord) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if rr.Route != "" {
		s.stats.Requests[rr.Route]++
		s.countRESTLocked(rr.Route)
	}
	if rr.Status == http.StatusTooManyRequests {
		s.stats.Throttled++
	}
	if rr.Faulted {
		s.stats.FaultsInjected++
	}
	if len(s.reqs) < s.o.RequestLogSize {
		s.reqs = append(s.reqs, rr)
		return
	}
	s.reqs[s.reqNext] = rr
	s.reqNext = (s.reqNext + 1) % len(s.reqs)
}

// apiError is a failed call: a status and Synapse's reason.
type apiError struct {
	status   int
	reason   string
	throttle bool // body is {"reason"} only
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.reason) }

func errf(status int, format string, a ...any) *apiError {
	return &apiError{status: status, reason: fmt.Sprintf(format, a...)}
}

// call is one request being handled.
type call struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	u     *user // nil for anonymous
	p     map[string]string
	route string

	status  int
	body    any // JSON value, or rawBody
	header  http.Header
	gen     uint64 // state generation to commit before answering
	written bool   // the handler wrote the response itself
}

type rawBody struct {
	contentType string
	data        []byte
}

func (c *call) reply(status int, v any) error {
	c.status, c.body = status, v
	return nil
}

func (c *call) text(status int, s string) error {
	c.status, c.body = status, rawBody{"text/plain;charset=UTF-8", []byte(s)}
	return nil
}

// changed records a state change to persist before answering.
// Caller must hold c.s.mu.
func (c *call) changedLocked() { c.gen = c.s.changedLocked() }

func (c *call) userID() string {
	if c.u == nil {
		return anonymousPrincipal
	}
	return c.u.ID
}

// decode reads the JSON request body into v.
func (c *call) decode(v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, c.r.Body, 16<<20))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(http.StatusRequestEntityTooLarge, "Request body too large")
		}
		return errf(http.StatusBadRequest, "Could not read the request body")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return errf(http.StatusBadRequest, "Request body is required")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errf(http.StatusBadRequest, "Invalid JSON: %v", err)
	}
	return nil
}

type handler func(c *call) error

type route struct {
	method  string
	pattern string
	segs    []string
	h       handler
	rest    bool // a Synapse REST call: authenticated and throttled
}

func (s *Server) routeTable() []route {
	var rs []route
	add := func(method, pattern string, h handler) {
		rs = append(rs, route{method: method, pattern: pattern, segs: strings.Split(pattern, "/"), h: h,
			rest: isREST(pattern)})
	}
	probe := func(c *call) error { return c.text(http.StatusOK, "Synapse emulator") }
	add("GET", "/", probe)
	for _, base := range []string{"/repo/v1", "/file/v1", "/auth/v1"} {
		add("GET", base, probe)
		add("GET", base+"/", probe)
	}
	s.repoRoutes(add)
	s.fileRoutes(add)
	s.adminRoutes(add)
	return rs
}

// match finds the route for method and path. It returns a nil route and
// whether some route matched the path with another method.
func (s *Server) match(method, path string) (*route, map[string]string, bool) {
	segs := strings.Split(path, "/")
	pathMatched := false
	for i := range s.routes {
		rt := &s.routes[i]
		if len(rt.segs) != len(segs) {
			continue
		}
		var p map[string]string
		ok := true
		for j, sg := range rt.segs {
			if strings.HasPrefix(sg, "{") {
				if segs[j] == "" {
					ok = false
					break
				}
				if p == nil {
					p = map[string]string{}
				}
				p[sg[1:len(sg)-1]] = segs[j]
			} else if sg != segs[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if rt.method == method || (method == http.MethodHead && rt.method == http.MethodGet) {
			return rt, p, true
		}
		pathMatched = true
	}
	return nil, nil, pathMatched
}

// statusWriter records the status and implements the fault effects that act
// on the response.
type statusWriter struct {
	http.ResponseWriter
	ctx       context.Context
	status    int
	stall     time.Duration
	stalled   bool
	dropAfter int // > 0: abort after this many body bytes
	written   int
	discard   bool // swallow everything (drop after handling)
}

func (w *statusWriter) hold() {
	if w.stalled || w.stall <= 0 {
		return
	}
	w.stalled = true
	t := time.NewTimer(w.stall)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.ctx.Done():
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.discard {
		return
	}
	w.hold()
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(b), nil
	}
	if w.dropAfter > 0 && w.written+len(b) >= w.dropAfter {
		n, _ := w.ResponseWriter.Write(b[:w.dropAfter-w.written])
		w.written += n
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += n
	return n, err
}

func (w *statusWriter) Flush() {
	if w.discard {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ServeHTTP answers one request: route, faults, authentication,
// throttling, handler, persistence, answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, params, pathMatched := s.match(r.Method, r.URL.Path)
	rr := RequestRecord{Time: s.now(), Method: r.Method, Path: r.URL.Path}
	if rt != nil {
		rr.Route = rt.method + " " + rt.pattern
	}
	sw := &statusWriter{ResponseWriter: w, ctx: r.Context()}
	defer func() {
		rr.Status = sw.status
		if sw.discard {
			rr.Status = 0
		}
		s.record(rr)
		s.log.Debug("request", "method", r.Method, "route", rr.Route, "path", r.URL.Path,
			"status", rr.Status, "user", rr.User, "faulted", rr.Faulted, "dur", time.Since(start))
	}()

	eff, fired := s.pickFaults(r.Method, rr.Route, r.URL.Path)
	rr.Faulted = fired > 0
	for _, fn := range eff.fired {
		fn()
	}
	if eff.transit > 0 {
		// The request is on its way: it arrives (and is handled) whether
		// or not its sender is still waiting for the answer.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // not all of it was sent
		}
		r = r.WithContext(context.WithoutCancel(r.Context()))
		r.Body = io.NopCloser(bytes.NewReader(body))
		time.Sleep(eff.transit)
	}
	if eff.latency > 0 && remote.Sleep(r.Context(), eff.latency) != nil {
		return // the client gave up
	}
	sw.stall = eff.stall
	if eff.status != 0 {
		e := &apiError{status: eff.status, reason: "Injected fault: " + http.StatusText(eff.status)}
		if eff.status == http.StatusTooManyRequests {
			e = throttleError(s.o.MaxConcurrent)
		}
		writeError(sw, e)
		return
	}
	if eff.dropAfterBytes > 0 {
		if r.ContentLength > int64(eff.dropAfterBytes) || r.ContentLength < 0 {
			io.CopyN(io.Discard, r.Body, int64(eff.dropAfterBytes))
			sw.discard = true
			panic(http.ErrAbortHandler)
		}
		sw.dropAfter = eff.dropAfterBytes
	}
	if eff.dropAfterHandling {
		sw.discard = true
	}

	if rt == nil {
		if pathMatched {
			writeError(sw, errf(http.StatusMethodNotAllowed, "Request method '%s' not supported", r.Method))
		} else {
			writeError(sw, errf(http.StatusNotFound, "No resource at %s %s", r.Method, r.URL.Path))
		}
		s.finish(sw)
		return
	}
	c := &call{s: s, w: sw, r: r, p: params, route: rr.Route}
	if rt.rest {
		u, err := s.authenticate(r)
		if err != nil {
			writeError(sw, err)
			s.finish(sw)
			return
		}
		c.u = u
		if u != nil {
			rr.User = u.UserName
			release, err := s.admit(u.ID)
			if err != nil {
				writeError(sw, err)
				s.finish(sw)
				return
			}
			defer release()
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if ct := r.Header.Get("Content-Type"); ct != "" && r.ContentLength != 0 && !strings.Contains(strings.ToLower(ct), "json") {
				writeError(sw, errf(http.StatusUnsupportedMediaType, "Content type '%s' not supported", ct))
				s.finish(sw)
				return
			}
		}
	}
	err := rt.h(c)
	if cerr := s.commit(c.gen); cerr != nil && err == nil {
		s.log.Error("saving state", "err", cerr)
		err = errf(http.StatusInternalServerError, "The emulator could not save its state")
	}
	switch {
	case err != nil:
		var ae *apiError
		if !errors.As(err, &ae) {
			s.log.Error("handler", "route", rr.Route, "err", err)
			ae = errf(http.StatusInternalServerError, "%v", err)
		}
		writeError(sw, ae)
	case c.written:
	default:
		for k, v := range c.header {
			sw.Header()[k] = v
		}
		writeBody(sw, c.status, c.body)
	}
	s.finish(sw)
}

// finish drops the connection when a fault asked for it.
func (s *Server) finish(sw *statusWriter) {
	if sw.discard {
		panic(http.ErrAbortHandler)
	}
	if sw.dropAfter > 0 {
		sw.Flush()
		panic(http.ErrAbortHandler)
	}
}

func writeBody(w http.ResponseWriter, status int, body any) {
	var data []byte
	ct := "application/json;charset=UTF-8"
	switch b := body.(type) {
	case nil:
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
	case rawBody:
		data, ct = b.data, b.contentType
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			status = http.StatusInternalServerError
			data, _ = json.Marshal(errorBody{ConcreteType: errorType, Reason: err.Error()})
		}
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(status)
	w.Write(data)
}

const errorType = "org.sagebionetworks.repo.model.ErrorResponse"

type errorBody struct {
	ConcreteType string `json:"concreteType,omitempty"`
	Reason       string `json:"reason"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	b := errorBody{ConcreteType: errorType, Reason: e.reason}
	if e.throttle {
		b.ConcreteType = ""
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Synapse Repository Services"`)
	}
	writeBody(w, e.status, b)
}

// authenticate returns the caller, nil for anonymous, or a 401.
func (s *Server) authenticate(r *http.Request) (*user, *apiError) {
	token := r.Header.Get("sessionToken")
	if token == "" {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
			token = strings.TrimSpace(h[7:])
		} else if h != "" {
			return nil, errf(http.StatusUnauthorized, "Invalid access token")
		}
	}
	if token == "" {
		return nil, nil
	}
	s.mu.Lock()
	u := s.tokens[hashToken(token)]
	s.mu.Unlock()
	if u == nil {
		return nil, errf(http.StatusUnauthorized, "Invalid access token")
	}
	return u, nil
}

func throttleError(n int) *apiError {
	return &apiError{status: http.StatusTooManyRequests, throttle: true,
		reason: fmt.Sprintf("Too many concurrent requests. Allowed %d concurrent connections at any time.", n)}
}

// admit applies the throttles to user id and returns the function that
// ends the request's slot.
func (s *Server) admit(id string) (func(), *apiError) {
	if !s.o.Throttle && s.o.RatePerMinute <= 0 {
		return func() {}, nil
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.o.RatePerMinute > 0 {
		now := s.now()
		cut := now.Add(-time.Minute)
		q := s.recent[id]
		for len(q) > 0 && !q[0].After(cut) {
			q = q[1:]
		}
		if len(q) >= s.o.RatePerMinute {
			s.recent[id] = q
			return nil, &apiError{status: http.StatusTooManyRequests, throttle: true,
				reason: fmt.Sprintf("Requests are too frequent. Allowed %d requests every 60 seconds.", s.o.RatePerMinute)}
		}
		s.recent[id] = append(q, now)
	}
	if !s.o.Throttle {
		return func() {}, nil
	}
	if s.inflight[id] >= s.o.MaxConcurrent {
		return nil, throttleError(s.o.MaxConcurrent)
	}
	s.inflight[id]++
	return func() {
		s.tmu.Lock()
		s.inflight[id]--
		s.tmu.Unlock()
	}, nil
}
