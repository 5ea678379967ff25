package fs_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// Crash rounds: synfs mount runs as its own process while a child copies a
// tree of ~300 files of mixed sizes (some multi-part) into the mount, with
// emulator faults on; the mount is killed with SIGKILL at a random moment,
// remounted on the same cache directory, and the next round copies another
// tree. At the end every file whose close() returned is in Synapse exactly
// once with the right MD5, files cut off by the kill are absent or a prefix
// of their source, and no other name exists.
//
//	SYNFS_PROVE_CRASH_ROUNDS=N  rounds (default 3; 10 in the long profile)
//	SYNFS_PROVE_SEED=N          replay one seed

func init() { childServers["copytree"] = serveCopyTree }

// serveCopyTree copies every file under src to dst like cp -r, printing each
// file's path once its close() has returned; it stops at the first error.
func serveCopyTree(src, dst string) int {
	var files []string
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(src, p)
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	out := bufio.NewWriter(os.Stdout)
	buf := make([]byte, 128<<10)
	for _, rel := range files {
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		in, err := os.Open(filepath.Join(src, rel))
		if err != nil {
			return 1
		}
		f, err := os.Create(to)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_, werr := io.CopyBuffer(f, in, buf)
		in.Close()
		if cerr := f.Close(); werr != nil || cerr != nil {
			fmt.Fprintln(os.Stderr, werr, cerr)
			return 1
		}
		fmt.Fprintln(out, rel)
		out.Flush()
	}
	return 0
}

