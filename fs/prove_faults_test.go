package fs_test

import (
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
	"github.com/synfs/synfs/remote/emulator"
)

// Faults alone and mixed: a tree of files copied into the mount while the
// emulator misbehaves; once drained, every file is in Synapse once, with
// one version and the right MD5.
//
//	SYNFS_PROVE_OUTAGE=D   how long Synapse is unreachable (default 5s; 1m in the long profile)

// outage makes the emulator unreachable while down is set: connections are
// accepted and closed without an answer, as when a proxy or the network
// drops them.
type outage struct {
	down    atomic.Bool
	dropped atomic.Int64
}

func (o *outage) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			o.dropped.Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		h.ServeHTTP(w, r)
	})
}

type faultCase struct {
	name   string
	faults []string
	emu    emulator.Options
	rate   int // the client's REST calls per minute
	files  int
	big    bool
	delay  time.Duration // before an upload starts (lets during begin first)
	// during runs while the copy's uploads are under way.
	during func(t *testing.T, e *env, o *outage)
}

var tokenRevoked = func(t *testing.T, e *env, _ *outage) {
	t.Helper()
	e.em.RevokeToken(demoToken)
	// Uploads pause with a reason a person can act on; none fails, nothing
	// is dropped.
	waitFor(t, time.Minute, "uploads to pause for the refused token", func() bool {
		return e.conn.State().TokenRefused && e.fl.Paused()
	})
	if st := e.fsys.StatusText(); !strings.Contains(st, "refuses the access token") || !strings.Contains(st, "uploads paused") {
		t.Errorf("status while the token is revoked does not say so:\n%s", st)
	}
	recs, _ := e.store.Records()
	for _, r := range recs {
		if r.State == cache.StateFailed {
			t.Errorf("%s failed while the token was refused: %s", r.Name, r.Err)
		}
	}
	e.em.AddUser("demo", demoToken, true)
	// The token is accepted again: uploads resume by themselves.
	waitFor(t, time.Minute, "every file to upload once the token is accepted", func() bool {
		return e.conn.Online() && e.settled()
	})
}

func synapseDown(t *testing.T, e *env, o *outage) {
	d, err := time.ParseDuration(os.Getenv("SYNFS_PROVE_OUTAGE"))
	if err != nil {
		d = 5 * time.Second
	}
	o.down.Store(true)
	time.Sleep(d)
	o.down.Store(false)
}

var faultCases = []faultCase{
	{name: "503", faults: []string{"/repo/v1/:503:p=0.1", "/file/v1/:503:p=0.1"}, files: 40, big: true},
	{name: "dropped-parts", faults: []string{"PUT /s3/:drop-after-bytes=32768:p=0.2"}, files: 40, big: true},
	{name: "lost-answers", faults: []string{
		"POST /repo/v1/entity:drop-after-handling:p=0.2",
		"PUT /repo/v1/entity/{id}:drop-after-handling:p=0.2",
		"POST /file/v1/file/multipart:drop-after-handling:p=0.2",
		"PUT /file/v1/file/multipart/{uploadId}/complete:drop-after-handling:p=0.2",
		"PUT /file/v1/file/multipart/{uploadId}/add/{part}:drop-after-handling:p=0.2",
	}, files: 40, big: true},
	{name: "throttle", emu: emulator.Options{Throttle: true, RatePerMinute: 600}, rate: 600, files: 12},
	{name: "latency", faults: []string{"*:latency=50ms"}, files: 20, big: true},
	// The first part uploads arrive after their URLs expired (403).
	{name: "expiring-urls", emu: emulator.Options{UploadURLExpiry: 2 * time.Second},
		faults: []string{"PUT /s3/:latency=2500ms:n=3"}, files: 3, big: true},
	// Uploads wait 3 s after each close, so that none has ended when the
	// token is revoked right after the copy: the case needs uploads to
	// refuse.
	{name: "token-revoked", files: 20, delay: 3 * time.Second, during: tokenRevoked},
	{name: "unreachable", files: 20, big: true, delay: time.Second, during: synapseDown},
	{name: "mixed", emu: emulator.Options{Throttle: true, UploadURLExpiry: 5 * time.Second}, faults: []string{
		"/repo/v1/:503:p=0.1", "/file/v1/:503:p=0.1",
		"PUT /s3/:drop-after-bytes=32768:p=0.2",
		"POST /repo/v1/entity:drop-after-handling:p=0.2",
		"PUT /file/v1/file/multipart/{uploadId}/complete:drop-after-handling:p=0.2",
		"*:latency=50ms",
	}, files: 60, big: true, delay: time.Second, during: func(t *testing.T, e *env, o *outage) {
		synapseDown(t, e, o)
		tokenRevoked(t, e, o)
	}},
}

