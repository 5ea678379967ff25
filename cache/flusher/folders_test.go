package flusher

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/synfs/synfs/remote"
)

// folderFake is fakeClient plus folders: CreateFolder answers ErrExist with
// the folder already there, as remote.Client promises, and loseFirst makes
// the first create happen but its answer be lost.
type folderFake struct {
	*fakeClient

	mu        sync.Mutex
	folders   map[string]remote.Entity // ID → folder
	creates   int
	deletes   []string
	loseFirst bool
	onCreate  func() // called before a create takes effect
}

func newFolderFake() *folderFake {
	return &folderFake{fakeClient: newFake(), folders: map[string]remote.Entity{}}
}

func (c *folderFake) CreateFolder(ctx context.Context, parentID, name string) (*remote.Entity, error) {
	if c.onCreate != nil {
		c.onCreate()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.folders {
		if e.ParentID == parentID && e.Name == name {
			return &e, &remote.Error{Op: "POST /entity", Status: 409, Kind: remote.ErrExist, Reason: "exists"}
		}
	}
	c.creates++
	e := remote.Entity{ID: "syn" + strconv.Itoa(1000+c.creates), Name: name, ParentID: parentID, Kind: remote.KindFolder}
	c.folders[e.ID] = e
	if c.loseFirst && c.creates == 1 {
		return nil, &remote.Error{Op: "POST /entity", Kind: remote.ErrTransient, Reason: "connection reset"}
	}
	return &e, nil
}

func (c *folderFake) Lookup(ctx context.Context, parentID, name string) (*remote.Entity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.folders {
		if e.ParentID == parentID && e.Name == name {
			return &e, nil
		}
	}
	return nil, &remote.Error{Op: "lookup", Status: 404, Kind: remote.ErrNotFound}
}

func (c *folderFake) Delete(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.folders, id)
	c.deletes = append(c.deletes, id)
	return nil
}

// Nested staged folders are created parent first, once even when the
// first create's answer is lost, and the file inside is uploaded into the
// created folder.
func TestStagedFoldersCreatedOnce(t *testing.T) {
	s := memStore(t)
	c := newFolderFake()
	c.loseFirst = true
	a, err := s.MakeFolder("syn1", "a", "/p")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.MakeFolder(a.LocalID(), "b", "/p/a")
	if err != nil {
		t.Fatal(err)
	}
	ino := stage(t, s, b.LocalID(), "x.txt", []byte("inside b"))
	fl := newFlusher(t, s, c, Options{})
	if err := fl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	fl.Enqueue(ino)
	if err := fl.Flush(ctx10s(t), 0); err != nil {
		t.Fatal(err)
	}
	if c.creates != 2 || len(c.folders) != 2 {
		t.Fatalf("got %d creates and %d folders, want 2 and 2", c.creates, len(c.folders))
	}
	ga, _ := s.Folder(a.Ino)
	gb, _ := s.Folder(b.Ino)
	if ga.EntityID == "" || gb.EntityID == "" || c.folders[gb.EntityID].ParentID != ga.EntityID {
		t.Fatalf("got a=%+v b=%+v, want b created inside a", ga, gb)
	}
	if _, ok := c.file(gb.EntityID + "/x.txt"); !ok {
		t.Fatalf("x.txt not uploaded into b (%s): %v", gb.EntityID, c.requests())
	}
	if len(fl.Folders()) != 0 {
		t.Errorf("created folders still listed as staged: %v", fl.Folders())
	}
}

// A folder removed while its create is in flight is deleted again.
func TestStagedFolderRemovedDuringCreate(t *testing.T) {
	s := memStore(t)
	c := newFolderFake()
	fo, err := s.MakeFolder("syn1", "gone", "/p")
	if err != nil {
		t.Fatal(err)
	}
	c.onCreate = func() { s.RemoveFolder(fo.Ino) }
	fl := newFlusher(t, s, c, Options{})
	fl.EnqueueFolder(fo.Ino)
	if err := fl.Flush(ctx10s(t), 0); err != nil {
		t.Fatal(err)
	}
	if len(c.folders) != 0 || len(c.deletes) != 1 {
		t.Fatalf("got folders %v, deletes %v; want the created folder deleted", c.folders, c.deletes)
	}
}
