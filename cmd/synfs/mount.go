package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/flusher"
	"github.com/synfs/synfs/cache/meta"
	"github.com/synfs/synfs/control"
	"github.com/synfs/synfs/fs"
	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
	"github.com/synfs/synfs/remote/synapse"
)

type mountFlags struct {
	endpoint, config, profile, cacheDir, root, maxSize, logFile string
	localOnly, debugPprof                                       string
	delay, attrTTL, spaceWait                                   time.Duration
	transfers, parts, restConcurrency, restRate                 int
	allowOther, verbose, useEmulator, daemon, adopt             bool
	stageFolders                                                bool
}

const mountUsage = `Usage: synfs mount MOUNTPOINT [flags]

Mounts your Synapse projects at MOUNTPOINT. Files copied in are staged in the cache
directory and uploaded in the background. The token comes from ~/.synapseConfig
([default] or [authentication] authtoken) or SYNAPSE_AUTH_TOKEN. With no token and no
--endpoint, synfs mounts a local Synapse emulator with a demo project.

Flags:
`

func cmdMount(args []string) int {
	var f mountFlags
	fl := newFlagSet("mount", mountUsage)
	fl.StringVar(&f.endpoint, "endpoint", "", "Synapse base `URL`: uses URL/repo/v1, URL/file/v1, URL/auth/v1 (default: production, or [endpoints] in the config)")
	fl.StringVar(&f.config, "config", "", "Synapse config `file` (default ~/.synapseConfig)")
	fl.StringVar(&f.profile, "profile", os.Getenv("SYNAPSE_PROFILE"), "config `profile` section to use")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "write cache `directory` (one synfs per directory; default "+cacheBase()+"/HOST-USERID, one per Synapse endpoint and user, or "+cacheBase()+"/demo for the embedded emulator)")
	fl.StringVar(&f.root, "root", "", "mount this project or folder (`synID`) instead of all your projects")
	fl.StringVar(&f.maxSize, "cache-max-size", "", "largest amount of not-yet-uploaded data to hold, e.g. 50G (default: no fixed cap; staging always leaves 5% of the cache disk free, at least 64 MiB, at most 8 GiB)")
	fl.DurationVar(&f.spaceWait, "space-wait", 30*time.Second, "how long a write into a full cache waits for uploads to free space before it fails with 'No space left on device'")
	fl.DurationVar(&f.delay, "writeback-delay", 5*time.Second, "wait this long after a file is closed before uploading it")
	fl.DurationVar(&f.attrTTL, "attr-ttl", time.Second, "how long the kernel caches attributes (folder listings are cached 10 times as long, a folder of many pages longer: 1 s a page at 600 REST calls a minute)")
	fl.IntVar(&f.transfers, "transfers", 16, "files uploaded at once")
	fl.IntVar(&f.parts, "parts", 8, "parts of one file uploaded at once")
	fl.IntVar(&f.restConcurrency, "rest-concurrency", 0, "Synapse REST calls in flight (default 3, Synapse's per-user limit; 16 on the emulator)")
	fl.IntVar(&f.restRate, "rest-rate", 0, "Synapse REST calls per minute (default 600, Synapse's per-user limit; unlimited on the emulator)")
	fl.StringVar(&f.localOnly, "local-only", strings.Join(flusher.DefaultLocalOnly, ","), "comma-separated name `patterns` of files kept in the cache and never uploaded (editor swap and lock files, desktop metadata); \"none\" uploads everything")
	fl.BoolVar(&f.allowOther, "allow-other", false, "let other users see the mount (needs user_allow_other in /etc/fuse.conf)")
	fl.BoolVar(&f.verbose, "v", false, "log every operation and upload step")
	fl.BoolVar(&f.useEmulator, "emulator", false, "mount a local Synapse emulator even when a token is configured")
	fl.BoolVar(&f.stageFolders, "stage-folders", false, "stage every mkdir in the cache and create the folder in the background, as when offline (default: create it before mkdir returns)")
	fl.BoolVar(&f.daemon, "daemon", false, "run in the background: return once the mount answers, log to --log-file")
	fl.StringVar(&f.logFile, "log-file", "", "write the log to `file` (default: stderr; with --daemon, CACHE_DIR/synfs.log)")
	fl.StringVar(&f.debugPprof, "debug-pprof", "", "serve Go runtime profiles (heap, goroutines) on this loopback `address`, e.g. 127.0.0.1:6060, for go tool pprof (default: off)")
	fl.BoolVar(&f.adopt, "adopt-staged", false, "upload files staged by a synfs that did not record their Synapse endpoint and user to this one")
	mountpoint, code := parseWithArg(fl, args, "MOUNTPOINT")
	if code >= 0 {
		return code
	}
	return mount(mountpoint, args, f)
}

