package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/synfs/synfs/remote"
)

// EntityInfo is an entity as the emulator holds it, for tests.
type EntityInfo struct {
	ID          string // "syn123"
	Name        string // for a trashed entity, its ID (Synapse renames trashed entities)
	ParentID    string // "syn4489" for Projects; the trash folder's ID when trashed directly
	Kind        string // "project", "folder", "file" or "link"
	Etag        string
	CreatedBy   string
	ModifiedOn  time.Time
	Trashed     bool   // the entity or an ancestor is in the trash
	TrashedFrom string // the original parent of an entity trashed directly
	TrashedName string // the original name of an entity trashed directly
	Annotations map[string][]string
	Versions    []VersionInfo // files only, oldest first
}

// VersionInfo is one version of a file entity.
type VersionInfo struct {
	Number       int64
	Label        string
	Comment      string
	FileHandleID string
	MD5          string
	Size         int64
}

// AddUser adds a user who authenticates with token, or updates the user of
// that name (adding token and setting certified). It returns the user's
// principal ID.
func (s *Server) AddUser(userName, token string, certified bool) (principalID string) {
	s.mu.Lock()
	u := s.names[userName]
	if u == nil {
		u = &user{ID: strconv.FormatInt(s.st.NextPrincipal, 10), UserName: userName, CreatedOn: s.now(), Etag: newUUID()}
		s.st.NextPrincipal++
		s.st.Users[u.ID] = u
		s.names[userName] = u
	}
	u.Certified = certified
	if token != "" {
		th := hashToken(token)
		if other := s.tokens[th]; other != nil && other != u {
			for i, t := range other.Tokens {
				if t == th {
					other.Tokens = append(other.Tokens[:i], other.Tokens[i+1:]...)
					break
				}
			}
		}
		if s.tokens[th] != u {
			u.Tokens = append(u.Tokens, th)
			s.tokens[th] = u
		}
	}
	g := s.changedLocked()
	s.mu.Unlock()
	if err := s.commit(g); err != nil {
		s.log.Error("saving state", "err", err)
	}
	return u.ID
}

func toRemoteError(op string, e *apiError) error {
	return &remote.Error{Op: op, Status: e.status, Reason: e.reason, Kind: remote.KindOf(e.status, e.reason)}
}

func (s *Server) userByTokenLocked(token string) *user { return s.tokens[hashToken(token)] }

func (s *Server) create(op, token string, in *entityIn) (string, error) {
	s.mu.Lock()
	u := s.userByTokenLocked(token)
	if u == nil {
		s.mu.Unlock()
		return "", toRemoteError(op, errf(http.StatusUnauthorized, "Invalid access token"))
	}
	e, err := s.createLocked(u, in)
	if err != nil {
		s.mu.Unlock()
		return "", toRemoteError(op, err)
	}
	g := s.changedLocked()
	s.mu.Unlock()
	return synID(e.ID), s.commit(g)
}

// CreateProject creates Project name owned by the user with ownerToken, with
// the same rules as POST /entity.
func (s *Server) CreateProject(ownerToken, name string) (id string, err error) {
	t := typeProject
	return s.create("create project", ownerToken, &entityIn{ConcreteType: &t, Name: &name})
}

// CreateFolder creates Folder name under parentID as the user with
// ownerToken, with the same rules as POST /entity.
func (s *Server) CreateFolder(ownerToken, parentID, name string) (id string, err error) {
	t := typeFolder
	return s.create("create folder", ownerToken, &entityIn{ConcreteType: &t, Name: &name, ParentID: flexString{v: parentID, set: true}})
}

// Grant gives userName the access types (READ, DOWNLOAD, CREATE, UPDATE,
// DELETE, CHANGE_PERMISSIONS, CHANGE_SETTINGS, MODERATE) on entityID. If the
// entity inherited its permissions, it gets its own ACL first, a copy of
// its benefactor's. userName may also be "PUBLIC" (everyone, including
// anonymous callers) or "AUTHENTICATED_USERS".
func (s *Server) Grant(entityID, userName string, access ...string) error {
	for _, a := range access {
		ok := false
		for _, x := range allAccess {
			ok = ok || a == x
		}
		if !ok {
			return fmt.Errorf("emulator: unknown access type %q", a)
		}
	}
	s.mu.Lock()
	e, aerr := s.lookupLocked(entityID)
	if aerr != nil {
		s.mu.Unlock()
		return toRemoteError("grant", aerr)
	}
	var principal string
	switch strings.ToUpper(userName) {
	case "PUBLIC":
		principal = publicPrincipal
	case "AUTHENTICATED_USERS":
		principal = authenticatedPrincipal
	default:
		u := s.names[userName]
		if u == nil {
			s.mu.Unlock()
			return fmt.Errorf("emulator: no user %q", userName)
		}
		principal = u.ID
	}
	now := s.now()
	if e.ACL == nil {
		b := s.benefactorLocked(e)
		e.ACL = &acl{CreationDate: now, Access: map[string][]string{}}
		if b != nil {
			for p, a := range b.ACL.Access {
				e.ACL.Access[p] = append([]string(nil), a...)
			}
		}
	}
	e.ACL.Access[principal] = sortedAccess(append(e.ACL.Access[principal], access...))
	e.ACL.Etag = newUUID()
	g := s.changedLocked()
	s.mu.Unlock()
	return s.commit(g)
}

