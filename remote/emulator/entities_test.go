package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/synfs/synfs/remote"
)

func TestProbesAndRouting(t *testing.T) {
	e := newEnv(t, Options{})
	for _, p := range []string{"/", "/repo/v1", "/file/v1", "/auth/v1", "/repo/v1/"} {
		if r := e.do("", "GET", p, nil); r.status != http.StatusOK {
			t.Errorf("GET %s: got %d, want 200", p, r.status)
		}
	}
	want(t, e.do(e.alice, "GET", "/repo/v1/nothing/here", nil), http.StatusNotFound, "")
	want(t, e.do(e.alice, "PATCH", "/repo/v1/entity/"+e.project, nil), http.StatusMethodNotAllowed, "")
	r := e.do(e.alice, "POST", "/repo/v1/entity", []byte(`{"concreteType":`))
	want(t, r, http.StatusBadRequest, "")
	req, _ := http.NewRequest("POST", e.ts.URL+"/repo/v1/entity", strings.NewReader("name=x"))
	req.Header.Set("Authorization", "Bearer "+e.alice)
	req.Header.Set("Content-Type", "text/plain")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: got %d, want 415", res.StatusCode)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("wrong-token", "GET", "/repo/v1/userProfile", nil)
	want(t, r, http.StatusUnauthorized, "Invalid access token")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="Synapse Repository Services"` {
		t.Errorf("WWW-Authenticate: got %q", got)
	}
	if got := r.json(t)["concreteType"]; got != errorType {
		t.Errorf("concreteType: got %v, want %s", got, errorType)
	}
	if strings.Contains(string(r.body), "wrong-token") {
		t.Errorf("the token appears in the error body %s", r.body)
	}

	r = e.do(e.alice, "GET", "/repo/v1/userProfile", nil)
	want(t, r, http.StatusOK, "")
	p := r.json(t)
	if p["ownerId"] != e.aliceID || p["userName"] != "alice" {
		t.Errorf("profile: got %v, want ownerId %s userName alice", p, e.aliceID)
	}
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile/", nil), http.StatusOK, "")

	req, _ := http.NewRequest("GET", e.ts.URL+"/repo/v1/userProfile", nil)
	req.Header.Set("sessionToken", e.alice)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("sessionToken header: got %d, want 200", res.StatusCode)
	}

	// Anonymous callers can read nothing private and write nothing.
	want(t, e.do("", "GET", "/repo/v1/entity/"+e.project, nil), http.StatusForbidden, "You lack READ access to the requested entity.")
	want(t, e.do("", "POST", "/repo/v1/entity", entityBody(kindProject, "", "Anon")), http.StatusForbidden,
		"Anonymous users have only READ access permission.")
}

func TestCertifiedUserPassingRecord(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do(e.alice, "GET", "/repo/v1/user/"+e.aliceID+"/certifiedUserPassingRecord", nil)
	want(t, r, http.StatusOK, "")
	if r.json(t)["passed"] != true {
		t.Errorf("passed: got %v, want true", r.json(t)["passed"])
	}
	carol := e.do(e.carol, "GET", "/repo/v1/userProfile", nil).json(t)["ownerId"].(string)
	want(t, e.do(e.carol, "GET", "/repo/v1/user/"+carol+"/certifiedUserPassingRecord", nil), http.StatusNotFound, "")
}

func TestEntityJSON(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do(e.alice, "GET", "/repo/v1/entity/"+e.project, nil)
	want(t, r, http.StatusOK, "")
	p := r.json(t)
	if p["parentId"] != "syn4489" || p["concreteType"] != typeProject || p["createdBy"] != e.aliceID {
		t.Errorf("project: got %v", p)
	}
	if !strings.HasPrefix(p["id"].(string), "syn") || p["createdOn"] != "2024-01-01T00:00:00.000Z" {
		t.Errorf("project id/createdOn: got %v %v", p["id"], p["createdOn"])
	}
	f := e.createFile(e.alice, e.folder, "a.txt", []byte("hello"))
	for k, v := range map[string]any{"versionNumber": 1.0, "versionLabel": "1", "isLatestVersion": true, "concreteType": typeFile, "parentId": e.folder} {
		if f[k] != v {
			t.Errorf("file %s: got %v, want %v", k, f[k], v)
		}
	}
	if _, ok := f["dataFileHandleId"].(string); !ok {
		t.Errorf("dataFileHandleId: got %v, want a string", f["dataFileHandleId"])
	}
	typ := e.do(e.alice, "GET", "/repo/v1/entity/"+f["id"].(string)+"/type", nil).json(t)
	if typ["type"] != typeFile || typ["name"] != "a.txt" {
		t.Errorf("type: got %v", typ)
	}
}

func TestNameRules(t *testing.T) {
	e := newEnv(t, Options{})
	invalid := func(n string) string {
		return fmt.Sprintf("Invalid Name: '%s'. Names may only contain: letters, numbers, spaces, underscores, hyphens, periods, plus signs, apostrophes, and parentheses", n)
	}
	for _, bad := range []string{"a&b", "a@b", "a#b", "a[b", "a]b", "a~b", "a=b", "a!b", "a$b", "a%b", "a;b", "a:b", "a/b", "a\tb", "a\nb", "caf\u00e9", "a*b", "a?b", "a\"b", "a`b"} {
		r := e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, e.folder, bad))
		want(t, r, http.StatusBadRequest, invalid(bad))
	}
	for _, blank := range []string{"", "   "} {
		want(t, e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, e.folder, blank)), http.StatusBadRequest,
			"Name cannot be only whitespace or empty string")
	}
	ok256 := strings.Repeat("a", 256)
	if got := e.create(e.alice, kindFolder, e.folder, ok256, nil)["name"]; got != ok256 {
		t.Errorf("256-char name: got %v", got)
	}
	want(t, e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, e.folder, strings.Repeat("b", 257))), http.StatusBadRequest,
		"Name must be 256 characters or less")
	if got := e.create(e.alice, kindFolder, e.folder, "  spaced name \t", nil)["name"]; got != "spaced name" {
		t.Errorf("trimmed name: got %q, want %q", got, "spaced name")
	}
	if got := e.create(e.alice, kindFolder, e.folder, "a,b_c.d -+()'e", nil)["name"]; got != "a,b_c.d -+()'e" {
		t.Errorf("all allowed characters: got %q", got)
	}
	// Trimming happens before the conflict check.
	want(t, e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, e.folder, "spaced name  ")), http.StatusConflict, "")
	// A null name becomes the ID.
	r := e.do(e.alice, "POST", "/repo/v1/entity", map[string]any{"concreteType": typeFolder, "parentId": e.folder})
	want(t, r, http.StatusCreated, "")
	if m := r.json(t); m["name"] != m["id"] {
		t.Errorf("null name: got name %v, want the id %v", m["name"], m["id"])
	}
	// The multipart fileName follows the same rules.
	want(t, e.startUpload(e.alice, "bad:name", 10, 5<<20, md5hex(make([]byte, 10)), ""), http.StatusBadRequest, invalid("bad:name"))
}