// cacheBase is the folder of the default cache directories.
func cacheBase() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "synfs")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "synfs")
	}
	return filepath.Join(os.TempDir(), "synfs")
}

// defaultCacheDir is the cache directory of one endpoint and user, so that
// staged files never meet another Synapse or another account.
func defaultCacheDir(repoEndpoint, userID string) string {
	host := "synapse.org"
	if repoEndpoint != synapse.DefaultRepoEndpoint {
		host = repoEndpoint
		if u, err := url.Parse(repoEndpoint); err == nil && u.Host != "" {
			host = u.Host
		}
	}
	host = strings.NewReplacer(":", "_", "/", "_").Replace(host)
	return filepath.Join(cacheBase(), host+"-"+userID)
}

func mount(mountpoint string, args []string, f mountFlags) int {
	child := os.Getenv(envDaemonChild) != ""
	if f.daemon && !child {
		return daemonize(args)
	}
	getenv := os.Getenv
	if child {
		getenv = daemonGetenv()
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	logw := &switchWriter{w: os.Stderr}
	refused := &refusals{}
	log := slog.New(refusalHandler{slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}), refused})
	if abs, err := filepath.Abs(mountpoint); err == nil {
		mountpoint = abs
	}
	if err := prepareMountpoint(mountpoint, log); err != nil {
		return fail(1, "%v", err)
	}
	maxSize, err := parseSize(f.maxSize)
	if err != nil {
		return fail(2, "--cache-max-size: %v", err)
	}
	localOnly, err := flusher.ParseLocalOnly(f.localOnly)
	if err != nil {
		return fail(2, "--local-only: %v", err)
	}
	if localOnly == nil {
		localOnly = []string{}
	}
	ctx, force, stop := shutdownSignals()
	defer stop()

	cfg, where, emu, err := clientSettings(f, getenv)
	if err != nil {
		return fail(1, "%v", err)
	}
	cacheDir := f.cacheDir
	var me *remote.User
	if cacheDir == "" {
		if emu {
			cacheDir = filepath.Join(cacheBase(), "demo")
		} else {
			if me, err = whoAmI(ctx, cfg, where); err != nil {
				return fail(1, "%v", err)
			}
			cacheDir = defaultCacheDir(cfg.RepoEndpoint, me.ID)
		}
		if _, err := os.Stat(filepath.Join(cacheBase(), "stage")); err == nil {
			log.Warn("an older synfs kept its cache in " + cacheBase() + ": files staged there upload only with --cache-dir " + cacheBase() + " --adopt-staged")
		}
	}
	if cacheDir, err = filepath.Abs(cacheDir); err != nil {
		return fail(1, "cache directory: %v", err)
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return fail(1, "cache directory: %v", err)
	}
	os.Chmod(cacheDir, 0o700)
	logFile := f.logFile
	if logFile == "" && child {
		logFile = filepath.Join(cacheDir, "synfs.log")
	}
	if logFile != "" {
		lf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fail(1, "--log-file: %v", err)
		}
		defer lf.Close()
		logw.set(lf)
	}
	if f.debugPprof != "" {
		stopPprof, err := startDebugPprof(f.debugPprof, log)
		if err != nil {
			return fail(2, "%v", err)
		}
		defer stopPprof()
	}
	// The cache's lock comes first: a second mount of a cache in use stops
	// here, before the embedded emulator or anything else starts.
	store, err := cache.Open(cache.Options{Dir: filepath.Join(cacheDir, "stage"), MaxSize: maxSize, SpaceWait: f.spaceWait, Logger: log})
	if err != nil {
		return fail(1, "%v", err)
	}
	defer store.Close()
	if emu {
		cleanup, err := startEmulator(&cfg, cacheDir, f, log)
		if err != nil {
			return fail(1, "%v", err)
		}
		defer cleanup()
	}
	endpoint := cfg.RepoEndpoint
	if emu {
		endpoint = "emulator:" + filepath.Join(cacheDir, "emulator")
	}
	var offline error // Synapse unreachable at start
	if me == nil {
		if me, err = whoAmI(ctx, cfg, where); err != nil {
			// Unreachable: mount offline only to go on with work staged for
			// this endpoint, which uploads when Synapse is back; a fresh
			// cache fails at once, so that a wrong endpoint is seen.
			had, ok, _ := store.Owner()
			folders, _ := store.Folders("")
			pending, _ := store.Pending()
			if !remote.IsTransient(err) || !ok || had.Endpoint != endpoint || (len(pending) == 0 && len(folders) == 0) {
				return fail(1, "%v", err)
			}
			offline = err
			me = &remote.User{ID: had.UserID, UserName: had.UserName, Certified: true}
			log.Warn("Synapse is unreachable: mounting offline; staged files upload when it is back", "err", err)
		}
	}
	owner := cache.Owner{Endpoint: endpoint, UserID: me.ID, UserName: me.UserName}
	if err := bindOwner(store, owner, cacheDir, f.adopt, log); err != nil {
		return fail(1, "%v", err)
	}
	if !me.Certified {
		log.Warn("your Synapse account " + me.UserName + " is not a Certified User: you can browse, but creating folders or files will fail with 'Permission denied' until you pass the Certified User quiz (synapse.org → Account Settings → Certification)")
	}
	cfg.Logger = log
	cfg.PartConcurrency = f.parts
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = f.restConcurrency
	}
	if cfg.RatePerMinute == 0 {
		cfg.RatePerMinute = f.restRate
	}
	// Connectivity makes calls fail fast while Synapse is unreachable and
	// probes until it is back; uploads pause meanwhile.
	conn := remote.NewConnectivity(remote.ConnectivityOptions{Logger: log})
	cfg.Connectivity = conn
	client, err := synapse.New(cfg)
	if err != nil {
		return fail(1, "%v", err)
	}
	if offline != nil {
		conn.Failed(offline.Error(), true)
	}
	go conn.Run(ctx, probe(conn, client, f, emu, me.ID, log))

	var fsys *fs.FS
	mc := &mountControl{mountpoint: mountpoint, cacheDir: cacheDir, owner: owner, store: store, refused: refused, log: log}
	delay := f.delay
	if delay == 0 {
		delay = -1 // the queue reads 0 as its default; 0 here means none
	}
	fl := flusher.New(store, client, flusher.Options{
		Delay: delay, Transfers: f.transfers, Logger: log, LocalOnly: localOnly, Conn: conn,
		BeforeFinish:    func(rec cache.Record, e *remote.Entity) { fsys.Stored(rec, e) },
		OnUploaded:      func(rec cache.Record, e *remote.Entity) { fsys.Uploaded(rec, e); mc.uploaded(rec, e) },
		OnFolderCreated: func(fo cache.Folder, e *remote.Entity) { fsys.FolderCreated(fo, e) },
		Absent:          func(parentID, name string) bool { return fsys.Absent(parentID, name) },
		OnFailed:        mc.failed,
	})
	fsys = fs.New(fs.Options{
		Client: client, Store: store, Flusher: fl, User: me, RootID: f.root,
		Meta:      meta.New(meta.Options{TTL: 10 * f.attrTTL, PageCost: pageCost(cfg.RatePerMinute)}),
		AttrValid: f.attrTTL, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Logger: log,
		Conn: conn, StageFolders: f.stageFolders,
	})
	defer fsys.Close()
	mc.fl, mc.fsys = fl, fsys
	newMountControl(mc)
	defer mc.close()
	if f.root != "" && conn.Online() {
		e, err := client.Get(ctx, f.root)
		if err != nil {
			return fail(1, "--root %s: %v", f.root, err)
		}
		if !e.Kind.IsContainer() {
			return fail(1, "--root %s is a %s, not a project or folder", f.root, e.Kind)
		}
	}
	ctl, err := control.Listen(cacheDir, mc, log)
	if err != nil {
		return fail(1, "%v", err)
	}
	m, err := fs.Mount(mountpoint, fsys, fs.MountOptions{AllowOther: f.allowOther, FSName: control.FSName(cacheDir)})
	if err != nil {
		ctl.Close()
		return fail(1, "%v", err)
	}
	mc.setMounted(m)
	if err := fl.Start(ctx); err != nil {
		log.Warn("re-queueing staged files: " + err.Error())
	}
	// The mount answers before synfs says it is mounted.
	if _, err := os.Stat(filepath.Join(mountpoint, fs.StatusDirName)); err != nil {
		log.Warn("the mount does not answer: " + err.Error())
	}
	stopHow := "Ctrl-C or synfs unmount " + mountpoint + " to unmount"
	if child {
		stopHow = "synfs unmount " + mountpoint + " to unmount"
	}
	msg := fmt.Sprintf("synfs: mounted %s as %s at %s (cache %s); %s", where, me.UserName, mountpoint, cacheDir, stopHow)
	fmt.Fprintln(os.Stderr, msg)
	if child {
		log.Info(strings.TrimPrefix(msg, "synfs: "))
		os.Chdir("/") // a daemon holds no directory (and so no mount) busy
		daemonReady(logw)
	}

	served := true
	select {
	case <-ctx.Done():
		served = unmountOnSignal(m, force, log)
	case <-m.Done():
	}
	ctl.Close()
	fl.Close()
	fmt.Fprint(os.Stderr, shutdownMessage(mc, cacheDir))
	if served && m.Err() != nil {
		return fail(1, "serve: %v", m.Err())
	}
	return 0
}

