package fs_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// restCalls counts the REST calls between two emulator snapshots: every
// route but the presigned part PUTs and GETs, which are not REST calls and
// are not throttled by Synapse.
func restCalls(before, after emulator.Stats) (int, map[string]int) {
	by := map[string]int{}
	n := 0
	for route, c := range after.Requests {
		if strings.Contains(route, "/s3/") {
			continue
		}
		if d := c - before.Requests[route]; d > 0 {
			by[route] = d
			n += d
		}
	}
	return n, by
}

// On real Synapse REST calls are the scarce resource (about 600 a minute
// per user): a new small file in a folder whose listing is fresh costs the
// five calls an upload needs (start, presign, add part, complete, create),
// and the folder's upload destination is asked once.
func TestRESTCallsPerNewFile(t *testing.T) {
	e := newEnv(t, envOptions{metaTTL: time.Minute})
	if err := xMkdir(t, filepath.Join(e.data, "batch")); err != nil {
		t.Fatal(err)
	}
	const files = 12
	before := e.em.Stats()
	for i := 0; i < files; i++ {
		if err := put(t, filepath.Join(e.data, "batch", "s"+itoa(i)+".txt"), pattern(2000, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	e.drain(time.Minute)
	n, by := restCalls(before, e.em.Stats())
	if want := 5*files + 1; n != want {
		t.Fatalf("%d REST calls for %d new files, want %d (5 each + one upload destination): %v", n, files, want, by)
	}

	// An overwrite (a new version) needs the entity and its data handle
	// first, to skip identical content: 3 more calls, and an update
	// instead of a create.
	before = e.em.Stats()
	if err := put(t, filepath.Join(e.data, "batch", "s"+itoa(0)+".txt"), pattern(3000, 99)); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	n, by = restCalls(before, e.em.Stats())
	t.Logf("overwrite: %d REST calls: %v", n, by)

	if n != 8 {
		t.Fatalf("overwrite: %d REST calls, want 8: %v", n, by)
	}
}
