package emulator

import (
	"net/http"
	"testing"
)

// TestLinks: a Link entity is a named child of a container that lists with
// its concreteType when "link" is asked for, keeps its linksTo, and can hold
// no children.
func TestLinks(t *testing.T) {
	e := newEnv(t, Options{})
	target := e.create(aliceToken, kindFolder, e.folder, "target", nil)["id"].(string)
	l := e.create(aliceToken, kindLink, e.folder, "shortcut", map[string]any{"linksTo": map[string]any{"targetId": target}})
	if l["concreteType"] != typeLink {
		t.Fatalf("concreteType: got %v, want %s", l["concreteType"], typeLink)
	}
	got := e.do(aliceToken, "GET", "/repo/v1/entity/"+l["id"].(string), nil).json(t)
	if lt, _ := got["linksTo"].(map[string]any); lt == nil || lt["targetId"] != target {
		t.Fatalf("linksTo: got %v, want targetId %s", got["linksTo"], target)
	}
	page := e.do(aliceToken, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.folder, "includeTypes": []string{"folder", "link"}}).json(t)["page"].([]any)
	types := map[string]string{}
	for _, h := range page {
		m := h.(map[string]any)
		types[m["name"].(string)] = m["type"].(string)
	}
	if types["shortcut"] != typeLink || types["target"] != typeFolder {
		t.Fatalf("children: got %v, want shortcut as a Link and target as a Folder", types)
	}
	page = e.do(aliceToken, "POST", "/repo/v1/entity/children", map[string]any{"parentId": e.folder, "includeTypes": []string{"folder"}}).json(t)["page"].([]any)
	if len(page) != 1 {
		t.Fatalf("children of type folder: got %d, want 1 (no link)", len(page))
	}
	r := e.do(aliceToken, "POST", "/repo/v1/entity", entityBody(kindFolder, l["id"].(string), "inside"))
	want(t, r, http.StatusBadRequest, "Entity type: "+typeFolder+" cannot have a parent of type: "+typeLink)
}
