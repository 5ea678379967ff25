package synapse

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/synfs/synfs/remote"
)

// kindOf maps a concreteType to the kind synfs sees.
func kindOf(concreteType string) remote.Kind {
	switch concreteType {
	case TypeProject:
		return remote.KindProject
	case TypeFolder:
		return remote.KindFolder
	case TypeFileEntity:
		return remote.KindFile
	}
	return remote.KindOther
}

// parseTime parses a Synapse timestamp; a bad one is the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// toEntity converts a wire entity. A File's Size is -1 and its MD5 "" until
// filled from its file handle.
func toEntity(e *Entity) *remote.Entity {
	r := &remote.Entity{
		ID:         e.ID,
		Name:       e.Name,
		ParentID:   e.ParentID,
		Kind:       kindOf(e.ConcreteType),
		Type:       e.ConcreteType,
		Etag:       e.Etag,
		CreatedOn:  parseTime(e.CreatedOn),
		ModifiedOn: parseTime(e.ModifiedOn),
	}
	switch r.Kind {
	case remote.KindProject:
		r.ParentID = ""
	case remote.KindFile:
		r.Version = e.VersionNumber
		r.FileHandleID = e.DataFileHandleID
		r.Size = -1
	}
	return r
}

// withHandle fills a File's Size and MD5 from its data file handle.
func withHandle(r *remote.Entity, h *FileHandle) *remote.Entity {
	if h != nil {
		r.Size = h.ContentSize
		r.MD5 = strings.ToLower(h.ContentMD5)
	}
	return r
}

// fromHeader converts a listing entry.
func fromHeader(h *EntityHeader, parentID string) remote.Entity {
	r := remote.Entity{
		ID:         h.ID,
		Name:       h.Name,
		ParentID:   parentID,
		Kind:       kindOf(h.Type),
		Type:       h.Type,
		CreatedOn:  parseTime(h.CreatedOn),
		ModifiedOn: parseTime(h.ModifiedOn),
	}
	if r.Kind == remote.KindFile {
		r.Version = h.VersionNumber
		r.Size = -1
	}
	if r.Kind == remote.KindProject {
		r.ParentID = ""
	}
	return r
}

// dataHandle returns the data file handle of file entity e, via
// POST /fileHandle/batch, which any reader with download access may call.
func (c *Client) dataHandle(ctx context.Context, e *Entity) (*FileHandle, error) {
	if e.DataFileHandleID == "" {
		return nil, c.newError("file handle of "+e.ID, 0, "entity has no dataFileHandleId", remote.ErrInvalid)
	}
	res, err := c.FileHandleBatch(ctx, []FileHandleAssociation{{
		FileHandleID: e.DataFileHandleID, AssociateObjectID: e.ID, AssociateObjectType: "FileEntity",
	}}, false)
	if err != nil {
		return nil, err
	}
	op := "POST /fileHandle/batch"
	for i := range res {
		if res[i].FileHandleID != e.DataFileHandleID {
			continue
		}
		if err := c.fileFailure(op, res[i].FailureCode); err != nil {
			return nil, err
		}
		if res[i].FileHandle == nil {
			return nil, c.newError(op, http.StatusCreated, "answer has no file handle", remote.ErrInvalid)
		}
		return res[i].FileHandle, nil
	}
	return nil, c.newError(op, http.StatusCreated, "answer lacks the requested file handle", remote.ErrInvalid)
}

