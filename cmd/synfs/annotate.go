package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/synfs/synfs/remote"
)

const annotateUsage = `Usage: synfs annotate MANIFEST [--mount MOUNTPOINT] [--dry-run]

Applies the annotations of a manifest in the format of "synapse manifest" and
"synapse sync" (a TSV with path and parent columns, optional name, and one
column per annotation) to the files copied into a synfs mount. Each row is
matched to the file called name (or the base name of path) in the folder
whose Synapse ID is parent; the file may still be waiting for its upload.
Cells are typed as the official client types them: [a, b] is a list.

synfs annotate works through the mount: it sets each annotation as the
extended attribute user.KEY, as setfattr would. Annotations of a file that
is not uploaded yet go with its upload. An annotation that already has the
value is left alone, so running it again changes nothing.

It prints one line per row and exits 1 if a row matches no file or an
annotation could not be set. The provenance columns (used, executed,
activityName, activityDescription) are not applied.

Flags:
`

func cmdAnnotate(args []string) int {
	fl := newFlagSet("annotate", annotateUsage)
	mnt := fl.String("mount", "", "the synfs `MOUNTPOINT` (default: the only synfs mount)")
	dry := fl.Bool("dry-run", false, "show what would change, change nothing")
	manifest, code := parseWithArg(fl, args, "MANIFEST")
	if code >= 0 {
		return code
	}
	f, err := os.Open(manifest)
	if err != nil {
		return fail(2, "%v", err)
	}
	rows, err := parseManifest(f)
	f.Close()
	if err != nil {
		return fail(2, "%s: %v", manifest, err)
	}
	if *mnt == "" {
		if *mnt, err = onlySynfsMount(); err != nil {
			return fail(2, "%v", err)
		}
	}
	return annotate(os.Stdout, *mnt, rows, *dry)
}

// annotate applies rows under the mount at mnt and returns the exit code.
func annotate(out io.Writer, mnt string, rows []manifestRow, dry bool) int {
	parents := map[string]bool{}
	for _, r := range rows {
		parents[r.parent] = true
	}
	dirs, err := findFolders(mnt, parents)
	if err != nil {
		return fail(2, "%v", err)
	}
	bad, prov := 0, 0
	for _, r := range rows {
		if r.provenance {
			prov++
		}
		msg, ok := annotateRow(mnt, dirs, r, dry)
		if !ok {
			bad++
		}
		fmt.Fprintln(out, msg)
	}
	if prov > 0 {
		fmt.Fprintf(out, "note: %d rows have provenance (used, executed, activityName, activityDescription); synfs does not set activities\n", prov)
	}
	if bad > 0 {
		fmt.Fprintf(out, "%d of %d rows failed or matched no file\n", bad, len(rows))
		return 1
	}
	return 0
}

// annotateRow applies one row and returns its report line.
func annotateRow(mnt string, dirs map[string]string, r manifestRow, dry bool) (string, bool) {
	where := fmt.Sprintf("line %d (%s/%s)", r.line, r.parent, r.name)
	dir, ok := dirs[r.parent]
	if !ok {
		return where + ": no match: folder " + r.parent + " is not in the mount", false
	}
	p := filepath.Join(dir, r.name)
	rel, _ := filepath.Rel(mnt, p)
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		return fmt.Sprintf("%s: no match: no file %s in the mount", where, rel), false
	}
	id, _ := getxattr(p, "user.synapse.id")
	if r.id != "" && id != "" && r.id != id {
		return fmt.Sprintf("%s: no match: %s is %s, the manifest says %s", where, rel, id, r.id), false
	}
	label := rel
	if id != "" {
		label = id + " " + rel
	}
	var changed, failed []string
	for _, k := range slices.Sorted(maps.Keys(r.annotations)) {
		want := remote.ParseAnnotation(r.annotations[k])
		if cur, err := getxattr(p, "user."+k); err == nil && remote.ParseAnnotation(cur).Equal(want) {
			continue
		}
		text := remote.FormatAnnotation(want)
		if !dry {
			if err := syscall.Setxattr(p, "user."+k, []byte(text), 0); err != nil {
				failed = append(failed, fmt.Sprintf("%s (%v)", k, err))
				continue
			}
		}
		changed = append(changed, k+"="+text)
	}
	verb := "set"
	if dry {
		verb = "would set"
	}
	msg := label + ": unchanged"
	if len(changed) > 0 {
		msg = label + ": " + verb + " " + strings.Join(changed, ", ")
	}
	if len(failed) > 0 {
		return msg + "; failed: " + strings.Join(failed, ", "), false
	}
	return msg, true
}

// findFolders walks the mount for the folders whose Synapse IDs are in
// want and returns their paths. It reads only folders, and stops once all
// are found.
func findFolders(mnt string, want map[string]bool) (map[string]string, error) {
	found := map[string]string{}
	queue := []string{mnt}
	for len(queue) > 0 && len(found) < len(want) {
		dir := queue[0]
		queue = queue[1:]
		if id, err := getxattr(dir, "user.synapse.id"); err == nil && want[id] {
			found[id] = dir
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			if dir == mnt {
				return nil, err
			}
			continue
		}
		for _, e := range ents {
			if e.IsDir() && !(dir == mnt && e.Name() == ".synfs") {
				queue = append(queue, filepath.Join(dir, e.Name()))
			}
		}
	}
	return found, nil
}

// getxattr reads one extended attribute; syscall.ENODATA when it is absent.
func getxattr(path, name string) (string, error) {
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Getxattr(path, name, buf)
		if errors.Is(err, syscall.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
}

// onlySynfsMount returns the mount point of the one synfs mount.
func onlySynfsMount() (string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	var mnts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "fuse.synfs" {
			mnts = append(mnts, unescapeMount(fields[1]))
		}
	}
	switch len(mnts) {
	case 0:
		return "", errors.New("no synfs mount found: start synfs mount, or name it with --mount")
	case 1:
		return mnts[0], nil
	}
	return "", fmt.Errorf("several synfs mounts (%s): name one with --mount", strings.Join(mnts, ", "))
}

// unescapeMount undoes the octal escapes of /proc/self/mounts (\040 for a
// space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
