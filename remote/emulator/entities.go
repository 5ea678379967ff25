package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/synfs/synfs/remote"
)

// flexString is a JSON string or number; null or absent leave it unset.
type flexString struct {
	v   string
	set bool
}

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = flexString{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString{v: s, set: true}
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString{v: n.String(), set: true}
	return nil
}

// entityIn is an Entity in a request body.
type entityIn struct {
	ConcreteType     *string         `json:"concreteType"`
	ID               flexString      `json:"id"`
	Etag             *string         `json:"etag"`
	Name             *string         `json:"name"`
	Description      *string         `json:"description"`
	ParentID         flexString      `json:"parentId"`
	Alias            *string         `json:"alias"`
	DataFileHandleID flexString      `json:"dataFileHandleId"`
	VersionLabel     *string         `json:"versionLabel"`
	VersionComment   *string         `json:"versionComment"`
	FileNameOverride json.RawMessage `json:"fileNameOverride"`
	LinksTo          json.RawMessage `json:"linksTo"`
}

// entityOut is an Entity as Synapse serialises it.
type entityOut struct {
	ConcreteType     string          `json:"concreteType"`
	ID               string          `json:"id"`
	Name             string          `json:"name"`
	Description      *string         `json:"description,omitempty"`
	Alias            *string         `json:"alias,omitempty"`
	ParentID         string          `json:"parentId"`
	Etag             string          `json:"etag"`
	CreatedOn        string          `json:"createdOn"`
	ModifiedOn       string          `json:"modifiedOn"`
	CreatedBy        string          `json:"createdBy"`
	ModifiedBy       string          `json:"modifiedBy"`
	VersionNumber    *int64          `json:"versionNumber,omitempty"`
	VersionLabel     *string         `json:"versionLabel,omitempty"`
	VersionComment   *string         `json:"versionComment,omitempty"`
	IsLatestVersion  *bool           `json:"isLatestVersion,omitempty"`
	DataFileHandleID *string         `json:"dataFileHandleId,omitempty"`
	LinksTo          json.RawMessage `json:"linksTo,omitempty"`
}

// headerOut is an EntityHeader.
type headerOut struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Type            string `json:"type"`
	VersionNumber   int64  `json:"versionNumber"`
	VersionLabel    string `json:"versionLabel"`
	IsLatestVersion bool   `json:"isLatestVersion"`
	BenefactorID    int64  `json:"benefactorId"`
	CreatedOn       string `json:"createdOn"`
	CreatedBy       string `json:"createdBy"`
	ModifiedOn      string `json:"modifiedOn"`
	ModifiedBy      string `json:"modifiedBy"`
}

func javaTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

func (s *Server) entityOutLocked(e *entity, v *version) entityOut {
	o := entityOut{
		ConcreteType: kindType(e.Kind), ID: synID(e.ID), Name: e.Name, Description: e.Description,
		ParentID: synID(e.ParentID), Etag: e.Etag, CreatedOn: iso(e.CreatedOn), ModifiedOn: iso(e.ModifiedOn),
		CreatedBy: e.CreatedBy, ModifiedBy: e.ModifiedBy,
	}
	if e.Kind == kindProject {
		o.Alias = e.Alias
	}
	o.LinksTo = e.LinksTo
	if e.Kind == kindFile {
		if v == nil {
			v = e.latest()
		}
		latest := v == e.latest()
		if !latest {
			o.ModifiedOn, o.ModifiedBy = iso(v.ModifiedOn), v.ModifiedBy
		}
		n, label, fh := v.Number, v.Label, v.FileHandleID
		o.VersionNumber, o.VersionLabel, o.VersionComment, o.IsLatestVersion, o.DataFileHandleID = &n, &label, v.Comment, &latest, &fh
	}
	return o
}

