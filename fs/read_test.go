package fs_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// TestRemoteReads reads a file that is only in Synapse: whole, by 1,000
// random 4 KiB preads (all correct), and the first byte; opening costs no
// REST call and the whole test one presigned URL.
func TestRemoteReads(t *testing.T) {
	e := newEnv(t, envOptions{})
	data := pattern(24<<20+4321, 3)
	e.uploadBehind(e.folder, map[string][]byte{"big.bin": data})
	p := filepath.Join(e.data, "big.bin")
	if _, err := xStat(t, p); err != nil { // list the folder, fetch the size
		t.Fatal(err)
	}
	before := e.em.RequestCounts()
	if got := fileMD5(t, p); got != md5hex(data) {
		t.Fatalf("md5 through the mount: got %s, want %s", got, md5hex(data))
	}
	r := rand.New(rand.NewPCG(5, 6))
	var ranges [][2]int64
	var want []byte
	for range 1000 {
		off := r.Int64N(int64(len(data)) + 100)
		ranges = append(ranges, [2]int64{off, 4096})
		want = append(want, data[min(off, int64(len(data))):min(off+4096, int64(len(data)))]...)
	}
	got, err := xPreads(t, p, ranges)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("1,000 random 4 KiB preads: %d bytes differ from the file's (%d)", len(got), len(want))
	}
	one, err := xPreads(t, p, [][2]int64{{int64(len(data)) - 1, 1}})
	if err != nil || len(one) != 1 || one[0] != data[len(data)-1] {
		t.Fatalf("last byte: got %v, %v", one, err)
	}
	// Listings are refreshed as the 1 s test TTL runs out; otherwise the
	// reads cost at most a presigned URL per open.
	calls := e.em.RequestCounts().Sub(before)
	urls := calls["POST /file/v1/fileHandle/batch"]
	if calls.Total() != urls+calls["POST /repo/v1/entity/children"] || urls > 3 {
		t.Fatalf("three opens and reads made REST calls %v, want only a presigned URL per open (and listings)", calls)
	}
}

// TestURLExpiryDuringRead reads one open file across the expiry of its
// presigned URL (1 s here, 30 s on Synapse): the read goes on with a new
// URL and every byte is right.
func TestURLExpiryDuringRead(t *testing.T) {
	e := newEnv(t, envOptions{emuOptions: emulator.Options{DownloadURLExpiry: time.Second}})
	data := pattern(40<<20, 8)
	e.uploadBehind(e.folder, map[string][]byte{"slow.bin": data})
	p := filepath.Join(e.data, "slow.bin")
	if _, err := xStat(t, p); err != nil {
		t.Fatal(err)
	}
	before := e.em.RequestCounts()
	// One descriptor: dd reads the first MiB, then, after the URL has
	// expired, md5sum reads the rest through the same open file.
	out, err := exec.Command("sh", "-c", "{ dd bs=1M count=1 of=/dev/null status=none; sleep 2.5; md5sum; } < '"+p+"'").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out))[0]; got != md5hex(data[1<<20:]) {
		t.Fatalf("md5 of the bytes read after the URL expired: got %s, want %s", got, md5hex(data[1<<20:]))
	}
	if n := e.em.RequestCounts().Sub(before)["POST /file/v1/fileHandle/batch"]; n < 2 {
		t.Fatalf("got %d presigned URLs, want a new one after the first expired", n)
	}
}

// TestReadaheadRaised: the mount's kernel read-ahead window is 8 MiB, not
// the 128 KiB the kernel gives a FUSE mount, so that sequential reads reach
// synfs as 1 MiB READs, several in flight (docs/benchmarks.md). Only root
// may set it.
func TestReadaheadRaised(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root may set a mount's read_ahead_kb")
	}
	e := newEnv(t, envOptions{})
	dev := devOf(e.mnt)
	maj, mnr := (dev>>8)&0xfff, (dev&0xff)|((dev>>12)&0xfff00)
	b, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", maj, mnr))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "8192" {
		t.Fatalf("read_ahead_kb of the mount = %s, want 8192", got)
	}
}
