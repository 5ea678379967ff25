package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// SocketName is the control socket's name in the cache directory.
const SocketName = "control.sock"

// SocketPath is the control socket of the mount using cacheDir.
func SocketPath(cacheDir string) string { return filepath.Join(cacheDir, SocketName) }

// Handler answers requests; the mount implements it.
type Handler interface {
	Status() Status
	Retry(path string, all bool) ([]string, error)
	Discard(path string) ([]string, error)
	// Unmount unmounts at once; it reports busy when the kernel refuses
	// because a process uses the mount.
	Unmount() (busy bool, err error)
}

// Server serves one mount's control socket.
type Server struct {
	ln   *net.UnixListener
	path string
	h    Handler
	log  *slog.Logger
	done chan struct{}
	busy sync.WaitGroup // requests being answered
}

// Listen creates the socket at SocketPath(cacheDir), mode 0600, replacing a
// stale one (the cache directory's lock guarantees no other mount uses it).
func Listen(cacheDir string, h Handler, log *slog.Logger) (*Server, error) {
	p := SocketPath(cacheDir)
	if len(p) >= 108 {
		return nil, fmt.Errorf("control socket %s: path longer than the 107 bytes a unix socket allows: use a shorter --cache-dir", p)
	}
	os.Remove(p)
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	s := &Server{ln: ln, path: p, h: h, log: log, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Close stops serving, removes the socket, and gives the requests being
// answered (an unmount's, typically) up to 5 s to finish.
func (s *Server) Close() error {
	err := s.ln.Close()
	<-s.done
	answered := make(chan struct{})
	go func() { s.busy.Wait(); close(answered) }()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
	}
	return err
}

func (s *Server) serve() {
	defer close(s.done)
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("control socket: " + err.Error())
			}
			return
		}
		s.busy.Add(1)
		go func() {
			defer s.busy.Done()
			s.handle(c)
		}()
	}
}

func (s *Server) handle(c *net.UnixConn) {
	defer c.Close()
	if err := samePeer(c); err != nil {
		s.log.Warn("control socket: refused a connection: " + err.Error())
		return
	}
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	var resp Response
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else {
		resp = s.answer(req)
	}
	b, _ := json.Marshal(resp)
	c.Write(append(b, '\n'))
}

func (s *Server) answer(req Request) (resp Response) {
	var err error
	switch req.Op {
	case OpStatus:
		st := s.h.Status()
		resp.Status = &st
	case OpRetry:
		resp.Files, err = s.h.Retry(req.Path, req.All)
	case OpDiscard:
		resp.Files, err = s.h.Discard(req.Path)
	case OpUnmount:
		resp.Busy, err = s.h.Unmount()
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}

// samePeer refuses a peer that runs as another user (root excepted).
func samePeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if me := uint32(os.Getuid()); cred.Uid != me && cred.Uid != 0 {
		return fmt.Errorf("peer uid %d is not %d", cred.Uid, me)
	}
	return nil
}
