package fs_test

import (
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote/emulator"
)

// downServer makes srv unreachable as a dead route or a stopped Synapse is:
// nothing listens on its port any more (dials are refused) and the
// connections it had are cut.
func downServer(t *testing.T, srv *httptest.Server) {
	t.Helper()
	srv.Listener.Close()
	srv.CloseClientConnections()
}

// upServer serves again on the port downServer closed.
func upServer(t *testing.T, srv *httptest.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("listen again on %s: %v", srv.Listener.Addr(), err)
	}
	srv.Listener = ln // closed by srv.Close at cleanup
	go srv.Config.Serve(ln)
}

// timed runs fn and fails the test when it takes longer than limit.
func timed(t *testing.T, limit time.Duration, what string, fn func()) time.Duration {
	t.Helper()
	start := time.Now()
	fn()
	d := time.Since(start)
	t.Logf("%s: %v", what, d.Round(time.Microsecond))
	if d > limit {
		t.Errorf("%s took %v, want at most %v", what, d.Round(time.Millisecond), limit)
	}
	return d
}

// quick runs op in a child process, like child, and fails the test when
// its syscalls took longer than limit (the process start is not counted).
func quick(t *testing.T, limit time.Duration, what, op, a, b string) (childResult, error) {
	t.Helper()
	res, err := child(t, op, a, b, nil)
	t.Logf("%s: %v", what, res.Took.Round(time.Microsecond))
	if res.Took > limit {
		t.Errorf("%s took %v, want at most %v", what, res.Took.Round(time.Millisecond), limit)
	}
	return res, err
}

