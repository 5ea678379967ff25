package fs

import "os/exec"

// lazyUnmount detaches a busy mount (fusermount3 -u -z).
func lazyUnmount(dir string) {
	_ = exec.Command("fusermount3", "-u", "-z", dir).Run()
}
