package fs_test

import (
	"os"
	"testing"
	"time"
)

// A syscall the kernel interrupts (Go programs get a signal for every
// runtime preemption that lands in a slow syscall) is made again by the
// kernel once the file system answers EINTR. mkdir, rmdir and rename used
// to give up their call to Synapse at the interrupt, after Synapse had
// made the change: the repeated syscall then found it made, and answered
// EEXIST or ENOENT for an operation that succeeded. Hundreds of rounds,
// while another process lists the folder and writes files (REST calls
// and uploads, so that the calls are slow enough to be interrupted), must
// all succeed. Under -race, before the fix, a third to three quarters of
// the runs failed.
func TestInterruptedChangesAnswerOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := put(t, e.data+"/m.txt", pattern(3000, 1)); err != nil {
		t.Fatal(err)
	}
	e.drain(time.Minute)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		bg := startOpChild(t, e.data, time.Minute)
		defer bg.stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			bg.do(fsOp{Kind: "readdir", Path: "."})
			bg.do(fsOp{Kind: "open", Path: "f.bin", Flags: os.O_WRONLY | os.O_CREATE | os.O_TRUNC, FD: 1})
			bg.do(fsOp{Kind: "write", FD: 1, N: 200_000, Seed: int64(i)})
			bg.do(fsOp{Kind: "close", FD: 1})
		}
	}()
	defer func() { close(stop); <-done }()
	op := startOpChild(t, e.data, time.Minute)
	defer op.stop()
	failed := 0
	for i := 0; i < 300 && failed < 5; i++ {
		for _, o := range []fsOp{
			{Kind: "mkdir", Path: "d1"},
			{Kind: "rmdir", Path: "d1"},
			{Kind: "rename", Path: "m.txt", Path2: "n.txt"},
			{Kind: "rename", Path: "n.txt", Path2: "m.txt"},
		} {
			if r := op.do(o); r.Errno != 0 {
				t.Errorf("round %d: %v: errno %d %s", i, o, r.Errno, r.Err)
				failed++
			}
		}
	}
}