func (s *Server) headerLocked(e *entity) headerOut {
	h := headerOut{ID: synID(e.ID), Name: e.Name, Type: kindType(e.Kind), VersionNumber: e.Revision,
		IsLatestVersion: true, CreatedOn: iso(e.CreatedOn), CreatedBy: e.CreatedBy,
		ModifiedOn: iso(e.ModifiedOn), ModifiedBy: e.ModifiedBy}
	if v := e.latest(); v != nil {
		h.VersionNumber = v.Number
		h.VersionLabel = v.Label
	} else {
		h.VersionLabel = strconv.FormatInt(e.Revision, 10)
	}
	if b := s.benefactorLocked(e); b != nil {
		h.BenefactorID = b.ID
	} else {
		h.BenefactorID = trashID
	}
	return h
}

// inTrashLocked reports whether e or an ancestor is in the trash.
func (s *Server) inTrashLocked(e *entity) bool {
	for p := e; ; {
		switch p.ParentID {
		case trashID:
			return true
		case rootID:
			return false
		}
		p = s.st.Entities[p.ParentID]
		if p == nil {
			return true
		}
	}
}

// benefactorLocked returns the entity whose ACL governs e, or nil when e is
// in the trash.
func (s *Server) benefactorLocked(e *entity) *entity {
	for p := e; p != nil; p = s.st.Entities[p.ParentID] {
		if p.ACL != nil {
			if s.inTrashLocked(p) {
				return nil
			}
			return p
		}
		if p.ParentID == rootID || p.ParentID == trashID {
			return nil
		}
	}
	return nil
}

// accessLocked reports whether u (nil: anonymous) has access type t on e.
func (s *Server) accessLocked(u *user, e *entity, t string) bool {
	b := s.benefactorLocked(e)
	if b == nil {
		return false
	}
	principals := []string{publicPrincipal}
	if u != nil {
		principals = append(principals, u.ID, authenticatedPrincipal)
	} else if t != accRead {
		return false
	}
	for _, p := range principals {
		for _, a := range b.ACL.Access[p] {
			if a == t {
				return true
			}
		}
	}
	return false
}

func (s *Server) depthLocked(e *entity) int {
	d := 0
	for p := e; p != nil; p = s.st.Entities[p.ParentID] {
		d++
	}
	return d
}

// lookupLocked finds the entity named idStr: 404 when missing or trashed.
func (s *Server) lookupLocked(idStr string) (*entity, *apiError) {
	id, ok := parseSynID(idStr)
	var e *entity
	if ok {
		e = s.st.Entities[id]
	}
	if e == nil {
		return nil, errf(http.StatusNotFound, "Resource: '%s' does not exist", idStr)
	}
	if s.inTrashLocked(e) {
		return nil, errf(http.StatusNotFound, "Entity %s is in trash can.", synID(e.ID))
	}
	return e, nil
}

// readableLocked is lookupLocked plus the READ check.
func (s *Server) readableLocked(u *user, idStr string) (*entity, *apiError) {
	e, err := s.lookupLocked(idStr)
	if err != nil {
		return nil, err
	}
	if !s.accessLocked(u, e, accRead) {
		return nil, errf(http.StatusForbidden, "You lack READ access to the requested entity.")
	}
	return e, nil
}

func (s *Server) md5OfLocked(handleID string) string {
	if h := s.st.Handles[handleID]; h != nil {
		return h.ContentMD5
	}
	return ""
}

func parentTypeError(kind string, parent *entity) *apiError {
	pt := "null"
	if parent != nil {
		pt = kindType(parent.Kind)
	}
	return errf(http.StatusBadRequest, "Entity type: %s cannot have a parent of type: %s", kindType(kind), pt)
}

func checkCommon(in *entityIn) *apiError {
	if in.Name != nil && javaLen(*in.Name) > remote.MaxNameLen {
		return errf(http.StatusBadRequest, "Name must be 256 characters or less")
	}
	if in.Description != nil && javaLen(*in.Description) > 1000 {
		return errf(http.StatusBadRequest, "Description must be 1000 characters or less")
	}
	return nil
}

// linksTo returns a Link's linksTo as sent; nil for other kinds.
func linksTo(kind string, in *entityIn) json.RawMessage {
	if kind != kindLink || len(in.LinksTo) == 0 || string(bytes.TrimSpace(in.LinksTo)) == "null" {
		return nil
	}
	return append(json.RawMessage(nil), in.LinksTo...)
}

