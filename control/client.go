package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrNoMount means nothing answers on the socket: the mount is not running.
var ErrNoMount = errors.New("no running synfs answers")

// Call sends req to the mount using cacheDir and returns its answer. An
// error in the answer is returned as an error, with the response.
func Call(cacheDir string, req Request) (*Response, error) {
	c, err := net.DialTimeout("unix", SocketPath(cacheDir), 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w on %s (%v)", ErrNoMount, SocketPath(cacheDir), unwrapOp(err))
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if resp.Error != "" {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}

// GetStatus asks for the mount's status.
func GetStatus(cacheDir string) (*Status, error) {
	resp, err := Call(cacheDir, Request{Op: OpStatus})
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, errors.New("control socket: no status in the answer")
	}
	return resp.Status, nil
}

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