func TestProveFaults(t *testing.T) {
	requireFUSE(t)
	seed := proveSeed(t)
	t.Logf("replay with SYNFS_PROVE_SEED=%d go test -run TestProveFaults ./fs/", seed)
	for i, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) { runFaultCase(t, fc, seed+uint64(i)) })
	}
}

func runFaultCase(t *testing.T, fc faultCase, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0xfa17))
	o := &outage{}
	fc.emu.FaultSeed = seed
	e := newEnv(t, envOptions{emuOptions: fc.emu, restRate: fc.rate, wrap: o.wrap, delay: fc.delay})
	// The mount has seen its folder before the faults begin, as a mount in
	// use has: three 503s in a row at the very start (p=0.1 each, more
	// likely under load) otherwise take Synapse for unreachable before the
	// project was ever listed, and the copy fails at once with ENOTCONN.
	if _, err := xReadDir(t, e.data); err != nil {
		t.Fatal(err)
	}
	for _, spec := range fc.faults {
		f, err := emulator.ParseFault(spec)
		if err != nil {
			t.Fatal(err)
		}
		e.em.AddFault(f)
	}
	src := t.TempDir()
	files := makeTree(t, rng, src, fc.files, false)
	if fc.big {
		b := pattern(17<<20+12345, byte(seed)) // three parts
		files["big.bin"] = b
		if err := os.WriteFile(path.Join(src, "big.bin"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childOp+"=copytree", childOp+"_A="+src, childOp+"_B="+e.data)
	e.within(3*time.Minute, "the copy", func() {
		if out, err := cmd.Output(); err != nil || strings.Count(string(out), "\n") != len(files) {
			t.Errorf("copy: %v; %d of %d files closed", err, strings.Count(string(out), "\n"), len(files))
		}
	})
	if fc.during != nil {
		fc.during(t, e, o)
	}
	e.drain(5 * time.Minute)
	got := map[string][]emulator.EntityInfo{}
	var walk func(id, prefix string)
	walk = func(id, prefix string) {
		for _, c := range e.em.Children(id) {
			p := path.Join(prefix, c.Name)
			if c.Kind == "folder" {
				walk(c.ID, p)
			} else {
				got[p] = append(got[p], c)
			}
		}
	}
	walk(e.folder, "")
	for p, b := range files {
		ents := got[p]
		delete(got, p)
		switch {
		case len(ents) != 1:
			t.Errorf("%s: %d entities, want 1", p, len(ents))
		case len(ents[0].Versions) != 1 || ents[0].Versions[0].MD5 != md5hex(b):
			t.Errorf("%s: %d versions, current md5 %s; want 1 version, md5 %s", p, len(ents[0].Versions),
				ents[0].Versions[len(ents[0].Versions)-1].MD5, md5hex(b))
		}
	}
	for p := range got {
		t.Errorf("%s is in Synapse but was not copied", p)
	}
	recs, _ := e.store.Records()
	for _, r := range recs {
		if r.State != cache.StateDone {
			t.Errorf("%s left in the cache as %s: %s", r.Name, r.State, r.Err)
		}
	}
	st := e.em.Stats()
	if fc.emu.UploadURLExpiry > 0 && len(fc.faults) == 1 {
		expired := 0
		for _, r := range e.em.Requests() {
			if strings.HasPrefix(r.Path, "/s3/") && r.Status == http.StatusForbidden {
				expired++
			}
		}
		if expired == 0 {
			t.Error("no part upload met an expired URL")
		}
	}
	if fc.during != nil && strings.Contains(fc.name, "unreachable") && o.dropped.Load() == 0 {
		t.Error("no request met the outage")
	}
	t.Logf("%s: %d files in Synapse once with their MD5; %d requests faulted, %d throttled, %d dropped by the outage; %d uploads started, %d part PUTs",
		fc.name, len(files), st.FaultsInjected, st.Throttled, o.dropped.Load(), st.UploadsStarted, st.PartsPut)
}