// Me returns the caller, with Certified from the Certified User quiz record
// (a user who never took the quiz is not certified).
func (c *Client) Me(ctx context.Context) (*remote.User, error) {
	p, err := c.UserProfile(ctx)
	if err != nil {
		return nil, err
	}
	u := &remote.User{ID: p.OwnerID, UserName: p.UserName}
	rec, err := c.CertifiedPassingRecord(ctx, p.OwnerID)
	switch {
	case errors.Is(err, remote.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		u.Certified = rec.Passed && !rec.Revoked
	}
	return u, nil
}

// Get returns entity id. For a File, Size and MD5 come from its data file
// handle; if the caller may not download the file they stay -1 and "". It
// costs one REST call (POST /entity/{id}/bundle2), which carries the entity
// and its file handles together.
func (c *Client) Get(ctx context.Context, id string) (*remote.Entity, error) {
	b, err := c.Bundle(ctx, id)
	if err != nil {
		return nil, err
	}
	r := toEntity(b.Entity)
	if r.Kind == remote.KindFile {
		if h := b.dataHandleOf(); h != nil {
			withHandle(r, h)
		} else {
			c.log.LogAttrs(ctx, slogDebug, "synapse: file handle not readable", attrOp("get "+id))
		}
	}
	return r, nil
}

// Lookup returns the child called name of parentID (a Project by name when
// parentID is "").
func (c *Client) Lookup(ctx context.Context, parentID, name string) (*remote.Entity, error) {
	id, err := c.LookupChild(ctx, parentID, name)
	if err != nil {
		return nil, err
	}
	return c.Get(ctx, id)
}

// Children lists parentID's children (the readable Projects when parentID
// is ""), sorted by name in byte order. Files have Size -1 and MD5 "".
func (c *Client) Children(ctx context.Context, parentID string) ([]remote.Entity, error) {
	hs, err := c.ListChildren(ctx, parentID, nil)
	if err != nil {
		return nil, err
	}
	out := make([]remote.Entity, 0, len(hs))
	for i := range hs {
		out = append(out, fromHeader(&hs[i], parentID))
	}
	slices.SortStableFunc(out, func(a, b remote.Entity) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Permissions returns what the caller may do to entity id.
func (c *Client) Permissions(ctx context.Context, id string) (*remote.Permissions, error) {
	p, err := c.EntityPermissions(ctx, id)
	if err != nil {
		return nil, err
	}
	return &remote.Permissions{
		CanView:                 p.CanView,
		CanEdit:                 p.CanEdit,
		CanAddChild:             p.CanAddChild,
		CanDelete:               p.CanDelete,
		CanDownload:             p.CanDownload,
		IsCertifiedUser:         p.IsCertifiedUser,
		IsCertificationRequired: p.IsCertificationRequired,
	}, nil
}

// createOutcome says how createOnce got its entity.
type createOutcome int

const (
	created   createOutcome = iota // the POST answered 201
	existed                        // the POST answered 409; the entity is the one in the way
	recovered                      // the answer was lost; the entity was found by name
)

// createOnce creates e, which has Name and (unless a Project) ParentID. It
// never sends the POST again once the server may have acted on it without
// first looking the name up: if the name is then found, that entity is
// returned as recovered; only if it is absent is the POST repeated.
func (c *Client) createOnce(ctx context.Context, e *Entity) (*Entity, createOutcome, error) {
	// uncertain: an earlier POST failed without an answer. It may still
	// land after the lookup that did not find it, and then our own retry
	// meets 409: the entity found is that POST's.
	uncertain := false
	for attempt := 0; ; attempt++ {
		out, err := c.CreateEntity(ctx, e)
		if err == nil {
			return out, created, nil
		}
		if ctx.Err() != nil {
			return nil, 0, err
		}
		exist := errors.Is(err, remote.ErrExist)
		if !exist && !errors.Is(err, remote.ErrTransient) {
			return nil, 0, err
		}
		id, lerr := c.LookupChild(ctx, e.ParentID, e.Name)
		switch {
		case lerr == nil:
			found, gerr := c.GetEntity(ctx, id)
			if gerr != nil {
				return nil, 0, gerr
			}
			if exist && !uncertain {
				return found, existed, nil
			}
			return found, recovered, nil
		case !errors.Is(lerr, remote.ErrNotFound):
			return nil, 0, lerr
		}
		// Not there: the POST did not take effect (or the clashing entity
		// went away), so sending it again cannot create a second one.
		if attempt >= c.cfg.MaxRetries {
			return nil, 0, err
		}
		if !exist {
			uncertain = true
			c.log.LogAttrs(ctx, slogWarn, "synapse: create answer lost and name absent; creating again", attrOp("POST /entity"), attrErr(err))
			if serr := remote.Sleep(ctx, c.backoff(attempt, 0)); serr != nil {
				return nil, 0, canceled("POST /entity", serr)
			}
		}
	}
}

// CreateFolder creates Folder name under parentID; parentID "" creates a
// Project. If the name is taken, it returns the existing container (or nil
// for an entity of another kind) with an ErrExist error.
func (c *Client) CreateFolder(ctx context.Context, parentID, name string) (*remote.Entity, error) {
	if err := remote.ValidateName(name); err != nil {
		return nil, err
	}
	e := &Entity{ConcreteType: TypeFolder, Name: name, ParentID: parentID}
	if parentID == "" {
		e.ConcreteType = TypeProject
	}
	got, how, err := c.createOnce(ctx, e)
	if err != nil {
		return nil, err
	}
	switch {
	case how == created:
		return toEntity(got), nil
	case got.ConcreteType == e.ConcreteType && how == recovered:
		return toEntity(got), nil
	case got.ConcreteType == e.ConcreteType:
		return toEntity(got), c.existError(e)
	}
	return nil, c.existError(e)
}

// existError is the ErrExist error for a create whose name is taken.
func (c *Client) existError(e *Entity) error {
	return c.newError("POST /entity", http.StatusConflict,
		"An entity with the name: "+e.Name+" already exists with a parentId: "+e.ParentID, remote.ErrExist)
}

// maxUpdateTries bounds read-modify-write loops that meet 412.
const maxUpdateTries = 5

// Move renames and/or moves entity id. newParentID "" keeps the parent and
// name "" keeps the name. An etag race (412) is retried from a fresh read.
func (c *Client) Move(ctx context.Context, id, newParentID, name string) (*remote.Entity, error) {
	if name != "" {
		if err := remote.ValidateName(name); err != nil {
			return nil, err
		}
	}
	var last error
	for range maxUpdateTries {
		e, err := c.GetEntity(ctx, id)
		if err != nil {
			return nil, err
		}
		if (name == "" || e.Name == name) && (newParentID == "" || e.ParentID == newParentID) {
			return c.Get(ctx, id)
		}
		if name != "" {
			e.Name = name
		}
		if newParentID != "" {
			e.ParentID = newParentID
		}
		out, err := c.UpdateEntity(ctx, e, false)
		if err == nil {
			r := toEntity(out)
			if r.Kind == remote.KindFile {
				if h, herr := c.dataHandle(ctx, out); herr == nil {
					withHandle(r, h)
				}
			}
			return r, nil
		}
		if !errors.Is(err, remote.ErrStale) {
			return nil, err
		}
		last = err
	}
	return nil, last
}

// Delete moves entity id to the trash; a missing entity is not an error.
func (c *Client) Delete(ctx context.Context, id string) error {
	err := c.DeleteEntity(ctx, id)
	if errors.Is(err, remote.ErrNotFound) {
		return nil
	}
	return err
}

// Annotations returns entity id's annotations.
func (c *Client) Annotations(ctx context.Context, id string) (*remote.Annotations, error) {
	a, err := c.GetAnnotations(ctx, id)
	if err != nil {
		return nil, err
	}
	return fromAnnotations(a), nil
}

func fromAnnotations(a *Annotations) *remote.Annotations {
	r := &remote.Annotations{Etag: a.Etag, Values: make(map[string]remote.AnnotationValue, len(a.Annotations))}
	for k, v := range a.Annotations {
		r.Values[k] = remote.AnnotationValue{Type: v.Type, Values: slices.Clone(v.Value)}
	}
	return r
}

// SetAnnotations replaces entity id's annotations, with a.Etag as the
// precondition, and stores the new etag into a. When the precondition fails
// because a lost answer was retried, the stored values are compared with a
// and an exact match counts as success.
func (c *Client) SetAnnotations(ctx context.Context, id string, a *remote.Annotations) error {
	w := &Annotations{ID: id, Etag: a.Etag, Annotations: make(map[string]AnnotationsValue, len(a.Values))}
	for k, v := range a.Values {
		w.Annotations[k] = AnnotationsValue{Type: v.Type, Value: slices.Clone(v.Values)}
	}
	out, err := c.PutAnnotations(ctx, w)
	if errors.Is(err, remote.ErrStale) {
		cur, gerr := c.GetAnnotations(ctx, id)
		if gerr != nil || !sameAnnotations(cur.Annotations, w.Annotations) {
			return err
		}
		out, err = cur, nil
	}
	if err != nil {
		return err
	}
	a.Etag = out.Etag
	return nil
}

func sameAnnotations(a, b map[string]AnnotationsValue) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Type != w.Type || !slices.Equal(v.Value, w.Value) {
			return false
		}
	}
	return true
}
