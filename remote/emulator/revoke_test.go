package emulator

import (
	"net/http"
	"testing"
)

func TestRevokeToken(t *testing.T) {
	e := newEnv(t, Options{})
	if r := e.do(e.alice, "GET", "/repo/v1/userProfile", nil); r.status != http.StatusOK {
		t.Fatalf("before: got %d", r.status)
	}
	if !e.s.RevokeToken(e.alice) {
		t.Fatal("RevokeToken: the token was not known")
	}
	want(t, e.do(e.alice, "GET", "/repo/v1/userProfile", nil), http.StatusUnauthorized, "Invalid access token")
	want(t, e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder, nil), http.StatusUnauthorized, "Invalid access token")
	if e.s.RevokeToken(e.alice) {
		t.Error("RevokeToken of a revoked token reported it known")
	}
	if r := e.do(e.bob, "GET", "/repo/v1/userProfile", nil); r.status != http.StatusOK {
		t.Errorf("another user's token: got %d", r.status)
	}
	if id := e.s.AddUser("alice", e.alice, true); id != e.aliceID {
		t.Errorf("restored as %s, want %s", id, e.aliceID)
	}
	if r := e.do(e.alice, "GET", "/repo/v1/entity/"+e.folder, nil); r.status != http.StatusOK {
		t.Errorf("restored: got %d", r.status)
	}
}