func checkFileFields(kind string, in *entityIn) *apiError {
	if kind != kindFile {
		return nil
	}
	if !in.DataFileHandleID.set {
		return errf(http.StatusBadRequest, "FileEntity.dataFileHandleId cannot be null")
	}
	if len(in.FileNameOverride) > 0 && string(bytes.TrimSpace(in.FileNameOverride)) != "null" {
		return errf(http.StatusBadRequest, "FileEntity.fileNameOverride is deprecated and must be null")
	}
	return nil
}

// checkHandleLocked checks that u created handle id.
func (s *Server) checkHandleLocked(u *user, id string) *apiError {
	h := s.st.Handles[id]
	if h == nil {
		return errf(http.StatusNotFound, "FileHandle: '%s' does not exist", id)
	}
	if h.CreatedBy != u.ID {
		return errf(http.StatusForbidden, "Only the creator of a FileHandle can access it directly by its ID.  FileHandleId = '%s', UserId = '%s'", id, u.ID)
	}
	return nil
}

func (s *Server) checkLimitsLocked(parent *entity, extra int) *apiError {
	if len(s.kids[parent.ID])+extra > s.o.MaxChildren {
		return errf(http.StatusBadRequest, "Limit of %d children exceeded for parent: %s", s.o.MaxChildren, synID(parent.ID))
	}
	if s.depthLocked(parent) >= s.o.MaxDepth {
		return errf(http.StatusBadRequest, "Exceeded the maximum hierarchical depth of: %d for parent: %s", s.o.MaxDepth, synID(parent.ID))
	}
	return nil
}

func conflictError(name string, parent int64) *apiError {
	return errf(http.StatusConflict, "An entity with the name: %s already exists with a parentId: %s", name, synID(parent))
}

// createLocked creates the entity described by in for u, enforcing
// Synapse's rules in Synapse's order.
func (s *Server) createLocked(u *user, in *entityIn) (*entity, *apiError) {
	if in.ConcreteType == nil {
		return nil, errf(http.StatusBadRequest, "Entity.concreteType cannot be null")
	}
	kind := typeKind(*in.ConcreteType)
	if kind == "" {
		return nil, errf(http.StatusBadRequest, "Unsupported entity type: %s (the emulator serves Project, Folder, FileEntity and Link)", *in.ConcreteType)
	}
	// 1. Type and parent validation.
	if err := checkCommon(in); err != nil {
		return nil, err
	}
	parentStr := in.ParentID.v
	var parent *entity
	parentOK := false // exists and not trashed
	if kind == kindProject {
		if in.ParentID.set {
			pid, ok := parseSynID(parentStr)
			if !ok || (pid != rootID && s.st.Entities[pid] == nil) {
				return nil, errf(http.StatusNotFound, "The given parent: %s does not exist", parentStr)
			}
			if pid != rootID {
				return nil, parentTypeError(kind, s.st.Entities[pid])
			}
		}
		parentOK = true
	} else {
		if !in.ParentID.set {
			return nil, parentTypeError(kind, nil)
		}
		if pid, ok := parseSynID(parentStr); ok {
			parent = s.st.Entities[pid]
			if pid == rootID {
				parentOK = true
			}
		}
		if parent != nil && !s.inTrashLocked(parent) {
			parentOK = true
			if !isContainer(parent.Kind) {
				return nil, parentTypeError(kind, parent)
			}
		}
	}
	if err := checkFileFields(kind, in); err != nil {
		return nil, err
	}
	// 2. Name rules.
	name, hasName := "", in.Name != nil
	if hasName {
		name = javaTrim(*in.Name)
		if msg := remote.NameProblem(name); msg != "" {
			return nil, errf(http.StatusBadRequest, "%s", msg)
		}
	}
	// 3. The parent must exist.
	if !parentOK {
		return nil, errf(http.StatusNotFound, "The given parent: %s does not exist", parentStr)
	}
	// 4. Authorization.
	if u == nil {
		return nil, errf(http.StatusForbidden, "Anonymous users have only READ access permission.")
	}
	if kind != kindProject && !u.Certified {
		return nil, errf(http.StatusForbidden, "%s", remote.CertifiedOnlyReason)
	}
	if kind != kindProject && (parent == nil || !s.accessLocked(u, parent, accCreate)) {
		return nil, errf(http.StatusForbidden, "You lack CREATE access to the requested entity.")
	}
	// 5. Limits.
	if parent != nil {
		if err := s.checkLimitsLocked(parent, 1); err != nil {
			return nil, err
		}
	}
	// 6. The file handle must be the caller's.
	if kind == kindFile {
		if err := s.checkHandleLocked(u, in.DataFileHandleID.v); err != nil {
			return nil, err
		}
	}
	// 7. Name conflicts.
	pid := rootID
	if parent != nil {
		pid = parent.ID
	}
	if hasName {
		if _, ok := s.kids[pid][name]; ok {
			return nil, conflictError(name, pid)
		}
	}
	now := s.now()
	id := s.st.NextEntity
	s.st.NextEntity++
	if !hasName {
		name = synID(id)
	}
	e := &entity{ID: id, Kind: kind, Name: name, Description: in.Description, ParentID: pid, Etag: newUUID(), LinksTo: linksTo(kind, in),
		CreatedOn: now, ModifiedOn: now, CreatedBy: u.ID, ModifiedBy: u.ID, Revision: 1}
	if kind == kindProject {
		e.Alias = in.Alias
		e.ACL = &acl{Etag: newUUID(), CreationDate: now, Access: map[string][]string{u.ID: append([]string(nil), allAccess...)}}
	}
	if kind == kindFile {
		label := "1"
		if in.VersionLabel != nil && *in.VersionLabel != "" {
			label = *in.VersionLabel
		}
		e.Versions = []*version{{Number: 1, Label: label, Comment: in.VersionComment, FileHandleID: in.DataFileHandleID.v,
			ModifiedOn: now, ModifiedBy: u.ID}}
	}
	s.st.Entities[id] = e
	s.linkLocked(e)
	s.count(func(st *Stats) { st.EntityCreates[kind]++ })
	return e, nil
}