func TestCreateRules(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(token string, b map[string]any) resp { return e.do(token, "POST", "/repo/v1/entity", b) }
	want(t, post(e.alice, map[string]any{"concreteType": typeFolder, "name": "x", "parentId": e.folder, "description": strings.Repeat("d", 1001)}),
		http.StatusBadRequest, "Description must be 1000 characters or less")
	want(t, post(e.alice, entityBody(kindFolder, "", "orphan")), http.StatusBadRequest,
		"Entity type: org.sagebionetworks.repo.model.Folder cannot have a parent of type: null")
	f := e.createFile(e.alice, e.folder, "f.txt", []byte("f"))
	want(t, post(e.alice, entityBody(kindFolder, f["id"].(string), "under file")), http.StatusBadRequest,
		"Entity type: org.sagebionetworks.repo.model.Folder cannot have a parent of type: org.sagebionetworks.repo.model.FileEntity")
	want(t, post(e.alice, entityBody(kindFolder, "syn999999999", "x")), http.StatusNotFound, "The given parent: syn999999999 does not exist")
	want(t, post(e.alice, entityBody(kindFile, e.folder, "nohandle")), http.StatusBadRequest, "FileEntity.dataFileHandleId cannot be null")
	want(t, post(e.alice, map[string]any{"concreteType": typeFile, "name": "o", "parentId": e.folder, "dataFileHandleId": f["dataFileHandleId"], "fileNameOverride": "x"}),
		http.StatusBadRequest, "")
	// fileNameOverride null is fine.
	e.create(e.alice, kindFile, e.folder, "o2", map[string]any{"dataFileHandleId": f["dataFileHandleId"], "fileNameOverride": nil})

	// Certification comes before the ACL check, for folders and files but not projects.
	want(t, post(e.carol, entityBody(kindFolder, e.folder, "c")), http.StatusForbidden, remote.CertifiedOnlyReason)
	carolProject := e.create(e.carol, kindProject, "", "Carol Project", nil)["id"].(string)
	want(t, post(e.carol, entityBody(kindFolder, carolProject, "c")), http.StatusForbidden, remote.CertifiedOnlyReason)
	carolFH := e.upload(e.carol, "c.txt", []byte("carol"), 5<<20) // uploading needs no certification
	want(t, post(e.carol, map[string]any{"concreteType": typeFile, "name": "c.txt", "parentId": carolProject, "dataFileHandleId": carolFH}),
		http.StatusForbidden, remote.CertifiedOnlyReason)

	// CREATE on the parent.
	want(t, post(e.bob, entityBody(kindFolder, e.folder, "b")), http.StatusForbidden, "You lack CREATE access to the requested entity.")
	// The handle must be the caller's.
	bobProject := e.create(e.bob, kindProject, "", "Bob Project", nil)["id"].(string)
	fh := f["dataFileHandleId"].(string)
	bobID := e.do(e.bob, "GET", "/repo/v1/userProfile", nil).json(t)["ownerId"].(string)
	want(t, post(e.bob, map[string]any{"concreteType": typeFile, "name": "steal", "parentId": bobProject, "dataFileHandleId": fh}), http.StatusForbidden,
		fmt.Sprintf("Only the creator of a FileHandle can access it directly by its ID.  FileHandleId = '%s', UserId = '%s'", fh, bobID))

	// Conflicts are case-sensitive; project names are global.
	want(t, post(e.alice, entityBody(kindFolder, e.project, "Data")), http.StatusConflict,
		fmt.Sprintf("An entity with the name: Data already exists with a parentId: %s", e.project))
	e.create(e.alice, kindFolder, e.project, "data", nil)
	want(t, post(e.bob, entityBody(kindProject, "", "Alice Project")), http.StatusConflict,
		"An entity with the name: Alice Project already exists with a parentId: syn4489")
}

