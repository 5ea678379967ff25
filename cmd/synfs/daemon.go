package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synfs/synfs/remote/synapse"
)

// The daemon child is the same binary, started by daemonize with these
// variables. The token, when it came from the environment, is handed over
// through an inherited pipe instead, so that it is in neither the
// daemon's arguments nor its environment.
const (
	envDaemonChild = "SYNFS_DAEMON_CHILD"
	envTokenFD     = "SYNFS_TOKEN_FD"
)

// daemonize starts "synfs mount ARGS" in the background, in its own
// session, and returns once it has mounted (0) or failed (its exit code,
// with its messages).
func daemonize(args []string) int {
	exe, err := os.Executable()
	if err != nil {
		return fail(1, "--daemon: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(1, "--daemon: %v", err)
	}
	defer r.Close()
	env := []string{envDaemonChild + "=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, synapse.EnvAuthToken+"=") && !strings.HasPrefix(kv, envDaemonChild+"=") && !strings.HasPrefix(kv, envTokenFD+"=") {
			env = append(env, kv)
		}
	}
	var extra []*os.File
	if tok := os.Getenv(synapse.EnvAuthToken); tok != "" {
		tr, tw, err := os.Pipe()
		if err != nil {
			return fail(1, "--daemon: %v", err)
		}
		tw.WriteString(tok) // far below a pipe's buffer
		tw.Close()
		defer tr.Close()
		extra = append(extra, tr)
		env = append(env, envTokenFD+"=3")
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fail(1, "--daemon: %v", err)
	}
	defer null.Close()
	cmd := exec.Command(exe, append([]string{"mount"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, w, w
	cmd.ExtraFiles, cmd.Env = extra, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fail(1, "--daemon: %v", err)
	}
	w.Close()
	for _, f := range extra {
		f.Close()
	}
	// Relay what the child says until it is mounted (it then moves its
	// output to the log file, which ends the pipe) or it exits.
	ok := false
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(3 * time.Minute)
loop:
	for {
		select {
		case l, more := <-lines:
			if !more {
				break loop
			}
			fmt.Fprintln(os.Stderr, l)
			if strings.HasPrefix(l, "synfs: mounted ") {
				ok = true
			}
		case <-timeout:
			fmt.Fprintln(os.Stderr, "synfs: the background mount did not answer within 3 minutes; stopping it")
			cmd.Process.Kill()
			break loop
		}
	}
	if ok {
		fmt.Fprintf(os.Stderr, "synfs: running in the background as process %d\n", cmd.Process.Pid)
		cmd.Process.Release()
		return 0
	}
	err = cmd.Wait()
	if ee, isExit := err.(*exec.ExitError); isExit && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	return 1
}

// daemonGetenv is os.Getenv, except that the token comes from the pipe
// daemonize handed over.
func daemonGetenv() func(string) string {
	tok := ""
	if fd, err := strconv.Atoi(os.Getenv(envTokenFD)); err == nil {
		f := os.NewFile(uintptr(fd), "token")
		b, _ := io.ReadAll(f)
		f.Close()
		tok = string(b)
	}
	os.Unsetenv(envTokenFD)
	return func(k string) string {
		if k == synapse.EnvAuthToken {
			return tok
		}
		return os.Getenv(k)
	}
}

// daemonReady moves stdout and stderr onto the log, which closes the pipe
// to the starting command: it then returns.
func daemonReady(logw *switchWriter) {
	f, ok := logw.get().(*os.File)
	if !ok {
		return
	}
	syscall.Dup2(int(f.Fd()), 1)
	syscall.Dup2(int(f.Fd()), 2)
}