// isAncestorLocked reports whether a is b or an ancestor of b.
func (s *Server) isAncestorLocked(a, b *entity) bool {
	for p := b; p != nil; p = s.st.Entities[p.ParentID] {
		if p.ID == a.ID {
			return true
		}
	}
	return false
}

// updateLocked applies PUT /entity/{id}.
func (s *Server) updateLocked(u *user, idStr string, in *entityIn, newVersion bool) (*entity, *apiError) {
	e, err := s.lookupLocked(idStr)
	if err != nil {
		return nil, err
	}
	if !in.ID.set {
		return nil, errf(http.StatusBadRequest, "The id of the node is required.")
	}
	if !in.ParentID.set {
		return nil, errf(http.StatusBadRequest, "The parentId of the node is required.")
	}
	if in.Etag == nil || *in.Etag == "" {
		return nil, errf(http.StatusBadRequest, "The eTag of the node is required.")
	}
	if bid, ok := parseSynID(in.ID.v); !ok || bid != e.ID {
		return nil, errf(http.StatusBadRequest, "The id in the body (%s) does not match the id in the URL (%s)", in.ID.v, idStr)
	}
	if in.ConcreteType != nil && typeKind(*in.ConcreteType) != e.Kind {
		return nil, errf(http.StatusBadRequest, "The type of an entity cannot be changed: %s is a %s", synID(e.ID), kindType(e.Kind))
	}
	if in.Name == nil {
		return nil, errf(http.StatusBadRequest, "Entity name cannot be null")
	}
	if err := checkCommon(in); err != nil {
		return nil, err
	}
	if err := checkFileFields(e.Kind, in); err != nil {
		return nil, err
	}
	name := javaTrim(*in.Name)
	if msg := remote.NameProblem(name); msg != "" {
		return nil, errf(http.StatusBadRequest, "%s", msg)
	}
	pid, ok := parseSynID(in.ParentID.v)
	if !ok {
		return nil, errf(http.StatusNotFound, "The given parent: %s does not exist", in.ParentID.v)
	}
	if e.Kind == kindProject && pid != rootID {
		p := s.st.Entities[pid]
		if p == nil {
			return nil, errf(http.StatusNotFound, "The given parent: %s does not exist", in.ParentID.v)
		}
		return nil, parentTypeError(e.Kind, p)
	}
	if u == nil {
		return nil, errf(http.StatusForbidden, "Anonymous users have only READ access permission.")
	}
	if e.Kind != kindProject && !u.Certified {
		return nil, errf(http.StatusForbidden, "%s", remote.CertifiedOnlyReason)
	}
	if !s.accessLocked(u, e, accUpdate) {
		return nil, errf(http.StatusForbidden, "You lack UPDATE access to the requested entity.")
	}
	if *in.Etag != e.Etag {
		return nil, errf(http.StatusPreconditionFailed, "Object: %s was updated since you last fetched it, retrieve it again and re-apply the update", synID(e.ID))
	}
	if pid != e.ParentID {
		np := s.st.Entities[pid]
		if np == nil || s.inTrashLocked(np) {
			return nil, errf(http.StatusNotFound, "The given parent: %s does not exist", in.ParentID.v)
		}
		if !isContainer(np.Kind) {
			return nil, parentTypeError(e.Kind, np)
		}
		if s.isAncestorLocked(e, np) {
			return nil, errf(http.StatusBadRequest, "Invalid hierarchy: an entity cannot be an ancestor of itself")
		}
		if !s.accessLocked(u, np, accCreate) {
			return nil, errf(http.StatusForbidden, "You cannot move content into the new location, %s. You lack CREATE access to the requested entity.", synID(np.ID))
		}
		if e.ACL == nil && s.benefactorLocked(np) != s.benefactorLocked(e) && !s.accessLocked(u, e, accChangePermissions) {
			return nil, errf(http.StatusForbidden, "CHANGE_PERMISSIONS is required to move to a new location")
		}
		if err := s.checkLimitsLocked(np, 1); err != nil {
			return nil, err
		}
	}
	var makeVersion, auto bool
	if e.Kind == kindFile {
		cur := e.latest()
		fh := in.DataFileHandleID.v
		if fh != cur.FileHandleID {
			if err := s.checkHandleLocked(u, fh); err != nil {
				return nil, err
			}
		}
		makeVersion = newVersion
		if !makeVersion && fh != cur.FileHandleID && s.md5OfLocked(fh) != s.md5OfLocked(cur.FileHandleID) {
			makeVersion, auto = true, true
		}
		if makeVersion && len(e.Versions) >= s.o.MaxVersions {
			return nil, errf(http.StatusBadRequest, "Exceeded the maximum number of %d versions for a single Entity", s.o.MaxVersions)
		}
	}
	if name != e.Name || pid != e.ParentID {
		if other, ok := s.kids[pid][name]; ok && other != e.ID {
			return nil, conflictError(name, pid)
		}
	}
	now := s.now()
	s.unlinkLocked(e)
	e.Name, e.ParentID, e.Description = name, pid, in.Description
	s.linkLocked(e)
	if e.Kind == kindProject {
		e.Alias = in.Alias
	}
	e.Etag, e.ModifiedOn, e.ModifiedBy = newUUID(), now, u.ID
	e.Revision++
	if e.Kind == kindFile {
		cur := e.latest()
		if makeVersion {
			nv := &version{Number: cur.Number + 1, FileHandleID: in.DataFileHandleID.v, ModifiedOn: now, ModifiedBy: u.ID}
			nv.Label = strconv.FormatInt(nv.Number, 10)
			if !auto {
				if l := in.VersionLabel; l != nil && *l != "" && !labelUsed(e, *l) {
					nv.Label = *l
				}
				nv.Comment = in.VersionComment
			}
			e.Versions = append(e.Versions, nv)
			s.count(func(st *Stats) { st.VersionsCreated++ })
		} else {
			cur.FileHandleID = in.DataFileHandleID.v
			if l := in.VersionLabel; l != nil && *l != "" && (*l == cur.Label || !labelUsed(e, *l)) {
				cur.Label = *l
			}
			cur.Comment = in.VersionComment
			cur.ModifiedOn, cur.ModifiedBy = now, u.ID
		}
	}
	return e, nil
}

