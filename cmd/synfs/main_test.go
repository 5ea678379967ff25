package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synfs/synfs/remote/emulator"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "synfs-cmd")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "synfs")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// synfs runs the binary and returns its exit code and stderr.
func synfs(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("synfs %v did not exit within 60 s", args)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stderr.String()
}

func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/mounts")
	return strings.Contains(string(b), " "+dir+" ")
}

func TestMountFailsAtOnce(t *testing.T) {
	em, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	if _, _, err := em.Seed("good-token"); err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), []byte("x"), 0o644)
	cases := []struct {
		name, token, endpoint, mnt, want string
	}{
		{"bad token", "wrong-token", srv.URL, t.TempDir(), "Synapse refused the token"},
		{"unreachable", "good-token", "http://127.0.0.1:1", t.TempDir(), "cannot reach Synapse"},
		{"not empty", "good-token", srv.URL, full, "is not empty"},
		{"missing", "good-token", srv.URL, filepath.Join(full, "nope"), "no such file or directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			code, stderr := synfs(t, []string{"SYNAPSE_AUTH_TOKEN=" + c.token},
				"mount", c.mnt, "--endpoint", c.endpoint, "--config", "/dev/null", "--cache-dir", t.TempDir())
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; stderr:\n%s", stderr)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("got stderr %q, want one line containing %q", stderr, c.want)
			}
			if strings.Contains(stderr, c.token) {
				t.Errorf("the token appears in %q", stderr)
			}
			if mounted(c.mnt) {
				exec.Command("fusermount3", "-u", "-z", c.mnt).Run()
				t.Error("left something mounted")
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v to fail, want at once", d)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "1024": 1024, "512M": 512 << 20, "50G": 50 << 30, "1.5GiB": 3 << 29, "2T": 2 << 40} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "-1G", "G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q): got no error", bad)
		}
	}
}

// A missing ~/.synapseConfig is not an error: the token can come from the
// environment.
func TestMissingDefaultConfig(t *testing.T) {
	em, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	code, stderr := synfs(t, []string{"HOME=" + t.TempDir(), "SYNAPSE_AUTH_TOKEN=not-a-user"},
		"mount", t.TempDir(), "--endpoint", srv.URL, "--cache-dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "Synapse refused the token") {
		t.Fatalf("got exit %d, stderr %q; want the token refused (the missing config file ignored)", code, stderr)
	}
}

// An uncertified user can mount and browse, and is told once, at mount
// time, why creating files will fail; SIGTERM unmounts cleanly.
func TestUncertifiedWarningAndCleanStop(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	em, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	em.AddUser("newbie", "newbie-token", false)
	mnt := t.TempDir()
	cmd := exec.Command(binary, "mount", mnt, "--endpoint", srv.URL, "--config", "/dev/null", "--cache-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "SYNAPSE_AUTH_TOKEN=newbie-token")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		exec.Command("fusermount3", "-u", "-z", mnt).Run()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "synfs: mounted") {
		if time.Now().After(deadline) {
			t.Fatalf("not mounted after 30 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(stderr.String(), "not a Certified User"); n != 1 {
		t.Errorf("got %d certification warnings, want 1:\n%s", n, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Certified User quiz") {
		t.Errorf("the warning does not name the Certified User quiz:\n%s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("synfs did not exit within 30 s of SIGTERM")
	}
	if mounted(mnt) {
		t.Error("still mounted after SIGTERM")
	}
}

// syncBuffer is a strings.Builder safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
