package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vbauerster/cupwriter"
	"golang.org/x/sys/unix"

	"github.com/synfs/synfs/control"
)

// Exit codes of wait and unmount (docs/operations.md).
const (
	exitOK      = 0 // everything arrived
	exitFailed  = 1 // some files failed for good (listed), or an error
	exitUsage   = 2
	exitTimeout = 3 // --timeout passed first
	exitNoMount = 4 // no running mount answers, or it stopped while waiting
	exitBusy    = 5 // unmount: the mount is in use (the processes are listed)
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version and VCS revision are shown.
var version = ""

func cmdVersion(args []string) int {
	fl := newFlagSet("version", "Usage: synfs version\n\nPrints the version of synfs.\n")
	pos, code := parse(fl, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintln(os.Stderr, "synfs version: takes no arguments")
		fl.Usage()
		return exitUsage
	}
	fmt.Println("synfs " + versionString())
	return 0
}

func versionString() string {
	v := version
	rev, dirty, when := "", false, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			case "vcs.time":
				when = s.Value
			}
		}
		if v == "" {
			v = "devel"
		}
		v += " (" + bi.GoVersion
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += ", commit " + rev
		if dirty {
			v += " with local changes"
		}
		if when != "" {
			v += ", " + when
		}
	}
	return v + ")"
}

// mountFlag is the --cache-dir of the commands that talk to a mount: it
// names the mount when the mount table cannot.
func cacheDirFlag(fl *flag.FlagSet) *string {
	return fl.String("cache-dir", "", "the mount's cache `directory` (default: found from MOUNTPOINT in the mount table)")
}

// findMount finds the running mount at dir ("" = the only one).
func findMount(dir, cacheDir string) (control.Mount, error) {
	if cacheDir != "" {
		return control.Mount{Dir: dir, CacheDir: cacheDir}, nil
	}
	m, err := control.Find(dir)
	if err != nil {
		return m, err
	}
	if m.CacheDir == "" {
		return m, fmt.Errorf("the mount at %s does not name its cache directory in the mount table: give --cache-dir", m.Dir)
	}
	return m, nil
}

const statusUsage = `Usage: synfs status [MOUNTPOINT] [--json] [--watch]

Lists every staged file not yet in Synapse with its path under the mount, its state
(open, dirty, uploading n/m parts, retrying with the reason and the next attempt,
failed with the reason, empty), totals, bytes to go, the current rate and the time left,
and the operations refused recently with Synapse's reason. MOUNTPOINT may be left out
when there is one synfs mount. --json prints the stable format of docs/operations.md.

Flags:
`

func cmdStatus(args []string) int {
	fl := newFlagSet("status", statusUsage)
	asJSON := fl.Bool("json", false, "print JSON (format 1, docs/operations.md)")
	watch := fl.Bool("watch", false, "redraw every --interval until interrupted")
	every := fl.Duration("interval", 2*time.Second, "how often --watch redraws")
	cacheDir := cacheDirFlag(fl)
	pos, code := parse(fl, args)
	if code >= 0 {
		return code
	}
	dir, code := oneArg(fl, pos, "MOUNTPOINT", false)
	if code >= 0 {
		return code
	}
	m, err := findMount(dir, *cacheDir)
	if err != nil {
		return fail(exitNoMount, "%v", err)
	}
	// --watch on a terminal redraws in place (cupwriter, the redraw layer
	// of mpb); otherwise each status follows the last.
	var cup *cupwriter.Writer
	if *watch && !*asJSON && isTerminal(os.Stdout) {
		cup = cupwriter.New(os.Stdout, false)
	}
	for {
		st, err := control.GetStatus(m.CacheDir)
		if err != nil {
			return fail(exitNoMount, "%v", err)
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			if !*watch {
				enc.SetIndent("", "  ")
			}
			enc.Encode(st)
		} else if cup != nil {
			text := statusText(st)
			if w, _, err := cup.GetTermSize(); err == nil && w > 1 {
				text = clipLines(text, w-1) // a wrapped line would break the redraw
			}
			cup.Write([]byte(text))
			cup.Flush(strings.Count(text, "\n"))
		} else {
			fmt.Print(statusText(st))
		}
		if !*watch {
			return 0
		}
		time.Sleep(*every)
	}
}

// clipLines cuts every line of text to at most width runes.
func clipLines(text string, width int) string {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		if r := []rune(strings.TrimSuffix(l, "\n")); len(r) > width {
			lines[i] = string(r[:width]) + "\n"
		}
	}
	return strings.Join(lines, "")
}

