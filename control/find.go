package control

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FSNamePrefix starts a synfs mount's source in the mount table; the cache
// directory follows it.
const FSNamePrefix = "synfs:"

// FSName is the mount source for a mount using cacheDir. A cache directory
// with a comma or a backslash cannot be carried in the mount options: then
// the source is plain "synfs", and the commands need --cache-dir.
func FSName(cacheDir string) string {
	if strings.ContainsAny(cacheDir, ",\\") {
		return "synfs"
	}
	return FSNamePrefix + cacheDir
}

// Mount is a synfs entry of the mount table.
type Mount struct {
	Dir      string // the mountpoint
	CacheDir string // "" when the source does not name it
	UID      int    // the mounting user (user_id), -1 when not shown
}

// Mounts lists the synfs mounts in /proc/self/mountinfo.
func Mounts() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m, ok := parseMountinfo(sc.Text()); ok {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// parseMountinfo reads one line: "id parent maj:min root mountpoint opts
// [optional...] - fstype source superopts".
func parseMountinfo(line string) (Mount, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return Mount{}, false
	}
	a, b := strings.Fields(pre), strings.Fields(post)
	if len(a) < 5 || len(b) < 3 || b[0] != "fuse.synfs" {
		return Mount{}, false
	}
	m := Mount{Dir: UnescapeMountinfo(a[4]), UID: -1}
	if src := UnescapeMountinfo(b[1]); strings.HasPrefix(src, FSNamePrefix) {
		m.CacheDir = strings.TrimPrefix(src, FSNamePrefix)
	}
	for _, o := range strings.Split(b[2], ",") {
		if v, ok := strings.CutPrefix(o, "user_id="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				m.UID = n
			}
		}
	}
	return m, true
}

// UnescapeMountinfo undoes the kernel's octal escapes in a field of
// /proc/self/mountinfo (\040 for a space).
func UnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Find returns the synfs mount at dir, or, with dir "", the only synfs
// mount of this user.
func Find(dir string) (Mount, error) {
	ms, err := Mounts()
	if err != nil {
		return Mount{}, err
	}
	if dir == "" {
		var mine []Mount
		for _, m := range ms {
			if m.CacheDir != "" && (m.UID == -1 || m.UID == os.Getuid()) {
				mine = append(mine, m)
			}
		}
		switch len(mine) {
		case 0:
			return Mount{}, errors.New("no synfs mount found: give the MOUNTPOINT")
		case 1:
			return mine[0], nil
		}
		var dirs []string
		for _, m := range mine {
			dirs = append(dirs, m.Dir)
		}
		return Mount{}, fmt.Errorf("several synfs mounts (%s): give the MOUNTPOINT", strings.Join(dirs, ", "))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Mount{}, err
	}
	for _, m := range ms {
		if m.Dir == abs {
			return m, nil
		}
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil && r != abs {
		for _, m := range ms {
			if m.Dir == r {
				return m, nil
			}
		}
	}
	return Mount{}, fmt.Errorf("%s is not a synfs mount", dir)
}

// Containing returns the synfs mount whose mountpoint holds path, and path
// relative to it ("/Project/folder/file").
func Containing(path string) (Mount, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Mount{}, "", err
	}
	ms, err := Mounts()
	if err != nil {
		return Mount{}, "", err
	}
	best := -1
	for i, m := range ms {
		if (abs == m.Dir || strings.HasPrefix(abs, m.Dir+"/")) && (best < 0 || len(m.Dir) > len(ms[best].Dir)) {
			best = i
		}
	}
	if best < 0 {
		return Mount{}, "", fmt.Errorf("%s is not under a synfs mount", path)
	}
	rel := strings.TrimPrefix(abs, ms[best].Dir)
	if rel == "" {
		rel = "/"
	}
	return ms[best], rel, nil
}