func labelUsed(e *entity, l string) bool {
	for _, v := range e.Versions {
		if v.Label == l {
			return true
		}
	}
	return false
}

// trashLocked moves e to the trash.
func (s *Server) trashLocked(u *user, e *entity, priority bool) {
	now := s.now()
	s.unlinkLocked(e)
	e.Trash = &trashRecord{OriginalParentID: e.ParentID, OriginalName: e.Name, DeletedBy: u.ID, DeletedOn: now, Priority: priority}
	e.ParentID, e.Name = trashID, synID(e.ID)
	e.Etag, e.ModifiedOn, e.ModifiedBy = newUUID(), now, u.ID
	s.linkLocked(e)
}

func (s *Server) purgeLocked(e *entity) {
	for _, id := range s.kids[e.ID] {
		if c := s.st.Entities[id]; c != nil {
			s.purgeLocked(c)
		}
	}
	s.unlinkLocked(e)
	delete(s.kids, e.ID)
	delete(s.sorted, e.ID)
	delete(s.st.Entities, e.ID)
}

// childrenLocked returns parent's children, sorted by name then ID.
func (s *Server) childrenLocked(parent int64) []*entity {
	ids := s.sortedKidsLocked(parent)
	out := make([]*entity, 0, len(ids))
	for _, id := range ids {
		if e := s.st.Entities[id]; e != nil {
			out = append(out, e)
		}
	}
	return out
}

