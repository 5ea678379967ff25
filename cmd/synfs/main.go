package main

import (
	"fmt"
	"os"
)

const usage = `synfs mounts Synapse (synapse.org) as a file system: copy files in with cp.

Usage:
  synfs mount MOUNTPOINT [flags]   mount your Synapse projects (or --root synID) at MOUNTPOINT
  synfs annotate MANIFEST [flags]  apply a synapse manifest/sync TSV's annotations to files in the mount
  synfs emulator [flags]           serve a local Synapse emulator (for trying synfs and for tests)
  synfs help [COMMAND]             show help for a command

Run "synfs help mount" for the mount flags.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "mount":
		return cmdMount(args[1:])
	case "emulator":
		return cmdEmulator(args[1:])
	case "annotate":
		return cmdAnnotate(args[1:])
	case "help", "-h", "--help":
		if len(args) > 1 {
			return run([]string{args[1], "-h"})
		}
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "synfs: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// fail prints one plain line and returns the exit code.
func fail(code int, format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "synfs: "+format+"\n", a...)
	return code
}