// With Synapse stopped, the mount goes on: a copy into a known folder, ls
// and stat of known entries return within a second from what the mount
// knows, even with Synapse's own retry schedule (minutes of retries per
// call); what the mount never saw and what only Synapse can do fail at once
// with ENOTCONN. The status says so, uploads wait without burning attempts,
// and once Synapse is back everything arrives once.
func TestOfflineStagingAndBrowsing(t *testing.T) {
	e := newEnv(t, envOptions{prodRetries: true})
	old := pattern(100<<10, 1)
	if err := put(t, filepath.Join(e.data, "old.bin"), old); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	if err := xMkdir(t, filepath.Join(e.data, "seen")); err != nil {
		t.Fatal(err)
	}
	// A folder made elsewhere: listed in Data, never opened by the mount.
	other := e.newClient(demoToken)
	if _, err := other.CreateFolder(t.Context(), e.folder, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "elsewhere in the listing", func() bool {
		names, err := xReadDir(t, e.data)
		return err == nil && strings.Contains(strings.Join(names, "/"), "elsewhere")
	})
	if st, err := xStat(t, filepath.Join(e.data, "old.bin")); err != nil || st.Size != int64(len(old)) {
		t.Fatalf("stat old.bin online: %v, size %d", err, st.Size)
	}
	if err := xSetxattr(t, filepath.Join(e.data, "old.bin"), "user.kind", "raw"); err != nil {
		t.Fatal(err)
	}
	if v, err := xGetxattr(t, filepath.Join(e.data, "old.bin"), "user.kind"); err != nil || v != "raw" {
		t.Fatalf("getfattr online: %q, %v", v, err)
	}

	downServer(t, e.srv)
	_, err := quick(t, time.Second, "ls of a folder never listed", "readdir", filepath.Join(e.data, "elsewhere"), "")
	if errnoOf(err) != syscall.ENOTCONN {
		t.Fatalf("ls of a never-listed folder offline: got %v, want ENOTCONN", err)
	}
	if e.conn.Online() {
		t.Fatal("the mount did not notice that Synapse is unreachable")
	}
	// Let the cached listings and permissions expire (the test mount's
	// metadata TTL is 1 s), so that answers must come from the last known.
	time.Sleep(1200 * time.Millisecond)

	big := pattern(3<<20, 2)
	timed(t, time.Second, "cp of 3 MB into a known folder", func() {
		if err := put(t, filepath.Join(e.data, "big.bin"), big); err != nil {
			t.Error(err)
		}
	})
	if err := put(t, filepath.Join(e.data, "tmp.bin"), []byte("staged, then renamed and removed")); err != nil {
		t.Fatal(err)
	}
	if _, err := quick(t, time.Second, "mv of a staged file", "rename", filepath.Join(e.data, "tmp.bin"), filepath.Join(e.data, "seen", "tmp2.bin")); err != nil {
		t.Errorf("mv of a staged file offline: %v", err)
	}
	if _, err := quick(t, time.Second, "rm of a staged file", "remove", filepath.Join(e.data, "seen", "tmp2.bin"), ""); err != nil {
		t.Errorf("rm of a staged file offline: %v", err)
	}
	small := pattern(10<<10, 3)
	timed(t, time.Second, "cp into a folder made during this mount", func() {
		if err := put(t, filepath.Join(e.data, "seen", "a.bin"), small); err != nil {
			t.Error(err)
		}
	})
	res, err := quick(t, time.Second, "ls of a known folder", "readdir", e.data, "")
	if err != nil {
		t.Error(err)
	}
	if got := strings.Join(res.Names, " "); !strings.Contains(got, "big.bin") || !strings.Contains(got, "old.bin") ||
		!strings.Contains(got, "seen") || !strings.Contains(got, "elsewhere") {
		t.Errorf("ls offline: got %q, want big.bin, elsewhere, old.bin, seen", got)
	}
	for name, size := range map[string]int{"old.bin": len(old), "big.bin": len(big)} {
		st, err := quick(t, time.Second, "stat of "+name, "stat", filepath.Join(e.data, name), "")
		if err != nil || st.Size != int64(size) {
			t.Errorf("stat %s offline: %v, size %d, want %d", name, err, st.Size, size)
		}
	}
	if _, err := quick(t, time.Second, "stat of a known folder", "stat", filepath.Join(e.data, "elsewhere"), ""); err != nil {
		t.Errorf("stat of a known folder offline: %v", err)
	}
	for name, want := range map[string]string{"user.kind": "raw", "user.synapse.id": e.remoteFile(e.folder, "old.bin").ID} {
		res, err := quick(t, time.Second, "getfattr "+name, "getxattr", filepath.Join(e.data, "old.bin"), name)
		if err != nil || string(res.Data) != want {
			t.Errorf("getfattr %s offline: %q, %v; want %q", name, res.Data, err, want)
		}
	}
	for _, c := range []struct{ what, op, a, b string }{
		{"rm of an uploaded file", "remove", filepath.Join(e.data, "old.bin"), ""},
		{"mv of an uploaded file", "rename", filepath.Join(e.data, "old.bin"), filepath.Join(e.data, "o.bin")},
		{"reading content never cached", "read", filepath.Join(e.data, "old.bin"), ""},
		{"stat of a name in an unseen folder", "stat", filepath.Join(e.data, "elsewhere", "x"), ""},
	} {
		if _, err := quick(t, time.Second, c.what, c.op, c.a, c.b); errnoOf(err) != syscall.ENOTCONN {
			t.Errorf("%s offline: got %v, want ENOTCONN", c.what, err)
		}
	}
	status, err := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	if err != nil || !strings.Contains(string(status), "Synapse: offline since") || !strings.Contains(string(status), "uploads paused") {
		t.Errorf("status offline: %v\n%s", err, status)
	}
	// The uploads wait: no attempts burnt, no backoff built up.
	waitFor(t, 10*time.Second, "the uploads paused", e.fl.Paused)
	time.Sleep(300 * time.Millisecond) // several probe intervals: nothing may start meanwhile
	for _, s := range e.fl.Status() {
		if s.Attempts > 1 || (s.Queued && s.Queue.String() == "backoff") {
			t.Errorf("%s offline: %d attempts, queue %v; want at most 1 and no backoff", s.Name, s.Attempts, s.Queue)
		}
	}

	upServer(t, e.srv)
	waitFor(t, 10*time.Second, "the mount to see Synapse again", e.conn.Online)
	e.drain(time.Minute)
	if got := e.remoteFile(e.folder, "big.bin"); got.Versions[len(got.Versions)-1].MD5 != md5hex(big) {
		t.Errorf("big.bin: got MD5 %s, want %s", got.Versions[len(got.Versions)-1].MD5, md5hex(big))
	}
	seen := e.remoteFile(e.folder, "seen")
	if got := e.remoteFile(seen.ID, "a.bin"); got.Versions[len(got.Versions)-1].MD5 != md5hex(small) {
		t.Errorf("seen/a.bin: got MD5 %s, want %s", got.Versions[len(got.Versions)-1].MD5, md5hex(small))
	}
	e.remoteFile(e.folder, "old.bin") // still there, once
	for _, c := range append(e.em.Children(e.folder), e.em.Children(seen.ID)...) {
		if strings.HasPrefix(c.Name, "tmp") {
			t.Errorf("%s reached Synapse; it was removed while staged", c.Name)
		}
	}
	status, _ = xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	if !strings.Contains(string(status), "Synapse: online") {
		t.Errorf("status once back: %s", status)
	}
}

