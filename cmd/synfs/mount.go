package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/cache/flusher"
	"github.com/synfs/synfs/cache/meta"
	"github.com/synfs/synfs/fs"
	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
	"github.com/synfs/synfs/remote/synapse"
)

type mountFlags struct {
	endpoint, config, profile, cacheDir, root, maxSize string
	delay, attrTTL, spaceWait                          time.Duration
	transfers, parts, restConcurrency, restRate        int
	allowOther, verbose, useEmulator, stageFolders     bool
}

func cmdMount(args []string) int {
	var f mountFlags
	fl := flag.NewFlagSet("synfs mount", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), "Usage: synfs mount MOUNTPOINT [flags]\n\n"+
			"Mounts your Synapse projects at MOUNTPOINT. Files copied in are staged in the cache\n"+
			"directory and uploaded in the background. The token comes from ~/.synapseConfig\n"+
			"([default] or [authentication] authtoken) or SYNAPSE_AUTH_TOKEN. With no token and no\n"+
			"--endpoint, synfs mounts a local Synapse emulator with a demo project.\n\nFlags:\n")
		fl.PrintDefaults()
	}
	fl.StringVar(&f.endpoint, "endpoint", "", "Synapse base `URL`: uses URL/repo/v1, URL/file/v1, URL/auth/v1 (default: production, or [endpoints] in the config)")
	fl.StringVar(&f.config, "config", "", "Synapse config `file` (default ~/.synapseConfig)")
	fl.StringVar(&f.profile, "profile", os.Getenv("SYNAPSE_PROFILE"), "config `profile` section to use")
	fl.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "write cache `directory` (one synfs per directory)")
	fl.StringVar(&f.root, "root", "", "mount this project or folder (`synID`) instead of all your projects")
	fl.StringVar(&f.maxSize, "cache-max-size", "", "largest amount of not-yet-uploaded data to hold, e.g. 50G (default: no fixed cap; staging always leaves 5% of the cache disk free, at least 64 MiB, at most 8 GiB)")
	fl.DurationVar(&f.spaceWait, "space-wait", 30*time.Second, "how long a write into a full cache waits for uploads to free space before it fails with 'No space left on device'")
	fl.DurationVar(&f.delay, "writeback-delay", 5*time.Second, "wait this long after a file is closed before uploading it")
	fl.DurationVar(&f.attrTTL, "attr-ttl", time.Second, "how long the kernel caches attributes (folder listings are cached 10 times as long)")
	fl.IntVar(&f.transfers, "transfers", 16, "files uploaded at once")
	fl.IntVar(&f.parts, "parts", 8, "parts of one file uploaded at once")
	fl.IntVar(&f.restConcurrency, "rest-concurrency", 0, "Synapse REST calls in flight (default 3, Synapse's per-user limit; 16 on the emulator)")
	fl.IntVar(&f.restRate, "rest-rate", 0, "Synapse REST calls per minute (default 600, Synapse's per-user limit; unlimited on the emulator)")
	fl.BoolVar(&f.allowOther, "allow-other", false, "let other users see the mount (needs user_allow_other in /etc/fuse.conf)")
	fl.BoolVar(&f.verbose, "v", false, "log every operation and upload step")
	fl.BoolVar(&f.useEmulator, "emulator", false, "mount a local Synapse emulator even when a token is configured")
	fl.BoolVar(&f.stageFolders, "stage-folders", false, "stage every mkdir in the cache and create the folder in the background, as when offline (default: create it before mkdir returns)")
	// Go's flag package stops at the first non-flag: accept MOUNTPOINT first too.
	var mountpoint string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mountpoint, args = args[0], args[1:]
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if mountpoint == "" && fl.NArg() > 0 {
		mountpoint = fl.Arg(0)
	}
	if mountpoint == "" {
		fl.Usage()
		return 2
	}
	return mount(mountpoint, f)
}

func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "synfs")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "synfs")
	}
	return filepath.Join(os.TempDir(), "synfs")
}

