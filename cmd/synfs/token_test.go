package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A token revoked under a running mount pauses the uploads (none fails);
// status says why and what to do; a new token of the same user written to
// the config file is picked up at the next probe, and the uploads resume by
// themselves. Neither token appears in the log or the status.
func TestRefusedTokenPausesThenReloads(t *testing.T) {
	needFUSE(t)
	em, url, data := emu(t)
	cfg := filepath.Join(t.TempDir(), "synapseConfig")
	writeToken := func(tok string) {
		if err := os.WriteFile(cfg+".tmp", []byte("[authentication]\nauthtoken = "+tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(cfg+".tmp", cfg); err != nil {
			t.Fatal(err)
		}
	}
	writeToken(testToken)
	mnt := t.TempDir()
	r := startMount(t, mnt, url, t.TempDir(), "--config", cfg, "--writeback-delay", "1ms")
	dir := filepath.Join(mnt, "Demo Project", "Data")

	// The folder and its permissions are known from before, as in a mount
	// that has been in use.
	sh(t, "printf first > "+q(dir+"/first.txt"))
	if code, _, errOut := synfsOut(t, "wait", "--timeout", "30s", mnt); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, errOut)
	}

	em.RevokeToken(testToken)
	sh(t, "printf hello > "+q(dir+"/a.txt")+" && printf again > "+q(dir+"/b.txt"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := rawStatusJSON(t, mnt)
		if st.Synapse.TokenRefused && strings.Contains(st.Synapse.Text, "refuses the access token") &&
			strings.Contains(st.Synapse.Text, "~/.synapseConfig") {
			for _, f := range st.Files {
				if f.State == "failed" {
					t.Fatalf("%s failed while the token was refused: %s", f.Name, f.Error)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never said the token is refused: %+v", st.Synapse)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// wait does not report a failure: the files wait (timeout, exit 3).
	// Meanwhile synfs sends nothing but its probes (backing off from 1 s),
	// which ask whose the token is.
	before := em.RequestCounts()
	if code, _, errOut := synfsOut(t, "wait", "--timeout", "2s", mnt); code != 3 {
		t.Fatalf("wait while the token is refused: exit %d, want 3 (timeout)\n%s", code, errOut)
	}
	calls := em.RequestCounts().Sub(before)
	t.Logf("REST calls while the token is refused, over 2 s: %v", calls)
	if probes := calls["GET /repo/v1/userProfile"]; calls.Total() != probes || probes > 3 {
		t.Errorf("REST calls while the token is refused, over 2 s: %v; want only probes (GET /userProfile), at most 3", calls)
	}

	const newToken = "tok-Rx22-secret-0415"
	em.AddUser("demo", newToken, true)
	writeToken(newToken)
	if code, _, errOut := synfsOut(t, "wait", "--timeout", "60s", mnt); code != 0 {
		t.Fatalf("wait after the new token: exit %d\n%s\n%s", code, errOut, r.stderr.String())
	}
	names := childNames(em, data)
	if !names["a.txt"] || !names["b.txt"] {
		t.Errorf("after the new token, Synapse has %v", names)
	}
	if st := statusJSON(t, mnt); !st.Synapse.Online || st.Synapse.TokenRefused {
		t.Errorf("status after the new token: %+v", st.Synapse)
	}
	log := r.stderr.String()
	if !strings.Contains(log, "Synapse refuses the access token") || !strings.Contains(log, "trying the access token from config file") {
		t.Errorf("the log does not tell the story:\n%s", log)
	}
	if strings.Contains(log, testToken) || strings.Contains(log, newToken) {
		t.Errorf("a token is in the log:\n%s", log)
	}
}
