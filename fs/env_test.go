package fs_test

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/flusher"
	"github.com/synfs/synfs/cache/meta"
	"github.com/synfs/synfs/fs"
	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
	"github.com/synfs/synfs/remote/synapse"
)

const demoToken = "test-demo-token"

// env is one mounted synfs over an emulator served on real HTTP, with a
// real Badger cache on disk.
type env struct {
	t        *testing.T
	em       *emulator.Server
	srv      *httptest.Server
	client   *synapse.Client
	store    *cache.Store
	fl       *flusher.Flusher
	fsys     *fs.FS
	m        *fs.Mounted
	mnt      string
	project  string // syn ID of "Demo Project"
	folder   string // syn ID of its folder "Data"
	data     string // mount path of that folder
	cacheDir string
	throttle bool // the emulator throttles like Synapse

	conn     *remote.Connectivity // what the mount knows about reaching the emulator
	stopConn context.CancelFunc   // ends its probe loop
	restRate int                  // the client's REST calls per minute; 0: unlimited
}

type envOptions struct {
	user       string // token to mount as (default the certified demo user)
	maxSize    int64
	spaceWait  time.Duration
	delay      time.Duration
	emuOptions emulator.Options
	cacheDir   string
	noStart    bool
	metaTTL    time.Duration // listings' TTL (default 1 s)
	// uploadedLag delays the flusher's OnUploaded hook, to hold open the
	// moment between an upload's end and the file system learning of it.
	uploadedLag time.Duration
	attrValid   time.Duration // how long the kernel keeps attributes and entries (default 100 ms)
	// prodRetries gives the mount's client Synapse's retry schedule (10
	// retries, 250 ms doubling to 30 s: minutes in all) instead of the
	// tests' quick one, so that a test sees what a user would wait.
	prodRetries bool
	remoteWait  time.Duration                   // fs.Options.RemoteWait
	restRate    int                             // the client's REST calls per minute (default: unlimited)
	wrap        func(http.Handler) http.Handler // wraps the emulator's handler (an outage, ...)
	// retired, if set, runs when an upload has retired its staged record,
	// before the file system hears of it (fs.FS.Uploaded): a test holds
	// that moment open.
	retired func(rec cache.Record, ent *remote.Entity)
}

func requireFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil && os.Getuid() != 0 {
		t.Skip("no fusermount3 and not root")
	}
	// The fusectl file system lets a hung test abort its FUSE connection.
	if ents, _ := os.ReadDir("/sys/fs/fuse/connections"); len(ents) == 0 && os.Getuid() == 0 {
		_ = syscall.Mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, "")
	}
}

// newEnv starts an emulator, mounts synfs over it and arranges for
// everything to be torn down, even when the test fails or hangs.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	requireFUSE(t)
	em, err := emulator.New(o.emuOptions)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = em
	if o.wrap != nil {
		h = o.wrap(em)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); em.Close() })
	project, folder, err := em.Seed(demoToken)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, em: em, srv: srv, project: project, folder: folder, throttle: o.emuOptions.Throttle, restRate: o.restRate}
	e.cacheDir = o.cacheDir
	if e.cacheDir == "" {
		e.cacheDir = t.TempDir()
	}
	e.mount(o)
	return e
}

func (e *env) newClient(token string) *synapse.Client {
	return e.clientWith(token, nil, false)
}

