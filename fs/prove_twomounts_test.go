package fs_test

import (
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/cache"
)

// Two mounts of one Synapse (one emulator), each with its own cache
// directory, as two machines of one user.

// secondMount mounts the emulator of e again, with its own cache.
func (e *env) secondMount(t *testing.T, o envOptions) *env {
	t.Helper()
	e2 := &env{t: t, em: e.em, srv: e.srv, project: e.project, folder: e.folder, throttle: e.throttle,
		cacheDir: t.TempDir()}
	e2.mount(o)
	return e2
}

// metaTTL is the listing cache's lifetime in newEnv's mounts.
const metaTTL = time.Second

func TestProveTwoMountsSeeEachOther(t *testing.T) {
	a := newEnv(t, envOptions{})
	b := a.secondMount(t, envOptions{})
	// b has listed the folder before a writes, so it holds a listing to
	// expire.
	if _, err := xReadDir(t, b.data); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for i := range 8 {
		name := "from-a-" + itoa(i) + ".dat"
		files[name] = pattern(1000+i*70000, byte(i+1))
		if err := put(t, filepath.Join(a.data, name), files[name]); err != nil {
			t.Fatal(err)
		}
	}
	a.drain(time.Minute)
	uploaded := time.Now()
	waitFor(t, 10*time.Second, "b to list a's files", func() bool {
		names, err := xReadDir(t, b.data)
		if err != nil {
			t.Fatal(err)
		}
		for n := range files {
			if !slices.Contains(names, n) {
				return false
			}
		}
		return true
	})
	if d := time.Since(uploaded); d > metaTTL+2*time.Second {
		t.Errorf("b listed a's uploads after %v, want within the TTL (%v) and a little", d, metaTTL)
	}
	for n, want := range files {
		got, err := get(t, filepath.Join(b.data, n))
		if err != nil || md5hex(got) != md5hex(want) {
			t.Errorf("b reads %s: %d bytes, %v; want %d bytes, md5 %s", n, len(got), err, len(want), md5hex(want))
		}
	}
}

func TestProveTwoMountsSameName(t *testing.T) {
	a := newEnv(t, envOptions{})
	b := a.secondMount(t, envOptions{})
	one, two := pattern(5000, 1), pattern(7000, 2)
	// In turn: b's copy becomes the second version.
	if err := put(t, filepath.Join(a.data, "same.txt"), one); err != nil {
		t.Fatal(err)
	}
	a.drain(time.Minute)
	if err := put(t, filepath.Join(b.data, "same.txt"), two); err != nil {
		t.Fatal(err)
	}
	b.drain(time.Minute)
	ent := a.remoteFile(a.folder, "same.txt")
	if len(ent.Versions) != 2 || ent.Versions[0].MD5 != md5hex(one) || ent.Versions[1].MD5 != md5hex(two) {
		t.Fatalf("same.txt: got versions %+v, want a's then b's", ent.Versions)
	}
	// At once, on a name neither has seen in Synapse: one entity, both
	// contents kept as versions.
	three, four := pattern(3000, 3), pattern(4000, 4)
	if err := put(t, filepath.Join(a.data, "both.txt"), three); err != nil {
		t.Fatal(err)
	}
	if err := put(t, filepath.Join(b.data, "both.txt"), four); err != nil {
		t.Fatal(err)
	}
	a.drain(time.Minute)
	b.drain(time.Minute)
	ent = a.remoteFile(a.folder, "both.txt")
	var sums []string
	for _, v := range ent.Versions {
		sums = append(sums, v.MD5)
	}
	if len(sums) != 2 || !slices.Contains(sums, md5hex(three)) || !slices.Contains(sums, md5hex(four)) {
		t.Errorf("both.txt: got versions %v, want both contents (%s, %s)", sums, md5hex(three), md5hex(four))
	}
}

func TestProveTwoMountsFolderRemoved(t *testing.T) {
	a := newEnv(t, envOptions{})
	b := a.secondMount(t, envOptions{delay: 2 * time.Second})
	shared := "shared"
	if err := xMkdir(t, filepath.Join(a.data, shared)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b to see the folder", func() bool {
		_, err := xStat(t, filepath.Join(b.data, shared))
		return err == nil
	})
	// b stages a file there; a removes the folder before b uploads it.
	kept := pattern(9000, 9)
	if err := put(t, filepath.Join(b.data, shared, "late.dat"), kept); err != nil {
		t.Fatal(err)
	}
	if err := xRemove(t, filepath.Join(a.data, shared)); err != nil {
		t.Fatal(err)
	}
	before := len(a.em.Requests())
	b.drain(time.Minute)
	recs, _ := b.store.Records()
	if len(recs) != 1 || recs[0].State != cache.StateFailed || !strings.Contains(recs[0].Err, "no longer exists") {
		t.Fatalf("b's staged file: got %+v, want one failed file whose folder no longer exists", recs)
	}
	// Kept, not retried in a loop: a second later, few calls more.
	time.Sleep(time.Second)
	if n := len(a.em.Requests()) - before; n > 30 {
		t.Errorf("%d REST calls after the folder went, want a few (no retry storm)", n)
	}
	if got, err := xReadFile(t, filepath.Join(b.data, shared, "late.dat")); err == nil && md5hex(got) != md5hex(kept) {
		t.Errorf("b's failed file reads %d bytes, md5 %s; want its own bytes", len(got), md5hex(got))
	}
	// b's view of the folder follows within the TTL, with a precise errno.
	waitFor(t, 10*time.Second, "b to see the folder gone", func() bool {
		names, err := xReadDir(t, b.data)
		return err == nil && !slices.Contains(names, shared)
	})
	for _, p := range []string{filepath.Join(b.data, shared, "new.dat"), filepath.Join(b.data, shared, "x", "y")} {
		err := xWriteFile(t, p, []byte("x"))
		if en := errnoOf(err); en == syscall.EIO || err == nil {
			t.Errorf("writing %s in the removed folder: %v, want ENOENT", p, err)
		}
	}
}
