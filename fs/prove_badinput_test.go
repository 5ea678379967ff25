package fs_test

import (
	"path/filepath"
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
	bad = append(bad, strings.Repeat("n", 257), "\xff\xfe.txt", "caf\xc3.txt", "é.txt", " lead", "trail ", "\u00a0nbsp")
	good = append(good, strings.Repeat("n", 256), "data (1).csv", "it's+ok")
	okDir := filepath.Join(e.data, "ok.txt")
	if err := xWriteFile(t, okDir, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	e.within(5*time.Minute, "the names", func() {
		for _, name := range bad {
			p := filepath.Join(e.data, name)
			if err := xWriteFile(t, p, []byte("x")); errnoOf(err) != syscall.EINVAL {
				t.Errorf("create %q: got %v, want EINVAL", name, err)
			}
			if err := xMkdir(t, p); errnoOf(err) != syscall.EINVAL {
				t.Errorf("mkdir %q: got %v, want EINVAL", name, err)
			}
			if err := xRename(t, okDir, p); errnoOf(err) != syscall.EINVAL {
				t.Errorf("rename to %q: got %v, want EINVAL", name, err)
			}
		}
		for _, name := range good {
			if err := xWriteFile(t, filepath.Join(e.data, name), []byte(name)); err != nil {
				t.Errorf("create %q: %v", name, err)
			}
		}
	})
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
	t.Logf("%d refused names (EINVAL on create, mkdir, rename), %d accepted names uploaded", len(bad), len(good))
}
