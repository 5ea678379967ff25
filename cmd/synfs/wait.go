package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/synfs/synfs/control"
)

const waitUsage = `Usage: synfs wait [MOUNTPOINT] [--timeout D]

Waits until every file staged when it started is in Synapse, with a progress bar on a
terminal (plain lines otherwise). Empty files are reported, not waited for (Synapse
refuses 0-byte files). MOUNTPOINT may be left out when there is one synfs mount.

Exit status: 0 all arrived; 1 some failed for good (listed with the reason); 2 usage;
3 the timeout passed; 4 no mount answers, or it stopped while waiting.

Flags:
`

func cmdWait(args []string) int {
	fl := newFlagSet("wait", waitUsage)
	timeout := fl.Duration("timeout", 0, "give up after `D` (e.g. 2h; default: no limit)")
	quiet := fl.Bool("q", false, "no progress, only the outcome")
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
	return waitFor(m.CacheDir, *timeout, *quiet)
}

// waitProgress shows how far a wait is: a bar on a terminal, plain lines
// every 10 s otherwise.
type waitProgress struct {
	p        *mpb.Progress
	bar      *mpb.Bar
	total    int
	arrived  int
	lastLine time.Time
	start    time.Time
	quiet    bool
}

func newWaitProgress(files int, bytes int64, quiet bool) *waitProgress {
	w := &waitProgress{total: files, start: time.Now(), lastLine: time.Now(), quiet: quiet}
	if quiet || !isTerminal(os.Stderr) || bytes == 0 {
		return w
	}
	if ws, err := unix.IoctlGetWinsize(int(os.Stderr.Fd()), unix.TIOCGWINSZ); err != nil || ws.Col == 0 {
		return w // a terminal without a size shows no bar: plain lines then
	}
	w.p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond))
	w.bar = w.p.AddBar(bytes,
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("%d/%d files", w.arrived, w.total)
		}, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), "done"),
		),
	)
	return w
}

func (w *waitProgress) update(arrived int, done, total int64) {
	w.arrived = arrived
	if w.bar != nil {
		w.bar.SetCurrent(min(done, total))
		return
	}
	if w.quiet || time.Since(w.lastLine) < 10*time.Second {
		return
	}
	w.lastLine = time.Now()
	line := fmt.Sprintf("synfs: %d/%d files, %s of %s", arrived, w.total, humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)))
	if secs := time.Since(w.start).Seconds(); secs > 0 && done > 0 {
		rate := float64(done) / secs
		line += fmt.Sprintf(", %s/s, about %s left", humanize.IBytes(uint64(rate)), (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second))
	}
	fmt.Fprintln(os.Stderr, line)
}

// println prints a line above the bar.
func (w *waitProgress) println(line string) {
	if w.p != nil {
		fmt.Fprintln(w.p, line)
		return
	}
	fmt.Fprintln(os.Stderr, line)
}

func (w *waitProgress) finish() {
	if w.bar != nil {
		w.bar.Abort(false)
		w.p.Wait()
	}
}