// Seed makes sure the certified user "demo" authenticates with demoToken
// and owns "Demo Project" holding the folder "Data", and returns their IDs.
// It is idempotent, also across restarts on the same DataDir.
func (s *Server) Seed(demoToken string) (projectID, folderID string, err error) {
	if demoToken == "" {
		return "", "", errors.New("emulator: Seed needs a token")
	}
	s.AddUser("demo", demoToken, true)
	s.mu.Lock()
	pid, ok := s.kids[rootID]["Demo Project"]
	s.mu.Unlock()
	if ok {
		projectID = synID(pid)
	} else if projectID, err = s.CreateProject(demoToken, "Demo Project"); err != nil {
		return "", "", err
	}
	p, _ := parseSynID(projectID)
	s.mu.Lock()
	fid, ok := s.kids[p]["Data"]
	s.mu.Unlock()
	if ok {
		return projectID, synID(fid), nil
	}
	folderID, err = s.CreateFolder(demoToken, projectID, "Data")
	return projectID, folderID, err
}

func (s *Server) infoLocked(e *entity) EntityInfo {
	in := EntityInfo{ID: synID(e.ID), Name: e.Name, ParentID: synID(e.ParentID), Kind: e.Kind, Etag: e.Etag,
		CreatedBy: e.CreatedBy, ModifiedOn: e.ModifiedOn, Trashed: s.inTrashLocked(e)}
	if e.Trash != nil {
		in.TrashedFrom, in.TrashedName = synID(e.Trash.OriginalParentID), e.Trash.OriginalName
	}
	if len(e.Annotations) > 0 {
		in.Annotations = map[string][]string{}
		for k, a := range e.Annotations {
			in.Annotations[k] = append([]string(nil), a.Values...)
		}
	}
	for _, v := range e.Versions {
		vi := VersionInfo{Number: v.Number, Label: v.Label, FileHandleID: v.FileHandleID}
		if v.Comment != nil {
			vi.Comment = *v.Comment
		}
		if h := s.st.Handles[v.FileHandleID]; h != nil {
			vi.MD5, vi.Size = h.ContentMD5, h.ContentSize
		}
		in.Versions = append(in.Versions, vi)
	}
	return in
}

// Entity returns entity id ("syn123"), trashed or not.
func (s *Server) Entity(id string) (EntityInfo, bool) {
	n, ok := parseSynID(id)
	if !ok {
		return EntityInfo{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.st.Entities[n]
	if e == nil {
		return EntityInfo{}, false
	}
	return s.infoLocked(e), true
}

// Children returns the children of parentID that are not in the trash,
// sorted by name; parentID "" returns the Projects.
func (s *Server) Children(parentID string) []EntityInfo {
	pid := rootID
	if parentID != "" {
		var ok bool
		if pid, ok = parseSynID(parentID); !ok {
			return nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.st.Entities[pid]; pid != rootID && (p == nil || s.inTrashLocked(p)) {
		return nil
	}
	var out []EntityInfo
	for _, e := range s.childrenLocked(pid) {
		out = append(out, s.infoLocked(e))
	}
	return out
}

// OpenFile returns a reader of file handle id's bytes and their count.
func (s *Server) OpenFile(fileHandleID string) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	h := s.st.Handles[fileHandleID]
	s.mu.Unlock()
	if h == nil {
		return nil, 0, fmt.Errorf("emulator: no file handle %s", fileHandleID)
	}
	pr := newPartsReader(s.blobs, h.Parts)
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(pr, 0, pr.size), pr}, pr.size, nil
}

// FileBytes returns all bytes of file handle id; use OpenFile for big files.
func (s *Server) FileBytes(fileHandleID string) ([]byte, error) {
	r, n, err := s.OpenFile(fileHandleID)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var b bytes.Buffer
	b.Grow(int(n))
	_, err = io.Copy(&b, r)
	return b.Bytes(), err
}
