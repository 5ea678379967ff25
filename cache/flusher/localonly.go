package flusher

import (
	"path"
	"strings"
)

// DefaultLocalOnly is the list of name patterns (path.Match, on the base
// name) of files that stay in the cache and are never uploaded: what
// editors and desktops leave next to real files. A file renamed away from
// such a name (an atomic save's temporary file renamed over the original)
// uploads under its new name.
var DefaultLocalOnly = []string{
	".*.swp", ".*.swo", ".*.swx", // vim swap files
	"*~",         // editors' backup files
	".#*", "#*#", // emacs lock and auto-save files
	".~lock.*#",        // LibreOffice lock files
	"~$*",              // Microsoft Office owner files
	".goutputstream-*", // GIO's atomic-save temporary files
	".DS_Store", "._*", // macOS Finder metadata and resource forks
	"Thumbs.db", "desktop.ini", // Windows Explorer metadata
	".directory", // KDE Dolphin metadata
}

// ParseLocalOnly reads a comma-separated list of patterns; "" and "none"
// mean none. A malformed pattern is an error.
func ParseLocalOnly(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// IsLocalOnly reports whether files called name stay local. Such names
// may break Synapse's name rules (editors' "notes.txt~"): they are never
// sent to Synapse.
func (f *Flusher) IsLocalOnly(name string) bool {
	_, ok := f.localOnly(name)
	return ok
}

// localOnly returns the pattern name matches, if any.
func (f *Flusher) localOnly(name string) (string, bool) {
	for _, p := range f.o.LocalOnly {
		if ok, _ := path.Match(p, name); ok {
			return p, true
		}
	}
	return "", false
}
