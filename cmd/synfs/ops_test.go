package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/control"
	"github.com/synfs/synfs/remote/emulator"
	"github.com/synfs/synfs/remote/synapse"
)

const testToken = "tok-Zq81-secret-7731"

// emu serves an emulator seeded with the demo user (testToken) and returns
// it with its URL and the Data folder's ID.
func emu(t *testing.T) (*emulator.Server, string, string) {
	t.Helper()
	em, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	_, data, err := em.Seed(testToken)
	if err != nil {
		t.Fatal(err)
	}
	return em, srv.URL, data
}

func needFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

// running is a foreground synfs mount run by a test.
type running struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	mnt    string
	done   chan error
}

// startMount runs "synfs mount MNT ARGS" with the token in the environment
// and waits until it says it is mounted.
func startMount(t *testing.T, mnt, url, cacheDir string, args ...string) *running {
	t.Helper()
	args = append([]string{"mount", mnt, "--endpoint", url, "--config", "/dev/null", "--cache-dir", cacheDir}, args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "SYNAPSE_AUTH_TOKEN="+testToken)
	r := &running{cmd: cmd, stderr: &syncBuffer{}, mnt: mnt, done: make(chan error, 1)}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-r.done
		}
		exec.Command("fusermount3", "-u", "-z", mnt).Run()
	})
	deadline := time.After(30 * time.Second)
	for !strings.Contains(r.stderr.String(), "synfs: mounted") {
		select {
		case err := <-r.done:
			t.Fatalf("synfs mount exited (%v):\n%s", err, r.stderr.String())
		case <-deadline:
			t.Fatalf("not mounted after 30 s:\n%s", r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return r
}

// exited waits for the mount process to end and returns its error.
func (r *running) exited(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("synfs mount did not exit within 60 s:\n%s", r.stderr.String())
	}
	return nil
}

// sh runs a shell script in a child process (every syscall on a mount
// runs outside the test process), failing the test on error.
func sh(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// synfsOut runs the binary and returns its exit code, stdout and stderr.
func synfsOut(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("synfs %v did not exit within 90 s", args)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func statusJSON(t *testing.T, mnt string) control.Status {
	t.Helper()
	st := rawStatusJSON(t, mnt)
	if !st.Synapse.Online || st.Synapse.Text != "Synapse: online" {
		t.Errorf("status --json: synapse %+v, want online (the emulator is up)", st.Synapse)
	}
	return st
}

// rawStatusJSON is synfs status --json, whatever it says about Synapse.
func rawStatusJSON(t *testing.T, mnt string) control.Status {
	t.Helper()
	code, out, errOut := synfsOut(t, "status", mnt, "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, errOut)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

func childNames(em *emulator.Server, parent string) map[string]bool {
	out := map[string]bool{}
	for _, c := range em.Children(parent) {
		if !c.Trashed {
			out[c.Name] = true
		}
	}
	return out
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func TestHelpVersionUsage(t *testing.T) {
	for _, args := range [][]string{{"help", "wait"}, {"wait", "--help"}, {"help", "status"}, {"status", "-h"}, {"unmount", "--help"}, {"retry", "--help"}, {"discard", "--help"}, {"mount", "--help"}, {"annotate", "--help"}, {"help", "annotate"}, {"help"}, {"--help"}} {
		code, out, errOut := synfsOut(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("synfs %v: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", args, code, out, errOut)
		}
	}
	code, out, _ := synfsOut(t, "version")
	if code != 0 || !strings.HasPrefix(out, "synfs ") || !strings.Contains(out, "go1.") {
		t.Errorf("synfs version: exit %d, %q", code, out)
	}
	for _, c := range []struct{ args []string }{{[]string{"unmount"}}, {[]string{"discard"}}, {[]string{"retry"}}, {[]string{"mount"}}, {[]string{"annotate"}}} {
		code, out, errOut := synfsOut(t, c.args...)
		first, _, _ := strings.Cut(errOut, "\n")
		if code != 2 || out != "" || !strings.Contains(first, "missing") || !strings.Contains(errOut, "Usage: synfs "+c.args[0]) {
			t.Errorf("synfs %v: exit %d, stdout %q, stderr %q; want 2, one error line and the usage", c.args, code, out, errOut)
		}
	}
}

// wait: 0 when everything arrived, 1 with the failed files listed when one
// failed for good (its folder deleted in Synapse before its upload); retry
// queues it again; discard drops it.
func TestWaitFailedRetryDiscard(t *testing.T) {
	needFUSE(t)
	em, url, data := emu(t)
	doomed, err := em.CreateFolder(testToken, data, "Doomed")
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	r := startMount(t, mnt, url, t.TempDir(), "--writeback-delay", "2s")
	dir := filepath.Join(mnt, "Demo Project", "Data")
	sh(t, "printf hello > "+q(dir+"/ok.txt")+" && printf doomed > "+q(dir+"/Doomed/lost.txt")+" && printf kept > "+q(dir+"/Doomed/kept.txt")+" && : > "+q(dir+"/empty.txt"))
	// The folder goes before the 2 s delay ends and the upload starts.
	c, err := synapse.New(synapse.Config{RepoEndpoint: url + "/repo/v1", FileEndpoint: url + "/file/v1", AuthEndpoint: url + "/auth/v1", Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), doomed); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := synfsOut(t, "wait", mnt)
	if code != 1 || !strings.Contains(errOut, "/Demo Project/Data/Doomed/lost.txt: the target folder no longer exists") {
		t.Fatalf("wait: exit %d, stderr:\n%s\nwant 1 and the failed file with its reason", code, errOut)
	}
	if !strings.Contains(errOut, "not waiting for /Demo Project/Data/empty.txt: it is empty") {
		t.Errorf("wait did not report the empty file:\n%s", errOut)
	}
	if !childNames(em, data)["ok.txt"] {
		t.Errorf("ok.txt is not in Synapse after wait")
	}
	if !strings.Contains(r.stderr.String(), `msg="uploaded /Demo Project/Data/ok.txt" id=syn`) || !strings.Contains(r.stderr.String(), "upload failed for good: /Demo Project/Data/Doomed/lost.txt") {
		t.Errorf("the log lacks the per-file lines:\n%s", r.stderr.String())
	}
	st := statusJSON(t, mnt)
	var lost control.File
	for _, f := range st.Files {
		if f.Name == "lost.txt" {
			lost = f
		}
	}
	if lost.State != control.StateFailed || lost.Attempts != 1 || st.Totals.ByState["empty"] != 1 || st.Totals.UploadedFiles != 1 {
		t.Fatalf("status after the failure: %+v", st)
	}
	code, out, errOut := synfsOut(t, "retry", filepath.Join(dir, "Doomed", "lost.txt"))
	if code != 0 || !strings.Contains(out, "retrying /Demo Project/Data/Doomed/lost.txt") {
		t.Fatalf("retry: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := synfsOut(t, "wait", mnt); code != 1 {
		t.Fatalf("wait after retry: exit %d: %s", code, errOut)
	}
	for _, f := range statusJSON(t, mnt).Files {
		if f.Name == "lost.txt" && f.Attempts != 2 {
			t.Errorf("after retry: %d attempts, want 2 (retried once)", f.Attempts)
		}
	}
	if code, _, errOut := synfsOut(t, "discard", filepath.Join(dir, "ok.txt")); code == 0 {
		t.Errorf("discard of an uploaded file succeeded: %s", errOut)
	}
	code, out, errOut = synfsOut(t, "discard", filepath.Join(dir, "Doomed", "lost.txt"))
	if code != 0 || !strings.Contains(out, "discarded /Demo Project/Data/Doomed/lost.txt") {
		t.Fatalf("discard: exit %d, %q %q", code, out, errOut)
	}
	if st := statusJSON(t, mnt); st.Totals.Files != 2 || st.Totals.ByState["failed"] != 1 || st.Totals.ByState["empty"] != 1 {
		t.Errorf("after discard: %+v", st.Files)
	}
	if code, out, errOut := synfsOut(t, "retry", "--all", mnt); code != 0 || strings.TrimSpace(out) != "retrying /Demo Project/Data/Doomed/kept.txt" {
		t.Errorf("retry --all: exit %d, %q %q", code, out, errOut)
	}
	if code, _, _ := synfsOut(t, "wait", mnt); code != 1 {
		t.Errorf("wait after retry --all: exit %d, want 1", code)
	}
	// The shutdown message counts every staged file and names the failed
	// and empty ones.
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.exited(t)
	for _, want := range []string{
		"synfs: unmounted; 2 staged file(s) not in Synapse (1 failed, 1 empty)",
		"failed: /Demo Project/Data/Doomed/kept.txt: the target folder no longer exists",
		"empty (Synapse refuses 0-byte files; never uploaded): /Demo Project/Data/empty.txt",
	} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("shutdown message lacks %q:\n%s", want, r.stderr.String())
		}
	}
}

// wait --timeout gives up with exit 3 while uploads keep failing for a
// passing reason; status shows them retrying with the reason.
func TestWaitTimeout(t *testing.T) {
	needFUSE(t)
	em, url, _ := emu(t)
	em.AddFault(emulator.Fault{Method: "PUT", Route: "/s3/", Status: 503})
	mnt := t.TempDir()
	startMount(t, mnt, url, t.TempDir(), "--writeback-delay", "1ms")
	sh(t, "printf data > "+q(filepath.Join(mnt, "Demo Project", "Data", "slow.txt")))
	start := time.Now()
	code, _, errOut := synfsOut(t, "wait", mnt, "--timeout", "3s")
	if code != 3 || !strings.Contains(errOut, "timed out after 3s") {
		t.Fatalf("wait --timeout: exit %d, stderr %q; want 3", code, errOut)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("wait --timeout 3s took %v", d)
	}
	st := statusJSON(t, mnt)
	if len(st.Files) != 1 || st.Files[0].Path != "/Demo Project/Data/slow.txt" || st.Files[0].Attempts != 1 || st.Totals.BytesToGo != 4 {
		t.Errorf("status of a failing upload: %+v", st)
	}
	_, out, _ := synfsOut(t, "status", mnt)
	if !strings.Contains(out, "/Demo Project/Data/slow.txt  4 B  attempt 1") || !strings.Contains(out, "1 file(s) not in Synapse") {
		t.Errorf("status text:\n%s", out)
	}
}

// unmount waits for 40 staged files to reach Synapse, then unmounts; a busy
// mount is not unmounted and its users are named.
func TestUnmountDrains(t *testing.T) {
	needFUSE(t)
	em, url, data := emu(t)
	mnt := t.TempDir()
	r := startMount(t, mnt, url, t.TempDir(), "--writeback-delay", "1s")
	dir := filepath.Join(mnt, "Demo Project", "Data")
	sh(t, "for i in $(seq 1 40); do printf 'file %s' $i > "+q(dir)+"/f$i.txt; done")
	busy := exec.Command("sleep", "60")
	busy.Dir = dir
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := synfsOut(t, "unmount", mnt)
	busy.Process.Kill()
	busy.Wait()
	if code != 5 || !strings.Contains(errOut, "is busy") || !strings.Contains(errOut, "sleep (pid ") {
		t.Fatalf("unmount of a busy mount: exit %d, stderr %q; want 5 naming sleep", code, errOut)
	}
	if n := len(childNames(em, data)); n != 40 {
		t.Fatalf("after the drain %d files are in Synapse, want 40", n)
	}
	sh(t, "printf again > "+q(dir+"/late.txt"))
	code, _, errOut = synfsOut(t, "unmount", mnt)
	if code != 0 {
		t.Fatalf("unmount: exit %d: %s", code, errOut)
	}
	if err := r.exited(t); err != nil {
		t.Errorf("mount exit: %v", err)
	}
	if mounted(mnt) {
		t.Error("still mounted after synfs unmount")
	}
	if !childNames(em, data)["late.txt"] {
		t.Error("unmount did not wait for late.txt")
	}
	log := r.stderr.String()
	if n := strings.Count(log, `msg="uploaded /Demo Project/Data/`); n != 41 {
		t.Errorf("%d 'uploaded' log lines, want 41:\n%s", n, log)
	}
	if !strings.Contains(log, "synfs: unmounted; everything was uploaded") {
		t.Errorf("shutdown message:\n%s", log)
	}
}

// A second SIGINT detaches a busy mount at once.
func TestSecondInterruptForces(t *testing.T) {
	needFUSE(t)
	_, url, _ := emu(t)
	mnt := t.TempDir()
	r := startMount(t, mnt, url, t.TempDir())
	busy := exec.Command("sleep", "60")
	busy.Dir = filepath.Join(mnt, "Demo Project")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { busy.Process.Kill(); busy.Wait() }()
	r.cmd.Process.Signal(os.Interrupt)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stderr.String(), "is busy") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(r.stderr.String(), "sleep (pid ") {
		t.Fatalf("no busy message naming sleep:\n%s", r.stderr.String())
	}
	start := time.Now()
	r.cmd.Process.Signal(os.Interrupt)
	r.exited(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the second Ctrl-C took %v to stop synfs", d)
	}
	if mounted(mnt) {
		t.Error("still mounted after the second Ctrl-C")
	}
}

// --daemon returns once mounted, logs to the cache dir, and the token is
// nowhere: not in the log, status, JSON, the cache dir or the process list.
func TestDaemonAndTokenNowhere(t *testing.T) {
	needFUSE(t)
	em, url, data := emu(t)
	mnt, cacheDir := t.TempDir(), t.TempDir()
	code, stdout, stderr := func() (int, string, string) {
		cmd := exec.Command(binary, "mount", mnt, "--daemon", "-v", "--endpoint", url, "--config", "/dev/null", "--cache-dir", cacheDir, "--writeback-delay", "1ms")
		cmd.Env = append(os.Environ(), "SYNAPSE_AUTH_TOKEN="+testToken)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), o.String(), e.String()
			}
			return 0, o.String(), e.String()
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("mount --daemon did not return within 60 s")
		}
		return 0, "", ""
	}()
	t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", mnt).Run() })
	if code != 0 || !mounted(mnt) {
		t.Fatalf("mount --daemon: exit %d, mounted %v\n%s%s", code, mounted(mnt), stdout, stderr)
	}
	st := statusJSON(t, mnt)
	t.Cleanup(func() {
		if alive(st.PID) {
			syscall.Kill(st.PID, syscall.SIGKILL)
		}
	})
	if st.PID <= 0 || !strings.Contains(stderr, fmt.Sprintf("process %d", st.PID)) {
		t.Errorf("status pid %d; mount said %q", st.PID, stderr)
	}
	sh(t, "head -c 3000000 /dev/urandom > "+q(filepath.Join(mnt, "Demo Project", "Data", "big.bin"))+" && touch "+q(filepath.Join(mnt, "Demo Project", "Data", "bad|name"))+" || true")
	if code, _, errOut := synfsOut(t, "wait", mnt); code != 0 {
		t.Fatalf("wait: exit %d: %s", code, errOut)
	}
	if !childNames(em, data)["big.bin"] {
		t.Fatal("big.bin not in Synapse after wait")
	}
	// Everywhere the token could leak.
	var places []string
	_, text, _ := synfsOut(t, "status", mnt)
	_, js, _ := synfsOut(t, "status", mnt, "--json")
	if !strings.Contains(js, `"refused"`) || !strings.Contains(text, "invalid argument") {
		t.Errorf("the refused name is not in status:\n%s", text)
	}
	places = append(places, "status:"+text, "json:"+js, "mount output:"+stdout+stderr)
	for _, p := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", st.PID, p))
		if err != nil {
			t.Fatal(err)
		}
		places = append(places, p+":"+string(b))
	}
	ps, _ := exec.Command("ps", "-eo", "args").Output()
	places = append(places, "ps:"+string(ps))
	logb, err := os.ReadFile(filepath.Join(cacheDir, "synfs.log"))
	if err != nil || !strings.Contains(string(logb), "uploaded /Demo Project/Data/big.bin") {
		t.Errorf("log file: %v\n%s", err, logb)
	}
	filepath.Walk(cacheDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			places = append(places, p+":"+string(b))
		}
		return nil
	})
	for _, p := range places {
		if strings.Contains(p, testToken) {
			name, _, _ := strings.Cut(p, ":")
			t.Errorf("the token appears in %s", name)
		}
	}
	if fi, err := os.Stat(filepath.Join(cacheDir, "synfs.log")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(control.SocketPath(cacheDir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode: %v %v", fi, err)
	}
	if code, _, errOut := synfsOut(t, "unmount", mnt); code != 0 {
		t.Fatalf("unmount: exit %d: %s", code, errOut)
	}
	if mounted(mnt) || alive(st.PID) {
		t.Error("the daemon is still mounted or running after synfs unmount")
	}
	logb, _ = os.ReadFile(filepath.Join(cacheDir, "synfs.log"))
	if !strings.Contains(string(logb), "synfs: unmounted; everything was uploaded") {
		t.Errorf("the log lacks the shutdown message:\n%s", logb)
	}
}

// A daemon that cannot mount says why and exits non-zero.
func TestDaemonFailure(t *testing.T) {
	_, url, _ := emu(t)
	code, stderr := synfs(t, []string{"SYNAPSE_AUTH_TOKEN=wrong-token"}, "mount", t.TempDir(), "--daemon", "--endpoint", url, "--config", "/dev/null", "--cache-dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "Synapse refused the token") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// Staged files belong to one endpoint and user: another user or endpoint
// mounting the cache is refused and uploads nothing; a second mount of a
// cache in use is refused before the embedded emulator starts.
func TestStagedFilesBoundToEndpointAndUser(t *testing.T) {
	needFUSE(t)
	em, url, data := emu(t)
	em.AddUser("other", "other-token", true)
	mnt, cacheDir := t.TempDir(), t.TempDir()
	r := startMount(t, mnt, url, cacheDir, "--writeback-delay", "1h")
	sh(t, "printf mine > "+q(filepath.Join(mnt, "Demo Project", "Data", "mine.txt")))

	// In use: refused before the embedded emulator starts.
	code, stderr := synfs(t, nil, "mount", t.TempDir(), "--emulator", "--cache-dir", cacheDir)
	if code == 0 || !strings.Contains(stderr, "in use by another synfs") {
		t.Errorf("second mount: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "emulator")); err == nil {
		t.Error("the embedded emulator started for a cache in use")
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.exited(t)
	if !strings.Contains(r.stderr.String(), "1 staged file(s) not in Synapse (1 dirty); 1 upload when synfs mounts with --cache-dir "+cacheDir) {
		t.Errorf("shutdown message:\n%s", r.stderr.String())
	}

	// Another user on the same endpoint.
	code, stderr = synfs(t, []string{"SYNAPSE_AUTH_TOKEN=other-token"}, "mount", t.TempDir(), "--endpoint", url, "--config", "/dev/null", "--cache-dir", cacheDir, "--writeback-delay", "1ms")
	if code == 0 || !strings.Contains(stderr, "holds 1 staged file(s)") || !strings.Contains(stderr, "user demo") || !strings.Contains(stderr, "not for user other") {
		t.Errorf("another user: exit %d, %q", code, stderr)
	}
	// Another endpoint (the embedded emulator).
	code, stderr = synfs(t, nil, "mount", t.TempDir(), "--emulator", "--cache-dir", cacheDir, "--writeback-delay", "1ms")
	if code == 0 || !strings.Contains(stderr, "holds 1 staged file(s)") || !strings.Contains(stderr, "embedded emulator") {
		t.Errorf("another endpoint: exit %d, %q", code, stderr)
	}
	if childNames(em, data)["mine.txt"] {
		t.Fatal("mine.txt was uploaded by a mismatched mount")
	}
	// The right one uploads it.
	mnt2 := t.TempDir()
	startMount(t, mnt2, url, cacheDir, "--writeback-delay", "1ms")
	if code, _, errOut := synfsOut(t, "wait", mnt2); code != 0 || !childNames(em, data)["mine.txt"] {
		t.Errorf("wait by the owner: exit %d: %s", code, errOut)
	}
}

// A dead synfs mount (its process killed) is cleaned up by the next mount.
func TestStaleMountCleanedUp(t *testing.T) {
	needFUSE(t)
	_, url, _ := emu(t)
	mnt, cacheDir := t.TempDir(), t.TempDir()
	r := startMount(t, mnt, url, cacheDir)
	r.cmd.Process.Kill()
	r.exited(t)
	// statfs, as prepareMountpoint looks: the kernel may answer a stat of
	// the dead mount's root from its attribute cache.
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after kill -9, statfs gives %v; want a dead mount", err)
	}
	r2 := startMount(t, mnt, url, cacheDir)
	if !strings.Contains(r2.stderr.String(), "cleaned up a dead synfs mount at "+mnt) {
		t.Errorf("no cleanup message:\n%s", r2.stderr.String())
	}
}

// mount -t fuse "BINARY#synfs" MNT -o synfs options: mount(8) runs synfs
// through mount.fuse3, which waits for it; synfs mounts as a daemon.
func TestMountCommandHelper(t *testing.T) {
	needFUSE(t)
	if _, err := exec.LookPath("mount.fuse3"); err != nil {
		if _, err := os.Stat("/sbin/mount.fuse3"); err != nil {
			t.Skip("no mount.fuse3")
		}
	}
	if os.Getuid() != 0 {
		t.Skip("mount(8) of a FUSE type needs root here")
	}
	em, url, data := emu(t)
	mnt, cacheDir := t.TempDir(), t.TempDir()
	cmd := exec.Command("mount", "-t", "fuse", binary+"#synfs", mnt, "-o",
		"endpoint="+url+",config=/dev/null,cache-dir="+cacheDir+",writeback-delay=1ms,noauto,_netdev")
	cmd.Env = append(os.Environ(), "SYNAPSE_AUTH_TOKEN="+testToken)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", mnt).Run() })
	if err != nil || !mounted(mnt) {
		t.Fatalf("mount -t fuse: %v, mounted %v\n%s", err, mounted(mnt), out)
	}
	sh(t, "printf x > "+q(filepath.Join(mnt, "Demo Project", "Data", "via-mount.txt")))
	if code, _, errOut := synfsOut(t, "unmount", mnt); code != 0 {
		t.Fatalf("unmount: exit %d: %s", code, errOut)
	}
	if !childNames(em, data)["via-mount.txt"] || mounted(mnt) {
		t.Error("the file did not arrive, or the mount stayed")
	}
	if code, _, errOut := synfsOut(t, "synfs", mnt, "-o", "rw,bogus=1"); code != 2 || !strings.Contains(errOut, `"bogus=1" is not a synfs option`) {
		t.Errorf("unknown option: exit %d, %q", code, errOut)
	}
}

func TestHelperArgs(t *testing.T) {
	got, err := helperArgs([]string{"syn123", "/mnt", "-o", "rw,nosuid,nodev,cache-dir=/c,allow_other,v,writeback-delay=1s,x-systemd.automount"})
	want := "/mnt --daemon --root syn123 --cache-dir /c --allow-other --v --writeback-delay 1s"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("helperArgs = %q, %v; want %q", strings.Join(got, " "), err, want)
	}
	if isHelperForm([]string{"statsu", "/mnt"}) {
		t.Error("a mistyped command with an argument would mount")
	}
}

// unmount --now does not wait: staged files stay for the next mount, which
// uploads them. --log-file takes the log; status --watch repeats.
func TestUnmountNowLogFileWatch(t *testing.T) {
	needFUSE(t)
	em, url, data := emu(t)
	mnt, cacheDir := t.TempDir(), t.TempDir()
	logFile := filepath.Join(t.TempDir(), "synfs.log")
	r := startMount(t, mnt, url, cacheDir, "--writeback-delay", "1h", "--log-file", logFile)
	dir := filepath.Join(mnt, "Demo Project", "Data")
	sh(t, "mkdir "+q(dir+"/new")+" && printf later > "+q(dir+"/new/later.txt"))

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	out, _ := exec.CommandContext(ctx, binary, "status", mnt, "--watch", "--interval", "100ms").Output()
	if n := strings.Count(string(out), "synfs at "+mnt); n < 3 || !strings.Contains(string(out), "dirty      /Demo Project/Data/new/later.txt") {
		t.Errorf("status --watch drew %d statuses in 1.5 s:\n%s", n, out)
	}

	start := time.Now()
	if code, _, errOut := synfsOut(t, "unmount", "--now", mnt); code != 0 {
		t.Fatalf("unmount --now: exit %d: %s", code, errOut)
	}
	if d := time.Since(start); d > 20*time.Second || mounted(mnt) {
		t.Fatalf("unmount --now took %v, mounted %v", d, mounted(mnt))
	}
	r.exited(t)
	if names := em.Children(data); len(names) != 1 || len(em.Children(names[0].ID)) != 0 {
		t.Fatalf("something was uploaded before unmount --now: %+v", names)
	}
	if !strings.Contains(r.stderr.String(), "1 staged file(s) not in Synapse (1 dirty)") {
		t.Errorf("shutdown message:\n%s", r.stderr.String())
	}
	b, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(b), "created folder /Demo Project/Data/new") {
		t.Errorf("--log-file: %v\n%s", err, b)
	}
	if strings.Contains(r.stderr.String(), "created folder") {
		t.Error("the log went to stderr despite --log-file")
	}
	mnt2 := t.TempDir()
	startMount(t, mnt2, url, cacheDir, "--writeback-delay", "1ms")
	if code, _, errOut := synfsOut(t, "wait", mnt2); code != 0 {
		t.Fatalf("wait after remount: exit %d: %s", code, errOut)
	}
	if names := em.Children(data); len(names) != 1 || len(em.Children(names[0].ID)) != 1 {
		t.Errorf("later.txt not uploaded at the next mount")
	}
}

// Without --cache-dir, each endpoint and user gets its own cache directory.
func TestDefaultCacheDirPerEndpointUser(t *testing.T) {
	needFUSE(t)
	em, url, _ := emu(t)
	otherID := em.AddUser("other", "other-token", true)
	xdg := t.TempDir()
	host := strings.ReplaceAll(strings.TrimPrefix(url, "http://"), ":", "_")
	for _, c := range []struct{ token, want string }{
		{testToken, ""},
		{"other-token", filepath.Join(xdg, "synfs", host+"-"+otherID)},
	} {
		mnt := t.TempDir()
		cmd := exec.Command(binary, "mount", mnt, "--daemon", "--endpoint", url, "--config", "/dev/null")
		cmd.Env = append(os.Environ(), "SYNAPSE_AUTH_TOKEN="+c.token, "XDG_CACHE_HOME="+xdg)
		out, err := cmd.CombinedOutput()
		t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", mnt).Run() })
		if err != nil {
			t.Fatalf("mount --daemon: %v\n%s", err, out)
		}
		st := statusJSON(t, mnt)
		want := c.want
		if want == "" {
			want = filepath.Join(xdg, "synfs", host+"-"+st.UserID)
		}
		if st.CacheDir != want {
			t.Errorf("user %s: cache dir %s, want %s", st.User, st.CacheDir, want)
		}
		if code, _, errOut := synfsOut(t, "unmount", "--now", mnt); code != 0 {
			t.Fatalf("unmount: %d %s", code, errOut)
		}
	}
}

// A cache from a synfs that recorded no owner, with a staged file, is
// refused until --adopt-staged says whose the file is.
func TestAdoptStaged(t *testing.T) {
	needFUSE(t)
	em, url, data := emu(t)
	cacheDir := t.TempDir()
	s, err := cache.Open(cache.Options{Dir: filepath.Join(cacheDir, "stage")})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Create(data, "old.txt", "", "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFile(rec.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(context.Background(), []byte("from before"), 0); err != nil {
		t.Fatal(err)
	}
	f.Release()
	s.Close()

	code, stderr := synfs(t, []string{"SYNAPSE_AUTH_TOKEN=" + testToken}, "mount", t.TempDir(), "--endpoint", url, "--config", "/dev/null", "--cache-dir", cacheDir, "--writeback-delay", "1ms")
	if code == 0 || !strings.Contains(stderr, "did not record which Synapse") || !strings.Contains(stderr, "--adopt-staged") {
		t.Fatalf("unowned cache: exit %d, %q", code, stderr)
	}
	if childNames(em, data)["old.txt"] {
		t.Fatal("uploaded before it was adopted")
	}
	mnt := t.TempDir()
	r := startMount(t, mnt, url, cacheDir, "--writeback-delay", "1ms", "--adopt-staged")
	if code, _, errOut := synfsOut(t, "wait", mnt); code != 0 || !childNames(em, data)["old.txt"] {
		t.Fatalf("wait after adopting: exit %d: %s", code, errOut)
	}
	if !strings.Contains(r.stderr.String(), "adopting 1 staged file(s)") {
		t.Errorf("no adoption line:\n%s", r.stderr.String())
	}
}