// Online but slow: no listing or stat waits longer than RemoteWait; the
// answer comes from what is known, and what was never seen fails with
// EAGAIN rather than waiting.
func TestSlowSynapseAnswersFromWhatIsKnown(t *testing.T) {
	e := newEnv(t, envOptions{remoteWait: 300 * time.Millisecond})
	b := pattern(20<<10, 4)
	if err := put(t, filepath.Join(e.data, "f.bin"), b); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	if _, err := e.newClient(demoToken).CreateFolder(t.Context(), e.folder, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "elsewhere in the listing", func() bool {
		names, err := xReadDir(t, e.data)
		return err == nil && strings.Contains(strings.Join(names, "/"), "elsewhere")
	})
	if st, err := xStat(t, filepath.Join(e.data, "f.bin")); err != nil || st.Size != int64(len(b)) {
		t.Fatalf("stat online: %v size %d", err, st.Size)
	}
	remove := e.em.AddFault(emulator.Fault{Route: "*", Latency: 10 * time.Second})
	defer remove()
	time.Sleep(1200 * time.Millisecond) // let the cached listing expire (TTL 1 s)
	res, err := quick(t, time.Second, "ls of a known folder on a slow Synapse", "readdir", e.data, "")
	if err != nil || !strings.Contains(strings.Join(res.Names, " "), "f.bin") {
		t.Errorf("ls slow: %v %v", res.Names, err)
	}
	res, err = quick(t, time.Second, "stat of a known file on a slow Synapse", "stat", filepath.Join(e.data, "f.bin"), "")
	if err != nil || res.Size != int64(len(b)) {
		t.Errorf("stat slow: %v size %d", err, res.Size)
	}
	_, err = quick(t, time.Second, "ls of a never-listed folder on a slow Synapse", "readdir", filepath.Join(e.data, "elsewhere"), "")
	if errnoOf(err) != syscall.EAGAIN {
		t.Errorf("ls of a never-listed folder, slow: got %v, want EAGAIN", err)
	}
	// mkdir does not wait either: past the bound the folder is staged, and
	// the create that went on is adopted, not repeated.
	if _, err := quick(t, 2*time.Second, "mkdir on a slow Synapse", "mkdir", filepath.Join(e.data, "slowdir"), ""); err != nil {
		t.Fatalf("mkdir slow: %v", err)
	}
	if !e.conn.Online() {
		t.Error("a slow Synapse counted as unreachable")
	}
	remove()
	waitFor(t, time.Minute, "the staged folder created", func() bool { return len(e.fl.Folders()) == 0 })
	e.remoteFile(e.folder, "slowdir") // exactly one
}

// kill -9 while offline with staged files and folders, remount while still
// offline (then Synapse returns) or once Synapse is back: every file
// arrives once, intact, in its folder.
func TestKillNineWhileOffline(t *testing.T) {
	t.Run("remountOffline", func(t *testing.T) { killNineWhileOffline(t, true) })
	t.Run("remountOnline", func(t *testing.T) { killNineWhileOffline(t, false) })
}

