package remotetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
)

// Env is what a conformance run needs.
type Env struct {
	// Client is authenticated as a certified user with edit rights on
	// Parent.
	Client remote.Client
	// Parent is a Folder or Project ID the suite may create children in. It
	// creates a unique subfolder per run and trashes it at the end.
	Parent string

	// Optional clients the emulator provides and real Synapse does not;
	// nil skips the subtests that need them.
	Uncertified remote.Client // a valid but uncertified user
	NoAccess    remote.Client // a certified user with no permission on Parent
	BadToken    remote.Client // a client with an invalid token

	// Children is how many folders the paging subtest creates (0: 120,
	// enough to cross two page boundaries of 50).
	Children int
	// BigSize is the size of the large upload (0: 20 MiB).
	BigSize int64
	// Timeout bounds the whole run (0: 5 minutes).
	Timeout time.Duration
}

// Environment variables Live reads.
const (
	EnvToken  = "SYNFS_TEST_TOKEN"
	EnvParent = "SYNFS_TEST_PARENT"
)

// Live returns an Env for real Synapse, from SYNFS_TEST_TOKEN (a certified
// user's personal access token) and SYNFS_TEST_PARENT (a container that user
// may edit), and skips t when either is unset. BadToken is set (with a
// token Synapse cannot accept); the other optional clients are nil. Live
// runs create 55 folders (two pages) and upload 9 MiB at most.
func Live(t *testing.T, newClient func(token string) remote.Client) Env {
	t.Helper()
	tok, parent := os.Getenv(EnvToken), os.Getenv(EnvParent)
	if tok == "" || parent == "" {
		t.Skipf("live Synapse test: set %s and %s to run it", EnvToken, EnvParent)
	}
	return Env{
		Client:   newClient(tok),
		Parent:   parent,
		BadToken: newClient("invalid.token.synfs"),
		Children: 55,
		BigSize:  9 << 20,
		Timeout:  15 * time.Minute,
	}
}

// suite is one run's state.
type suite struct {
	env  Env
	c    remote.Client
	ctx  context.Context
	root *remote.Entity // the run's folder
}

// Run runs the conformance suite against env.
func Run(t *testing.T, env Env) {
	if env.Client == nil || env.Parent == "" {
		t.Fatal("remotetest.Run: Env needs Client and Parent")
	}
	if env.Children <= 0 {
		env.Children = 120
	}
	if env.BigSize <= 0 {
		env.BigSize = 20 << 20
	}
	if env.Timeout <= 0 {
		env.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), env.Timeout)
	defer cancel()
	s := &suite{env: env, c: env.Client, ctx: ctx}

	name := fmt.Sprintf("synfs-conformance-%d", time.Now().UnixNano())
	root, err := s.c.CreateFolder(ctx, env.Parent, name)
	if err != nil {
		t.Fatalf("CreateFolder(%s, %q): %v", env.Parent, name, err)
	}
	s.root = root
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.c.Delete(ctx, root.ID); err != nil {
			t.Errorf("cleanup: Delete(%s): %v", root.ID, err)
		}
	})

	t.Run("Me", s.testMe)
	t.Run("Folders", s.testFolders)
	t.Run("Paging", s.testPaging)
	t.Run("Names", s.testNames)
	t.Run("DuplicateFolder", s.testDuplicateFolder)
	t.Run("UploadSizes", s.testUploadSizes)
	t.Run("UploadVersions", s.testUploadVersions)
	t.Run("UploadEmpty", s.testUploadEmpty)
	t.Run("UploadStaleEtag", s.testUploadStaleEtag)
	t.Run("UploadOverFolder", s.testUploadOverFolder)
	t.Run("Move", s.testMove)
	t.Run("Delete", s.testDelete)
	t.Run("Annotations", s.testAnnotations)
	t.Run("AnnotationUpdate", s.testAnnotationUpdate)
	t.Run("Permissions", s.testPermissions)
	t.Run("Uncertified", s.testUncertified)
	t.Run("NoAccess", s.testNoAccess)
	t.Run("BadToken", s.testBadToken)
}

