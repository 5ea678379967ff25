package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// mount(8) support: for a file system of type fuse.synfs (or fuse with the
// source "/path/to/synfs#SOURCE"), mount.fuse3 runs
//
//	synfs SOURCE MOUNTPOINT -o OPTIONS
//
// and waits for it to exit, so this form mounts with --daemon. SOURCE is a
// synID (mounted as --root) or any word (e.g. "synfs": all projects).
// OPTIONS are synfs's mount flags as key=value (cache-dir=DIR,
// endpoint=URL, ...), the boolean ones by name, allow_other, and the
// generic mount options mount.fuse3 adds, which are ignored.

var synIDSource = regexp.MustCompile(`^syn[0-9]+$`)

// genericMountOptions are passed by mount(8) and mount.fuse3 and mean
// nothing to synfs (the kernel mount is nosuid,nodev either way).
var genericMountOptions = map[string]bool{
	"rw": true, "exec": true, "noexec": true, "suid": true, "nosuid": true, "dev": true, "nodev": true,
	"atime": true, "noatime": true, "relatime": true, "strictatime": true, "nodiratime": true,
	"sync": true, "async": true, "dirsync": true, "defaults": true, "auto": true, "noauto": true,
	"user": true, "users": true, "nouser": true, "_netdev": true, "nofail": true,
}

// isHelperForm reports whether args look like mount.fuse3's call, which
// always carries -o (at least "rw"): a mistyped command with two arguments
// must not mount anything.
func isHelperForm(args []string) bool {
	return len(args) == 4 && !strings.HasPrefix(args[0], "-") && args[2] == "-o"
}

// helperArgs turns "SOURCE MOUNTPOINT [-o OPTIONS]" into mount arguments.
func helperArgs(args []string) ([]string, error) {
	out := []string{args[1], "--daemon"}
	if synIDSource.MatchString(args[0]) {
		out = append(out, "--root", args[0])
	}
	for _, o := range strings.Split(args[3], ",") {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case o == "" || genericMountOptions[k] || strings.HasPrefix(k, "x-") || k == "comment":
		case k == "allow_other":
			out = append(out, "--allow-other")
		case k == "emulator" || k == "v" || k == "adopt-staged":
			out = append(out, "--"+k)
		case hasValue && mountFlagTakesValue(k):
			out = append(out, "--"+k, v)
		default:
			return nil, fmt.Errorf("mount option %q is not a synfs option (see synfs help mount)", o)
		}
	}
	return out, nil
}

func mountFlagTakesValue(name string) bool {
	switch name {
	case "endpoint", "config", "profile", "cache-dir", "root", "cache-max-size", "writeback-delay",
		"attr-ttl", "transfers", "parts", "rest-concurrency", "rest-rate", "log-file":
		return true
	}
	return false
}

// cmdMountHelper mounts for mount(8).
func cmdMountHelper(args []string) int {
	margs, err := helperArgs(args)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	// mount(8) runs the helper with no PATH in the environment (the shell
	// uses a default it does not export): fusermount3 must still be found.
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return cmdMount(margs)
}