func killNineWhileOffline(t *testing.T, remountOffline bool) {
	requireFUSE(t)
	em, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	t.Cleanup(func() { srv.Close(); em.Close() })
	_, folder, err := em.Seed(demoToken)
	if err != nil {
		t.Fatal(err)
	}
	cacheDir, mnt := t.TempDir(), t.TempDir()
	d := startDaemon(t, srv.URL, cacheDir, mnt)
	data := filepath.Join(mnt, "Demo Project", "Data")
	if err := xMkdir(t, filepath.Join(data, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, err := xReadDir(t, data); err != nil {
		t.Fatal(err)
	}

	downServer(t, srv)
	want := map[string][]byte{}
	for i := range 5 {
		name := "f" + itoa(i) + ".bin"
		want[name] = pattern(200<<10+i, byte(10+i))
		dir := data
		if i%2 == 1 {
			dir = filepath.Join(data, "sub")
		}
		if err := put(t, filepath.Join(dir, name), want[name]); err != nil {
			t.Fatalf("cp %s offline: %v", name, err)
		}
	}
	// Folders made offline, with files, nested.
	deeper := filepath.Join(data, "newdir", "deeper")
	if err := xMkdirAll(t, deeper); err != nil {
		t.Fatalf("mkdir -p offline: %v", err)
	}
	g, h := pattern(30<<10, 20), pattern(40<<10, 21)
	if err := put(t, filepath.Join(data, "newdir", "g.bin"), g); err != nil {
		t.Fatal(err)
	}
	if err := put(t, filepath.Join(deeper, "h.bin"), h); err != nil {
		t.Fatal(err)
	}
	d.kill9(t)

	if remountOffline {
		// Remount while Synapse is still down: the staged files wait.
		d = startDaemon(t, srv.URL, cacheDir, mnt)
		status, err := os.ReadFile(filepath.Join(mnt, ".synfs", "status"))
		if err != nil || !strings.Contains(string(status), "Synapse: offline") || !strings.Contains(string(status), "staged files: 7") {
			t.Errorf("status after an offline remount: %v\n%s", err, status)
		}
		upServer(t, srv)
	} else {
		upServer(t, srv)
		d = startDaemon(t, srv.URL, cacheDir, mnt)
	}
	var sub string
	for _, c := range em.Children(folder) {
		if c.Name == "sub" {
			sub = c.ID
		}
	}
	if sub == "" {
		t.Fatal("sub was not created online")
	}
	inFolder := func(i int) string {
		if i%2 == 1 {
			return sub
		}
		return folder
	}
	waitFor(t, 2*time.Minute, "every staged file in Synapse", func() bool {
		for i := range 5 {
			found := false
			for _, c := range em.Children(inFolder(i)) {
				found = found || c.Name == "f"+itoa(i)+".bin"
			}
			if !found {
				return false
			}
		}
		return true
	})
	var newdir emulator.EntityInfo
	waitFor(t, time.Minute, "the folders made offline, and their files, in Synapse", func() bool {
		n := 0
		for _, c := range em.Children(folder) {
			if c.Name == "newdir" {
				newdir, n = c, n+1
			}
		}
		if n != 1 {
			return n > 1 // more than one fails below
		}
		got := map[string]string{}
		for _, c := range em.Children(newdir.ID) {
			got[c.Name] = c.ID
		}
		if got["g.bin"] == "" || got["deeper"] == "" {
			return false
		}
		for _, c := range em.Children(got["deeper"]) {
			if c.Name == "h.bin" {
				return true
			}
		}
		return false
	})
	d.stop(t)
	count := map[string]int{}
	for _, c := range em.Children(folder) {
		count[c.Name]++
	}
	var deeperID string
	for _, c := range em.Children(newdir.ID) {
		count["newdir/"+c.Name]++
		if c.Name == "g.bin" && c.Versions[len(c.Versions)-1].MD5 != md5hex(g) {
			t.Error("newdir/g.bin: wrong content")
		}
		if c.Name == "deeper" {
			deeperID = c.ID
		}
	}
	for _, c := range em.Children(deeperID) {
		count["deeper/"+c.Name]++
		if c.Name == "h.bin" && c.Versions[len(c.Versions)-1].MD5 != md5hex(h) {
			t.Error("newdir/deeper/h.bin: wrong content")
		}
	}
	for _, name := range []string{"newdir", "newdir/g.bin", "newdir/deeper", "deeper/h.bin"} {
		if count[name] != 1 {
			t.Errorf("%s: %d entities, want 1", name, count[name])
		}
	}
	for i := range 5 {
		name := "f" + itoa(i) + ".bin"
		n := 0
		for _, c := range em.Children(inFolder(i)) {
			if c.Name != name {
				continue
			}
			n++
			if v := c.Versions[len(c.Versions)-1]; v.MD5 != md5hex(want[name]) || len(c.Versions) != 1 {
				t.Errorf("%s: got MD5 %s in %d versions, want %s in 1", name, v.MD5, len(c.Versions), md5hex(want[name]))
			}
		}
		if n != 1 {
			t.Errorf("%s: %d entities, want 1", name, n)
		}
	}
}

// Folders made while Synapse is stopped: mkdir and cp -r of a tree with new
// subfolders work at local speed; renames and removals made meanwhile are
// honoured; when Synapse is back each folder is created once, before the
// files inside it, and every file arrives once in its folder.
func TestOfflineFolders(t *testing.T) {
	e := newEnv(t, envOptions{prodRetries: true})
	if _, err := xReadDir(t, e.data); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tree")
	want := map[string][]byte{} // path under tree → bytes
	for i := range 40 {
		rel := "f" + itoa(i) + ".txt"
		switch i % 3 {
		case 1:
			rel = filepath.Join("a", rel)
		case 2:
			rel = filepath.Join("b", rel)
		}
		want[rel] = pattern(4<<10+i, byte(i))
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, rel), want[rel], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local := timed(t, time.Minute, "cp -r to a local dir", func() { cpR(t, src, filepath.Join(t.TempDir(), "tree")) })

	downServer(t, e.srv)
	// Any syscall that needs Synapse shows the mount that it is gone: once
	// Data's cached listing expires (1 s), a lookup in it does.
	waitFor(t, 10*time.Second, "the mount to see Synapse stopped", func() bool {
		xStat(t, filepath.Join(e.data, "nowhere-seen"))
		return !e.conn.Online()
	})

	took := timed(t, 5*time.Second, "cp -r of 40 files in 3 new folders offline", func() { cpR(t, src, filepath.Join(e.data, "tree")) })
	t.Logf("cp -r of 40 files, 3 new folders: offline %v, to a local dir %v", took.Round(time.Millisecond), local.Round(time.Millisecond))

	if _, err := quick(t, time.Second, "mkdir offline", "mkdir", filepath.Join(e.data, "ren"), ""); err != nil {
		t.Fatal(err)
	}
	if err := put(t, filepath.Join(e.data, "ren", "in.bin"), []byte("renamed folder's file")); err != nil {
		t.Fatal(err)
	}
	if _, err := quick(t, time.Second, "rename of a staged folder", "rename", filepath.Join(e.data, "ren"), filepath.Join(e.data, "ren2")); err != nil {
		t.Fatal(err)
	}
	if err := xSetxattr(t, filepath.Join(e.data, "ren2"), "user.k", "v"); errnoOf(err) != syscall.EBUSY {
		t.Errorf("setfattr on a staged folder: got %v, want EBUSY", err)
	}
	if err := xMkdir(t, filepath.Join(e.data, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := xMkdir(t, filepath.Join(e.data, "gone")); errnoOf(err) != syscall.EEXIST {
		t.Fatalf("mkdir of a staged name again: got %v, want EEXIST", err)
	}
	if err := xRemove(t, filepath.Join(e.data, "ren2")); errnoOf(err) != syscall.ENOTEMPTY {
		t.Fatalf("rmdir of a staged folder with a file: got %v, want ENOTEMPTY", err)
	}
	if err := xRemove(t, filepath.Join(e.data, "gone")); err != nil {
		t.Fatalf("rmdir of an empty staged folder: %v", err)
	}
	names, err := xReadDir(t, e.data)
	if got := strings.Join(names, " "); err != nil || !strings.Contains(got, "tree") || !strings.Contains(got, "ren2") ||
		strings.Contains(got, "gone") || strings.Contains(got, "ren ") {
		t.Fatalf("ls offline: %q %v", got, err)
	}
	f1 := filepath.Join("a", "f"+itoa(1)+".txt")
	if got, err := xReadFile(t, filepath.Join(e.data, "tree", f1)); err != nil || string(got) != string(want[f1]) {
		t.Fatalf("read back a staged file in a staged folder: %v", err)
	}
	status, _ := xReadFile(t, filepath.Join(e.mnt, ".synfs", "status"))
	if !strings.Contains(string(status), "folder") || !strings.Contains(string(status), "/tree/a/") {
		t.Errorf("status offline lists no staged folders:\n%s", status)
	}

	upServer(t, e.srv)
	waitFor(t, 10*time.Second, "the mount to see Synapse again", e.conn.Online)
	e.drain(time.Minute)
	waitFor(t, 30*time.Second, "every staged folder created", func() bool { return len(e.fl.Folders()) == 0 })

	tree := e.remoteFile(e.folder, "tree")
	ids := map[string]string{".": tree.ID, "a": e.remoteFile(tree.ID, "a").ID, "b": e.remoteFile(tree.ID, "b").ID}
	for rel, b := range want {
		got := e.remoteFile(ids[filepath.Dir(rel)], filepath.Base(rel))
		if v := got.Versions[len(got.Versions)-1]; v.MD5 != md5hex(b) || len(got.Versions) != 1 {
			t.Errorf("%s: got MD5 %s in %d versions, want %s in 1", rel, v.MD5, len(got.Versions), md5hex(b))
		}
	}
	if n := len(e.em.Children(tree.ID)); n != 14+2 {
		t.Errorf("tree holds %d entities, want 16", n)
	}
	ren := e.remoteFile(e.folder, "ren2")
	e.remoteFile(ren.ID, "in.bin")
	for _, c := range e.em.Children(e.folder) {
		if c.Name == "ren" || c.Name == "gone" {
			t.Errorf("%s exists in Synapse; it was renamed or removed while staged", c.Name)
		}
	}
	// The staged folders' nodes now read Synapse's folders.
	if names, err := xReadDir(t, filepath.Join(e.data, "tree", "a")); err != nil || len(names) != 13 {
		t.Errorf("ls tree/a once created: %v %v", names, err)
	}
}

// cpR copies directory src to dst with cp -r, in a child process.
func cpR(t *testing.T, src, dst string) {
	t.Helper()
	out, err := exec.Command("cp", "-r", src, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp -r %s %s: %v: %s", src, dst, err, out)
	}
}

// Offline, a create in a folder whose permissions the mount never learnt is
// allowed; when Synapse refuses it later, the file (and a folder made
// offline, with the file in it) lands in the failed state with Synapse's
// reason, and the bytes stay readable.
func TestOfflineRefusalLandsInFailedState(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.em.AddUser("reader", "reader-token", true)
	if err := e.em.Grant(e.project, "reader", "READ", "DOWNLOAD"); err != nil {
		t.Fatal(err)
	}
	r := &env{t: t, em: e.em, srv: e.srv, project: e.project, folder: e.folder, cacheDir: t.TempDir()}
	r.mount(envOptions{user: "reader-token", prodRetries: true})
	if _, err := xReadDir(t, r.data); err != nil { // the folder is known; its permissions are not
		t.Fatal(err)
	}
	downServer(t, e.srv)
	waitFor(t, 10*time.Second, "the mount to see Synapse stopped", func() bool {
		xStat(t, filepath.Join(r.data, "never"))
		return !r.conn.Online()
	})
	body := []byte("kept although refused")
	if err := put(t, filepath.Join(r.data, "x.txt"), body); err != nil {
		t.Fatalf("cp offline into a folder with unknown permissions: %v", err)
	}
	if err := xMkdir(t, filepath.Join(r.data, "dd")); err != nil {
		t.Fatalf("mkdir offline: %v", err)
	}
	if err := put(t, filepath.Join(r.data, "dd", "y.txt"), body); err != nil {
		t.Fatal(err)
	}
	upServer(t, e.srv)
	waitFor(t, 10*time.Second, "the mount to see Synapse again", r.conn.Online)
	r.drain(time.Minute)
	recs, err := r.store.Records()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("got %d staged records, want 2", len(recs))
	}
	for _, rec := range recs {
		if rec.State != cache.StateFailed || !strings.Contains(rec.Err, "permission denied") {
			t.Errorf("%s: state %v, reason %q; want failed, permission denied", rec.Name, rec.State, rec.Err)
		}
	}
	if got, err := xReadFile(t, filepath.Join(r.data, "x.txt")); err != nil || string(got) != string(body) {
		t.Errorf("read back the refused file: %q, %v", got, err)
	}
	status, _ := xReadFile(t, filepath.Join(r.mnt, ".synfs", "status"))
	if !strings.Contains(string(status), "failed") || !strings.Contains(string(status), "/dd/") {
		t.Errorf("status lacks the failed file or folder:\n%s", status)
	}
	if n := len(e.em.Children(e.folder)); n != 0 {
		t.Errorf("got %d entities in Data, want 0", n)
	}
}

// A file whose upload was under way when synfs was killed cannot be
// removed or renamed while Synapse is unreachable (only Synapse knows
// whether that upload made the entity); once Synapse is back it arrives
// once.
func TestInterruptedUploadWaitsForSynapse(t *testing.T) {
	requireFUSE(t)
	em, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	t.Cleanup(func() { srv.Close(); em.Close() })
	_, folder, err := em.Seed(demoToken)
	if err != nil {
		t.Fatal(err)
	}
	cacheDir, mnt := t.TempDir(), t.TempDir()
	d := startDaemon(t, srv.URL, cacheDir, mnt)
	data := filepath.Join(mnt, "Demo Project", "Data")
	remove := em.AddFault(emulator.Fault{Route: "PUT /file/v1/file/multipart/", Stall: time.Minute})
	body := pattern(1<<20, 30)
	if err := put(t, filepath.Join(data, "u.bin"), body); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the upload under way", func() bool {
		status, _ := os.ReadFile(filepath.Join(mnt, ".synfs", "status"))
		return strings.Contains(string(status), "uploading")
	})
	d.kill9(t)
	remove()
	downServer(t, srv)
	d = startDaemon(t, srv.URL, cacheDir, mnt)
	for what, err := range map[string]error{
		"rm": os.Remove(filepath.Join(data, "u.bin")),
		"mv": os.Rename(filepath.Join(data, "u.bin"), filepath.Join(data, "v.bin")),
	} {
		if errnoOf(err) != syscall.ENOTCONN {
			t.Errorf("%s of a file whose upload was interrupted, offline: got %v, want ENOTCONN", what, err)
		}
	}
	upServer(t, srv)
	waitFor(t, time.Minute, "u.bin in Synapse", func() bool {
		for _, c := range em.Children(folder) {
			if c.Name == "u.bin" && len(c.Versions) > 0 {
				return true
			}
		}
		return false
	})
	d.stop(t)
	n := 0
	for _, c := range em.Children(folder) {
		n++
		if c.Name != "u.bin" || len(c.Versions) != 1 || c.Versions[0].MD5 != md5hex(body) {
			t.Errorf("got %s with %d versions, want u.bin once with its bytes", c.Name, len(c.Versions))
		}
	}
	if n != 1 {
		t.Errorf("got %d entities, want 1", n)
	}
}