// sortedKidsLocked returns parent's children's IDs in name order (names
// are unique within a parent), sorting only after a change.
func (s *Server) sortedKidsLocked(parent int64) []int64 {
	if ids, ok := s.sorted[parent]; ok {
		return ids
	}
	m := s.kids[parent]
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	ids := make([]int64, len(names))
	for i, n := range names {
		ids[i] = m[n]
	}
	s.sorted[parent] = ids
	return ids
}

func (s *Server) permissionsLocked(u *user, e *entity) map[string]any {
	has := func(t string) bool { return s.accessLocked(u, e, t) }
	cert := u != nil && u.Certified
	certOK := cert || e.Kind == kindProject
	b := s.benefactorLocked(e)
	publicRead := false
	if b != nil {
		for _, a := range b.ACL.Access[publicPrincipal] {
			publicRead = publicRead || a == accRead
		}
	}
	owner, _ := strconv.ParseInt(e.CreatedBy, 10, 64)
	return map[string]any{
		"canView":                  has(accRead),
		"canEdit":                  has(accUpdate) && certOK,
		"canAddChild":              has(accCreate) && cert,
		"canCertifiedUserEdit":     has(accUpdate),
		"canCertifiedUserAddChild": has(accCreate),
		"isCertifiedUser":          cert,
		"canChangePermissions":     has(accChangePermissions),
		"canChangeSettings":        has(accChangeSettings),
		"canDelete":                has(accDelete),
		"canDownload":              has(accDownload),
		"canUpload":                u != nil,
		"canEnableInheritance":     e.Kind != kindProject && e.ACL != nil && has(accChangePermissions),
		"canPublicRead":            publicRead,
		"canModerate":              has(accModerate),
		"isCertificationRequired":  true,
		"ownerPrincipalId":         owner,
	}
}

