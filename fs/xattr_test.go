package fs_test

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote"
	"github.com/synfs/synfs/remote/emulator"
)

// TestXattrIdentity reads every read-only attribute of a staged file, an
// uploaded file and a folder, and checks them against the REST API.
func TestXattrIdentity(t *testing.T) {
	e := newEnv(t, envOptions{delay: time.Hour})
	p := filepath.Join(e.data, "reads.txt")
	if err := xWriteFile(t, p, []byte("ACGT\n")); err != nil {
		t.Fatal(err)
	}
	// Staged: a state, no ID yet. The kernel releases the writer's handle
	// just after close(2) returns; until then the file is "open".
	var state string
	waitFor(t, 10*time.Second, "the staged file to be dirty", func() bool {
		state, _ = xGetxattr(t, p, "user.synfs.state")
		return state == "dirty"
	})
	if _, err := xGetxattr(t, p, "user.synapse.id"); errnoOf(err) != syscall.ENODATA {
		t.Errorf("user.synapse.id of a staged file: got %v, want ENODATA", err)
	}
	e.drain(time.Minute)

	ctx := context.Background()
	info := e.remoteFile(e.folder, "reads.txt")
	ent, err := e.client.Get(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"user.synapse.id":      ent.ID,
		"user.synapse.version": strconv.FormatInt(ent.Version, 10),
		"user.synapse.md5":     ent.MD5,
		"user.synapse.etag":    ent.Etag,
		"user.synfs.state":     "uploaded",
	}
	for name, v := range want {
		if got, err := xGetxattr(t, p, name); err != nil || got != v {
			t.Errorf("%s: got %q, %v; want %q", name, got, err, v)
		}
	}
	names, err := xListxattr(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"user.synapse.etag", "user.synapse.id", "user.synapse.md5", "user.synapse.version", "user.synfs.state"}; !slices.Equal(names, want) {
		t.Errorf("listxattr: got %q, want %q", names, want)
	}

	folder, err := e.client.Get(ctx, e.folder)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := xGetxattr(t, e.data, "user.synapse.id"); err != nil || got != e.folder {
		t.Errorf("folder id: got %q, %v; want %q", got, err, e.folder)
	}
	if got, err := xGetxattr(t, e.data, "user.synapse.etag"); err != nil || got != folder.Etag {
		t.Errorf("folder etag: got %q, %v; want %q", got, err, folder.Etag)
	}

	// Errnos.
	for _, c := range []struct {
		name, value string
		want        syscall.Errno
	}{
		{"user.synapse.id", "syn1", syscall.EPERM},
		{"user.synfs.state", "uploaded", syscall.EPERM},
		{"user.bad key", "x", syscall.EINVAL},
		{"user._accessRequirementIds", "1", syscall.EINVAL},
		{"trusted.x", "x", syscall.ENOTSUP},
		{"user.long", strings.Repeat("x", remote.MaxAnnotationString+1), syscall.E2BIG},
	} {
		if err := xSetxattr(t, p, c.name, c.value); errnoOf(err) != c.want {
			t.Errorf("setxattr %s: got %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := child(t, "setxattr-replace", p, "user.fresh", []byte("1")); errnoOf(err) != syscall.ENODATA {
		t.Errorf("XATTR_REPLACE of a missing annotation: got %v, want ENODATA", err)
	}
	if _, err := child(t, "setxattr-create", p, "user.fresh", []byte("1")); err != nil {
		t.Errorf("XATTR_CREATE of a new annotation: %v", err)
	}
	if _, err := child(t, "setxattr-create", p, "user.fresh", []byte("2")); errnoOf(err) != syscall.EEXIST {
		t.Errorf("XATTR_CREATE of an existing annotation: got %v, want EEXIST", err)
	}
	if _, err := child(t, "setxattr-replace", p, "user.fresh", []byte("3")); err != nil {
		t.Errorf("XATTR_REPLACE of an existing annotation: %v", err)
	}
	if got, err := xGetxattr(t, p, "user.fresh"); err != nil || got != "3" {
		t.Errorf("user.fresh after XATTR_REPLACE: got %q, %v; want 3", got, err)
	}
	if err := xRemovexattr(t, p, "user.missing"); errnoOf(err) != syscall.ENODATA {
		t.Errorf("removexattr of a missing annotation: got %v, want ENODATA", err)
	}
}

// TestXattrAnnotationTypes sets one annotation of each type the official
// client writes, checks the type Synapse stores, and reads it back.
func TestXattrAnnotationTypes(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := filepath.Join(e.data, "typed.txt")
	if err := xWriteFile(t, p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	id := e.remoteFile(e.folder, "typed.txt").ID
	cases := []struct {
		key, in, typ string
		vals         []string
		out          string
	}{
		{"assay", "rnaSeq", remote.TypeString, []string{"rnaSeq"}, "rnaSeq"},
		{"n", "42", remote.TypeLong, []string{"42"}, "42"},
		{"ratio", "0.5", remote.TypeDouble, []string{"0.5"}, "0.5"},
		{"ok", "True", remote.TypeBoolean, []string{"true"}, "true"},
		{"day", "2024-01-31", remote.TypeTimestamp, []string{"1706659200000"}, "2024-01-31T00:00:00.000Z"},
		{"tissues", "[brain, liver]", remote.TypeString, []string{"brain", "liver"}, "[brain, liver]"},
		{"reps", "[1, 2, 3]", remote.TypeLong, []string{"1", "2", "3"}, "[1, 2, 3]"},
		{"code", `"007"`, remote.TypeString, []string{"007"}, "007"},
		{"zip", `"12345"`, remote.TypeString, []string{"12345"}, `"12345"`},
	}
	for _, c := range cases {
		if err := xSetxattr(t, p, "user."+c.key, c.in); err != nil {
			t.Fatalf("setxattr user.%s=%q: %v", c.key, c.in, err)
		}
	}
	a, err := e.client.Annotations(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		want := remote.AnnotationValue{Type: c.typ, Values: c.vals}
		if got := a.Values[c.key]; !got.Equal(want) {
			t.Errorf("%s in Synapse: got %v %q, want %v %q", c.key, got.Type, got.Values, c.typ, c.vals)
		}
		got, err := xGetxattr(t, p, "user."+c.key)
		if err != nil || got != c.out {
			t.Errorf("getxattr user.%s: got %q, %v; want %q", c.key, got, err, c.out)
		}
		if back := remote.ParseAnnotation(got); !back.Equal(want) {
			t.Errorf("user.%s reads back as %v %q, want %v %q", c.key, back.Type, back.Values, c.typ, c.vals)
		}
	}
	names, _ := xListxattr(t, p)
	if !slices.Contains(names, "user.tissues") || !slices.Contains(names, "user.synapse.id") {
		t.Errorf("listxattr: got %q, want the annotations and user.synapse.*", names)
	}
	if err := xRemovexattr(t, p, "user.assay"); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.client.Annotations(context.Background(), id); a.Values["assay"].Type != "" || a.Values["n"].Type != remote.TypeLong {
		t.Errorf("after removexattr user.assay: got %v, want assay gone and n kept", a.Values)
	}
	if err := xSetxattr(t, e.data, "user.study", "pilot"); err != nil {
		t.Fatalf("setxattr on a folder: %v", err)
	}
	if a, _ := e.client.Annotations(context.Background(), e.folder); !a.Values["study"].Equal(remote.AnnotationValue{Type: remote.TypeString, Values: []string{"pilot"}}) {
		t.Errorf("folder annotations: got %v", a.Values)
	}
	// The 101st key fails with ENOSPC, before any REST call.
	for i := len(cases) - 1; i < remote.MaxAnnotationKeys; i++ {
		if err := e.client.SetAnnotations(context.Background(), id, addKey(t, e, id, "k"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := xSetxattr(t, p, "user.onemore", "x"); errnoOf(err) != syscall.ENOSPC {
		t.Errorf("setxattr of the 101st key: got %v, want ENOSPC", err)
	}
}

func addKey(t *testing.T, e *env, id, key string) *remote.Annotations {
	a, err := e.client.Annotations(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	a.Values[key] = remote.AnnotationValue{Type: remote.TypeLong, Values: []string{"1"}}
	return a
}

// TestXattrConcurrentChange: a change made elsewhere after synfs read the
// annotations makes synfs's write fail with 412; synfs reads again and
// keeps the other change.
func TestXattrConcurrentChange(t *testing.T) {
	// The emulator's clock stands still, so the change made elsewhere keeps
	// the entity's modifiedOn (two changes within one millisecond): synfs
	// trusts its cached etag and meets the 412.
	start := time.Now()
	e := newEnv(t, envOptions{emuOptions: emulator.Options{Now: func() time.Time { return start }}})
	p := filepath.Join(e.data, "race.txt")
	if err := xWriteFile(t, p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	id := e.remoteFile(e.folder, "race.txt").ID
	if _, err := xListxattr(t, p); err != nil { // synfs caches the annotations and etag
		t.Fatal(err)
	}
	if err := e.client.SetAnnotations(context.Background(), id, addKey(t, e, id, "web")); err != nil {
		t.Fatal(err)
	}
	before := e.em.Stats().Requests["PUT /repo/v1/entity/{id}/annotations2"]
	if err := xSetxattr(t, p, "user.mine", "1"); err != nil {
		t.Fatal(err)
	}
	a, _ := e.client.Annotations(context.Background(), id)
	if a.Values["web"].Type == "" || a.Values["mine"].Type == "" {
		t.Errorf("annotations after the race: got %v, want both web and mine", a.Values)
	}
	if puts := e.em.Stats().Requests["PUT /repo/v1/entity/{id}/annotations2"] - before; puts != 2 {
		t.Errorf("annotation PUTs: got %d, want 2 (a 412, then the retry)", puts)
	}
}

// TestXattrReadsAreCached: reading annotations again costs no REST call
// while the entity is unchanged; a change made elsewhere shows after the
// listing TTL.
func TestXattrReadsAreCached(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := filepath.Join(e.data, "cached.txt")
	if err := xWriteFile(t, p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	if err := xSetxattr(t, p, "user.assay", "rnaSeq"); err != nil {
		t.Fatal(err)
	}
	// Calls on the entity itself; folder listings are what lookups cost
	// with or without xattrs.
	total := func() int {
		st := e.em.Stats().Requests
		return st["GET /repo/v1/entity/{id}/annotations2"] + st["GET /repo/v1/entity/{id}"] + st["POST /file/v1/fileHandle/batch"]
	}
	// Warm: the first reads may meet the folder's listing refreshed after
	// the setxattr (a new modifiedOn), which rightly costs one read. So
	// wait for a listing fetched from Synapse after it, then for a read
	// that costs nothing.
	lists := func() int { return e.em.Stats().Requests["POST /repo/v1/entity/children"] }
	listed := lists()
	waitFor(t, 20*time.Second, "the folder listed again", func() bool {
		xGetxattr(t, p, "user.assay")
		return lists() > listed
	})
	waitFor(t, 20*time.Second, "a getxattr that costs no REST call", func() bool {
		b := total()
		if _, err := xGetxattr(t, p, "user.assay"); err != nil {
			t.Fatal(err)
		}
		return total() == b
	})
	before := total()
	for range 5 {
		if got, err := xGetxattr(t, p, "user.assay"); err != nil || got != "rnaSeq" {
			t.Fatalf("getxattr: got %q, %v", got, err)
		}
		if _, err := xListxattr(t, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := total() - before; n != 0 {
		t.Errorf("REST calls for 5 getxattr and 5 listxattr of an unchanged file: got %d, want 0 (%v)", n, e.em.Stats().Requests)
	}
	id := e.remoteFile(e.folder, "cached.txt").ID
	a, _ := e.client.Annotations(context.Background(), id)
	a.Values["assay"] = remote.AnnotationValue{Type: remote.TypeString, Values: []string{"wgs"}}
	if err := e.client.SetAnnotations(context.Background(), id, a); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := xGetxattr(t, p, "user.assay")
		if err == nil && got == "wgs" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a change made elsewhere did not show within 30 s: got %q, %v", got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
