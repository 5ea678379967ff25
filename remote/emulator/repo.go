package emulator

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/synfs/synfs/remote"
)

func (s *Server) repoRoutes(add func(method, pattern string, h handler)) {
	const r = "/repo/v1"
	add("GET", r+"/version", s.hVersion)
	add("GET", r+"/userProfile", s.hUserProfile)
	add("GET", r+"/userProfile/", s.hUserProfile)
	add("GET", r+"/userProfile/{id}", s.hUserProfileByID)
	add("GET", r+"/user/{id}/certifiedUserPassingRecord", s.hPassingRecord)
	add("POST", r+"/entity", s.hCreate)
	add("GET", r+"/entity/{id}", s.hGet)
	add("PUT", r+"/entity/{id}", s.hUpdate)
	add("DELETE", r+"/entity/{id}", s.hDelete)
	add("GET", r+"/entity/{id}/type", s.hType)
	add("GET", r+"/entity/{id}/benefactor", s.hBenefactor)
	add("GET", r+"/entity/{id}/version", s.hVersions)
	add("GET", r+"/entity/{id}/version/{n}", s.hGetVersion)
	add("DELETE", r+"/entity/{id}/version/{n}", s.hDeleteVersion)
	add("POST", r+"/entity/child", s.hChild)
	add("POST", r+"/entity/children", s.hChildren)
	add("GET", r+"/projects", s.hProjects)
	add("GET", r+"/entity/{id}/permissions", s.hPermissions)
	add("GET", r+"/entity/{id}/acl", s.hACL)
	add("GET", r+"/entity/{id}/annotations2", s.hGetAnnotations)
	add("GET", r+"/entity/{id}/version/{n}/annotations2", s.hGetAnnotations)
	add("PUT", r+"/entity/{id}/annotations2", s.hPutAnnotations)
	add("POST", r+"/entity/{id}/bundle2", s.hBundle)
	add("POST", r+"/entity/{id}/version/{n}/bundle2", s.hBundle)
	add("GET", r+"/entity/{id}/generatedBy", s.hGeneratedBy)
	add("GET", r+"/entity/{id}/version/{n}/generatedBy", s.hGeneratedBy)
	add("GET", r+"/entity/{id}/file", s.hEntityFile)
	add("GET", r+"/entity/{id}/version/{n}/file", s.hEntityFile)
	add("GET", r+"/entity/md5/{md5}", s.hByMD5)
	add("GET", r+"/trashcan/view", s.hTrashView)
	add("PUT", r+"/trashcan/trash/{id}", s.hTrashPut)
	add("PUT", r+"/trashcan/restore/{id}", s.hRestore)
	add("PUT", r+"/trashcan/restore/{id}/{parent}", s.hRestore)
	add("PUT", r+"/trashcan/purge/{id}", s.hPurge)
}

func (s *Server) profileLocked(u *user) map[string]any {
	return map[string]any{
		"ownerId": u.ID, "userName": u.UserName, "emails": []string{u.UserName + "@example.org"},
		"firstName": u.UserName, "lastName": "Emulated", "etag": u.Etag, "createdOn": iso(u.CreatedOn),
		"twoFactorAuthEnabled": false,
	}
}

// hVersion answers GET /version (SynapseVersionInfoController): the
// stack's version, to anyone.
func (s *Server) hVersion(c *call) error {
	return c.reply(http.StatusOK, map[string]any{"version": EmulatorVersion})
}

// EmulatorVersion is what GET /repo/v1/version reports.
const EmulatorVersion = "synfs-emulator"

