package fs_test

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// `cp` of a file of many chunks: the kernel's writeback sends its pages
// with several WRITEs in flight, out of order, and the staged record still
// gets the file's MD5 as the bytes arrive (no second read at upload).
func TestCopyKeepsRunningMD5(t *testing.T) {
	e := newEnv(t, envOptions{delay: time.Hour})
	data := pattern(48<<20+12345, 5)
	if err := put(t, filepath.Join(e.data, "big.bin"), data); err != nil {
		t.Fatal(err)
	}
	stagedWithMD5(t, e, data)
}

// The same with the daemon's CPUs kept busy: a reader that waits for one
// while the others go on delivers its WRITE tens of MiB late, past the
// chunks the running MD5 keeps in memory; those after it are read back,
// and the MD5 is still there at the close.
func TestCopyKeepsRunningMD5UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("copies 256 MiB")
	}
	e := newEnv(t, envOptions{delay: time.Hour})
	data := pattern(256<<20+777, 6)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() { // the daemon's goroutines share the Ps with these
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					for i := 0; i < 1e5; i++ {
						_ = i * i
					}
				}
			}
		}()
	}
	var once sync.Once
	release := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer release() // also when put fails the test
	err := put(t, filepath.Join(e.data, "big.bin"), data)
	release()
	if err != nil {
		t.Fatal(err)
	}
	stagedWithMD5(t, e, data)
}

// stagedWithMD5 checks that the one staged file holds data and already
// has its MD5 (the running MD5 was kept while it was written).
func stagedWithMD5(t *testing.T, e *env, data []byte) {
	t.Helper()
	recs, err := e.store.Records()
	if err != nil || len(recs) != 1 {
		t.Fatalf("records: %+v, %v", recs, err)
	}
	if r := recs[0]; r.Size != int64(len(data)) || r.MD5 != md5hex(data) {
		t.Fatalf("staged record: size %d MD5 %q; want %d %q", r.Size, r.MD5, len(data), md5hex(data))
	}
}

// TestSmallWritesAskNoCapability: under the writeback cache the kernel
// checks security.capability (a GETXATTR round trip) before every write(2)
// unless the mount promises to drop privileges itself (HandleKillPriv,
// mount.go): 200 writes of 10 KiB, as tar -x makes, then cost 200 round
// trips. With it the kernel asks once per attribute refresh.
func TestSmallWritesAskNoCapability(t *testing.T) {
	e := newEnv(t, envOptions{})
	if !e.m.KillPriv() {
		t.Skip("this kernel has no FUSE_HANDLE_KILLPRIV_V2 (Linux 5.11): it asks before every write")
	}
	dst := filepath.Join(e.data, "small-writes.bin")
	before := e.fsys.SecurityXattrReads()
	run(t, "dd", "if=/dev/zero", "of="+dst, "bs=10k", "count=200", "status=none")
	asked := e.fsys.SecurityXattrReads() - before
	if asked > 10 {
		t.Errorf("the kernel asked for security.capability %d times for 200 writes, want at most 10 (one per attribute refresh)", asked)
	}
	if st, err := os.Stat(dst); err != nil || st.Size() != 200*10240 {
		t.Fatalf("stat: %v %v, want %d bytes", st, err, 200*10240)
	}
	e.drain(time.Minute)
	got := e.remoteFile(e.folder, "small-writes.bin")
	if len(got.Versions) != 1 || got.Versions[0].Size != 200*10240 {
		t.Errorf("uploaded versions %+v, want one of %d bytes", got.Versions, 200*10240)
	}
}