// clientWith is newClient reporting to conn, with Synapse's own retry
// schedule when prodRetries is set.
func (e *env) clientWith(token string, conn *remote.Connectivity, prodRetries bool) *synapse.Client {
	repo, file, auth := synapse.Endpoints(e.srv.URL)
	cfg := synapse.Config{RepoEndpoint: repo, FileEndpoint: file, AuthEndpoint: auth, Token: token,
		RetryBase: 5 * time.Millisecond, RetryCap: 50 * time.Millisecond, MaxRetries: 8,
		MaxConcurrent: restConcurrency(e.throttle), RatePerMinute: cmp.Or(e.restRate, 1<<20), Connectivity: conn}
	if prodRetries {
		cfg.RetryBase, cfg.RetryCap, cfg.MaxRetries = 0, 0, 0
	}
	c, err := synapse.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// restConcurrency is the client's REST limit: Synapse's 3 when the emulator
// throttles like Synapse, more otherwise so that tests run fast.
func restConcurrency(throttle bool) int {
	if throttle {
		return 3
	}
	return 16
}

func (e *env) mount(o envOptions) {
	t := e.t
	token := o.user
	if token == "" {
		token = demoToken
	}
	level := slog.LevelInfo
	if os.Getenv("SYNFS_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	e.conn = remote.NewConnectivity(remote.ConnectivityOptions{ProbeBase: 50 * time.Millisecond, ProbeCap: 200 * time.Millisecond, Logger: log})
	e.client = e.clientWith(token, e.conn, o.prodRetries)
	me, err := e.client.Me(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var probeCtx context.Context
	probeCtx, e.stopConn = context.WithCancel(context.Background())
	go e.conn.Run(probeCtx, e.client.Probe)
	store, err := cache.Open(cache.Options{Dir: e.cacheDir, MaxSize: o.maxSize, SpaceWait: o.spaceWait, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	delay := o.delay
	if delay == 0 {
		delay = 50 * time.Millisecond
	}
	var fsys *fs.FS
	fl := flusher.New(store, e.client, flusher.Options{Delay: delay, Transfers: 4, Logger: log, Conn: e.conn,
		BeforeFinish: func(rec cache.Record, ent *remote.Entity) { fsys.Stored(rec, ent) },
		OnUploaded: func(rec cache.Record, ent *remote.Entity) {
			time.Sleep(o.uploadedLag)
			if o.retired != nil {
				o.retired(rec, ent)
			}
			fsys.Uploaded(rec, ent)
		},
		OnFolderCreated: func(fo cache.Folder, ent *remote.Entity) { fsys.FolderCreated(fo, ent) },
		Absent:          func(parentID, name string) bool { return fsys.Absent(parentID, name) }})
	fsys = fs.New(fs.Options{Client: e.client, Store: store, Flusher: fl, User: me,
		Meta: meta.New(meta.Options{TTL: cmp.Or(o.metaTTL, time.Second)}), AttrValid: cmp.Or(o.attrValid, 100*time.Millisecond),
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Logger: log,
		Conn: e.conn, RemoteWait: o.remoteWait})
	mnt := t.TempDir()
	m, err := fs.Mount(mnt, fsys, fs.MountOptions{})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	dev := devOf(mnt)
	e.store, e.fl, e.fsys, e.m, e.mnt = store, fl, fsys, m, mnt
	e.data = filepath.Join(mnt, "Demo Project", "Data")
	if !o.noStart {
		if err := fl.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { e.unmount(dev) })
}

// unmount tears the mount down; a hung mount is aborted through
// /sys/fs/fuse/connections so that no test can hang the suite.
func (e *env) unmount(dev uint64) {
	if e.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.m.Unmount(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			e.t.Logf("unmount: %v", err)
		}
	case <-time.After(15 * time.Second):
		abortConn(dev)
		e.t.Errorf("unmount of %s hung; aborted the FUSE connection", e.mnt)
	}
	e.fl.Close()
	e.store.Close()
	e.fsys.Close()
	e.stopConn()
	e.m = nil
}

func devOf(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Dev
}

func abortConn(dev uint64) {
	minor := (dev & 0xff) | ((dev >> 12) & 0xfff00)
	_ = os.WriteFile(fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", minor), []byte("1"), 0)
}

// within runs fn and fails the test if it does not return in d; the mount
// is then aborted so that fn's blocked syscalls return.
func (e *env) within(d time.Duration, what string, fn func()) {
	e.t.Helper()
	dev := devOf(e.mnt)
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		abortConn(dev)
		<-done
		e.t.Fatalf("%s did not finish within %v", what, d)
	}
}

// drain waits until every staged file is uploaded or has failed for good.
func (e *env) drain(d time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		err := e.fl.Flush(ctx, 0)
		if ctx.Err() != nil {
			e.t.Fatalf("drain: %v\n%s", err, e.fsys.StatusText())
		}
		if e.settled() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settled reports whether every staged file is uploaded, empty or failed.
func (e *env) settled() bool {
	recs, err := e.store.Records()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range recs {
		if r.State != cache.StateEmpty && r.State != cache.StateFailed && r.State != cache.StateDone && r.State != cache.StateLocal {
			return false
		}
	}
	return true
}

// remoteFile finds the one File entity called name in folder parent.
func (e *env) remoteFile(parent, name string) emulator.EntityInfo {
	e.t.Helper()
	var found []emulator.EntityInfo
	for _, c := range e.em.Children(parent) {
		if c.Name == name {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		e.t.Fatalf("got %d entities named %q in %s, want 1", len(found), name, parent)
	}
	return found[0]
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// fileMD5 hashes a file through the mount with md5sum, in its own process:
// large reads from the process that also serves the mount can deadlock in
// the kernel (the reader's thread and the server share one address space).
func fileMD5(t *testing.T, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "md5sum", path).Output()
	if err != nil {
		t.Fatalf("md5sum %s: %v", path, err)
	}
	return strings.Fields(string(out))[0]
}

// pattern returns n deterministic bytes that differ per seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return 0
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// put writes b to path through the mount from a child process (cp), as a
// user would. Tests that serve the mount keep large I/O out of their own
// process: a thread of the serving process blocked in the kernel on its own
// mount can stall that process's FUSE server. The error carries cp's stderr.
func put(t *testing.T, path string, b []byte) error {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "cp", src, path).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("cp to %s did not finish in 2 minutes", path)
	}
	if err != nil {
		return fmt.Errorf("cp: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// get reads path through the mount from a child process (cat).
func get(t *testing.T, path string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return exec.CommandContext(ctx, "cat", path).Output()
}