func (s *Server) hUserProfile(c *call) error {
	if c.u == nil {
		return c.reply(http.StatusOK, map[string]any{"ownerId": anonymousPrincipal, "userName": "anonymous", "etag": "00000000-0000-0000-0000-000000000000"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.reply(http.StatusOK, s.profileLocked(c.u))
}

func (s *Server) hUserProfileByID(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[c.p["id"]]
	if u == nil {
		return errf(http.StatusNotFound, "UserProfile cannot be found for: %s", c.p["id"])
	}
	p := s.profileLocked(u)
	if c.u == nil || c.u.ID != u.ID {
		delete(p, "emails")
	}
	return c.reply(http.StatusOK, p)
}

func (s *Server) hPassingRecord(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[c.p["id"]]
	if u == nil {
		return errf(http.StatusNotFound, "Principal %s does not exist", c.p["id"])
	}
	if !u.Certified {
		return errf(http.StatusNotFound, "No quiz results found for user %s", u.ID)
	}
	n, _ := strconv.ParseInt(u.ID, 10, 64)
	return c.reply(http.StatusOK, map[string]any{"userId": u.ID, "quizId": 1, "responseId": n, "score": 10,
		"passed": true, "passedOn": iso(u.CreatedOn), "revoked": false, "certified": true, "corrections": []any{}})
}

func (s *Server) hCreate(c *call) error {
	var in entityIn
	if err := c.decode(&in); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.createLocked(c.u, &in)
	if err != nil {
		return err
	}
	c.changedLocked()
	return c.reply(http.StatusCreated, s.entityOutLocked(e, nil))
}

func (s *Server) hGet(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.readableLocked(c.u, c.p["id"])
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, s.entityOutLocked(e, nil))
}

// versionLocked resolves the {n} path parameter of a readable file.
func (s *Server) versionLocked(c *call) (*entity, *version, *apiError) {
	e, err := s.readableLocked(c.u, c.p["id"])
	if err != nil {
		return nil, nil, err
	}
	ns, ok := c.p["n"]
	if !ok {
		return e, e.latest(), nil
	}
	n, perr := strconv.ParseInt(ns, 10, 64)
	if perr != nil || n < 1 {
		return nil, nil, errf(http.StatusBadRequest, "Invalid version number: %s", ns)
	}
	if e.Kind != kindFile {
		if n == e.Revision || n == 1 {
			return e, nil, nil
		}
		return nil, nil, errf(http.StatusNotFound, "Cannot find a node with id %d and version %d", e.ID, n)
	}
	v := e.version(n)
	if v == nil {
		return nil, nil, errf(http.StatusNotFound, "Cannot find a node with id %d and version %d", e.ID, n)
	}
	return e, v, nil
}

func (s *Server) hGetVersion(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, v, err := s.versionLocked(c)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, s.entityOutLocked(e, v))
}

func (s *Server) hUpdate(c *call) error {
	var in entityIn
	if err := c.decode(&in); err != nil {
		return err
	}
	newVersion := strings.EqualFold(c.r.URL.Query().Get("newVersion"), "true")
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.updateLocked(c.u, c.p["id"], &in, newVersion)
	if err != nil {
		return err
	}
	c.changedLocked()
	return c.reply(http.StatusOK, s.entityOutLocked(e, nil))
}

func (s *Server) deleteLocked(c *call, idStr string, priority bool) error {
	id, ok := parseSynID(idStr)
	e := s.st.Entities[id]
	if !ok || e == nil || s.inTrashLocked(e) {
		return nil
	}
	if c.u == nil {
		return errf(http.StatusForbidden, "Anonymous users have only READ access permission.")
	}
	if !s.accessLocked(c.u, e, accDelete) {
		return errf(http.StatusForbidden, "You lack DELETE access to the requested entity.")
	}
	s.trashLocked(c.u, e, priority)
	c.changedLocked()
	return nil
}

func (s *Server) hDelete(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteLocked(c, c.p["id"], strings.EqualFold(c.r.URL.Query().Get("skipTrashCan"), "true")); err != nil {
		return err
	}
	return c.reply(http.StatusNoContent, nil)
}

func (s *Server) hTrashPut(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteLocked(c, c.p["id"], false); err != nil {
		return err
	}
	return c.reply(http.StatusOK, nil)
}

func (s *Server) hType(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.readableLocked(c.u, c.p["id"])
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, s.headerLocked(e))
}