func TestLimits(t *testing.T) {
	e := newEnv(t, Options{MaxChildren: 3, MaxDepth: 4, MaxVersions: 2})
	for i := 0; i < 2; i++ { // the folder "Data" is the first child
		e.create(e.alice, kindFolder, e.project, fmt.Sprint("f", i), nil)
	}
	want(t, e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, e.project, "f3")), http.StatusBadRequest,
		fmt.Sprintf("Limit of 3 children exceeded for parent: %s", e.project))
	d3 := e.create(e.alice, kindFolder, e.folder, "d3", nil)["id"].(string) // depth: project 1, Data 2, d3 3
	d4 := e.create(e.alice, kindFolder, d3, "d4", nil)["id"].(string)
	want(t, e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, d4, "d5")), http.StatusBadRequest,
		fmt.Sprintf("Exceeded the maximum hierarchical depth of: 4 for parent: %s", d4))

	f := e.createFile(e.alice, d3, "v.txt", []byte("v1"))
	f["dataFileHandleId"] = e.upload(e.alice, "v.txt", []byte("v2"), 5<<20)
	f = e.do(e.alice, "PUT", "/repo/v1/entity/"+f["id"].(string), f).json(t)
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+f["id"].(string)+"?newVersion=true", f), http.StatusBadRequest,
		"Exceeded the maximum number of 2 versions for a single Entity")
}

func TestUpdateEtagAndRequiredFields(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder, nil).json(t)
	stale := f["etag"]
	f["name"] = "Renamed"
	r := e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder, f)
	want(t, r, http.StatusOK, "")
	if got := r.json(t); got["etag"] == stale || got["name"] != "Renamed" {
		t.Errorf("update: got etag %v name %v, want a new etag and Renamed", got["etag"], got["name"])
	}
	f["name"] = "Again"
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder, f), http.StatusPreconditionFailed,
		fmt.Sprintf("Object: %s was updated since you last fetched it, retrieve it again and re-apply the update", e.folder))
	delete(f, "etag")
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder, f), http.StatusBadRequest, "The eTag of the node is required.")
	f = e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder, nil).json(t)
	want(t, e.do(e.bob, "PUT", "/repo/v1/entity/"+e.folder, f), http.StatusForbidden, "You lack UPDATE access to the requested entity.")
	want(t, e.do(e.carol, "PUT", "/repo/v1/entity/"+e.folder, f), http.StatusForbidden, remote.CertifiedOnlyReason)
	if info, _ := e.s.Entity(e.folder); info.Name != "Renamed" {
		t.Errorf("stored name: got %q, want Renamed", info.Name)
	}
}

