package fs_test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bad input: every byte Synapse refuses in a name, over-long and non-UTF-8
// names, and leading or trailing spaces get EINVAL at once on create, mkdir
// and rename, and nothing of them reaches Synapse; the names it accepts
// (up to 256 characters) upload. The other bad inputs have their own tests:
// TestEmptyFileKeptLocal, TestCacheFullENOSPC, TestFullCacheDiskDaemonLives,
// TestCacheDirDeletedUnderMount, TestNoPermissionEACCES (a read-only
// project), TestUncertifiedEACCES, TestProveTwoMountsFolderRemoved and
// cmd/synfs TestWait* (a target folder deleted before its files upload).
func TestProveBadNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	var bad, good []string
	for c := 1; c < 256; c++ {
		if c == '/' {
			continue
		}
		name := "x" + string([]byte{byte(c)}) + "y"
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(",_. -+()'", byte(c)) >= 0
		if ok {
			good = append(good, name)
		} else {
			bad = append(bad, name)
		}
	}
	// Over Synapse's 256 characters: ENAMETOOLONG, not EINVAL (TestNameTooLong).
	long := strings.Repeat("n", 257)
	bad = append(bad, long, "\xff\xfe.txt", "caf\xc3.txt", "é.txt", " lead", "trail ", "\u00a0nbsp")
	good = append(good, strings.Repeat("n", 256), "data (1).csv", "it's+ok")
	// One child process runs every syscall (a process per call is slow
	// under the race detector).
	c := startOpChild(t, e.data, time.Minute)
	must := func(o fsOp) {
		if r := c.do(o); r.Errno != 0 || r.Err != "" {
			t.Errorf("%v: %s", o, errText(r))
		}
	}
	must(fsOp{Kind: "open", Path: "ok.txt", Flags: os.O_WRONLY | os.O_CREATE, FD: 1})
	must(fsOp{Kind: "write", FD: 1, Off: -1, Data: []byte("ok")})
	must(fsOp{Kind: "close", FD: 1})
	for _, name := range bad {
		for _, o := range []fsOp{
			{Kind: "open", Path: name, Flags: os.O_WRONLY | os.O_CREATE | os.O_TRUNC, FD: 2},
			{Kind: "mkdir", Path: name},
			{Kind: "rename", Path: "ok.txt", Path2: name},
		} {
			want := syscall.EINVAL
			if name == long {
				want = syscall.ENAMETOOLONG
			}
			if r := c.do(o); syscall.Errno(r.Errno) != want {
				t.Errorf("%s %q: got %s, want %v", o.Kind, name, errText(r), want)
				if o.Kind == "open" && r.Errno == 0 {
					c.do(fsOp{Kind: "close", FD: 2})
				}
			}
		}
	}
	for _, name := range good {
		must(fsOp{Kind: "open", Path: name, Flags: os.O_WRONLY | os.O_CREATE | os.O_TRUNC, FD: 3})
		must(fsOp{Kind: "write", FD: 3, Off: -1, Data: []byte(name)})
		must(fsOp{Kind: "close", FD: 3})
	}
	e.drain(2 * time.Minute)
	got := map[string]bool{}
	for _, c := range e.em.Children(e.folder) {
		got[c.Name] = true
	}
	for _, name := range append(good, "ok.txt") {
		if !got[name] {
			t.Errorf("%q is not in Synapse", name)
		}
		delete(got, name)
	}
	for name := range got {
		t.Errorf("%q is in Synapse", name)
	}
	t.Logf("%d refused names (EINVAL, or ENAMETOOLONG past 256 characters, on create, mkdir, rename), %d accepted names uploaded", len(bad), len(good))
}
