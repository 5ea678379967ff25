package synapse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSettings(t *testing.T) {
	const full = `
# comment
; another
[default]
username = alice
authtoken = tok-default

[profile work]
authtoken: tok-work

[profile empty]
username = nobody

[authentication]
authtoken = tok-legacy

[endpoints]
repoEndpoint = http://127.0.0.1:9/repo/v1/
fileHandleEndpoint = http://127.0.0.1:9/file/v1
`
	const legacyOnly = `
[authentication]
username = old
authtoken = tok-legacy
`
	const endpointsOnly = `
[endpoints]
authEndpoint = http://auth.example/auth/v1
`
	cases := []struct {
		name, file, profile string
		env                 map[string]string
		token, source       string
		repo, fileEP, auth  string
	}{
		{name: "default section", file: full, token: "tok-default", source: "config file CFG",
			repo: "http://127.0.0.1:9/repo/v1", fileEP: "http://127.0.0.1:9/file/v1", auth: DefaultAuthEndpoint},
		{name: "profile argument", file: full, profile: "work", token: "tok-work", source: "config file CFG"},
		{name: "profile from env", file: full, env: map[string]string{"SYNAPSE_PROFILE": "work"}, token: "tok-work", source: "config file CFG"},
		{name: "argument beats env profile", file: full, profile: "default", env: map[string]string{"SYNAPSE_PROFILE": "work"}, token: "tok-default", source: "config file CFG"},
		{name: "present profile without token ignores legacy", file: full, profile: "empty",
			env: map[string]string{"SYNAPSE_AUTH_TOKEN": "tok-env"}, token: "tok-env", source: "SYNAPSE_AUTH_TOKEN"},
		{name: "absent profile falls back to legacy", file: full, profile: "missing", token: "tok-legacy", source: "config file CFG"},
		{name: "legacy when default absent", file: legacyOnly, token: "tok-legacy", source: "config file CFG"},
		{name: "config beats env", file: legacyOnly, env: map[string]string{"SYNAPSE_AUTH_TOKEN": "tok-env"}, token: "tok-legacy", source: "config file CFG"},
		{name: "env when file has no token", file: endpointsOnly, env: map[string]string{"SYNAPSE_AUTH_TOKEN": " tok-env "}, token: "tok-env", source: "SYNAPSE_AUTH_TOKEN",
			repo: DefaultRepoEndpoint, fileEP: DefaultFileEndpoint, auth: "http://auth.example/auth/v1"},
		{name: "nothing", file: "", token: "", source: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "synapseConfig")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := LoadSettings(path, tc.profile, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatalf("LoadSettings: %v", err)
			}
			source := strings.ReplaceAll(tc.source, "CFG", path)
			if s.Token != tc.token || s.TokenSource != source {
				t.Errorf("token: got %q from %q, want %q from %q", s.Token, s.TokenSource, tc.token, source)
			}
			if tc.repo != "" && (s.RepoEndpoint != tc.repo || s.FileEndpoint != tc.fileEP || s.AuthEndpoint != tc.auth) {
				t.Errorf("endpoints: got %q %q %q, want %q %q %q", s.RepoEndpoint, s.FileEndpoint, s.AuthEndpoint, tc.repo, tc.fileEP, tc.auth)
			}
		})
	}
}

func TestLoadSettingsDefaultPath(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"HOME": home, "SYNAPSE_AUTH_TOKEN": "tok-env"}
	s, err := LoadSettings("", "", func(k string) string { return env[k] })
	if err != nil || s.Token != "tok-env" || s.RepoEndpoint != DefaultRepoEndpoint {
		t.Errorf("no config file: got %+v, %v, want the env token and production endpoints", s.TokenSource, err)
	}
	if err := os.WriteFile(filepath.Join(home, ".synapseConfig"), []byte("[default]\nauthtoken = tok-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = LoadSettings("", "", func(k string) string { return env[k] })
	if err != nil || s.Token != "tok-file" || s.TokenSource != "config file ~/.synapseConfig" {
		t.Errorf("home config: got %q from %q, %v, want tok-file from the config file", s.Token, s.TokenSource, err)
	}
	if _, err := LoadSettings(filepath.Join(home, "missing"), "", nil); err == nil {
		t.Error("explicit missing config: got nil error, want one")
	}
}

func TestLoadSettingsErrorsHideToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg")
	if err := os.WriteFile(path, []byte("authtoken = tok-SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSettings(path, "", nil)
	if err == nil || strings.Contains(err.Error(), "tok-SECRET") {
		t.Errorf("key outside a section: got %v, want an error without the token", err)
	}
}