// statusText renders a status for people.
func statusText(st *control.Status) string {
	var b strings.Builder
	t := st.Totals
	fmt.Fprintf(&b, "synfs at %s: %s on %s; cache %s\n", st.Mountpoint, st.User, st.Endpoint, st.CacheDir)
	if t.Files == 0 {
		b.WriteString("everything staged is in Synapse")
	} else {
		fmt.Fprintf(&b, "%d file(s) not in Synapse (%s), %s to go", t.Files, byStateText(t.ByState), humanize.IBytes(uint64(t.BytesToGo)))
	}
	if t.Rate > 0 {
		fmt.Fprintf(&b, ", %s/s", humanize.IBytes(uint64(t.Rate)))
	}
	if t.ETASeconds != nil {
		fmt.Fprintf(&b, ", about %s left", (time.Duration(*t.ETASeconds) * time.Second).Round(time.Second))
	}
	fmt.Fprintf(&b, "; %d file(s), %s uploaded since mount", t.UploadedFiles, humanize.IBytes(uint64(t.UploadedBytes)))
	if t.CacheMax > 0 {
		fmt.Fprintf(&b, "; cache %s of %s used", humanize.IBytes(uint64(t.CacheUsed)), humanize.IBytes(uint64(t.CacheMax)))
	}
	b.WriteString("\n")
	if st.Problem != "" {
		fmt.Fprintf(&b, "PROBLEM: %s\n", st.Problem)
	}
	if !st.Synapse.Online && st.Synapse.Text != "" {
		b.WriteString(st.Synapse.Text + "\n")
	}
	for _, f := range st.Files {
		fmt.Fprintf(&b, "%-10s %s  %s", f.State, f.Path, humanize.IBytes(uint64(f.Size)))
		if f.PartsTotal > 0 {
			fmt.Fprintf(&b, "  parts %d/%d (%s)", f.PartsDone, f.PartsTotal, humanize.IBytes(uint64(f.BytesDone)))
		}
		if f.Attempts > 0 {
			fmt.Fprintf(&b, "  attempt %d", f.Attempts)
		}
		if f.NextAttempt != nil && f.State == control.StateRetrying {
			fmt.Fprintf(&b, "  next at %s", f.NextAttempt.Local().Format("15:04:05"))
		}
		if f.Error != "" {
			fmt.Fprintf(&b, "  %s", f.Error)
		}
		b.WriteString("\n")
	}
	if len(st.Refused) > 0 {
		b.WriteString("refused recently:\n")
		for _, r := range st.Refused {
			fmt.Fprintf(&b, "  %s %s: %s\n", r.Time.Local().Format("15:04:05"), r.Errno, r.Message)
		}
	}
	return b.String()
}

const retryUsage = `Usage: synfs retry PATH|--all

Uploads failed files again now (and retrying ones without waiting for their next
attempt): fix the cause first (permission, certification, a name taken by a folder).
PATH is a file (or a folder: every failed file under it) under the mount; "synID/name"
as status shows it works too.

Flags:
`

func cmdRetry(args []string) int {
	fl := newFlagSet("retry", retryUsage)
	all := fl.Bool("all", false, "every failed file of the mount (MOUNTPOINT may be given, or left out when there is one mount)")
	cacheDir := cacheDirFlag(fl)
	pos, code := parse(fl, args)
	if code >= 0 {
		return code
	}
	arg, code := oneArg(fl, pos, "PATH", !*all)
	if code >= 0 {
		return code
	}
	m, rel, err := mountOfPath(arg, *all, *cacheDir)
	if err != nil {
		return fail(exitNoMount, "%v", err)
	}
	resp, err := control.Call(m.CacheDir, control.Request{Op: control.OpRetry, Path: rel, All: *all})
	if err != nil {
		return fail(exitFailed, "retry: %v", err)
	}
	for _, p := range resp.Files {
		fmt.Println("retrying " + p)
	}
	if len(resp.Files) == 0 {
		fmt.Println("nothing to retry: no file failed")
	}
	return 0
}

const discardUsage = `Usage: synfs discard PATH

Deletes a failed or empty staged file from the cache: its bytes are gone and it will
never reach Synapse. Nothing staged is ever deleted otherwise. PATH is a file under
the mount (a folder: every failed or empty file under it), or "synID/name".

Flags:
`

func cmdDiscard(args []string) int {
	fl := newFlagSet("discard", discardUsage)
	cacheDir := cacheDirFlag(fl)
	arg, code := parseWithArg(fl, args, "PATH")
	if code >= 0 {
		return code
	}
	m, rel, err := mountOfPath(arg, false, *cacheDir)
	if err != nil {
		return fail(exitNoMount, "%v", err)
	}
	resp, err := control.Call(m.CacheDir, control.Request{Op: control.OpDiscard, Path: rel})
	if err != nil {
		return fail(exitFailed, "discard: %v", err)
	}
	for _, p := range resp.Files {
		fmt.Println("discarded " + p)
	}
	return 0
}

// mountOfPath finds the mount of a PATH argument, and the path to send:
// relative to the mount when PATH is under it, else PATH as given
// ("synID/name"). With all, PATH is an optional MOUNTPOINT.
func mountOfPath(arg string, all bool, cacheDir string) (control.Mount, string, error) {
	if all {
		m, err := findMount(arg, cacheDir)
		return m, "", err
	}
	if m, rel, err := control.Containing(arg); err == nil {
		if cacheDir != "" {
			m.CacheDir = cacheDir
		}
		if m.CacheDir == "" {
			return m, "", fmt.Errorf("the mount at %s does not name its cache directory: give --cache-dir", m.Dir)
		}
		return m, rel, nil
	}
	m, err := findMount("", cacheDir)
	return m, arg, err
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
