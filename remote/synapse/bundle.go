package synapse

import (
	"context"
	"net/http"
	"net/url"

	"github.com/synfs/synfs/remote"
)

// EntityBundleRequest selects the parts of POST /entity/{id}/bundle2's
// answer. synfs asks only for the entity and its file handles.
type EntityBundleRequest struct {
	IncludeEntity      bool `json:"includeEntity"`
	IncludeFileHandles bool `json:"includeFileHandles"`
}

// EntityBundle is the part of Synapse's EntityBundle synfs reads.
type EntityBundle struct {
	Entity      *Entity      `json:"entity"`
	EntityType  string       `json:"entityType,omitempty"`
	FileHandles []FileHandle `json:"fileHandles"`
}

// Bundle returns entity id's current version together with its file
// handles in one REST call (POST /entity/{id}/bundle2). FileHandles is
// empty when the caller may not download the file.
func (c *Client) Bundle(ctx context.Context, id string) (*EntityBundle, error) {
	var b EntityBundle
	err := c.rest(ctx, call{method: http.MethodPost, base: c.repo, path: "/entity/" + url.PathEscape(id) + "/bundle2",
		body: &EntityBundleRequest{IncludeEntity: true, IncludeFileHandles: true}, out: &b})
	if err != nil {
		return nil, err
	}
	if b.Entity == nil {
		return nil, c.newError("POST /entity/"+id+"/bundle2", http.StatusOK, "answer has no entity", remote.ErrInvalid)
	}
	return &b, nil
}

// dataHandleOf returns the bundle's data file handle of its entity, or nil.
func (b *EntityBundle) dataHandleOf() *FileHandle {
	if b.Entity == nil || b.Entity.DataFileHandleID == "" {
		return nil
	}
	for i := range b.FileHandles {
		if b.FileHandles[i].ID == b.Entity.DataFileHandleID {
			return &b.FileHandles[i]
		}
	}
	return nil
}
