package fs_test

import (
	"path/filepath"
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
	recs, err := e.store.Records()
	if err != nil || len(recs) != 1 {
		t.Fatalf("records: %+v, %v", recs, err)
	}
	if r := recs[0]; r.Size != int64(len(data)) || r.MD5 != md5hex(data) {
		t.Fatalf("staged record: size %d MD5 %q; want %d %q", r.Size, r.MD5, len(data), md5hex(data))
	}
}
