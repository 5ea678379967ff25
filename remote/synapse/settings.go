package synapse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Settings is what the official client's configuration yields for synfs:
// the token, where it came from, and the three endpoints.
type Settings struct {
	Token string
	// TokenSource says where Token came from: "config file <path>",
	// "SYNAPSE_AUTH_TOKEN", or "" when there is no token. It never contains
	// the token.
	TokenSource string

	RepoEndpoint, FileEndpoint, AuthEndpoint string
}

// Environment variables LoadSettings reads.
const (
	EnvAuthToken = "SYNAPSE_AUTH_TOKEN"
	EnvProfile   = "SYNAPSE_PROFILE"
)

// LoadSettings reads the official client's configuration with its
// precedence:
//
//   - configPath is the INI file to read; "" means ~/.synapseConfig (HOME
//     from getenv), which may be missing. An explicit path must exist.
//   - profile selects the credentials section; "" means getenv
//     SYNAPSE_PROFILE, then "default". Profile "default" is section
//     [default]; any other is [profile NAME]. The legacy [authentication]
//     section is read only when the chosen section is absent.
//   - A non-empty authtoken from the file beats SYNAPSE_AUTH_TOKEN.
//   - [endpoints] repoEndpoint, fileHandleEndpoint and authEndpoint override
//     the production endpoints one by one.
//
// Keys are case-insensitive; section names are not. Lines starting with ;
// or # are comments.
func LoadSettings(configPath, profile string, getenv func(string) string) (Settings, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	s := Settings{RepoEndpoint: DefaultRepoEndpoint, FileEndpoint: DefaultFileEndpoint, AuthEndpoint: DefaultAuthEndpoint}
	display := configPath
	explicit := configPath != ""
	if !explicit {
		display = "~/.synapseConfig"
		if home := getenv("HOME"); home != "" {
			configPath = strings.TrimRight(home, "/") + "/.synapseConfig"
		}
	}
	var ini map[string]map[string]string
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		switch {
		case err == nil:
			ini, err = parseINI(b)
			if err != nil {
				return Settings{}, fmt.Errorf("synapse: config file %s: %w", display, err)
			}
		case !explicit && errors.Is(err, fs.ErrNotExist):
		default:
			return Settings{}, fmt.Errorf("synapse: config file %s: %w", display, unwrapPath(err))
		}
	}
	if profile == "" {
		profile = getenv(EnvProfile)
	}
	if profile == "" {
		profile = "default"
	}
	section := "profile " + profile
	if profile == "default" {
		section = "default"
	}
	creds, ok := ini[section]
	if !ok {
		creds = ini["authentication"]
	}
	if t := strings.TrimSpace(creds["authtoken"]); t != "" {
		s.Token, s.TokenSource = t, "config file "+display
	} else if t := strings.TrimSpace(getenv(EnvAuthToken)); t != "" {
		s.Token, s.TokenSource = t, EnvAuthToken
	}
	ep := ini["endpoints"]
	if v := ep["repoendpoint"]; v != "" {
		s.RepoEndpoint = strings.TrimRight(v, "/")
	}
	if v := ep["filehandleendpoint"]; v != "" {
		s.FileEndpoint = strings.TrimRight(v, "/")
	}
	if v := ep["authendpoint"]; v != "" {
		s.AuthEndpoint = strings.TrimRight(v, "/")
	}
	return s, nil
}

// unwrapPath drops the path from a *fs.PathError, whose text the caller
// already gives.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseINI parses the subset of Python's RawConfigParser format the
// official client's file uses: [section] headers, "key = value" or
// "key: value" lines, full-line ; and # comments, and indented continuation
// lines. Keys are lowercased. Inline comments are not stripped, as in
// RawConfigParser.
func parseINI(b []byte) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	var cur map[string]string
	lastKey := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		raw := strings.TrimRight(sc.Text(), " \t\r")
		if lineNo == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if (raw[0] == ' ' || raw[0] == '\t') && cur != nil && lastKey != "" {
			cur[lastKey] = strings.TrimSpace(cur[lastKey] + "\n" + line)
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated section header", lineNo)
			}
			name := strings.TrimSpace(line[1:end])
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			cur, lastKey = out[name], ""
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("line %d: expected key = value", lineNo)
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: key outside any section", lineNo)
		}
		lastKey = strings.ToLower(strings.TrimSpace(line[:i]))
		cur[lastKey] = strings.TrimSpace(line[i+1:])
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