// folder creates a fresh folder under the run's folder.
func (s *suite) folder(t *testing.T, name string) *remote.Entity {
	t.Helper()
	f, err := s.c.CreateFolder(s.ctx, s.root.ID, name)
	if err != nil {
		t.Fatalf("CreateFolder(%q): %v", name, err)
	}
	return f
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// upload stores data as name under parent and checks the result.
func (s *suite) upload(t *testing.T, parent, name string, data []byte) *remote.Entity {
	t.Helper()
	e, err := s.c.Upload(s.ctx, &remote.UploadRequest{ParentID: parent, Name: name, Size: int64(len(data)), MD5: md5hex(data), Source: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("Upload(%q, %d bytes): %v", name, len(data), err)
	}
	checkFile(t, e, parent, name, data)
	return e
}

func checkFile(t *testing.T, e *remote.Entity, parent, name string, data []byte) {
	t.Helper()
	if e.Kind != remote.KindFile || e.Name != name || e.ParentID != parent || !strings.HasPrefix(e.ID, "syn") {
		t.Errorf("file entity: got kind %v name %q parent %q id %q, want file %q under %s", e.Kind, e.Name, e.ParentID, e.ID, name, parent)
	}
	if e.Size != int64(len(data)) || e.MD5 != md5hex(data) {
		t.Errorf("file %q: got size %d MD5 %s, want %d %s", name, e.Size, e.MD5, len(data), md5hex(data))
	}
	if e.Version < 1 || e.FileHandleID == "" || e.Etag == "" {
		t.Errorf("file %q: got version %d handle %q etag %q, want version >= 1 and a handle and etag", name, e.Version, e.FileHandleID, e.Etag)
	}
}

// checkDownload reads ranges of e through Download, with and without its
// file handle ID, and checks them against data, with io.EOF at the end.
func (s *suite) checkDownload(t *testing.T, e *remote.Entity, data []byte) {
	t.Helper()
	size := int64(len(data))
	noHandle := *e
	noHandle.FileHandleID = ""
	for _, ent := range []*remote.Entity{e, &noHandle} {
		fr, err := s.c.Download(s.ctx, ent)
		if err != nil {
			t.Fatalf("Download(%s): %v", e.ID, err)
		}
		for _, r := range [][2]int64{{0, 1}, {size / 2, size - size/2}, {size - 1, 10}, {size, 5}, {0, size}} {
			p := make([]byte, r[1])
			n, err := fr.ReadAt(s.ctx, p, r[0])
			want := data[min(r[0], size):min(r[0]+r[1], size)]
			if n != len(want) || !bytes.Equal(p[:n], want) {
				t.Errorf("%s: Download ReadAt(%d, %d): got %d bytes, want %d", e.ID, r[0], r[1], n, len(want))
			}
			if short := n < len(p); short && err != io.EOF || !short && err != nil {
				t.Errorf("%s: Download ReadAt(%d, %d): %d bytes with error %v", e.ID, r[0], r[1], n, err)
			}
		}
	}
}

// read returns the bytes Open gives.
func (s *suite) read(t *testing.T, e *remote.Entity, off, length int64) []byte {
	t.Helper()
	r, err := s.c.Open(s.ctx, e, off, length)
	if err != nil {
		t.Fatalf("Open(%s, %d, %d): %v", e.ID, off, length, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %s at %d: %v", e.ID, off, err)
	}
	return b
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got error %v, want %v", what, err, kind)
	}
}

func (s *suite) testMe(t *testing.T) {
	u, err := s.c.Me(s.ctx)
	if err != nil {
		t.Fatalf("Me: %v", err)
	}
	if u.ID == "" || !u.Certified {
		t.Errorf("Me: got ID %q certified %v, want an ID and certified", u.ID, u.Certified)
	}
}

func (s *suite) testFolders(t *testing.T) {
	f := s.folder(t, "folder a")
	if f.Kind != remote.KindFolder || f.Name != "folder a" || f.ParentID != s.root.ID || f.Etag == "" {
		t.Errorf("CreateFolder: got %+v, want folder %q under %s with an etag", f, "folder a", s.root.ID)
	}
	g, err := s.c.Get(s.ctx, f.ID)
	if err != nil {
		t.Fatalf("Get(%s): %v", f.ID, err)
	}
	if g.ID != f.ID || g.Kind != remote.KindFolder || g.Name != f.Name || g.ParentID != s.root.ID || g.Type == "" {
		t.Errorf("Get: got %+v, want %+v", g, f)
	}
	l, err := s.c.Lookup(s.ctx, s.root.ID, "folder a")
	if err != nil || l.ID != f.ID {
		t.Errorf("Lookup(folder a): got %v, %v, want %s", l, err, f.ID)
	}
	_, err = s.c.Lookup(s.ctx, s.root.ID, "no such name")
	wantKind(t, "Lookup of a missing name", err, remote.ErrNotFound)
	_, err = s.c.Get(s.ctx, "syn1999999999")
	wantKind(t, "Get of a missing entity", err, remote.ErrNotFound)

	kids, err := s.c.Children(s.ctx, s.root.ID)
	if err != nil {
		t.Fatalf("Children: %v", err)
	}
	if !slices.ContainsFunc(kids, func(e remote.Entity) bool { return e.ID == f.ID && e.Kind == remote.KindFolder && e.Name == f.Name }) {
		t.Errorf("Children of the run folder: got %v, want it to hold %s", kids, f.ID)
	}

	// The run folder's project must be among the caller's projects.
	p := s.root
	for range 60 {
		if p.Kind == remote.KindProject {
			break
		}
		if p, err = s.c.Get(s.ctx, p.ParentID); err != nil {
			t.Fatalf("walking up to the project: %v", err)
		}
	}
	if p.Kind != remote.KindProject || p.ParentID != "" {
		t.Fatalf("walking up: got %v with parent %q, want a project with parent \"\"", p.Kind, p.ParentID)
	}
	projects, err := s.c.Children(s.ctx, "")
	if err != nil {
		t.Fatalf("Children(\"\"): %v", err)
	}
	if !slices.ContainsFunc(projects, func(e remote.Entity) bool { return e.ID == p.ID && e.Kind == remote.KindProject }) {
		t.Errorf("Children(\"\"): project %s missing from %d projects", p.ID, len(projects))
	}
	if l, err := s.c.Lookup(s.ctx, "", p.Name); err != nil || l.ID != p.ID {
		t.Errorf("Lookup(\"\", %q): got %v, %v, want %s", p.Name, l, err, p.ID)
	}
}

func (s *suite) testPaging(t *testing.T) {
	dir := s.folder(t, "many")
	n := s.env.Children
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("f%04d", i)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		work = make(chan string)
	)
	for range 4 {
		wg.Go(func() {
			for name := range work {
				if _, err := s.c.CreateFolder(s.ctx, dir.ID, name); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, name := range want {
		work <- name
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("creating %d folders: %d failed, first: %v", n, len(errs), errs[0])
	}
	kids, err := s.c.Children(s.ctx, dir.ID)
	if err != nil {
		t.Fatalf("Children: %v", err)
	}
	var got []string
	for _, k := range kids {
		got = append(got, k.Name)
		if k.Kind != remote.KindFolder || k.ParentID != dir.ID {
			t.Errorf("child %q: got kind %v parent %q, want folder under %s", k.Name, k.Kind, k.ParentID, dir.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Children: got %d names %v, want %d sorted names", len(got), abbreviate(got), len(want))
	}
}

func abbreviate(s []string) []string {
	if len(s) > 6 {
		return append(append(s[:3:3], "..."), s[len(s)-3:]...)
	}
	return s
}

func (s *suite) testNames(t *testing.T) {
	bad := []string{"", "   ", "a/b", "tab\tname", "new\nline", "star*", "q?", "amp&", "at@", "caf\u00e9", " lead", "trail ", strings.Repeat("x", 257)}
	for _, name := range bad {
		_, err := s.c.CreateFolder(s.ctx, s.root.ID, name)
		wantKind(t, fmt.Sprintf("CreateFolder(%q)", abbreviateName(name)), err, remote.ErrInvalid)
		_, err = s.c.Upload(s.ctx, &remote.UploadRequest{ParentID: s.root.ID, Name: name, Size: 1, MD5: md5hex([]byte("x")), Source: strings.NewReader("x")})
		wantKind(t, fmt.Sprintf("Upload(%q)", abbreviateName(name)), err, remote.ErrInvalid)
	}
	good := []string{"a,b_c.d e-f+g(h)'i", strings.Repeat("y", 256)}
	for _, name := range good {
		f, err := s.c.CreateFolder(s.ctx, s.root.ID, name)
		if err != nil {
			t.Errorf("CreateFolder(%q): %v", abbreviateName(name), err)
			continue
		}
		if f.Name != name {
			t.Errorf("CreateFolder: got name %q, want %q", abbreviateName(f.Name), abbreviateName(name))
		}
	}
}

func abbreviateName(s string) string {
	if len(s) > 20 {
		return fmt.Sprintf("%s...(%d chars)", s[:8], len(s))
	}
	return s
}

func (s *suite) testDuplicateFolder(t *testing.T) {
	f := s.folder(t, "dup")
	g, err := s.c.CreateFolder(s.ctx, s.root.ID, "dup")
	wantKind(t, "second CreateFolder(dup)", err, remote.ErrExist)
	if g == nil || g.ID != f.ID {
		t.Errorf("second CreateFolder(dup): got entity %v, want the existing %s", g, f.ID)
	}
	file := s.upload(t, s.root.ID, "dup-file", []byte("x"))
	_, err = s.c.CreateFolder(s.ctx, s.root.ID, "dup-file")
	wantKind(t, "CreateFolder over a file", err, remote.ErrExist)
	if kids, err := s.c.Children(s.ctx, s.root.ID); err == nil {
		n := 0
		for _, k := range kids {
			if k.Name == "dup" || k.Name == "dup-file" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("children named dup or dup-file: got %d, want 2 (folder %s, file %s)", n, f.ID, file.ID)
		}
	}
}

func (s *suite) testUploadSizes(t *testing.T) {
	dir := s.folder(t, "sizes")
	ps := remote.PartSizeFor(s.env.BigSize)
	sizes := []int64{1, ps, ps + 1, s.env.BigSize}
	for i, size := range sizes {
		p := Pattern{Seed: uint64(1000 + i), Size: size}
		data := p.Bytes()
		name := fmt.Sprintf("file-%d.bin", size)
		e := s.upload(t, dir.ID, name, data)
		if e.Version != 1 {
			t.Errorf("%s: got version %d, want 1", name, e.Version)
		}
		g, err := s.c.Get(s.ctx, e.ID)
		if err != nil {
			t.Fatalf("Get(%s): %v", e.ID, err)
		}
		checkFile(t, g, dir.ID, name, data)
		if got := s.read(t, g, 0, -1); !bytes.Equal(got, data) {
			t.Errorf("%s: Open full: got %d bytes (MD5 %s), want %d (MD5 %s)", name, len(got), md5hex(got), len(data), md5hex(data))
		}
		ranges := [][2]int64{{0, 1}, {size - 1, 1}, {size / 2, size - size/2}, {size / 3, -1}}
		for _, r := range ranges {
			want := data[r[0]:]
			if r[1] >= 0 {
				want = data[r[0] : r[0]+r[1]]
			}
			if got := s.read(t, g, r[0], r[1]); !bytes.Equal(got, want) {
				t.Errorf("%s: Open(%d, %d): got %d bytes, want %d", name, r[0], r[1], len(got), len(want))
			}
		}
		s.checkDownload(t, g, data)
	}
	kids, err := s.c.Children(s.ctx, dir.ID)
	if err != nil {
		t.Fatalf("Children: %v", err)
	}
	if len(kids) != len(sizes) {
		t.Errorf("Children after uploads: got %d, want %d", len(kids), len(sizes))
	}
	for _, k := range kids {
		if k.Kind != remote.KindFile {
			t.Errorf("child %q: got kind %v, want file", k.Name, k.Kind)
		}
	}
}

func (s *suite) testUploadVersions(t *testing.T) {
	dir := s.folder(t, "versions")
	a := s.upload(t, dir.ID, "v.txt", []byte("first content\n"))
	b := s.upload(t, dir.ID, "v.txt", []byte("second content, longer\n"))
	if b.ID != a.ID || b.Version != a.Version+1 {
		t.Errorf("changed content: got %s version %d, want %s version %d", b.ID, b.Version, a.ID, a.Version+1)
	}
	c := s.upload(t, dir.ID, "v.txt", []byte("second content, longer\n"))
	if c.ID != a.ID || c.Version != b.Version {
		t.Errorf("same content again: got %s version %d, want %s version %d", c.ID, c.Version, a.ID, b.Version)
	}
	d, err := s.c.Upload(s.ctx, &remote.UploadRequest{ParentID: dir.ID, Name: "v.txt", Size: 5, MD5: md5hex([]byte("third")),
		Source: strings.NewReader("third"), EntityID: a.ID, Etag: c.Etag})
	if err != nil {
		t.Fatalf("Upload with EntityID and current Etag: %v", err)
	}
	if d.ID != a.ID || d.Version != c.Version+1 {
		t.Errorf("Upload by EntityID: got %s version %d, want %s version %d", d.ID, d.Version, a.ID, c.Version+1)
	}
	if got := s.read(t, d, 0, -1); string(got) != "third" {
		t.Errorf("content after update: got %q, want %q", got, "third")
	}
	kids, err := s.c.Children(s.ctx, dir.ID)
	if err != nil || len(kids) != 1 {
		t.Errorf("Children after re-uploads: got %d entries (%v), want 1", len(kids), err)
	}
}

func (s *suite) testUploadEmpty(t *testing.T) {
	_, err := s.c.Upload(s.ctx, &remote.UploadRequest{ParentID: s.root.ID, Name: "empty", Size: 0, MD5: md5hex(nil), Source: bytes.NewReader(nil)})
	wantKind(t, "Upload of 0 bytes", err, remote.ErrInvalid)
	if _, err := s.c.Lookup(s.ctx, s.root.ID, "empty"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("Lookup after a refused empty upload: got %v, want ErrNotFound", err)
	}
}

func (s *suite) testUploadStaleEtag(t *testing.T) {
	e := s.upload(t, s.root.ID, "stale.txt", []byte("one"))
	s.upload(t, s.root.ID, "stale.txt", []byte("two"))
	_, err := s.c.Upload(s.ctx, &remote.UploadRequest{ParentID: s.root.ID, Name: "stale.txt", Size: 5, MD5: md5hex([]byte("three")),
		Source: strings.NewReader("three"), EntityID: e.ID, Etag: e.Etag})
	wantKind(t, "Upload with a stale etag", err, remote.ErrStale)
	if got := s.read(t, &remote.Entity{ID: e.ID}, 0, -1); string(got) != "two" {
		t.Errorf("content after a stale upload: got %q, want %q", got, "two")
	}
}

func (s *suite) testUploadOverFolder(t *testing.T) {
	s.folder(t, "not-a-file")
	_, err := s.c.Upload(s.ctx, &remote.UploadRequest{ParentID: s.root.ID, Name: "not-a-file", Size: 1, MD5: md5hex([]byte("x")), Source: strings.NewReader("x")})
	wantKind(t, "Upload over a folder", err, remote.ErrExist)
}

func (s *suite) testMove(t *testing.T) {
	dir := s.folder(t, "move")
	other := s.folder(t, "move-target")
	e := s.upload(t, dir.ID, "old.txt", []byte("move me"))
	m, err := s.c.Move(s.ctx, e.ID, "", "new.txt")
	if err != nil {
		t.Fatalf("Move (rename): %v", err)
	}
	if m.ID != e.ID || m.Name != "new.txt" || m.ParentID != dir.ID || m.Version != e.Version {
		t.Errorf("rename: got %s %q under %s version %d, want %s %q under %s version %d", m.ID, m.Name, m.ParentID, m.Version, e.ID, "new.txt", dir.ID, e.Version)
	}
	if _, err := s.c.Lookup(s.ctx, dir.ID, "old.txt"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("Lookup of the old name: got %v, want ErrNotFound", err)
	}
	if l, err := s.c.Lookup(s.ctx, dir.ID, "new.txt"); err != nil || l.ID != e.ID {
		t.Errorf("Lookup of the new name: got %v, %v, want %s", l, err, e.ID)
	}
	m, err = s.c.Move(s.ctx, e.ID, other.ID, "moved.txt")
	if err != nil {
		t.Fatalf("Move to another folder: %v", err)
	}
	if m.ParentID != other.ID || m.Name != "moved.txt" {
		t.Errorf("move: got %q under %s, want %q under %s", m.Name, m.ParentID, "moved.txt", other.ID)
	}
	if got := s.read(t, m, 0, -1); string(got) != "move me" {
		t.Errorf("content after move: got %q, want %q", got, "move me")
	}
	s.upload(t, other.ID, "taken.txt", []byte("in the way"))
	_, err = s.c.Move(s.ctx, e.ID, "", "taken.txt")
	wantKind(t, "rename onto an existing name", err, remote.ErrExist)
	sub := s.folder(t, "move-sub")
	_, err = s.c.Move(s.ctx, sub.ID, "", "bad/name")
	wantKind(t, "rename to an invalid name", err, remote.ErrInvalid)
	if g, err := s.c.Get(s.ctx, e.ID); err != nil || g.Name != "moved.txt" {
		t.Errorf("after refused renames: got %v, %v, want name moved.txt", g, err)
	}
}

func (s *suite) testDelete(t *testing.T) {
	f := s.folder(t, "doomed")
	file := s.upload(t, f.ID, "inside.txt", []byte("bye"))
	if err := s.c.Delete(s.ctx, f.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.c.Get(s.ctx, f.ID)
	wantKind(t, "Get after Delete", err, remote.ErrNotFound)
	_, err = s.c.Get(s.ctx, file.ID)
	wantKind(t, "Get of a child after Delete", err, remote.ErrNotFound)
	_, err = s.c.Lookup(s.ctx, s.root.ID, "doomed")
	wantKind(t, "Lookup after Delete", err, remote.ErrNotFound)
	if err := s.c.Delete(s.ctx, f.ID); err != nil {
		t.Errorf("second Delete: got %v, want nil", err)
	}
	g := s.folder(t, "doomed")
	if g.ID == f.ID {
		t.Errorf("re-created folder: got the trashed ID %s, want a new one", g.ID)
	}
	if err := s.c.Delete(s.ctx, "syn1999999999"); err != nil {
		t.Errorf("Delete of a missing entity: got %v, want nil", err)
	}
}

func (s *suite) testAnnotations(t *testing.T) {
	e := s.upload(t, s.root.ID, "annotated.txt", []byte("notes"))
	a, err := s.c.Annotations(s.ctx, e.ID)
	if err != nil {
		t.Fatalf("Annotations: %v", err)
	}
	if len(a.Values) != 0 || a.Etag == "" {
		t.Errorf("fresh annotations: got %d values etag %q, want none and an etag", len(a.Values), a.Etag)
	}
	old := a.Etag
	a.Values = map[string]remote.AnnotationValue{
		"assay": {Type: "STRING", Values: []string{"rnaSeq", "wgs"}},
		"n":     {Type: "LONG", Values: []string{"3"}},
		"ok":    {Type: "BOOLEAN", Values: []string{"true"}},
	}
	if err := s.c.SetAnnotations(s.ctx, e.ID, a); err != nil {
		t.Fatalf("SetAnnotations: %v", err)
	}
	if a.Etag == old || a.Etag == "" {
		t.Errorf("etag after SetAnnotations: got %q, want a new one (old %q)", a.Etag, old)
	}
	b, err := s.c.Annotations(s.ctx, e.ID)
	if err != nil {
		t.Fatalf("Annotations: %v", err)
	}
	if b.Etag != a.Etag || len(b.Values) != 3 || !slices.Equal(b.Values["assay"].Values, []string{"rnaSeq", "wgs"}) ||
		b.Values["n"].Type != "LONG" || b.Values["ok"].Values[0] != "true" {
		t.Errorf("round trip: got %+v, want %+v", b, a)
	}
	stale := &remote.Annotations{Etag: old, Values: map[string]remote.AnnotationValue{"x": {Type: "STRING", Values: []string{"y"}}}}
	wantKind(t, "SetAnnotations with a stale etag", s.c.SetAnnotations(s.ctx, e.ID, stale), remote.ErrStale)
	if g, err := s.c.Get(s.ctx, e.ID); err != nil || g.Etag != a.Etag {
		t.Errorf("entity etag after SetAnnotations: got %v, %v, want %q", g, err, a.Etag)
	}
}

// testAnnotationUpdate checks remote.UpdateAnnotations against the client:
// a write from stale values meets the 412 and is re-applied on fresh ones,
// keeping the other change; and Synapse's limits are refused.
func (s *suite) testAnnotationUpdate(t *testing.T) {
	e := s.upload(t, s.root.ID, "updated.txt", []byte("notes"))
	stale, err := s.c.Annotations(s.ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateAnnotations(s.ctx, s.c, e.ID, nil, func(m map[string]remote.AnnotationValue) error {
		m["other"] = remote.AnnotationValue{Type: remote.TypeTimestamp, Values: []string{"1706695200000"}}
		return nil
	}); err != nil {
		t.Fatalf("UpdateAnnotations: %v", err)
	}
	got, err := remote.UpdateAnnotations(s.ctx, s.c, e.ID, stale, func(m map[string]remote.AnnotationValue) error {
		m["mine"] = remote.AnnotationValue{Type: remote.TypeDouble, Values: []string{"0.5", "2.0"}}
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateAnnotations from stale values: %v", err)
	}
	b, err := s.c.Annotations(s.ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Etag != got.Etag || b.Values["other"].Type != remote.TypeTimestamp || !slices.Equal(b.Values["mine"].Values, []string{"0.5", "2.0"}) {
		t.Errorf("after a write from stale values: got %+v, want other (kept) and mine", b)
	}
	long := &remote.Annotations{Etag: b.Etag, Values: map[string]remote.AnnotationValue{
		"s": {Type: remote.TypeString, Values: []string{strings.Repeat("x", remote.MaxAnnotationString+1)}}}}
	wantKind(t, "a string value over the limit", s.c.SetAnnotations(s.ctx, e.ID, long), remote.ErrInvalid)
	many := &remote.Annotations{Etag: b.Etag, Values: map[string]remote.AnnotationValue{}}
	for i := range remote.MaxAnnotationKeys + 1 {
		many.Values[fmt.Sprint("k", i)] = remote.AnnotationValue{Type: remote.TypeLong, Values: []string{"1"}}
	}
	wantKind(t, "101 keys", s.c.SetAnnotations(s.ctx, e.ID, many), remote.ErrInvalid)
	if _, err := remote.UpdateAnnotations(s.ctx, s.c, e.ID, nil, func(m map[string]remote.AnnotationValue) error {
		for k, v := range many.Values {
			m[k] = v
		}
		return nil
	}); !errors.Is(err, remote.ErrTooManyAnnotations) {
		t.Errorf("UpdateAnnotations past 100 keys: got %v, want ErrTooManyAnnotations before any write", err)
	}
}

func (s *suite) testPermissions(t *testing.T) {
	p, err := s.c.Permissions(s.ctx, s.root.ID)
	if err != nil {
		t.Fatalf("Permissions: %v", err)
	}
	if !p.CanView || !p.CanEdit || !p.CanAddChild || !p.CanDelete {
		t.Errorf("Permissions on own folder: got %+v, want view, edit, add child and delete", p)
	}
	_, err = s.c.Permissions(s.ctx, "syn1999999999")
	wantKind(t, "Permissions of a missing entity", err, remote.ErrNotFound)
}

func (s *suite) testUncertified(t *testing.T) {
	c := s.env.Uncertified
	if c == nil {
		t.Skip("no uncertified client")
	}
	u, err := c.Me(s.ctx)
	if err != nil || u.Certified {
		t.Errorf("Me as uncertified: got %+v, %v, want certified false", u, err)
	}
	_, err = c.CreateFolder(s.ctx, s.root.ID, "by-uncertified")
	wantKind(t, "CreateFolder as uncertified", err, remote.ErrNotCertified)
	wantKind(t, "CreateFolder as uncertified", err, remote.ErrPermission)
	_, err = c.Upload(s.ctx, &remote.UploadRequest{ParentID: s.root.ID, Name: "by-uncertified.txt", Size: 1, MD5: md5hex([]byte("u")), Source: strings.NewReader("u")})
	if err == nil || !errors.Is(err, remote.ErrPermission) {
		t.Errorf("Upload as uncertified: got %v, want ErrPermission or ErrNotCertified", err)
	}
}

func (s *suite) testNoAccess(t *testing.T) {
	c := s.env.NoAccess
	if c == nil {
		t.Skip("no client without access")
	}
	_, err := c.CreateFolder(s.ctx, s.root.ID, "by-stranger")
	wantKind(t, "CreateFolder without access", err, remote.ErrPermission)
	_, err = c.Upload(s.ctx, &remote.UploadRequest{ParentID: s.root.ID, Name: "by-stranger.txt", Size: 1, MD5: md5hex([]byte("s")), Source: strings.NewReader("s")})
	wantKind(t, "Upload without access", err, remote.ErrPermission)
	if _, err := s.c.Lookup(s.ctx, s.root.ID, "by-stranger.txt"); !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("Lookup after a refused upload: got %v, want ErrNotFound", err)
	}
}

func (s *suite) testBadToken(t *testing.T) {
	c := s.env.BadToken
	if c == nil {
		t.Skip("no client with a bad token")
	}
	_, err := c.Me(s.ctx)
	wantKind(t, "Me with a bad token", err, remote.ErrUnauthenticated)
	_, err = c.Get(s.ctx, s.root.ID)
	wantKind(t, "Get with a bad token", err, remote.ErrUnauthenticated)
}