func aclOut(e *entity) map[string]any {
	var ras []map[string]any
	ps := make([]string, 0, len(e.ACL.Access))
	for p := range e.ACL.Access {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	for _, p := range ps {
		n, _ := strconv.ParseInt(p, 10, 64)
		ras = append(ras, map[string]any{"principalId": n, "accessType": e.ACL.Access[p]})
	}
	return map[string]any{"id": synID(e.ID), "etag": e.ACL.Etag, "creationDate": iso(e.ACL.CreationDate), "resourceAccess": ras}
}

func annotationsOut(e *entity) map[string]any {
	m := map[string]any{}
	for k, a := range e.Annotations {
		m[k] = a
	}
	return map[string]any{"id": synID(e.ID), "etag": e.Etag, "annotations": m}
}

var annotationKey = regexp.MustCompile(`^[a-zA-Z0-9,_.]+$`)

// checkAnnotations applies Synapse's AnnotationsV2Utils.validateAnnotations
// and the per-type value validators, with their messages.
func checkAnnotations(m map[string]*annotation) *apiError {
	if len(m) > remote.MaxAnnotationKeys {
		return errf(http.StatusBadRequest, "Exceeded maximum number of annotation keys: %d", remote.MaxAnnotationKeys)
	}
	for k, a := range m {
		key := strings.TrimSpace(k)
		if key == "" {
			return errf(http.StatusBadRequest, "Annotation names cannot be empty strings")
		}
		if !annotationKey.MatchString(key) {
			return errf(http.StatusBadRequest, "Invalid annotation name: '%s'. Annotation names may only contain; letters, numbers, '_' and '.'", key)
		}
		if strings.EqualFold(key, "_accessRequirementIds") {
			return errf(http.StatusBadRequest, "Invalid annotation name: '%s'. The annotation name is a system reserved annotation.", key)
		}
		if a == nil || a.Values == nil {
			return errf(http.StatusBadRequest, "value list for key=%s can not be null", k)
		}
		if len(a.Values) > remote.MaxAnnotationValues {
			return errf(http.StatusBadRequest, "key=%s has exceeded the maximum number of values allowed: %d", k, remote.MaxAnnotationValues)
		}
		total := 0
		for _, v := range a.Values {
			var bad bool
			switch a.Type {
			case "STRING":
				n := len(utf16.Encode([]rune(v)))
				if n > remote.MaxAnnotationString {
					return errf(http.StatusBadRequest, "A single string annotation value cannot exceed %d characters.", remote.MaxAnnotationString)
				}
				if total += n; total > remote.MaxAnnotationListChars {
					return errf(http.StatusBadRequest, "The sum of all string values for annotation '%s' cannot exceed %d characters.", k, remote.MaxAnnotationListChars)
				}
			case "LONG", "TIMESTAMP_MS":
				_, err := strconv.ParseInt(v, 10, 64)
				bad = err != nil
			case "DOUBLE":
				_, err := strconv.ParseFloat(v, 64)
				bad = err != nil && v != "NaN" && v != "Infinity" && v != "-Infinity"
			case "BOOLEAN":
				bad = v != "true" && v != "false"
			default:
				return errf(http.StatusBadRequest, "Unknown annotation type %q for key '%s'", a.Type, k)
			}
			if bad {
				return errf(http.StatusBadRequest, "Value associated with key=%s is not a valid %s: %s", k, a.Type, v)
			}
		}
	}
	return nil
}

// pathLocked is the EntityPath of e, from the root.
func (s *Server) pathLocked(e *entity) []any {
	var chain []any
	for p := e; p != nil; p = s.st.Entities[p.ParentID] {
		chain = append(chain, s.headerLocked(p))
	}
	chain = append(chain, map[string]any{"id": synID(rootID), "name": "root", "type": typeFolder, "versionNumber": 1, "isLatestVersion": true, "benefactorId": rootID})
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain
}

type bundleRequest struct {
	IncludeEntity                 bool `json:"includeEntity"`
	IncludeAnnotations            bool `json:"includeAnnotations"`
	IncludePermissions            bool `json:"includePermissions"`
	IncludeEntityPath             bool `json:"includeEntityPath"`
	IncludeHasChildren            bool `json:"includeHasChildren"`
	IncludeAccessControlList      bool `json:"includeAccessControlList"`
	IncludeFileHandles            bool `json:"includeFileHandles"`
	IncludeRestrictionInformation bool `json:"includeRestrictionInformation"`
	IncludeFileName               bool `json:"includeFileName"`
	IncludeBenefactorACL          bool `json:"includeBenefactorACL"`
}