func TestVersioning(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.createFile(e.alice, e.folder, "v.txt", []byte("one"))
	id := f["id"].(string)
	put := func(m map[string]any, q string) map[string]any {
		t.Helper()
		r := e.do(e.alice, "PUT", "/repo/v1/entity/"+id+q, m)
		want(t, r, http.StatusOK, "")
		return r.json(t)
	}
	// Same MD5, different handle: updated in place.
	f["dataFileHandleId"] = e.upload(e.alice, "other-name.txt", []byte("one"), 5<<20)
	f["versionComment"] = "same bytes"
	f = put(f, "")
	if f["versionNumber"] != 1.0 {
		t.Errorf("same MD5: got version %v, want 1", f["versionNumber"])
	}
	// Different MD5: a new version; label and comment reset.
	f["dataFileHandleId"] = e.upload(e.alice, "v.txt", []byte("two"), 5<<20)
	f["versionLabel"] = "custom"
	f = put(f, "")
	if f["versionNumber"] != 2.0 || f["versionLabel"] != "2" || f["versionComment"] != nil {
		t.Errorf("new MD5: got version %v label %v comment %v, want 2, \"2\", none", f["versionNumber"], f["versionLabel"], f["versionComment"])
	}
	// newVersion=true always makes a version, with the label given.
	f["versionLabel"] = "3"
	f = put(f, "?newVersion=true")
	if f["versionNumber"] != 3.0 || f["versionLabel"] != "3" {
		t.Errorf("newVersion=true: got version %v label %v, want 3", f["versionNumber"], f["versionLabel"])
	}
	// A rename alone keeps the version.
	f["name"] = "w.txt"
	if f = put(f, ""); f["versionNumber"] != 3.0 {
		t.Errorf("rename: got version %v, want 3", f["versionNumber"])
	}
	info, _ := e.s.Entity(id)
	if len(info.Versions) != 3 || info.Versions[1].MD5 != md5hex([]byte("two")) {
		t.Errorf("versions: got %+v", info.Versions)
	}
	if got := e.s.Stats().VersionsCreated; got != 2 {
		t.Errorf("VersionsCreated: got %d, want 2", got)
	}
	v1 := e.do(e.alice, "GET", "/repo/v1/entity/"+id+"/version/1", nil).json(t)
	if v1["isLatestVersion"] != false || v1["versionNumber"] != 1.0 {
		t.Errorf("version 1: got %v", v1)
	}
	list := e.do(e.alice, "GET", "/repo/v1/entity/"+id+"/version?offset=0&limit=2", nil).json(t)
	res := list["results"].([]any)
	if list["totalNumberOfResults"] != 3.0 || len(res) != 2 || res[0].(map[string]any)["versionNumber"] != 3.0 {
		t.Errorf("version list: got %v", list)
	}
	want(t, e.do(e.alice, "GET", "/repo/v1/entity/"+id+"/version/9", nil), http.StatusNotFound, "")
}

func TestMove(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.create(e.alice, kindFolder, e.folder, "a", nil)
	b := e.create(e.alice, kindFolder, e.project, "b", nil)
	e.create(e.alice, kindFolder, b["id"].(string), "a", nil)
	a["parentId"] = b["id"]
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+a["id"].(string), a), http.StatusConflict,
		fmt.Sprintf("An entity with the name: a already exists with a parentId: %s", b["id"]))
	a["name"] = "a2"
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+a["id"].(string), a), http.StatusOK, "")
	if kids := e.s.Children(b["id"].(string)); len(kids) != 2 || kids[0].Name != "a" || kids[1].Name != "a2" {
		t.Errorf("children after move: got %+v", kids)
	}
	b = e.do(e.alice, "GET", "/repo/v1/entity/"+b["id"].(string), nil).json(t)
	a = e.do(e.alice, "GET", "/repo/v1/entity/"+a["id"].(string), nil).json(t)
	b["parentId"] = a["id"]
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+b["id"].(string), b), http.StatusBadRequest,
		"Invalid hierarchy: an entity cannot be an ancestor of itself")
}

