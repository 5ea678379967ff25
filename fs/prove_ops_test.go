package fs_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"
)

// A file-system operation, run by an opExec on one tree: the mount (in a
// child process, see child_test.go) or a local reference directory (in the
// test process). The same code runs both sides, so any difference in the
// results is a difference of the file systems.
type fsOp struct {
	Kind  string // open, write, read, close, ftruncate, fstat, dropcache, truncate, rename, unlink, mkdir, rmdir, readdir, stat, readfile, watch
	Path  string `json:",omitempty"`
	Path2 string `json:",omitempty"`
	Flags int    `json:",omitempty"`
	FD    int    `json:",omitempty"` // the handle number the test chose at open
	Off   int64  `json:",omitempty"`
	N     int64  `json:",omitempty"` // bytes to read, or the truncate size
	Data  []byte `json:",omitempty"`
	Seed  int64  `json:",omitempty"` // write: N bytes of pattern(Seed) instead of Data
}

func (o fsOp) String() string {
	s := o.Kind + " " + o.Path
	if o.Path2 != "" {
		s += " -> " + o.Path2
	}
	switch o.Kind {
	case "open":
		s += fmt.Sprintf(" flags=%#x fd=%d", o.Flags, o.FD)
	case "write":
		s += fmt.Sprintf(" fd=%d off=%d n=%d", o.FD, o.Off, o.N)
	case "read":
		s += fmt.Sprintf(" fd=%d off=%d n=%d", o.FD, o.Off, o.N)
	case "close", "fstat", "dropcache":
		s += fmt.Sprintf(" fd=%d", o.FD)
	case "ftruncate":
		s += fmt.Sprintf(" fd=%d n=%d", o.FD, o.N)
	case "truncate":
		s += fmt.Sprintf(" n=%d", o.N)
	}
	return s
}

type fsResult struct {
	Errno int      `json:",omitempty"`
	Err   string   `json:",omitempty"`
	N     int64    `json:",omitempty"`
	Data  []byte   `json:",omitempty"`
	Names []string `json:",omitempty"` // readdir: "name/" for folders, "name size" for files
	Size  int64    `json:",omitempty"`
	Dir   bool     `json:",omitempty"`
}

// opExec runs fsOps under root, keeping the open files by the test's numbers.
type opExec struct {
	root string
	fds  map[int]*os.File
}

func newOpExec(root string) *opExec { return &opExec{root: root, fds: map[int]*os.File{}} }

func (x *opExec) path(p string) string { return filepath.Join(x.root, p) }

// do runs o, again while it fails with EINTR, as Go's os package and
// programs with SA_RESTART handlers do (the Go runtime's own preemption
// signals interrupt slow FUSE calls).
func (x *opExec) do(o fsOp) fsResult {
	for {
		res := x.do1(o)
		if syscall.Errno(res.Errno) != syscall.EINTR {
			return res
		}
	}
}

