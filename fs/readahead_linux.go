package fs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/synfs/synfs/control"
)

// readaheadKB is the kernel's read-ahead window that synfs asks for on its
// mount, in KiB. The kernel starts a FUSE mount at 128 KiB whatever the
// file system offers at init (it takes the smaller of the two), so the
// page cache asks synfs for 128 to 256 KiB at a time and only one or two
// such READs are in flight: a sequential reader then pays a round trip
// through the daemon per 256 KiB. 8 MiB lets the kernel send 1 MiB READs
// (max_pages), several at a time (AsyncRead), ahead of the reader; the
// block cache (read.go) prefetches beyond that.
const readaheadKB = 8 << 10

// raiseReadahead sets the read-ahead window of the mount at dir (its
// backing device's read_ahead_kb in sysfs). Only root may write it; an
// unprivileged mount keeps the kernel's 128 KiB.
func raiseReadahead(dir string, kb int) error {
	dev, err := mountDevice(dir)
	if err != nil {
		return err
	}
	p := "/sys/class/bdi/" + dev + "/read_ahead_kb"
	if err := os.WriteFile(p, []byte(strconv.Itoa(kb)), 0); err != nil {
		return fmt.Errorf("set %s: %w", p, unwrapPath(err))
	}
	return nil
}

// mountDevice returns the "major:minor" device of the mount at dir, from
// /proc/self/mountinfo (no request to the mount itself).
func mountDevice(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	dev := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID parent major:minor root mountpoint options ...
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && control.UnescapeMountinfo(fields[4]) == abs {
			dev = fields[2] // the last mount on dir is the one on top
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if dev == "" {
		return "", fmt.Errorf("%s is not in /proc/self/mountinfo", abs)
	}
	return dev, nil
}