// whoAmI asks Synapse who the token belongs to, with few retries, so that a
// wrong endpoint or token fails at once.
func whoAmI(ctx context.Context, cfg synapse.Config, where string) (*remote.User, error) {
	check := cfg
	check.MaxRetries, check.RetryCap = 2, time.Second
	check.Logger = slog.New(slog.DiscardHandler)
	checker, err := synapse.New(check)
	if err != nil {
		return nil, err
	}
	meCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	me, err := checker.Me(meCtx)
	switch {
	case errors.Is(err, remote.ErrUnauthenticated):
		return nil, fmt.Errorf("Synapse refused the token (%s): create a new Personal Access Token on synapse.org (Account Settings) and put it in ~/.synapseConfig", where)
	case err != nil:
		return nil, fmt.Errorf("cannot reach Synapse at %s: %w", cfg.RepoEndpoint, err)
	}
	return me, nil
}

// clientSettings finds the endpoint and token: flags, then ~/.synapseConfig,
// then SYNAPSE_AUTH_TOKEN. With no token and no endpoint (or --emulator),
// emu is true: the embedded emulator is to be started (startEmulator).
func clientSettings(f mountFlags, getenv func(string) string) (cfg synapse.Config, where string, emu bool, err error) {
	// "" is ~/.synapseConfig, which may be missing; a --config file must exist.
	st, err := synapse.LoadSettings(f.config, f.profile, getenv)
	if err != nil {
		return cfg, "", false, err
	}
	cfg = synapse.Config{RepoEndpoint: st.RepoEndpoint, FileEndpoint: st.FileEndpoint, AuthEndpoint: st.AuthEndpoint, Token: st.Token}
	if f.endpoint != "" {
		cfg.RepoEndpoint, cfg.FileEndpoint, cfg.AuthEndpoint = synapse.Endpoints(f.endpoint)
	}
	if !f.useEmulator && (st.Token != "" || f.endpoint != "") {
		if st.Token == "" {
			return cfg, "", false, fmt.Errorf("no Synapse token: put authtoken in ~/.synapseConfig ([default] section) or set SYNAPSE_AUTH_TOKEN")
		}
		where := "Synapse"
		if f.endpoint != "" {
			where = f.endpoint
		}
		return cfg, where + " (token from " + st.TokenSource + ")", false, nil
	}
	return cfg, "the embedded emulator", true, nil
}

