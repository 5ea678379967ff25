package fs_test

// The peer synfs's staging is measured against: rclone's mount with
// `--vfs-cache-mode writes` (also on bazil.org/fuse) over `rclone serve
// webdav` on loopback. Debian: apt-get install -y rclone (1.60).

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

// rcloneMount is an rclone mount over rclone's WebDAV server of a local
// directory, both its own processes.
type rcloneMount struct {
	mnt string
	dev uint64
}

// startRclone serves dir over WebDAV on loopback and mounts it with
// rclone's write cache in work; uploads are held back (--vfs-write-back
// 1h) as synfs's are in the same benchmarks, so that only staging is timed.
// Without rclone installed it returns nil and says so: the benchmark then
// reports no rclone figures.
func startRclone(b *testing.B, work string) *rcloneMount {
	b.Helper()
	bin, err := exec.LookPath("rclone")
	if err != nil {
		b.Log("rclone is not installed (apt-get install -y rclone): no rclone baseline")
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	served := filepath.Join(work, "rclone-served")
	mnt := filepath.Join(work, "rclone-mnt")
	for _, d := range []string{served, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	conf := filepath.Join(work, "rclone.conf")
	os.WriteFile(conf, nil, 0o600)
	start := func(args ...string) {
		cmd := exec.Command(bin, append(args, "--config", conf)...)
		cmd.Env = append(os.Environ(), "RCLONE_CONFIG_PEER_TYPE=webdav", "RCLONE_CONFIG_PEER_URL=http://"+addr)
		log, _ := os.Create(filepath.Join(work, fmt.Sprintf("rclone-%s.log", args[0])))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); log.Close(); close(exited) }()
		b.Cleanup(func() {
			if args[0] == "mount" {
				exec.Command("fusermount3", "-u", "-z", mnt).Run()
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	start("serve", "webdav", served, "--addr", addr)
	poll(b, 30*time.Second, "rclone serve webdav", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	parent := devOf(work)
	start("mount", "peer:", mnt, "--vfs-cache-mode", "writes", "--vfs-write-back", "1h",
		"--cache-dir", filepath.Join(work, "rclone-cache"))
	poll(b, 30*time.Second, "rclone mount", func() bool { return devOf(mnt) != parent && devOf(mnt) != 0 })
	return &rcloneMount{mnt: mnt, dev: devOf(mnt)}
}

// cp runs cp with args into the rclone mount and returns how long it took.
func (r *rcloneMount) cp(b *testing.B, timeout time.Duration, args ...string) time.Duration {
	b.Helper()
	return runCmd(b, &benchDaemon{dev: r.dev}, timeout, "cp", args...)
}

// BenchmarkCopySmallFiles: `cp -r` of 1,000 files of 4 KiB into the mount
// (until cp returns: staging only, uploads held back), against `cp -r` +
// `sync` to a directory on the cache's disk and against the rclone mount
// (left out without rclone), in the same run. Goals: synfs/local >= 0.8 of
// the files per second, and faster than rclone.
func BenchmarkCopySmallFiles(b *testing.B) {
	requireFUSE(b)
	const files = 1000
	work := b.TempDir()
	src := filepath.Join(work, "small")
	os.MkdirAll(src, 0o755)
	for k := range files {
		body := pattern(4<<10, byte(k))
		binary.LittleEndian.PutUint32(body, uint32(k))
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d.dat", k)), body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	e := newBenchEmu(b, emulator.Options{DataDir: "-"})
	d := startBenchDaemon(b, e, filepath.Join(work, "cache"), "--writeback-delay", "1h",
		"--rest-concurrency", "16", "--rest-rate", "1000000")
	os.ReadDir(d.data) // warm: the folder's listing and permissions
	rc := startRclone(b, work)
	for i := 0; i < b.N; i++ {
		local := filepath.Join(work, "local")
		os.MkdirAll(local, 0o755)
		runCmd(b, nil, time.Minute, "sync")
		localTook := runCmd(b, nil, 5*time.Minute, "cp", "-r", src, local)
		localTook += runCmd(b, nil, 5*time.Minute, "sync")
		os.RemoveAll(local)
		runCmd(b, nil, time.Minute, "sync")

		dir := fmt.Sprintf("small%d", i)
		mountTook := runCmd(b, d, 5*time.Minute, "cp", "-r", src, filepath.Join(d.data, dir))
		if ents, err := os.ReadDir(filepath.Join(d.data, dir)); err != nil || len(ents) != files {
			b.Fatalf("%s: %d entries, %v; want %d", dir, len(ents), err, files)
		}
		b.ReportMetric(localTook.Seconds(), "local-s")
		b.ReportMetric(mountTook.Seconds(), "mount-s")
		b.ReportMetric(localTook.Seconds()/mountTook.Seconds(), "ratio")
		if rc != nil {
			rcloneTook := rc.cp(b, time.Minute, "-r", src, filepath.Join(rc.mnt, dir))
			b.ReportMetric(rcloneTook.Seconds(), "rclone-s")
			b.ReportMetric(rcloneTook.Seconds()/mountTook.Seconds(), "rclone/mount")
		}
	}
}