func (x *opExec) do1(o fsOp) (res fsResult) {
	var err error
	switch o.Kind {
	case "open":
		var f *os.File
		if f, err = os.OpenFile(x.path(o.Path), o.Flags, 0o644); err == nil {
			x.fds[o.FD] = f
		}
	case "watch":
		// An inotify watch: the kernel keeps the file's inode, and
		// the file system's node, without opening the file.
		var fd int
		if fd, err = syscall.InotifyInit(); err == nil {
			_, err = syscall.InotifyAddWatch(fd, x.path(o.Path), syscall.IN_ATTRIB)
		}
	case "write":
		b := o.Data
		if o.Seed != 0 {
			b = pattern(int(o.N), byte(o.Seed))
		}
		f := x.fds[o.FD]
		var n int
		if o.Off < 0 { // O_APPEND, or the file offset
			n, err = f.Write(b)
		} else {
			n, err = syscall.Pwrite(int(f.Fd()), b, o.Off)
		}
		res.N = int64(n)
	case "read":
		buf := make([]byte, o.N)
		var n int
		n, err = syscall.Pread(int(x.fds[o.FD].Fd()), buf, o.Off)
		if n > 0 {
			res.Data = buf[:n]
		}
	case "close":
		err = x.fds[o.FD].Close()
		delete(x.fds, o.FD)
	case "ftruncate":
		err = x.fds[o.FD].Truncate(o.N)
	case "dropcache":
		// fsync (the kernel writes its dirty pages back), then drop the
		// file's clean pages, so that the next read asks the file system.
		fd := int(x.fds[o.FD].Fd())
		if err = syscall.Fsync(fd); err == nil {
			const fadvDontNeed = 4
			if _, _, en := syscall.Syscall6(syscall.SYS_FADVISE64, uintptr(fd), 0, 0, fadvDontNeed, 0, 0); en != 0 {
				err = en
			}
		}
	case "fstat":
		var st syscall.Stat_t
		if err = syscall.Fstat(int(x.fds[o.FD].Fd()), &st); err == nil {
			res.Size, res.N = st.Size, int64(st.Nlink)
		}
	case "truncate":
		err = os.Truncate(x.path(o.Path), o.N)
	case "rename":
		err = os.Rename(x.path(o.Path), x.path(o.Path2))
	case "unlink":
		err = syscall.Unlink(x.path(o.Path))
	case "mkdir":
		err = syscall.Mkdir(x.path(o.Path), 0o755)
	case "rmdir":
		err = syscall.Rmdir(x.path(o.Path))
	case "readfile":
		res.Data, err = os.ReadFile(x.path(o.Path))
	case "stat":
		var st os.FileInfo
		if st, err = os.Stat(x.path(o.Path)); err == nil {
			res.Dir = st.IsDir()
			if !res.Dir {
				res.Size = st.Size()
			}
		}
	case "readdir":
		var ents []os.DirEntry
		ents, err = os.ReadDir(x.path(o.Path))
		for _, e := range ents {
			if e.IsDir() {
				res.Names = append(res.Names, e.Name()+"/")
				continue
			}
			info, ierr := e.Info()
			if ierr != nil {
				res.Names = append(res.Names, e.Name()+" "+ierr.Error())
				continue
			}
			res.Names = append(res.Names, fmt.Sprintf("%s %d", e.Name(), info.Size()))
		}
		sort.Strings(res.Names)
	default:
		err = errors.New("unknown op " + o.Kind)
	}
	var en syscall.Errno
	var pe *os.PathError
	switch {
	case errors.As(err, &en):
		res.Errno = int(en)
	case errors.As(err, &pe):
		res.Err = pe.Err.Error()
	case err != nil:
		res.Err = err.Error()
	}
	return res
}

func (x *opExec) closeAll() {
	for fd, f := range x.fds {
		f.Close()
		delete(x.fds, fd)
	}
}

func init() { childServers["opserver"] = serveOps }

// serveOps is the child side: one fsOp per line on stdin, one fsResult per
// line on stdout, until stdin closes.
func serveOps(root, _ string) int {
	x := newOpExec(root)
	dec := json.NewDecoder(bufio.NewReaderSize(os.Stdin, 1<<20))
	enc := json.NewEncoder(os.Stdout)
	for {
		var o fsOp
		if err := dec.Decode(&o); err != nil {
			x.closeAll()
			if err == io.EOF {
				return 0
			}
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := enc.Encode(x.do(o)); err != nil {
			return 2
		}
	}
}

// opChild runs fsOps on the mount from a child process. Every op has a
// deadline: a hung op aborts the mount's FUSE connection (so the child's
// syscall returns) and fails the test.
type opChild struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	enc  *json.Encoder
	dec  *json.Decoder
	dev  uint64
	wait time.Duration
}

func startOpChild(t *testing.T, root string, wait time.Duration) *opChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childOp+"=opserver", childOp+"_A="+root)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &opChild{t: t, cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(out), dev: devOf(root), wait: wait}
	t.Cleanup(c.stop)
	return c
}

func (c *opChild) do(o fsOp) fsResult {
	c.t.Helper()
	type answer struct {
		res fsResult
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		var a answer
		if a.err = c.enc.Encode(o); a.err == nil {
			a.err = c.dec.Decode(&a.res)
		}
		ch <- a
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			c.t.Fatalf("%v: child: %v", o, a.err)
		}
		return a.res
	case <-time.After(c.wait):
		abortConn(c.dev)
		c.t.Fatalf("%v did not return within %v on the mount", o, c.wait)
		return fsResult{}
	}
}

func (c *opChild) stop() {
	if c.cmd == nil {
		return
	}
	c.in.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		abortConn(c.dev)
		c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}