// makeTree writes n files of mixed sizes under dir: mostly small, some of
// a few MiB, and multi-part ones (over 8 MiB) when big is set.
func makeTree(t *testing.T, rng *rand.Rand, dir string, n int, big bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i := range n {
		var size int
		switch r := rng.IntN(100); {
		case big && i%150 == 7:
			size = 8<<20 + 1 + rng.IntN(9<<20) // 2 or 3 parts
		case r < 5:
			size = 1<<20 + rng.IntN(3<<20)
		case r < 30:
			size = 64<<10 + rng.IntN(512<<10)
		default:
			size = 1 + rng.IntN(64<<10)
		}
		rel := path.Join(fmt.Sprintf("sub%d", i%7), fmt.Sprintf("f%03d.dat", i))
		if i%7 == 0 {
			rel = fmt.Sprintf("f%03d.dat", i)
		}
		b := pattern(size, byte(rng.IntN(250)+1))
		b[0] = byte(i) // distinct contents
		files[rel] = b
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func proveSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("SYNFS_PROVE_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SYNFS_PROVE_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// crashFaults are the faults the crash rounds run under: transient errors
// and lost answers on every kind of call an upload makes.
var crashFaults = []string{
	"/repo/v1/:503:p=0.05",
	"/file/v1/:503:p=0.05",
	"PUT /s3/:drop-after-bytes=65536:p=0.1",
	"POST /repo/v1/entity:drop-after-handling:p=0.2",
	"PUT /repo/v1/entity/{id}:drop-after-handling:p=0.2",
	"PUT /file/v1/file/multipart/{uploadId}/complete:drop-after-handling:p=0.2",
	"*:latency=2ms",
}

func TestProveCrashRounds(t *testing.T) {
	requireFUSE(t)
	seed := proveSeed(t)
	rounds := envInt("SYNFS_PROVE_CRASH_ROUNDS", 3)
	t.Logf("replay with SYNFS_PROVE_SEED=%d SYNFS_PROVE_CRASH_ROUNDS=%d go test -run TestProveCrashRounds ./fs/", seed, rounds)
	rng := rand.New(rand.NewPCG(seed, seed^0xc4a5))
	em, url, folder := newEmulator(t, emulator.Options{FaultSeed: seed})
	for _, spec := range crashFaults {
		f, err := emulator.ParseFault(spec)
		if err != nil {
			t.Fatal(err)
		}
		em.AddFault(f)
	}
	cacheDir, mnt := t.TempDir(), t.TempDir()
	data := filepath.Join(mnt, "Demo Project", "Data")

	closed := map[string][]byte{} // "rN/rel" -> bytes, close() returned
	cut := map[string][]byte{}    // copied when the kill came
	var need int64                // bytes that must reach Synapse
	for r := range rounds {
		src := t.TempDir()
		files := makeTree(t, rng, src, 300, true)
		d := startDaemon(t, url, cacheDir, mnt, "--parts", "2")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		dst := filepath.Join(data, fmt.Sprintf("r%d", r))
		cmd.Env = append(os.Environ(), childOp+"=copytree", childOp+"_A="+src, childOp+"_B="+dst)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 400)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		killAt := 20 + rng.IntN(260) // files closed before the kill
		n := 0
		timeout := time.After(3 * time.Minute)
	copying:
		for n < killAt {
			select {
			case l, ok := <-lines:
				if !ok {
					break copying
				}
				closed[fmt.Sprintf("r%d/%s", r, l)] = files[l]
				n++
			case <-timeout:
				t.Fatalf("round %d: the copy did not get %d files closed within 3 minutes (%d)", r, killAt, n)
			}
		}
		// A random moment within the next file or so.
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		// The dead mount stays attached until the copy has stopped (at
		// its first ENOTCONN): detached earlier, the copy's MkdirAll and
		// creates would land in the mountpoint directory below it.
		d.cmd.Process.Signal(syscall.SIGKILL)
		d.cmd.Wait()
		waitDone := make(chan struct{})
		go func() { cmd.Wait(); close(waitDone) }()
		for l := range lines { // close() returned before the kill hit
			closed[fmt.Sprintf("r%d/%s", r, l)] = files[l]
			n++
		}
		select {
		case <-waitDone:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Fatalf("round %d: the copy did not stop after the kill", r)
		}
		if out, err := exec.Command("fusermount3", "-u", "-z", d.mnt).CombinedOutput(); err != nil {
			t.Logf("fusermount3 -u -z: %v %s", err, out)
		}
		for rel, b := range files {
			k := fmt.Sprintf("r%d/%s", r, rel)
			if _, ok := closed[k]; !ok {
				cut[k] = b
			}
		}
		t.Logf("round %d: killed after %d of 300 files closed", r, n)
	}
	for _, b := range closed {
		need += int64(len(b))
	}

	d := startDaemon(t, url, cacheDir, mnt)
	remoteFiles := func() map[string][]emulator.EntityInfo {
		got := map[string][]emulator.EntityInfo{}
		var walk func(id, prefix string)
		walk = func(id, prefix string) {
			for _, c := range em.Children(id) {
				p := path.Join(prefix, c.Name)
				if c.Kind == "folder" {
					walk(c.ID, p)
					continue
				}
				got[p] = append(got[p], c)
			}
		}
		walk(folder, "")
		return got
	}
	waitFor(t, 5*time.Minute, "every closed file in Synapse with its MD5", func() bool {
		got := remoteFiles()
		for p, b := range closed {
			if len(got[p]) == 0 || got[p][0].Versions[len(got[p][0].Versions)-1].MD5 != md5hex(b) {
				return false
			}
		}
		return true
	})
	d.stop(t)
	got := remoteFiles()
	partial := 0
	for p, ents := range got {
		if len(ents) != 1 {
			t.Errorf("%s: %d entities, want 1", p, len(ents))
			continue
		}
		v := ents[0].Versions[len(ents[0].Versions)-1]
		if b, ok := closed[p]; ok {
			if v.MD5 != md5hex(b) || len(ents[0].Versions) != 1 {
				t.Errorf("%s: %d versions, md5 %s; want one version, md5 %s", p, len(ents[0].Versions), v.MD5, md5hex(b))
			}
			continue
		}
		b, ok := cut[p]
		switch {
		case !ok:
			t.Errorf("%s is in Synapse but was never copied (a stray name)", p)
		case v.Size > int64(len(b)) || v.MD5 != md5hex(b[:v.Size]):
			t.Errorf("%s, cut off by the kill, holds %d bytes that are not a prefix of its source", p, v.Size)
		case v.Size < int64(len(b)):
			partial++
		}
	}
	st := em.Stats()
	parts := 0 // one PUT per part of every version that exists
	for _, ents := range got {
		for _, v := range ents[0].Versions {
			parts += int((v.Size + 8<<20 - 1) / (8 << 20))
		}
	}
	t.Logf("seed %d: %d rounds, %d files closed (%d MiB) all in Synapse once with their MD5; %d cut off by a kill (%d in Synapse as a prefix); "+
		"%d uploads started, %d completed; %d part PUTs for %d parts (%d sent again); %d faults injected",
		seed, rounds, len(closed), need>>20, len(cut), partial, st.UploadsStarted, st.UploadsCompleted, st.PartsPut, parts, st.PartsPut-parts, st.FaultsInjected)
}