// waitFor waits for the files staged now to leave the cache (uploaded) or
// fail, and returns the exit code.
func waitFor(cacheDir string, timeout time.Duration, quiet bool) int {
	st, err := control.GetStatus(cacheDir)
	if err != nil {
		return fail(exitNoMount, "%v", err)
	}
	target := map[uint64]control.File{}
	var total int64
	var empty []control.File
	for _, f := range st.Files {
		if f.State == control.StateEmpty {
			empty = append(empty, f)
			continue
		}
		if f.State == control.StateLocal {
			continue // never uploaded, by its name: nothing to wait for
		}
		target[f.ID] = f
		total += f.Size
	}
	for _, f := range empty {
		fmt.Fprintf(os.Stderr, "synfs: not waiting for %s: it is empty, and Synapse refuses 0-byte files\n", f.Path)
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		deadline = time.After(timeout)
	}
	prog := newWaitProgress(len(target), total, quiet)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var failed []control.File
	reported := map[uint64]bool{}
	for {
		failed = failed[:0]
		arrived, pending := 0, 0
		var done int64
		cur := map[uint64]control.File{}
		for _, f := range st.Files {
			cur[f.ID] = f
		}
		for id, f := range target {
			c, staged := cur[id]
			switch {
			case !staged:
				arrived++
				done += f.Size
			case c.State == control.StateFailed:
				failed = append(failed, c)
				done += c.Size
			case c.State == control.StateEmpty || c.State == control.StateLocal:
				// found empty at its upload: reported, not waited for
				if !reported[id] {
					reported[id] = true
					prog.println(fmt.Sprintf("synfs: not waiting for %s: it is empty, and Synapse refuses 0-byte files", c.Path))
				}
				arrived++
			default:
				pending++
				done += c.BytesDone
			}
		}
		prog.update(arrived, done, total)
		if pending == 0 {
			break
		}
		select {
		case <-deadline:
			prog.finish()
			fmt.Fprintf(os.Stderr, "synfs: timed out after %v: %d of %d file(s) arrived; %d still to upload (synfs status lists them)\n", timeout, arrived, len(target), pending)
			return exitTimeout
		case <-tick.C:
		}
		if st, err = control.GetStatus(cacheDir); err != nil {
			prog.finish()
			if errors.Is(err, control.ErrNoMount) {
				return fail(exitNoMount, "the mount stopped while waiting: %d file(s) not in Synapse yet; they upload at the next mount", pending)
			}
			return fail(exitNoMount, "%v", err)
		}
	}
	prog.finish()
	if len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "synfs: %d of %d file(s) failed and are kept in the cache (fix the cause, then synfs retry PATH; or synfs discard PATH):\n", len(failed), len(target))
		for _, f := range failed {
			fmt.Fprintf(os.Stderr, "  %s: %s\n", f.Path, f.Error)
		}
		return exitFailed
	}
	if !quiet {
		fmt.Fprintf(os.Stderr, "synfs: all %d file(s) are in Synapse (%s)\n", len(target)-len(reported), humanize.IBytes(uint64(total)))
	}
	return exitOK
}

const unmountUsage = `Usage: synfs unmount MOUNTPOINT [--now]

Waits for every staged file to reach Synapse (with the progress of synfs wait), then
unmounts and stops the mount. With --now it unmounts at once: staged files stay in the
cache and upload at the next mount. A mount in use (a shell cd'd into it, an open file)
is not unmounted: the processes using it are listed.

Exit status: 0 unmounted; 1 some files failed (listed; not unmounted, unless --now);
2 usage; 3 timeout; 4 no mount answers; 5 the mount is busy.

Flags:
`

func cmdUnmount(args []string) int {
	fl := newFlagSet("unmount", unmountUsage)
	now := fl.Bool("now", false, "unmount at once; staged files upload at the next mount")
	timeout := fl.Duration("timeout", 0, "stop waiting for uploads after `D` (then do not unmount)")
	cacheDir := cacheDirFlag(fl)
	dir, code := parseWithArg(fl, args, "MOUNTPOINT")
	if code >= 0 {
		return code
	}
	m, err := findMount(dir, *cacheDir)
	if err != nil {
		return fail(exitNoMount, "%v", err)
	}
	st, err := control.GetStatus(m.CacheDir)
	if err != nil {
		return fail(exitNoMount, "%v", err)
	}
	if !*now {
		if code := waitFor(m.CacheDir, *timeout, false); code != exitOK {
			if code == exitFailed {
				fmt.Fprintf(os.Stderr, "synfs: not unmounted; use synfs unmount --now %s to unmount and keep the failed files for the next mount\n", dir)
			}
			return code
		}
	}
	resp, err := control.Call(m.CacheDir, control.Request{Op: control.OpUnmount})
	if resp != nil && resp.Busy {
		fmt.Fprintf(os.Stderr, "synfs: %s is busy, not unmounted: %s\n", st.Mountpoint, holdersText(st.Mountpoint))
		return exitBusy
	}
	if err != nil {
		return fail(exitFailed, "unmount: %v", err)
	}
	// The mount process stops after the unmount: wait for it, so that its
	// cache directory is free when this returns.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(st.PID) {
			break
		}
	}
	fmt.Fprintf(os.Stderr, "synfs: unmounted %s\n", st.Mountpoint)
	return 0
}

// alive reports whether process pid runs (a zombie does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