func TestTrash(t *testing.T) {
	e := newEnv(t, Options{})
	sub := e.create(e.alice, kindFolder, e.folder, "sub", nil)["id"].(string)
	file := e.createFile(e.alice, sub, "x.txt", []byte("x"))["id"].(string)
	want(t, e.do(e.alice, "DELETE", "/repo/v1/entity/"+sub, nil), http.StatusNoContent, "")
	want(t, e.do(e.alice, "GET", "/repo/v1/entity/"+sub, nil), http.StatusNotFound, fmt.Sprintf("Entity %s is in trash can.", sub))
	want(t, e.do(e.alice, "GET", "/repo/v1/entity/"+file, nil), http.StatusNotFound, fmt.Sprintf("Entity %s is in trash can.", file))
	want(t, e.do(e.alice, "POST", "/repo/v1/entity/child", map[string]any{"parentId": e.folder, "entityName": "sub"}), http.StatusNotFound,
		fmt.Sprintf("Child not found for parent: '%s' with name: 'sub'", e.folder))
	want(t, e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, file, "under")), http.StatusNotFound, "")
	want(t, e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, sub, "under")), http.StatusNotFound,
		fmt.Sprintf("The given parent: %s does not exist", sub))
	info, _ := e.s.Entity(sub)
	if !info.Trashed || info.Name != sub || info.TrashedName != "sub" || info.TrashedFrom != e.folder {
		t.Errorf("trashed entity: got %+v", info)
	}
	if fi, _ := e.s.Entity(file); !fi.Trashed {
		t.Errorf("descendant: got Trashed false, want true")
	}
	// The name is free at once.
	e.create(e.alice, kindFolder, e.folder, "sub", nil)
	// Deleting again, or deleting nothing, is a no-op.
	want(t, e.do(e.alice, "DELETE", "/repo/v1/entity/"+sub, nil), http.StatusNoContent, "")
	want(t, e.do(e.alice, "DELETE", "/repo/v1/entity/syn99999999", nil), http.StatusNoContent, "")
	// Others cannot delete.
	want(t, e.do(e.bob, "DELETE", "/repo/v1/entity/"+e.folder, nil), http.StatusForbidden, "You lack DELETE access to the requested entity.")

	view := e.do(e.alice, "GET", "/repo/v1/trashcan/view", nil).json(t)
	if view["totalNumberOfResults"] != 1.0 {
		t.Fatalf("trash view: got %v", view)
	}
	// Restoring under the original name conflicts now.
	want(t, e.do(e.alice, "PUT", "/repo/v1/trashcan/restore/"+sub, nil), http.StatusConflict, "")
	want(t, e.do(e.alice, "PUT", "/repo/v1/trashcan/restore/"+sub+"/"+e.project, nil), http.StatusOK, "")
	if got := e.do(e.alice, "GET", "/repo/v1/entity/"+file, nil); got.status != http.StatusOK {
		t.Errorf("descendant after restore: got %d, want 200", got.status)
	}
	want(t, e.do(e.alice, "DELETE", "/repo/v1/entity/"+sub, nil), http.StatusNoContent, "")
	want(t, e.do(e.alice, "PUT", "/repo/v1/trashcan/purge/"+sub, nil), http.StatusOK, "")
	if _, ok := e.s.Entity(file); ok {
		t.Errorf("purged descendant still exists")
	}
}

