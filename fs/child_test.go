package fs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every syscall a mounted test makes on its own mount runs in a child
// process (this test binary, re-executed): a thread of the process that
// serves a FUSE mount, blocked in the kernel on that same mount, can stall
// the server and hang the suite (seen under the race detector). bazil's
// spawntest does the same.

const childOp = "SYNFS_FS_CHILD_OP"

// childServers are long-lived child modes that answer many requests over
// stdin and stdout (see prove_ops_test.go), keyed by op name.
var childServers = map[string]func(a, b string) int{}

func TestMain(m *testing.M) {
	if op := os.Getenv(childOp); op != "" {
		os.Exit(childMain(op, os.Getenv(childOp+"_A"), os.Getenv(childOp+"_B")))
	}
	// A -race binary sleeps a second at exit (the race runtime's
	// atexit_sleep_ms), and the child processes are this binary: a copy's
	// child then returned a second after its last close, which is as long
	// as the uploads' delay in the fault cases, so the uploads a case meant
	// to disturb could all be over before it began (token-revoked then
	// waited in vain for uploads to pause).
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type childResult struct {
	Errno int
	Err   string
	Size  int64
	Ino   uint64 // stat: the inode number
	Mtime time.Time
	Data  []byte
	Names []string
	Took  time.Duration // how long the syscalls took, without the process start
}

func childMain(op, a, b string) int {
	var res childResult
	var err error
	start := time.Now()
	switch op {
	case "write":
		var data []byte
		if data, err = io.ReadAll(os.Stdin); err == nil {
			err = os.WriteFile(a, data, 0o644)
		}
	case "writehold":
		// Write b to a, say "ready", wait for a line on stdin, then close:
		// the close's error is the result.
		var f *os.File
		if f, err = os.Create(a); err == nil {
			if _, err = f.WriteString(b); err == nil {
				os.Stdout.WriteString("ready\n")
				bufio.NewReader(os.Stdin).ReadString('\n')
				err = f.Close()
			}
		}
	case "read":
		res.Data, err = os.ReadFile(a)
	case "stat":
		var st os.FileInfo
		if st, err = os.Stat(a); err == nil {
			res.Size, res.Mtime = st.Size(), st.ModTime()
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				res.Ino = sys.Ino
			}
		}
	case "readdir":
		var ents []os.DirEntry
		ents, err = os.ReadDir(a)
		for _, e := range ents {
			res.Names = append(res.Names, e.Name())
		}
	case "create":
		var f *os.File
		if f, err = os.Create(a); err == nil {
			err = f.Close()
		}
	case "mkdir":
		err = os.Mkdir(a, 0o755)
	case "mkdirall":
		err = os.MkdirAll(a, 0o755)
	case "rename":
		err = os.Rename(a, b)
	case "remove":
		err = os.Remove(a)
	case "truncate":
		n, _ := strconv.ParseInt(b, 10, 64)
		err = os.Truncate(a, n)
	case "chtimes":
		tm, _ := time.Parse(time.RFC3339Nano, b)
		err = os.Chtimes(a, tm, tm)
	case "chmod":
		err = os.Chmod(a, 0o600)
	case "symlink":
		err = os.Symlink(a, b)
	case "link":
		err = os.Link(a, b)
	case "getxattr":
		res.Data, err = getxattr(a, b)
	case "setxattr", "setxattr-create", "setxattr-replace":
		flags := map[string]int{"setxattr": 0, "setxattr-create": 1, "setxattr-replace": 2}[op] // XATTR_CREATE, XATTR_REPLACE
		var v []byte
		if v, err = io.ReadAll(os.Stdin); err == nil {
			err = syscall.Setxattr(a, b, v, flags)
		}
	case "removexattr":
		err = syscall.Removexattr(a, b)
	case "listxattr":
		buf := make([]byte, 64<<10)
		var n int
		if n, err = syscall.Listxattr(a, buf); err == nil {
			for _, name := range bytes.Split(buf[:n], []byte{0}) {
				if len(name) > 0 {
					res.Names = append(res.Names, string(name))
				}
			}
		}
	case "preads":
		// b is "off:len,off:len,...": one descriptor, pread each range,
		// all the bytes concatenated in Data.
		var f *os.File
		if f, err = os.Open(a); err == nil {
			for _, r := range strings.Split(b, ",") {
				o, l, _ := strings.Cut(r, ":")
				off, _ := strconv.ParseInt(o, 10, 64)
				n, _ := strconv.Atoi(l)
				p := make([]byte, n)
				k, rerr := f.ReadAt(p, off)
				res.Data = append(res.Data, p[:k]...)
				if rerr != nil && rerr != io.EOF {
					err = rerr
					break
				}
			}
			f.Close()
		}
	case "batch":
		// a is a JSON list of [op, a, b]; each runs in turn and its errno
		// (0 for success, -1 for another error) is put in Names.
		var ops [][3]string
		if err = json.Unmarshal([]byte(a), &ops); err == nil {
			for _, o := range ops {
				res.Names = append(res.Names, strconv.Itoa(batchOp(o[0], o[1], o[2])))
			}
		}
	default:
		if serve, ok := childServers[op]; ok {
			return serve(a, b)
		}
		err = errors.New("unknown child op " + op)
	}
	res.Took = time.Since(start)
	var en syscall.Errno
	switch {
	case errors.As(err, &en):
		res.Errno = int(en)
	case err != nil:
		res.Err = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// batchOp runs one syscall of a batch and returns its errno.
func batchOp(op, a, b string) int {
	var err error
	switch op {
	case "stat":
		_, err = os.Stat(a)
	case "create":
		var f *os.File
		if f, err = os.Create(a); err == nil {
			err = f.Close()
		}
	case "mkdir":
		err = os.Mkdir(a, 0o755)
	case "rename":
		err = os.Rename(a, b)
	case "remove":
		err = os.Remove(a)
	case "rmdir":
		err = syscall.Rmdir(a)
	case "unlink":
		err = syscall.Unlink(a)
	default:
		return -1
	}
	var en syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &en):
		return int(en)
	}
	return -1
}