// startEmulator starts the embedded emulator: a demo Synapse on a loopback
// port, its data kept next to the cache so the demo survives a remount. It
// points cfg at it.
func startEmulator(cfg *synapse.Config, cacheDir string, f mountFlags, log *slog.Logger) (func(), error) {
	dir := filepath.Join(cacheDir, "emulator")
	token, err := demoToken(dir)
	if err != nil {
		return nil, err
	}
	em, err := emulator.New(emulator.Options{DataDir: dir})
	if err != nil {
		return nil, fmt.Errorf("embedded emulator: %w", err)
	}
	if _, _, err := em.Seed(token); err != nil {
		em.Close()
		return nil, fmt.Errorf("embedded emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		em.Close()
		return nil, fmt.Errorf("embedded emulator: %w", err)
	}
	srv := &http.Server{Handler: em}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	cfg.RepoEndpoint, cfg.FileEndpoint, cfg.AuthEndpoint = synapse.Endpoints(base)
	cfg.Token = token
	// The embedded emulator does not throttle: no need to pace like Synapse.
	cfg.MaxConcurrent, cfg.RatePerMinute = max(f.restConcurrency, 16), max(f.restRate, 1<<20)
	log.Info("no Synapse token configured: using the embedded Synapse emulator at " + base + " (demo data in " + dir + ")")
	return func() { srv.Close(); em.Close() }, nil
}

// demoToken returns the embedded emulator's token, made once and kept in
// dir with mode 0600.
func demoToken(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "demo-token")
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := readRandom(raw[:]); err != nil {
		return "", err
	}
	t := fmt.Sprintf("demo-%x", raw)
	return t, os.WriteFile(p, []byte(t), 0o600)
}

// parseSize reads "50G", "512M", "1024" (bytes), "" (0).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "IB"), "B")
	if s == "" {
		return 0, fmt.Errorf("no number")
	}
	switch s[len(s)-1] {
	case 'K':
		mult = 1 << 10
	case 'M':
		mult = 1 << 20
	case 'G':
		mult = 1 << 30
	case 'T':
		mult = 1 << 40
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 50G", s)
	}
	return int64(n * float64(mult)), nil
}

// pageCost is how long a listing is trusted per page of it, beyond the
// TTL: ten times the interval between REST calls at rate calls a minute,
// so that keeping a large folder's listing fresh spends at most a tenth of
// the budget (at Synapse's 600 a minute, 1 s a page: a folder of 10,000
// files is re-listed at most every 200 s).
func pageCost(rate int) time.Duration {
	if rate <= 0 {
		rate = synapse.DefaultRatePerMinute
	}
	return 10 * time.Minute / time.Duration(rate)
}