func TestPermissions(t *testing.T) {
	e := newEnv(t, Options{})
	secret := e.create(e.alice, kindFolder, e.project, "Secret", nil)["id"].(string)
	fileID := e.createFile(e.alice, e.folder, "f.txt", []byte("data"))["id"].(string)

	want(t, e.do(e.bob, "GET", "/repo/v1/entity/"+e.folder, nil), http.StatusForbidden, "You lack READ access to the requested entity.")
	perm := e.do(e.bob, "GET", "/repo/v1/entity/"+e.folder+"/permissions", nil).json(t)
	if perm["canView"] != false || perm["canAddChild"] != false {
		t.Errorf("bob's permissions: got %v", perm)
	}
	if err := e.s.Grant(e.folder, "bob", "READ"); err != nil {
		t.Fatal(err)
	}
	want(t, e.do(e.bob, "GET", "/repo/v1/entity/"+e.folder, nil), http.StatusOK, "")
	want(t, e.do(e.bob, "GET", "/repo/v1/entity/"+fileID, nil), http.StatusOK, "") // inherited
	want(t, e.do(e.bob, "GET", "/repo/v1/entity/"+fileID+"/file", nil), http.StatusForbidden, "You lack DOWNLOAD access to the requested entity.")
	want(t, e.do(e.bob, "POST", "/repo/v1/entity", entityBody(kindFolder, e.folder, "bob's")), http.StatusForbidden,
		"You lack CREATE access to the requested entity.")
	// Alice keeps her access after the folder got its own ACL.
	want(t, e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder, nil), http.StatusOK, "")

	// Listing the project hides what bob cannot read.
	if err := e.s.Grant(secret, "alice", "READ"); err != nil { // gives Secret its own ACL without bob
		t.Fatal(err)
	}
	if err := e.s.Grant(e.project, "bob", "READ"); err != nil {
		t.Fatal(err)
	}
	r := e.do(e.bob, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.project, "includeTypes": []string{"folder", "file"}})
	want(t, r, http.StatusOK, "")
	page := r.json(t)["page"].([]any)
	if len(page) != 1 || page[0].(map[string]any)["name"] != "Data" {
		t.Errorf("bob's listing: got %v, want only Data", page)
	}
	if err := e.s.Grant(e.folder, "bob", "CREATE", "DOWNLOAD"); err != nil {
		t.Fatal(err)
	}
	e.create(e.bob, kindFolder, e.folder, "bob's", nil)
	want(t, e.do(e.bob, "GET", "/repo/v1/entity/"+fileID+"/file", nil), http.StatusTemporaryRedirect, "")
	perm = e.do(e.bob, "GET", "/repo/v1/entity/"+e.folder+"/permissions", nil).json(t)
	if perm["canAddChild"] != true || perm["canEdit"] != false || perm["canDownload"] != true {
		t.Errorf("bob's permissions after grant: got %v", perm)
	}
	acl := e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder+"/acl", nil).json(t)
	if n := len(acl["resourceAccess"].([]any)); n != 2 {
		t.Errorf("ACL entries: got %d, want 2", n)
	}
	want(t, e.do(e.alice, "GET", "/repo/v1/entity/"+fileID+"/acl", nil), http.StatusNotFound, "")
	if err := e.s.Grant(e.folder, "nobody", "READ"); err == nil {
		t.Errorf("Grant to an unknown user: got nil error")
	}
	if err := e.s.Grant(e.project, "PUBLIC", "READ"); err != nil {
		t.Fatal(err)
	}
	want(t, e.do("", "GET", "/repo/v1/entity/"+e.project, nil), http.StatusOK, "")
}

func TestLookupChild(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do(e.alice, "POST", "/repo/v1/entity/child", map[string]any{"parentId": e.project, "entityName": "Data"})
	want(t, r, http.StatusOK, "")
	if r.json(t)["id"] != e.folder {
		t.Errorf("lookup: got %v, want %s", r.json(t)["id"], e.folder)
	}
	want(t, e.do(e.alice, "POST", "/repo/v1/entity/child", map[string]any{"parentId": e.project, "entityName": "data"}), http.StatusNotFound, "")
	r = e.do(e.alice, "POST", "/repo/v1/entity/child", map[string]any{"entityName": "Alice Project"})
	if r.json(t)["id"] != e.project {
		t.Errorf("project lookup: got %v, want %s", r.json(t)["id"], e.project)
	}
	want(t, e.do(e.alice, "POST", "/repo/v1/entity/child", map[string]any{"parentId": e.project}), http.StatusBadRequest,
		"EntityLookupRequest.entityName is required.")
	want(t, e.do(e.bob, "POST", "/repo/v1/entity/child", map[string]any{"parentId": e.project, "entityName": "Data"}), http.StatusForbidden,
		"Lack of READ permission on the parent entity.")
}