// xPreads reads ranges of p with pread on one descriptor in a child
// process and returns the bytes read, concatenated.
func xPreads(t *testing.T, p string, ranges [][2]int64) ([]byte, error) {
	var b strings.Builder
	for i, r := range ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(r[0], 10) + ":" + strconv.FormatInt(r[1], 10))
	}
	res, err := child(t, "preads", p, b.String(), nil)
	return res.Data, err
}

// xBatch runs ops (each [op, a, b]) in one child process and returns each
// one's errno, 0 for success.
func xBatch(t *testing.T, ops [][3]string) []syscall.Errno {
	t.Helper()
	j, _ := json.Marshal(ops)
	r, err := child(t, "batch", string(j), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]syscall.Errno, len(r.Names))
	for i, s := range r.Names {
		n, _ := strconv.Atoi(s)
		out[i] = syscall.Errno(n)
	}
	return out
}

// child runs op in a child process. Its error wraps the syscall's errno,
// so errnoOf and os.IsNotExist work on it.
func child(t *testing.T, op, a, b string, stdin []byte) (childResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childOp+"="+op, childOp+"_A="+a, childOp+"_B="+b)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not return within 2 minutes", op, a)
	}
	if err != nil {
		t.Fatalf("child %s %s: %v", op, a, err)
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child %s %s: %v in %q", op, a, err, out)
	}
	switch {
	case res.Errno != 0:
		return res, &os.PathError{Op: op, Path: a, Err: syscall.Errno(res.Errno)}
	case res.Err != "":
		return res, errors.New(res.Err)
	}
	return res, nil
}

// getxattr reads attribute name of path the way getfattr does: size
// first, then the value.
func getxattr(path, name string) ([]byte, error) {
	n, err := syscall.Getxattr(path, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	n, err = syscall.Getxattr(path, name, buf)
	return buf[:n], err
}

func xGetxattr(t *testing.T, p, name string) (string, error) {
	res, err := child(t, "getxattr", p, name, nil)
	return string(res.Data), err
}

func xSetxattr(t *testing.T, p, name, value string) error {
	_, err := child(t, "setxattr", p, name, []byte(value))
	return err
}

func xRemovexattr(t *testing.T, p, name string) error {
	_, err := child(t, "removexattr", p, name, nil)
	return err
}

func xListxattr(t *testing.T, p string) ([]string, error) {
	res, err := child(t, "listxattr", p, "", nil)
	return res.Names, err
}

func xWriteFile(t *testing.T, p string, b []byte) error {
	_, err := child(t, "write", p, "", b)
	return err
}

func xReadFile(t *testing.T, p string) ([]byte, error) {
	r, err := child(t, "read", p, "", nil)
	return r.Data, err
}

func xStat(t *testing.T, p string) (childResult, error) { return child(t, "stat", p, "", nil) }

func xReadDir(t *testing.T, p string) ([]string, error) {
	r, err := child(t, "readdir", p, "", nil)
	return r.Names, err
}

func xCreate(t *testing.T, p string) error {
	_, err := child(t, "create", p, "", nil)
	return err
}

func xMkdir(t *testing.T, p string) error {
	_, err := child(t, "mkdir", p, "", nil)
	return err
}

func xMkdirAll(t *testing.T, p string) error {
	_, err := child(t, "mkdirall", p, "", nil)
	return err
}

func xRename(t *testing.T, a, b string) error {
	_, err := child(t, "rename", a, b, nil)
	return err
}

func xRemove(t *testing.T, p string) error {
	_, err := child(t, "remove", p, "", nil)
	return err
}

func xTruncate(t *testing.T, p string, n int64) error {
	_, err := child(t, "truncate", p, strconv.FormatInt(n, 10), nil)
	return err
}

func xChtimes(t *testing.T, p string, tm time.Time) error {
	_, err := child(t, "chtimes", p, tm.Format(time.RFC3339Nano), nil)
	return err
}

func xChmod(t *testing.T, p string) error {
	_, err := child(t, "chmod", p, "", nil)
	return err
}

func xSymlink(t *testing.T, target, p string) error {
	_, err := child(t, "symlink", target, p, nil)
	return err
}

func xLink(t *testing.T, a, b string) error {
	_, err := child(t, "link", a, b, nil)
	return err
}