func (s *Server) hBenefactor(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.readableLocked(c.u, c.p["id"])
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, s.headerLocked(s.benefactorLocked(e)))
}

func queryInt(c *call, name string, def int) (int, *apiError) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errf(http.StatusBadRequest, "Invalid value for %s: %s", name, v)
	}
	return n, nil
}

func pageBounds(c *call) (int, int, *apiError) {
	off, err := queryInt(c, "offset", 0)
	if err != nil {
		return 0, 0, err
	}
	lim, err := queryInt(c, "limit", 10)
	if err != nil {
		return 0, 0, err
	}
	return off, lim, nil
}

func window[T any](all []T, off, lim int) []T {
	if off > len(all) {
		off = len(all)
	}
	end := off + lim
	if end > len(all) {
		end = len(all)
	}
	return all[off:end]
}

func (s *Server) hVersions(c *call) error {
	off, lim, perr := pageBounds(c)
	if perr != nil {
		return perr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.readableLocked(c.u, c.p["id"])
	if err != nil {
		return err
	}
	var all []map[string]any
	if e.Kind == kindFile {
		for i := len(e.Versions) - 1; i >= 0; i-- {
			v := e.Versions[i]
			vi := map[string]any{"id": synID(e.ID), "versionNumber": v.Number, "versionLabel": v.Label,
				"isLatestVersion": i == len(e.Versions)-1, "modifiedBy": v.ModifiedBy, "modifiedByPrincipalId": v.ModifiedBy,
				"modifiedOn": iso(v.ModifiedOn)}
			if v.Comment != nil {
				vi["versionComment"] = *v.Comment
			}
			if h := s.st.Handles[v.FileHandleID]; h != nil {
				vi["contentSize"] = strconv.FormatInt(h.ContentSize, 10)
				vi["contentMd5"] = h.ContentMD5
			}
			all = append(all, vi)
		}
	} else {
		all = append(all, map[string]any{"id": synID(e.ID), "versionNumber": e.Revision, "versionLabel": strconv.FormatInt(e.Revision, 10),
			"isLatestVersion": true, "modifiedBy": e.ModifiedBy, "modifiedByPrincipalId": e.ModifiedBy, "modifiedOn": iso(e.ModifiedOn)})
	}
	page := window(all, off, lim)
	if page == nil {
		page = []map[string]any{}
	}
	return c.reply(http.StatusOK, map[string]any{"results": page, "totalNumberOfResults": len(all)})
}

func (s *Server) hDeleteVersion(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, v, err := s.versionLocked(c)
	if err != nil {
		return err
	}
	if e.Kind != kindFile {
		return errf(http.StatusBadRequest, "Only versionable entities have versions that can be deleted")
	}
	if c.u == nil || !s.accessLocked(c.u, e, accDelete) {
		return errf(http.StatusForbidden, "You lack DELETE access to the requested entity.")
	}
	if len(e.Versions) == 1 {
		return errf(http.StatusBadRequest, "Cannot delete the only version of an entity; delete the entity instead")
	}
	for i, x := range e.Versions {
		if x == v {
			e.Versions = append(e.Versions[:i], e.Versions[i+1:]...)
			break
		}
	}
	e.Etag = newUUID()
	c.changedLocked()
	return c.reply(http.StatusNoContent, nil)
}

func (s *Server) hChild(c *call) error {
	var in struct {
		ParentID   flexString `json:"parentId"`
		EntityName *string    `json:"entityName"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.EntityName == nil || *in.EntityName == "" {
		return errf(http.StatusBadRequest, "EntityLookupRequest.entityName is required.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pid := rootID
	if in.ParentID.set {
		p, err := s.lookupLocked(in.ParentID.v)
		if err != nil {
			return err
		}
		if !s.accessLocked(c.u, p, accRead) {
			return errf(http.StatusForbidden, "Lack of READ permission on the parent entity.")
		}
		pid = p.ID
	}
	id, ok := s.kids[pid][*in.EntityName]
	if !ok {
		ps := "null"
		if in.ParentID.set {
			ps = in.ParentID.v
		}
		return errf(http.StatusNotFound, "Child not found for parent: '%s' with name: '%s'", ps, *in.EntityName)
	}
	if !s.accessLocked(c.u, s.st.Entities[id], accRead) {
		return errf(http.StatusForbidden, "Lack of READ permission on the requested entity.")
	}
	return c.reply(http.StatusOK, map[string]string{"id": synID(id)})
}

// parsePageToken parses "<limit>a<offset>".
func parsePageToken(tok *string) (limit, offset int, err *apiError) {
	if tok == nil || *tok == "" {
		return 50, 0, nil
	}
	l, o, ok := strings.Cut(*tok, "a")
	li, e1 := strconv.Atoi(l)
	oi, e2 := strconv.Atoi(o)
	if !ok || e1 != nil || e2 != nil || li < 1 || oi < 0 {
		return 0, 0, errf(http.StatusBadRequest, "Unknow token format: %s", *tok)
	}
	if li > 50 {
		return 0, 0, errf(http.StatusBadRequest, "Limit must not exceed: 50")
	}
	return li, oi, nil
}

func (s *Server) hChildren(c *call) error {
	var in struct {
		ParentID               flexString `json:"parentId"`
		IncludeTypes           []string   `json:"includeTypes"`
		SortBy                 string     `json:"sortBy"`
		SortDirection          string     `json:"sortDirection"`
		NextPageToken          *string    `json:"nextPageToken"`
		IncludeTotalChildCount bool       `json:"includeTotalChildCount"`
		IncludeSumFileSizes    bool       `json:"includeSumFileSizes"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	limit, offset, terr := parsePageToken(in.NextPageToken)
	if terr != nil {
		return terr
	}
	if !in.ParentID.set {
		in.IncludeTypes = []string{kindProject}
	}
	if len(in.IncludeTypes) == 0 {
		return errf(http.StatusBadRequest, "EntityChildrenRequest.includeTypes must include at least one type")
	}
	types := map[string]bool{}
	for _, t := range in.IncludeTypes {
		types[strings.ToLower(t)] = true
	}
	switch in.SortBy {
	case "", "NAME", "CREATED_ON", "MODIFIED_ON":
	default:
		return errf(http.StatusBadRequest, "Unknown sortBy: %s", in.SortBy)
	}
	switch in.SortDirection {
	case "", "ASC", "DESC":
	default:
		return errf(http.StatusBadRequest, "Unknown sortDirection: %s", in.SortDirection)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pid := rootID
	var parent *entity
	if in.ParentID.set {
		p, err := s.readableLocked(c.u, in.ParentID.v)
		if err != nil {
			return err
		}
		pid, parent = p.ID, p
	}
	// A child of a folder or project without its own ACL has the parent's
	// benefactor, so the parent's answer is its answer.
	inherit := parent != nil && pid != rootID && pid != trashID
	parentRead := inherit && s.accessLocked(c.u, parent, accRead)
	// In name order without totals, a page needs the children up to its
	// end and one more (is there a next page?), not all of them: listing a
	// large folder page by page does not cost its size on every page.
	byName := in.SortBy == "" || in.SortBy == "NAME"
	need := -1
	if byName && !in.IncludeTotalChildCount && !in.IncludeSumFileSizes {
		need = offset + limit + 1
	}
	desc := in.SortDirection == "DESC"
	ids := s.sortedKidsLocked(pid)
	var list []*entity
	if desc && byName {
		ids = slices.Clone(ids) // the kept order is shared
		slices.Reverse(ids)
	}
	for _, id := range ids {
		if len(list) == need {
			break
		}
		e := s.st.Entities[id]
		if e == nil || !types[e.Kind] {
			continue
		}
		if inherit && e.ACL == nil {
			if parentRead {
				list = append(list, e)
			}
		} else if s.accessLocked(c.u, e, accRead) {
			list = append(list, e)
		}
	}
	if !byName {
		switch in.SortBy {
		case "CREATED_ON":
			sort.SliceStable(list, func(i, j int) bool { return list[i].CreatedOn.Before(list[j].CreatedOn) })
		case "MODIFIED_ON":
			sort.SliceStable(list, func(i, j int) bool { return list[i].ModifiedOn.Before(list[j].ModifiedOn) })
		}
		if desc {
			slices.Reverse(list)
		}
	}
	page := []headerOut{}
	for _, e := range window(list, offset, limit) {
		page = append(page, s.headerLocked(e))
	}
	out := map[string]any{"page": page}
	if offset+limit < len(list) {
		out["nextPageToken"] = strconv.Itoa(limit) + "a" + strconv.Itoa(offset+limit)
	}
	if in.IncludeTotalChildCount {
		out["totalChildCount"] = len(list)
	}
	if in.IncludeSumFileSizes {
		var sum int64
		for _, e := range list {
			if v := e.latest(); v != nil {
				if h := s.st.Handles[v.FileHandleID]; h != nil {
					sum += h.ContentSize
				}
			}
		}
		out["sumFileSizesBytes"] = sum
	}
	return c.reply(http.StatusOK, out)
}

func (s *Server) hProjects(c *call) error {
	q := c.r.URL.Query()
	limit, offset, terr := parsePageToken(strPtr(q.Get("nextPageToken")))
	if terr != nil {
		return terr
	}
	filter := q.Get("filter")
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []*entity
	for _, e := range s.childrenLocked(rootID) {
		if c.u == nil || e.ACL == nil {
			continue
		}
		switch filter {
		case "", "ALL", "PARTICIPATED":
			if _, ok := e.ACL.Access[c.u.ID]; !ok {
				continue
			}
			if filter == "PARTICIPATED" && e.CreatedBy == c.u.ID {
				continue
			}
		case "CREATED":
			if e.CreatedBy != c.u.ID {
				continue
			}
		case "TEAM":
			continue
		default:
			return errf(http.StatusBadRequest, "Unknown filter: %s", filter)
		}
		list = append(list, e)
	}
	switch q.Get("sort") {
	case "PROJECT_NAME":
		if q.Get("sortDirection") == "DESC" {
			sort.SliceStable(list, func(i, j int) bool { return list[i].Name > list[j].Name })
		}
	default:
		asc := q.Get("sortDirection") == "ASC"
		sort.SliceStable(list, func(i, j int) bool {
			if asc {
				return list[i].ModifiedOn.Before(list[j].ModifiedOn)
			}
			return list[i].ModifiedOn.After(list[j].ModifiedOn)
		})
	}
	results := []map[string]any{}
	for _, e := range window(list, offset, limit) {
		results = append(results, map[string]any{"id": synID(e.ID), "name": e.Name, "lastActivity": iso(e.ModifiedOn),
			"modifiedOn": iso(e.ModifiedOn), "modifiedBy": e.ModifiedBy})
	}
	out := map[string]any{"results": results}
	if offset+limit < len(list) {
		out["nextPageToken"] = strconv.Itoa(limit) + "a" + strconv.Itoa(offset+limit)
	}
	return c.reply(http.StatusOK, out)
}

func strPtr(s string) *string { return &s }

func (s *Server) hPermissions(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupLocked(c.p["id"])
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, s.permissionsLocked(c.u, e))
}

func (s *Server) hACL(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.readableLocked(c.u, c.p["id"])
	if err != nil {
		return err
	}
	if e.ACL == nil {
		b := s.benefactorLocked(e)
		return errf(http.StatusNotFound, "Cannot find ACL for %s, the benefactor is %s", synID(e.ID), synID(b.ID))
	}
	return c.reply(http.StatusOK, aclOut(e))
}

func (s *Server) hGetAnnotations(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _, err := s.versionLocked(c)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, annotationsOut(e))
}

func (s *Server) hPutAnnotations(c *call) error {
	var in struct {
		ID          flexString             `json:"id"`
		Etag        *string                `json:"etag"`
		Annotations map[string]*annotation `json:"annotations"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupLocked(c.p["id"])
	if err != nil {
		return err
	}
	if in.ID.set {
		if bid, ok := parseSynID(in.ID.v); !ok || bid != e.ID {
			return errf(http.StatusBadRequest, "The id in the body (%s) does not match the id in the URL (%s)", in.ID.v, c.p["id"])
		}
	}
	if in.Etag == nil || *in.Etag == "" {
		return errf(http.StatusBadRequest, "Annotations.etag is required.")
	}
	if aerr := checkAnnotations(in.Annotations); aerr != nil {
		return aerr
	}
	if c.u == nil {
		return errf(http.StatusForbidden, "Anonymous users have only READ access permission.")
	}
	if e.Kind != kindProject && !c.u.Certified {
		return errf(http.StatusForbidden, "%s", remote.CertifiedOnlyReason)
	}
	if !s.accessLocked(c.u, e, accUpdate) {
		return errf(http.StatusForbidden, "You lack UPDATE access to the requested entity.")
	}
	if *in.Etag != e.Etag {
		return errf(http.StatusPreconditionFailed, "Object: %s was updated since you last fetched it, retrieve it again and re-apply the update", synID(e.ID))
	}
	e.Annotations = map[string]annotation{}
	for k, a := range in.Annotations {
		e.Annotations[k] = *a
	}
	if len(e.Annotations) == 0 {
		e.Annotations = nil
	}
	e.Etag, e.ModifiedOn, e.ModifiedBy = newUUID(), s.now(), c.u.ID
	c.changedLocked()
	return c.reply(http.StatusOK, annotationsOut(e))
}

func (s *Server) hBundle(c *call) error {
	var in bundleRequest
	if err := c.decode(&in); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, v, err := s.versionLocked(c)
	if err != nil {
		return err
	}
	out := map[string]any{}
	if in.IncludeEntity {
		out["entity"] = s.entityOutLocked(e, v)
		out["entityType"] = e.Kind
	}
	if in.IncludeAnnotations {
		out["annotations"] = annotationsOut(e)
	}
	if in.IncludePermissions {
		out["permissions"] = s.permissionsLocked(c.u, e)
	}
	if in.IncludeEntityPath {
		out["path"] = map[string]any{"path": s.pathLocked(e)}
	}
	if in.IncludeHasChildren {
		out["hasChildren"] = len(s.kids[e.ID]) > 0
	}
	if in.IncludeAccessControlList && e.ACL != nil {
		out["accessControlList"] = aclOut(e)
	}
	if in.IncludeBenefactorACL {
		out["benefactorAcl"] = aclOut(s.benefactorLocked(e))
	}
	if in.IncludeFileHandles {
		fhs := []any{}
		if v != nil && s.accessLocked(c.u, e, accDownload) {
			if h := s.st.Handles[v.FileHandleID]; h != nil {
				fhs = append(fhs, handleOut(h))
			}
		}
		out["fileHandles"] = fhs
	}
	if in.IncludeFileName && v != nil {
		if h := s.st.Handles[v.FileHandleID]; h != nil {
			out["fileName"] = h.FileName
		}
	}
	if in.IncludeRestrictionInformation {
		out["restrictionInformation"] = map[string]any{"objectId": e.ID, "restrictionLevel": "OPEN",
			"hasUnmetAccessRequirement": false, "restrictionDetails": []any{}}
	}
	return c.reply(http.StatusOK, out)
}

func (s *Server) hGeneratedBy(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, v, err := s.versionLocked(c)
	if err != nil {
		return err
	}
	n := e.Revision
	if v != nil {
		n = v.Number
	}
	return errf(http.StatusNotFound, "No activity found for %s version %d", synID(e.ID), n)
}

func (s *Server) hByMD5(c *call) error {
	md5 := strings.ToLower(c.p["md5"])
	s.mu.Lock()
	defer s.mu.Unlock()
	var res []headerOut
	ids := make([]int64, 0)
	for id := range s.st.Entities {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		e := s.st.Entities[id]
		if e.Kind != kindFile || s.inTrashLocked(e) || !s.accessLocked(c.u, e, accRead) {
			continue
		}
		for _, v := range e.Versions {
			if s.md5OfLocked(v.FileHandleID) == md5 {
				h := s.headerLocked(e)
				h.VersionNumber, h.VersionLabel, h.IsLatestVersion = v.Number, v.Label, v == e.latest()
				res = append(res, h)
			}
		}
	}
	if len(res) == 0 {
		return errf(http.StatusNotFound, "No entity with MD5 %s", md5)
	}
	return c.reply(http.StatusOK, map[string]any{"results": res, "totalNumberOfResults": len(res)})
}

func (s *Server) hTrashView(c *call) error {
	off, lim, perr := pageBounds(c)
	if perr != nil {
		return perr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []map[string]any
	for _, e := range s.childrenLocked(trashID) {
		if e.Trash == nil || c.u == nil || e.Trash.DeletedBy != c.u.ID {
			continue
		}
		all = append(all, map[string]any{"entityId": synID(e.ID), "entityName": e.Trash.OriginalName, "entityType": kindType(e.Kind),
			"deletedByPrincipalId": e.Trash.DeletedBy, "deletedOn": iso(e.Trash.DeletedOn), "originalParentId": synID(e.Trash.OriginalParentID)})
	}
	page := window(all, off, lim)
	if page == nil {
		page = []map[string]any{}
	}
	return c.reply(http.StatusOK, map[string]any{"results": page, "totalNumberOfResults": len(all)})
}

// trashedLocked finds a top-level trashed entity the caller deleted.
func (s *Server) trashedLocked(c *call) (*entity, *apiError) {
	id, ok := parseSynID(c.p["id"])
	e := s.st.Entities[id]
	if !ok || e == nil || e.Trash == nil || e.ParentID != trashID {
		return nil, errf(http.StatusNotFound, "The node %s is not in the trash can.", c.p["id"])
	}
	if c.u == nil || e.Trash.DeletedBy != c.u.ID {
		return nil, errf(http.StatusForbidden, "Only the user that deleted the entity can restore or purge it.")
	}
	return e, nil
}

func (s *Server) hRestore(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.trashedLocked(c)
	if err != nil {
		return err
	}
	pid := e.Trash.OriginalParentID
	if ps, ok := c.p["parent"]; ok {
		if pid, ok = parseSynID(ps); !ok {
			return errf(http.StatusNotFound, "The given parent: %s does not exist", ps)
		}
	}
	if pid != rootID {
		p := s.st.Entities[pid]
		if p == nil || s.inTrashLocked(p) {
			return errf(http.StatusNotFound, "The given parent: %s does not exist", synID(pid))
		}
		if !s.accessLocked(c.u, p, accCreate) {
			return errf(http.StatusForbidden, "You lack CREATE access to the requested entity.")
		}
	} else if e.Kind != kindProject {
		return parentTypeError(e.Kind, nil)
	}
	name := e.Trash.OriginalName
	if _, ok := s.kids[pid][name]; ok {
		return conflictError(name, pid)
	}
	s.unlinkLocked(e)
	e.ParentID, e.Name, e.Trash = pid, name, nil
	e.Etag, e.ModifiedOn, e.ModifiedBy = newUUID(), s.now(), c.u.ID
	s.linkLocked(e)
	c.changedLocked()
	return c.reply(http.StatusOK, nil)
}

func (s *Server) hPurge(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.trashedLocked(c)
	if err != nil {
		return err
	}
	s.purgeLocked(e)
	c.changedLocked()
	return c.reply(http.StatusOK, nil)
}