func TestChildrenPaging(t *testing.T) {
	e := newEnv(t, Options{})
	for i := 0; i < 120; i++ {
		e.create(e.alice, kindFolder, e.folder, fmt.Sprintf("n%03d", i), nil)
	}
	// With totals every page reads all children; without, only up to the
	// page's end: both must page alike, in both directions.
	for _, v := range []struct {
		dir    string
		totals bool
	}{{"ASC", true}, {"ASC", false}, {"DESC", false}, {"DESC", true}} {
		var names []string
		var tokens []string
		var tok any
		for {
			r := e.do(e.alice, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.folder, "includeTypes": []string{"folder"},
				"sortBy": "NAME", "sortDirection": v.dir, "nextPageToken": tok, "includeTotalChildCount": v.totals})
			want(t, r, http.StatusOK, "")
			m := r.json(t)
			if v.totals && m["totalChildCount"] != 120.0 {
				t.Errorf("totalChildCount: got %v, want 120", m["totalChildCount"])
			}
			if _, ok := m["totalChildCount"]; ok != v.totals {
				t.Errorf("%s: totalChildCount present %v, want %v", v.dir, ok, v.totals)
			}
			for _, h := range m["page"].([]any) {
				hm := h.(map[string]any)
				names = append(names, hm["name"].(string))
				if hm["type"] != typeFolder {
					t.Fatalf("header type: got %v", hm["type"])
				}
			}
			next, ok := m["nextPageToken"].(string)
			if !ok {
				break
			}
			tokens = append(tokens, next)
			tok = next
		}
		if len(names) != 120 {
			t.Fatalf("%s totals=%v: %d names, want 120", v.dir, v.totals, len(names))
		}
		for i, n := range names {
			k := i
			if v.dir == "DESC" {
				k = 119 - i
			}
			if n != fmt.Sprintf("n%03d", k) {
				t.Fatalf("%s totals=%v: name %d is %q, want n%03d", v.dir, v.totals, i, n, k)
			}
		}
		if strings.Join(tokens, ",") != "50a50,50a100" {
			t.Errorf("%s totals=%v: tokens: got %v, want [50a50 50a100]", v.dir, v.totals, tokens)
		}
	}
	r := e.do(e.alice, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.folder, "includeTypes": []string{"folder"}, "sortDirection": "DESC"})
	if first := r.json(t)["page"].([]any)[0].(map[string]any)["name"]; first != "n119" {
		t.Errorf("DESC first: got %v, want n119", first)
	}
	want(t, e.do(e.alice, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.folder, "includeTypes": []string{"folder"}, "nextPageToken": "51a0"}),
		http.StatusBadRequest, "Limit must not exceed: 50")
	want(t, e.do(e.alice, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.folder, "includeTypes": []string{"folder"}, "nextPageToken": "junk"}),
		http.StatusBadRequest, "Unknow token format: junk")
	want(t, e.do(e.alice, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.folder}), http.StatusBadRequest, "")
	// Files are left out when not included; parentId null lists projects.
	r = e.do(e.alice, "POST", "/repo/v1/entity/children", map[string]any{"parentId": nil, "includeTypes": []string{"folder"}})
	page := r.json(t)["page"].([]any)
	if len(page) != 1 || page[0].(map[string]any)["id"] != e.project {
		t.Errorf("projects: got %v", page)
	}
	pl := e.do(e.alice, "GET", "/repo/v1/projects", nil).json(t)["results"].([]any)
	if len(pl) != 1 || pl[0].(map[string]any)["id"] != e.project {
		t.Errorf("GET /projects: got %v", pl)
	}
}

func TestAnnotations(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder+"/annotations2", nil).json(t)
	a["annotations"] = map[string]any{"assay": map[string]any{"type": "STRING", "value": []string{"rnaSeq"}}, "n": map[string]any{"type": "LONG", "value": []string{"3"}}}
	r := e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder+"/annotations2", a)
	want(t, r, http.StatusOK, "")
	newEtag := r.json(t)["etag"]
	if newEtag == a["etag"] {
		t.Errorf("etag did not change")
	}
	if got := e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder, nil).json(t)["etag"]; got != newEtag {
		t.Errorf("entity etag: got %v, want the annotations etag %v", got, newEtag)
	}
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder+"/annotations2", a), http.StatusPreconditionFailed, "")
	a["etag"] = newEtag
	a["annotations"] = map[string]any{"bad key": map[string]any{"type": "STRING", "value": []string{"x"}}}
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder+"/annotations2", a), http.StatusBadRequest,
		"Invalid annotation name: 'bad key'. Annotation names may only contain; letters, numbers, '_' and '.'")
	a["annotations"] = map[string]any{"n": map[string]any{"type": "LONG", "value": []string{"x"}}}
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder+"/annotations2", a), http.StatusBadRequest, "")
	many := map[string]any{}
	for i := 0; i < 101; i++ {
		many[fmt.Sprint("k", i)] = map[string]any{"type": "STRING", "value": []string{"v"}}
	}
	a["annotations"] = many
	want(t, e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder+"/annotations2", a), http.StatusBadRequest, "Exceeded maximum number of annotation keys: 100")
	if info, _ := e.s.Entity(e.folder); info.Annotations["assay"][0] != "rnaSeq" {
		t.Errorf("stored annotations: got %v", info.Annotations)
	}
	// The current limits of Synapse's AnnotationsV2Utils and value validators.
	put := func(m map[string]any) resp {
		a["annotations"] = m
		return e.do(e.alice, "PUT", "/repo/v1/entity/"+e.folder+"/annotations2", a)
	}
	str := func(vals ...string) map[string]any { return map[string]any{"type": "STRING", "value": vals} }
	want(t, put(map[string]any{"_accessRequirementIds": str("1")}), http.StatusBadRequest,
		"Invalid annotation name: '_accessRequirementIds'. The annotation name is a system reserved annotation.")
	want(t, put(map[string]any{"s": str(strings.Repeat("x", 1001))}), http.StatusBadRequest,
		"A single string annotation value cannot exceed 1000 characters.")
	sum := make([]string, 101)
	for i := range sum {
		sum[i] = strings.Repeat("y", 1000)
	}
	want(t, put(map[string]any{"s": str(sum...)}), http.StatusBadRequest,
		"The sum of all string values for annotation 's' cannot exceed 100000 characters.")
	vals := make([]string, 1001)
	for i := range vals {
		vals[i] = "1"
	}
	want(t, put(map[string]any{"n": map[string]any{"type": "LONG", "value": vals}}), http.StatusBadRequest,
		"key=n has exceeded the maximum number of values allowed: 1000")
	want(t, put(map[string]any{"n": map[string]any{"type": "LONG", "value": vals[:1000]}, "s": str(strings.Repeat("x", 1000))}), http.StatusOK, "")
	if info, _ := e.s.Entity(e.folder); len(info.Annotations["n"]) != 1000 {
		t.Errorf("stored values of n: got %d, want 1000", len(info.Annotations["n"]))
	}
}