func mount(mountpoint string, f mountFlags) int {
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := fs.CheckMountpoint(mountpoint); err != nil {
		return fail(1, "%v", err)
	}
	maxSize, err := parseSize(f.maxSize)
	if err != nil {
		return fail(2, "--cache-max-size: %v", err)
	}
	if err := os.MkdirAll(f.cacheDir, 0o700); err != nil {
		return fail(1, "cache directory: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, where, cleanup, err := clientConfig(ctx, f, log)
	if err != nil {
		return fail(1, "%v", err)
	}
	defer cleanup()
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
	// Ask who we are with few retries, so that a wrong endpoint fails at once.
	check := cfg
	check.MaxRetries, check.RetryCap = 2, time.Second
	check.Logger = slog.New(slog.DiscardHandler)
	check.Connectivity = nil
	checker, err := synapse.New(check)
	if err != nil {
		return fail(1, "%v", err)
	}
	meCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	me, meErr := checker.Me(meCtx)
	cancel()
	if errors.Is(meErr, remote.ErrUnauthenticated) {
		return fail(1, "Synapse refused the token (%s): create a new Personal Access Token on synapse.org (Account Settings) and put it in ~/.synapseConfig", where)
	}
	store, err := cache.Open(cache.Options{Dir: filepath.Join(f.cacheDir, "stage"), MaxSize: maxSize, SpaceWait: f.spaceWait, Logger: log})
	if err != nil {
		return fail(1, "%v", err)
	}
	defer store.Close()
	if meErr != nil {
		// Unreachable: mount offline only to go on with staged work, which
		// uploads when Synapse is back; a fresh cache fails at once, so that
		// a wrong endpoint is seen.
		staged, _ := store.Folders("")
		if !remote.IsTransient(meErr) || (pendingCount(store) <= 0 && len(staged) == 0) {
			return fail(1, "cannot reach Synapse at %s: %v", cfg.RepoEndpoint, meErr)
		}
		log.Warn("Synapse is unreachable: mounting offline; staged files upload when it is back", "err", meErr)
		conn.Failed(meErr.Error(), true)
		me = &remote.User{UserName: "(not known while offline)", Certified: true}
	}
	go conn.Run(ctx, client.Probe)
	if !me.Certified {
		log.Warn("your Synapse account " + me.UserName + " is not a Certified User: you can browse, but creating folders or files will fail with 'Permission denied' until you pass the Certified User quiz (synapse.org → Account Settings → Certification)")
	}

	var fsys *fs.FS
	delay := f.delay
	if delay == 0 {
		delay = -1 // the queue reads 0 as its default; 0 here means none
	}
	fl := flusher.New(store, client, flusher.Options{
		Delay: delay, Transfers: f.transfers, Logger: log, Conn: conn,
		OnUploaded:      func(rec cache.Record, e *remote.Entity) { fsys.Uploaded(rec, e) },
		OnFolderCreated: func(fo cache.Folder, e *remote.Entity) { fsys.FolderCreated(fo, e) },
	})
	fsys = fs.New(fs.Options{
		Client: client, Store: store, Flusher: fl, User: me, RootID: f.root,
		Meta:      meta.New(meta.Options{TTL: 10 * f.attrTTL}),
		AttrValid: f.attrTTL, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Logger: log,
		Conn: conn, StageFolders: f.stageFolders,
	})
	defer fsys.Close()
	if f.root != "" && conn.Online() {
		e, err := client.Get(ctx, f.root)
		if err != nil {
			return fail(1, "--root %s: %v", f.root, err)
		}
		if !e.Kind.IsContainer() {
			return fail(1, "--root %s is a %s, not a project or folder", f.root, e.Kind)
		}
	}
	m, err := fs.Mount(mountpoint, fsys, fs.MountOptions{AllowOther: f.allowOther})
	if err != nil {
		return fail(1, "%v", err)
	}
	if err := fl.Start(ctx); err != nil {
		log.Warn("re-queueing staged files: " + err.Error())
	}
	fmt.Fprintf(os.Stderr, "synfs: mounted %s as %s at %s (cache %s); Ctrl-C to unmount\n", where, me.UserName, mountpoint, f.cacheDir)

	select {
	case <-ctx.Done():
	case <-m.Done():
	}
	uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Unmount(uctx); err != nil {
		log.Warn(err.Error())
	}
	fl.Close()
	if left := pendingCount(store); left > 0 {
		fmt.Fprintf(os.Stderr, "synfs: unmounted; %d staged file(s) not uploaded yet: they upload when synfs mounts with --cache-dir %s again\n", left, f.cacheDir)
	} else {
		fmt.Fprintln(os.Stderr, "synfs: unmounted; everything was uploaded")
	}
	if m.Err() != nil {
		return fail(1, "serve: %v", m.Err())
	}
	return 0
}

func pendingCount(store *cache.Store) int {
	p, err := store.Pending()
	if err != nil {
		return -1
	}
	return len(p)
}

// clientConfig finds the endpoint and token: flags, then ~/.synapseConfig,
// then SYNAPSE_AUTH_TOKEN. With no token and no endpoint (or --emulator), it
// starts the embedded emulator and returns its config.
func clientConfig(ctx context.Context, f mountFlags, log *slog.Logger) (synapse.Config, string, func(), error) {
	nop := func() {}
	// "" is ~/.synapseConfig, which may be missing; a --config file must exist.
	st, err := synapse.LoadSettings(f.config, f.profile, os.Getenv)
	if err != nil {
		return synapse.Config{}, "", nop, err
	}
	cfg := synapse.Config{RepoEndpoint: st.RepoEndpoint, FileEndpoint: st.FileEndpoint, AuthEndpoint: st.AuthEndpoint, Token: st.Token}
	if f.endpoint != "" {
		cfg.RepoEndpoint, cfg.FileEndpoint, cfg.AuthEndpoint = synapse.Endpoints(f.endpoint)
	}
	if !f.useEmulator && (st.Token != "" || f.endpoint != "") {
		if st.Token == "" {
			return cfg, "", nop, fmt.Errorf("no Synapse token: put authtoken in ~/.synapseConfig ([default] section) or set SYNAPSE_AUTH_TOKEN")
		}
		where := "Synapse"
		if f.endpoint != "" {
			where = f.endpoint
		}
		return cfg, where + " (token from " + st.TokenSource + ")", nop, nil
	}
	// The embedded emulator: a demo Synapse on a loopback port, its data kept
	// next to the cache so the demo survives a remount.
	token, err := demoToken(filepath.Join(f.cacheDir, "emulator"))
	if err != nil {
		return cfg, "", nop, err
	}
	em, err := emulator.New(emulator.Options{DataDir: filepath.Join(f.cacheDir, "emulator")})
	if err != nil {
		return cfg, "", nop, fmt.Errorf("embedded emulator: %w", err)
	}
	if _, _, err := em.Seed(token); err != nil {
		em.Close()
		return cfg, "", nop, fmt.Errorf("embedded emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		em.Close()
		return cfg, "", nop, fmt.Errorf("embedded emulator: %w", err)
	}
	srv := &http.Server{Handler: em}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	cfg.RepoEndpoint, cfg.FileEndpoint, cfg.AuthEndpoint = synapse.Endpoints(base)
	cfg.Token = token
	// The embedded emulator does not throttle: no need to pace like Synapse.
	cfg.MaxConcurrent, cfg.RatePerMinute = max(f.restConcurrency, 16), max(f.restRate, 1<<20)
	log.Info("no Synapse token configured: using the embedded Synapse emulator at " + base + " (demo data in " + filepath.Join(f.cacheDir, "emulator") + ")")
	return cfg, "the embedded emulator", func() { srv.Close(); em.Close() }, nil
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