func TestBundle(t *testing.T) {
	e := newEnv(t, Options{})
	f := e.createFile(e.alice, e.folder, "b.txt", []byte("bundle"))
	id := f["id"].(string)
	req := map[string]any{"includeEntity": true, "includeAnnotations": true, "includeFileHandles": true, "includeRestrictionInformation": true,
		"includePermissions": true, "includeEntityPath": true, "includeHasChildren": true}
	for _, p := range []string{"/repo/v1/entity/" + id + "/bundle2", "/repo/v1/entity/" + id + "/version/1/bundle2"} {
		r := e.do(e.alice, "POST", p, req)
		want(t, r, http.StatusOK, "")
		b := r.json(t)
		if b["entityType"] != "file" || b["entity"].(map[string]any)["id"] != id {
			t.Errorf("%s: entity: got %v %v", p, b["entityType"], b["entity"])
		}
		fhs := b["fileHandles"].([]any)
		if len(fhs) != 1 || fhs[0].(map[string]any)["contentMd5"] != md5hex([]byte("bundle")) || fhs[0].(map[string]any)["contentSize"] != 6.0 {
			t.Errorf("%s: fileHandles: got %v", p, fhs)
		}
		if b["restrictionInformation"].(map[string]any)["hasUnmetAccessRequirement"] != false {
			t.Errorf("%s: restrictionInformation: got %v", p, b["restrictionInformation"])
		}
		path := b["path"].(map[string]any)["path"].([]any)
		if len(path) != 4 || path[0].(map[string]any)["id"] != "syn4489" || path[3].(map[string]any)["id"] != id {
			t.Errorf("%s: path: got %v", p, path)
		}
		if b["hasChildren"] != false || b["permissions"].(map[string]any)["canDownload"] != true {
			t.Errorf("%s: hasChildren/permissions: got %v %v", p, b["hasChildren"], b["permissions"])
		}
	}
	want(t, e.do(e.alice, "GET", "/repo/v1/entity/"+id+"/version/1/generatedBy", nil), http.StatusNotFound, "")
	r := e.do(e.alice, "POST", "/repo/v1/entity/"+e.folder+"/bundle2", map[string]any{"includeHasChildren": true})
	if r.json(t)["hasChildren"] != true {
		t.Errorf("folder hasChildren: got %v", r.json(t))
	}
}

func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t, Options{})
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- e.do(e.alice, "POST", "/repo/v1/entity", entityBody(kindFolder, e.folder, "race")).status
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[201] != 1 || n[409] != 19 {
		t.Errorf("statuses: got %v, want one 201 and 19 409", n)
	}
	if got := e.s.Stats().EntityCreates["folder"]; got != 2 {
		t.Errorf("folder creates: got %d, want 2", got)
	}
}
